"""A verifier node re-checks authority (issue 14 item 9): an event that
is correctly chained and logged, but in which a channel resells a unit held
through another channel, makes the node alarm on that entry and refuse to
cosign -- not a rewritten hash, a broken rule."""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from ledger.domain.money import Money, split
from ledger.domain.unit import Unit
from ledger.service import Ledger, utc_now
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import free_port, running_process, running_server
from tests.e2e.test_verifier_nodes import keygen
from tests.strategies import open_shop_and_sell

ORIGIN = "ledger.test/authority"
pytestmark = pytest.mark.slow


def test_a_node_refuses_to_cosign_a_resale_by_a_channel_not_holding_the_unit(
    store_url: DatabaseURL, tmp_path: Path
) -> None:
    log_key, log_vkey = keygen(tmp_path, ORIGIN)
    node_key, _ = keygen(tmp_path, "verifier-a", cosigner=True)
    port = free_port()
    with Ledger(store_url) as ledger, ExitStack() as stack:
        base = stack.enter_context(
            running_server(store_url.display(), log_key, log_file=tmp_path / "ledger.log")
        )
        node = stack.enter_context(
            running_process(
                [
                    "verifier",
                    "run",
                    "--ledger",
                    base,
                    "--key",
                    str(node_key),
                    "--log-key",
                    log_vkey,
                    "--state",
                    str(tmp_path / "node"),
                    "--port",
                    str(port),
                    "--poll",
                    "0.1",
                ],
                f"http://127.0.0.1:{port}",
                "/status",
                log_file=tmp_path / "node.log",
            )
        )
        good, sales = open_shop_and_sell(ledger, 3)
        ledger.register_channel("other", "Other", 500, idempotency_key="ch-other")
        _wait(lambda: httpx.get(f"{node}/status").json()["size"] >= _events(ledger), "cosigned")
        assert httpx.get(f"{node}/status").json()["alarm"] is None

        # Forged past the domain: "other" resells b1's unit, held through
        # "shop" -- chained after the unit's last event, on the right split.
        unit = ledger.unit(sales[1]["units"][0]["unit_id"])
        price = Money(5000, "EUR")
        forged = Unit.Resold(
            originator_id=unit.id,
            originator_version=unit.version + 1,
            timestamp=utc_now(),
            prev_hash=unit.head_hash,
            resale_id=str(uuid.uuid4()),
            seller="b1",
            buyer="mallory",  # (never opened: that finding waits for the log's end)
            channel="other",
            price=price.to_json(),
            split=split(price.amount, ledger.good(good).resale_shares("other", 500, "b1")),
        )
        ledger.event_store.append([forged])
        index = _events(ledger) - 1

        def alarmed() -> bool:
            return httpx.get(f"{node}/status").status_code == 503

        _wait(alarmed, "the node's alarm")
        alarm = httpx.get(f"{node}/status").json()["alarm"]
        assert alarm["check"] == "rule:not-in-custody", alarm
        assert alarm["index"] == index
        assert (alarm["expected"], alarm["actual"]) == ("shop", "other")
        checkpoint = httpx.get(f"{base}/log/checkpoint").text
        refused = httpx.post(f"{node}/add-checkpoint", content="old 0\n\n" + checkpoint)
        assert refused.status_code == 503


def _events(ledger: Ledger) -> int:
    return int(ledger.event_store.recorder.max_notification_id() or 0)


def _wait(ready: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
