"""Webhooks end to end (issue 17, item 5): a real ``ledger serve`` follows
its log and delivers to a real receiver on 127.0.0.1 (tests/webhook_receiver.py),
which verifies every signature with the Standard Webhooks library.

* a flash sale over HTTP by two channels, with the server killed -9 in the
  middle and started again: after de-duplication by ``webhook-id``, each
  channel's receiver has seen every event of its own exactly once -- and
  nothing of the other's -- in order per aggregate;
* a receiver down for a while gets everything once it is back (the retry);
* a 410 marks the subscription failing; resuming delivers what waited;
* a replay sends the same ids again;
* the delivery log, pings, rotation (both secrets sign during the grace).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ledger.domain.subscription import CHANNEL_TYPES, message_id
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.store.records import RecordReader
from tests.e2e.conftest import free_port
from tests.e2e.test_api_flow import Client, issue, log_key  # noqa: F401 - a fixture
from tests.strategies import good_spec
from tests.webhook_receiver import WebhookReceiver

ENV = {"LEDGER_WEBHOOKS_ALLOW_PRIVATE": "true", "LEDGER_SEAL_INTERVAL": "0.2"}
TYPES = sorted(CHANNEL_TYPES)


@contextmanager
def server(db: str, key: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``ledger serve`` (its process, to kill -9), ready."""
    port = free_port()
    out = open(log, "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "serve",
            "--db",
            db,
            "--port",
            str(port),
            "--log-key",
            str(key),
        ],
        env=os.environ | ENV,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"server exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready in 30 s"
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        out.close()


def subscribe(client: Client, url: str, types: list[str] = TYPES) -> dict[str, Any]:
    answer: dict[str, Any] = client.post("/webhooks", {"url": url, "types": types})
    return answer


def expected_ids(url: DatabaseURL, channel: str, types: list[str] = TYPES) -> list[str]:
    """The ids of the events of ``types`` that concern ``channel``, from the
    store (log order) -- by the payload's channel, or a hold's channel."""
    holds: dict[str, str] = {}
    found = []
    with RecordReader(url) as reader:
        for r in reader:
            payload = orjson.loads(r.state)["payload"]
            if r.event_type == "stock.reserved":
                holds[payload["hold_id"]] = payload["channel"]
            owner = payload.get("channel") or holds.get(payload.get("hold_id", ""))
            if r.event_type in types and owner == channel:
                found.append(message_id(r.aggregate_id, r.version))
    return found


def in_order_per_aggregate(received: list[Any]) -> bool:
    last: dict[str, int] = defaultdict(int)
    for r in received:
        body = r.json()
        aggregate, sequence = body["aggregate"]["id"], body["sequence"]
        if sequence <= last[aggregate]:
            return False
        last[aggregate] = sequence
    return True


def _sell(client: Client, good: str, channel: str, n: int, start: int) -> None:
    for i in range(start, start + n):
        try:
            response = client.http.post(
                f"/goods/{good}/tiers/own/sales",
                json={
                    "buyer": f"{channel}-b{i}",
                    "channel": channel,
                    "unit_price": {"amount": 1_000, "currency": "EUR"},
                },
                headers={"Idempotency-Key": f"{channel}-{i}"},
            )
        except httpx.TransportError:  # the server was killed: sold again after the restart
            return
        assert response.status_code in (201, 503), response.text


