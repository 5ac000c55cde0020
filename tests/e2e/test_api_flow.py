"""The main flows through a real server process over HTTP, on both backends:
creator mints, channel sells and resells, anyone with a key reads the
unit's history, the creator reads the royalty statement, the channel
downloads its settlement CSV, and a stock stream sees each sale live."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.projections.replay import compare_with_replay
from ledger.projections.store import ProjectionStore
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import running_server
from tests.strategies import good_spec


def issue(db: str, role: str, subject: str | None = None) -> str:
    args = [
        sys.executable,
        "-m",
        "ledger.cli",
        "api-keys",
        "issue",
        "--db",
        db,
        "--role",
        role,
        "--json",
    ] + (["--subject", subject] if subject else [])
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    token: str = json.loads(done.stdout)["token"]
    return token


def keys(db: str) -> dict[str, str]:
    return {
        "admin": issue(db, "admin"),
        "alice": issue(db, "creator", "alice"),
        "shop": issue(db, "channel", "shop"),
        "market": issue(db, "channel", "market"),
        "auditor": issue(db, "auditor"),
    }


class Client:
    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def post(self, path: str, body: Any) -> Any:
        response = self.http.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response


def wait_caught_up(auditor: Client) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = auditor.get("/views/status").json()
        if status["behind"] == 0 and status["position"] > 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"views did not catch up: {status}")


@pytest.fixture
def log_key(tmp_path: Path) -> Path:
    key = tmp_path / "log.key"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "keys",
            "generate",
            "--name",
            "ledger.test/api",
            "--out",
            str(key),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return key


def test_mint_sell_resell_then_read_everything(
    store_url: DatabaseURL, tmp_path: Path, log_key: Path
) -> None:
    db = store_url.display()
    Ledger(store_url).close()  # create the store so keys can be issued before serving
    tokens = keys(db)
    with running_server(db, log_key, log_file=tmp_path / "server.log") as base:
        admin, alice, shop, market, auditor = (
            Client(base, tokens[n]) for n in ("admin", "alice", "shop", "market", "auditor")
        )
        admin.post("/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
        admin.post("/channels", {"channel": "market", "name": "Market", "fee_bps": 250})
        good = alice.post(
            "/goods",
            {"spec": good_spec(creators=[{"id": "alice", "share_bps": 10_000}], resale_bps=1_000)},
        )["good_id"]

        # A stock stream, opened before the sales, sees them arrive.
        events: list[dict[str, Any]] = []
        stream_ready = threading.Event()
        failures: list[BaseException] = []

        def follow() -> None:
            try:
                stream()
            except BaseException as error:  # reported by the main thread
                failures.append(error)
                stream_ready.set()

        def stream() -> None:
            with shop.http.stream("GET", f"/goods/{good}/stock/stream", timeout=30) as response:
                assert response.status_code == 200, response.read()
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    snapshot = json.loads(line[6:])
                    stream_ready.set()
                    own = [t for t in snapshot["tiers"] if t["tier"] == "own"]
                    if own:  # (the first may come before the views have the good)
                        events.append(own[0])
                        if own[0]["issued"] >= 3:
                            return

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        assert stream_ready.wait(15)
        assert not failures, failures

        units = [
            shop.post(
                f"/goods/{good}/tiers/own/sales",
                {
                    "buyer": f"b{i}",
                    "channel": "shop",
                    "unit_price": {"amount": 1_000, "currency": "EUR"},
                },
            )["units"][0]["unit_id"]
            for i in range(3)
        ]
        # b0 takes the unit to the market (the shop hands it off), which resells it.
        shop.post(
            f"/units/{units[0]}/moves",
            {"holder": "b0", "to_channel": "market", "channel": "shop"},
        )
        market.post(
            f"/units/{units[0]}/resales",
            {
                "seller": "b0",
                "buyer": "zoe",
                "channel": "market",
                "price": {"amount": 8_000, "currency": "EUR"},
            },
        )
        follower.join(15)
        assert not follower.is_alive()
        assert not failures, failures
        issued = [e["issued"] for e in events]
        assert issued[-1] == 3
        assert issued == sorted(issued)

        wait_caught_up(auditor)
        unit = auditor.get(f"/units/{units[0]}").json()
        assert [
            (h["from"], h["to"], h["channel"], h["price"] and h["price"]["amount"])
            for h in unit["history"]
        ] == [
            (None, "b0", "shop", 1_000),
            ("b0", "b0", "market", None),
            ("b0", "zoe", "market", 8_000),
        ]
        statement = alice.get("/creators/alice/statement", kind="resale").json()
        assert [line["amount"]["amount"] for line in statement["items"]] == [800]
        csv_text = market.get("/channels/market/settlement", format="csv").text
        header, row = csv_text.splitlines()
        values = dict(zip(header.split(","), row.split(","), strict=True))
        assert (
            values["units"],
            values["gross"],
            values["fees"],
            values["royalties"],
            values["net"],
        ) == ("1", "8000", "200", "800", "7800")
        stock = alice.get(f"/goods/{good}/stock").json()["tiers"]
        assert {t["tier"]: t["available"] for t in stock} == {"own": 7, "view": 20}
        # The channel cannot read another channel's settlement.
        assert shop.http.get("/channels/market/settlement").status_code == 403

    # After the run, the views equal a fresh replay of the store.
    with Ledger(store_url) as ledger:
        report = compare_with_replay(ProjectionStore(ledger.event_store.recorder, create=False))
    assert report.ok, report.differences


def test_a_hold_expires_on_its_own_in_a_running_server(
    store_url: DatabaseURL, tmp_path: Path, log_key: Path
) -> None:
    """The server's sweeper records the expiry: the units come back with no
    one calling, and the hold says so."""
    db = store_url.display()
    Ledger(store_url).close()
    tokens = {"admin": issue(db, "admin"), "shop": issue(db, "channel", "shop")}
    with running_server(db, log_key, log_file=tmp_path / "server.log") as base:
        admin, shop = Client(base, tokens["admin"]), Client(base, tokens["shop"])
        admin.post("/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
        good = admin.post("/goods", {"spec": good_spec()})["good_id"]
        hold = shop.post(
            f"/goods/{good}/tiers/own/holds", {"channel": "shop", "quantity": 4, "ttl_seconds": 1}
        )
        deadline = time.monotonic() + 15
        while True:
            seen = shop.get(f"/holds/{hold['hold_id']}").json()
            if seen["state"] == "expired":
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.1)
        own = next(
            t for t in shop.get(f"/goods/{good}/stock").json()["tiers"] if t["tier"] == "own"
        )
        assert (own["reserved"], own["available"]) == (0, own["quota"])
        late = shop.post(
            f"/goods/{good}/tiers/own/holds/{hold['hold_id']}/commit",
            {"buyer": "ann", "quantity": 1, "unit_price": {"amount": 100, "currency": "EUR"}},
        )
        assert late["outcome"] == "sold-late"
