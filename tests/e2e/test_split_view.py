"""A ledger that shows two histories to two verifiers is caught.

Two servers sign with the same log key over two stores that diverge after a
common prefix -- what a dishonest operator would show to different parties.
Verifier A follows one, verifier B the other; they are peers. Each cosigns
what it was shown, then compares with the other: the two trees are not
prefixes of each other, no consistency proof can join the roots, and both
raise a split-view alarm and stop cosigning.
"""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog.keys import Signer
from tests.e2e.conftest import free_port, running_process, running_server
from tests.strategies import good_spec

ORIGIN = "ledger.test/forked"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("extra", [0, 2], ids=["same size", "different sizes"])
def test_two_verifiers_shown_two_histories_both_alarm(tmp_path: Path, extra: int) -> None:
    log = Signer.generate(ORIGIN)
    (tmp_path / "log.key").write_text(log.to_private_text() + "\n")
    honest = tmp_path / "honest.db"
    with Ledger(DatabaseURL.parse(f"sqlite:///{honest}")) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(), idempotency_key="m")["good_id"]
    forked = tmp_path / "forked.db"
    shutil.copy(honest, forked)
    for path, buyer, sales in ((honest, "alice", 1), (forked, "mallory", 1 + extra)):
        with Ledger(DatabaseURL.parse(f"sqlite:///{path}")) as ledger:
            for n in range(sales):
                ledger.sell(
                    good,
                    "own",
                    buyer=buyer,
                    channel="shop",
                    quantity=1,
                    unit_price=Money(100, "EUR"),
                    idempotency_key=f"s{n}",
                )

    ports = {"a": free_port(), "b": free_port()}
    keys = {}
    for name in ports:
        signer = Signer.generate(f"verifier-{name}", key_type=0x04)
        keys[name] = tmp_path / f"{name}.key"
        keys[name].write_text(signer.to_private_text() + "\n")
    with ExitStack() as stack:
        bases = {
            "a": stack.enter_context(
                running_server(
                    f"sqlite:///{honest}", tmp_path / "log.key", log_file=tmp_path / "honest.log"
                )
            ),
            "b": stack.enter_context(
                running_server(
                    f"sqlite:///{forked}", tmp_path / "log.key", log_file=tmp_path / "forked.log"
                )
            ),
        }
        nodes = {}
        for name, other in (("a", "b"), ("b", "a")):
            nodes[name] = stack.enter_context(
                running_process(
                    [
                        "verifier",
                        "run",
                        "--ledger",
                        bases[name],
                        "--key",
                        str(keys[name]),
                        "--log-key",
                        log.verifier_key(),
                        "--state",
                        str(tmp_path / name),
                        "--port",
                        str(ports[name]),
                        "--poll",
                        "0.1",
                        "--peer",
                        f"http://127.0.0.1:{ports[other]}",
                    ],
                    f"http://127.0.0.1:{ports[name]}",
                    "/status",
                    log_file=tmp_path / f"verifier-{name}.log",
                )
            )
        deadline = time.monotonic() + 30
        alarms = {}
        while len(alarms) < 2:
            for name, node in nodes.items():
                status = httpx.get(f"{node}/status")
                if status.status_code == 503:
                    alarms[name] = status.json()["alarm"]
            assert time.monotonic() < deadline, {
                n: httpx.get(f"{u}/status").text for n, u in nodes.items()
            }
            time.sleep(0.1)
    for alarm in alarms.values():
        assert alarm["check"] == "split-view", alarm
        assert alarm["expected"] != alarm["actual"]