def _setup(db: str, base: str, tokens: dict[str, str]) -> tuple[Client, Client, Client, str]:
    admin, shop, market = (Client(base, tokens[n]) for n in ("admin", "shop", "market"))
    admin.post("/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
    admin.post("/channels", {"channel": "market", "name": "Market", "fee_bps": 250})
    alice = Client(base, tokens["alice"])
    spec = good_spec(
        creators=[{"id": "alice", "share_bps": 10_000}],
        tiers=[{"name": "own", "quota": 1_000, "transferable": True}],
    )
    good: str = alice.post("/goods", {"spec": spec})["good_id"]
    return admin, shop, market, good


def _tokens(db: str) -> dict[str, str]:
    return {
        "admin": issue(db, "admin"),
        "alice": issue(db, "creator", "alice"),
        "shop": issue(db, "channel", "shop"),
        "market": issue(db, "channel", "market"),
    }


def test_flash_sale_each_event_once_in_order_across_kill_9(
    store_url: DatabaseURL,
    tmp_path: Path,
    log_key: Path,  # noqa: F811
) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    tokens = _tokens(db)
    log = tmp_path / "server.log"
    with WebhookReceiver() as receiver:
        with server(db, log_key, log) as (base, process):
            _, shop, market, good = _setup(db, base, tokens)
            secrets = {}
            for name, client in (("shop", shop), ("market", market)):
                answer = subscribe(client, receiver.url(f"/{name}"))
                secrets[name] = answer["secret"]
                receiver.add_secret(answer["secret"], path=f"/{name}")
            # A flash sale: both channels at once, the server killed mid-way.
            sellers = [
                threading.Thread(target=_sell, args=(c, good, n, 40, 0))
                for n, c in (("shop", shop), ("market", market))
            ]
            for t in sellers:
                t.start()
            receiver.wait_for(lambda r: len(r.unique()) >= 20, timeout=60)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            for t in sellers:
                t.join(60)
        with server(db, log_key, log) as (base, _):
            shop, market = Client(base, tokens["shop"]), Client(base, tokens["market"])
            # (sales refused while the server was dead are retried with their keys)
            _sell(shop, good, "shop", 50, 0)
            _sell(market, good, "market", 50, 0)
            expected = {n: expected_ids(store_url, n) for n in ("shop", "market")}
            assert len(expected["shop"]) == len(expected["market"]) == 50
            receiver.wait_for(
                lambda r: all(
                    {x.id for x in r.unique(f"/{n}")} >= set(expected[n]) for n in expected
                ),
                timeout=90,
            )
            time.sleep(0.5)  # anything more would show now
            receiver.check()  # every signature verified
            for name in ("shop", "market"):
                got = receiver.unique(f"/{name}")
                assert sorted(x.id for x in got) == sorted(expected[name])  # once, nothing else
                assert all(x.json()["data"]["channel"] == name for x in got)
                assert in_order_per_aggregate(got)
            duplicates = receiver.duplicates()
    print(
        f"\nflash sale across kill -9 ({store_url.backend}): 100 events per channel, "
        f"{duplicates} re-sent after the restart"
    )


def test_down_receiver_410_resume_replay_rotation_deliveries(
    sqlite_url: DatabaseURL,
    tmp_path: Path,
    log_key: Path,  # noqa: F811
) -> None:
    db = sqlite_url.display()
    Ledger(sqlite_url).close()
    tokens = _tokens(db)
    with WebhookReceiver() as receiver, server(db, log_key, tmp_path / "s.log") as (base, _):
        _, shop, market, good = _setup(db, base, tokens)
        answer = subscribe(shop, receiver.url("/shop"), ["stock.sold"])
        sid, secret = answer["subscription_id"], answer["secret"]
        receiver.add_secret(secret, path="/shop")
        assert answer["secret_generation"] == 1
        assert answer["state"] == "active"

        # Another channel cannot see it, let alone change it.
        assert market.http.get(f"/webhooks/{sid}").status_code == 404
        response = market.http.post(f"/webhooks/{sid}/pause", headers={"Idempotency-Key": "x"})
        assert response.status_code == 404, response.text
        assert [w["subscription_id"] for w in shop.get("/webhooks").json()["webhooks"]] == [sid]

        # Down for a while: the first retry (about 5 s later) finds it back.
        receiver.down()
        _sell(shop, good, "shop", 3, 0)
        time.sleep(1.0)
        receiver.up()
        receiver.wait_for(lambda r: len(r.unique("/shop")) == 3, timeout=30)
        # The delivery log is written when the sender has the answers, a moment
        # after the receiver has the requests: read it until it says so.
        deadline = time.monotonic() + 10
        while True:
            log = shop.get(f"/webhooks/{sid}/deliveries").json()
            outcomes = [a["outcome"] for a in log["attempts"]]
            if outcomes.count("delivered") == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert "retry" in outcomes
        assert outcomes.count("delivered") == 3
        failed = next(a for a in log["attempts"] if a["outcome"] == "retry")
        assert failed["status"] is None
        assert failed["next_attempt_at"] is not None

        # 410: failing at once, kept; resume delivers what waited.
        receiver.fail(410)
        _sell(shop, good, "shop", 2, 3)
        deadline = time.monotonic() + 20
        while shop.get(f"/webhooks/{sid}").json()["state"] != "failing":
            assert time.monotonic() < deadline, "never marked failing"
            time.sleep(0.1)
        receiver.succeed()
        shop.post(f"/webhooks/{sid}/resume", {})
        receiver.wait_for(lambda r: len(r.unique("/shop")) == 5, timeout=20)

        # A replay from the start sends the same ids again.
        before = sorted(r.id for r in receiver.unique("/shop"))
        count = len(receiver.delivered("/shop"))
        shop.post(f"/webhooks/{sid}/replays", {"from_position": 0})
        receiver.wait_for(lambda r: len(r.delivered("/shop")) >= count + 5, timeout=20)
        again = receiver.delivered("/shop")[count:]
        assert sorted(r.id for r in again) == before

        # Rotation: during the grace both secrets sign; the receiver knows only the new one.
        rotated = shop.post(f"/webhooks/{sid}/rotation", {"grace_seconds": 3600})
        assert rotated["secret_generation"] == 2
        assert rotated["secret"] != secret
        receiver.add_secret(rotated["secret"], path="/shop")
        _sell(shop, good, "shop", 1, 5)
        receiver.wait_for(lambda r: len(r.unique("/shop")) == 6, timeout=20)
        last = receiver.unique("/shop")[-1]
        assert len(last.headers["webhook-signature"].split()) == 2
        receiver.check()

        # A ping, signed like the rest.
        ping = shop.http.post(f"/webhooks/{sid}/pings", headers={"Idempotency-Key": "p1"})
        assert ping.status_code == 200, ping.text
        assert ping.json()["delivered"] is True, ping.text

        # Delete: nothing more.
        shop.post(f"/webhooks/{sid}/deletion", {})
        n = len(receiver.delivered("/shop"))
        _sell(shop, good, "shop", 1, 6)
        time.sleep(1.5)
        assert len(receiver.delivered("/shop")) == n


def test_unsafe_urls_are_refused_without_the_setting(
    sqlite_url: DatabaseURL,
    tmp_path: Path,
    log_key: Path,  # noqa: F811
) -> None:
    db = sqlite_url.display()
    Ledger(sqlite_url).close()
    shop_token = issue(db, "channel", "shop")
    os.environ.pop("LEDGER_WEBHOOKS_ALLOW_PRIVATE", None)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "serve",
            "--db",
            db,
            "--port",
            str(port),
            "--log-key",
            str(log_key),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        shop = Client(base, shop_token)
        for url in ("http://127.0.0.1:9/x", "http://10.0.0.1/x", "ftp://example.com/x"):
            response = shop.http.post(
                "/webhooks",
                json={"url": url, "types": ["stock.sold"]},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code == 422, response.text
            assert response.json()["type"].endswith("webhook-url-unsafe"), response.text
        response = shop.http.post(
            "/webhooks",
            json={"url": "https://example.com/x", "types": ["good.minted"]},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 422, response.text
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture(autouse=True)
def _no_leaked_env() -> Iterator[None]:
    saved = os.environ.get("LEDGER_WEBHOOKS_ALLOW_PRIVATE")
    yield
    if saved is not None:
        os.environ["LEDGER_WEBHOOKS_ALLOW_PRIVATE"] = saved
