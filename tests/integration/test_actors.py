"""Who acts, in the service, on both backends (issue 14 item 5): a command
is recorded by whoever submitted it, even when another request's thread
decides it in a group-committed batch; housekeeping (hold expiry) is the
server's, one request id per sweep, under the configured server name; no
actor set, no ``recorded_by`` (the bytes of before)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from ledger.domain.actor import Actor, acting
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.holds import sweep
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EUR = Money(1_000, "EUR")
KEYS = {"shop": "5b0b00000001", "live": "5b0b00000002"}


class GatedClock:
    """Fixed time; the first reading waits for the gate (so requests queue
    behind the batch that asked)."""

    def __init__(self) -> None:
        self.now = T0
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> datetime:
        self.gate.wait(30)
        return self.now


def _events(ledger: Ledger) -> list[dict[str, Any]]:
    """Every stored event's state, with its type, in commit order."""
    recorder: Any = ledger.event_store.recorder
    stored = recorder.select_notifications(start=1, limit=100_000)
    return [{"type": n.topic, **orjson.loads(n.state)} for n in stored]


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, GatedClock]]:
    clock = GatedClock()
    with Ledger(store_url, clock=clock, server_name="edge-2") as ledger:
        for channel in ("shop", "live"):
            ledger.register_channel(channel, channel, 500, idempotency_key=f"ch-{channel}")
        good = ledger.mint(
            good_spec(tiers=[{"name": "own", "quota": 50}, {"name": "view", "quota": 50}]),
            idempotency_key="mint",
        )["good_id"]
        yield ledger, str(good), clock


def test_no_actor_no_recorded_by(shop: Any) -> None:
    ledger, _, _ = shop
    assert all("recorded_by" not in e for e in _events(ledger))


def test_a_batch_records_each_command_by_its_own_submitter(shop: Any) -> None:
    ledger, good, clock = shop
    queued = threading.Semaphore(0)

    def sell(n: int, channel: str) -> None:
        actor = Actor.of_key(KEYS[channel], "channel", channel, f"req-{n}")
        with acting(actor):
            ledger.sell(
                good,
                "own",
                buyer=f"b{n}",
                channel=channel,
                quantity=1,
                unit_price=EUR,
                idempotency_key=f"s{n}",
                on_queued=lambda _position: queued.release(),
            )

    clock.gate.clear()  # the first sale's batch waits; the others queue behind it
    threads = [threading.Thread(target=sell, args=(n, ("shop", "live")[n % 2])) for n in range(5)]
    before = ledger.transactions
    for thread in threads:
        thread.start()
        assert queued.acquire(timeout=30)
    clock.gate.set()
    for thread in threads:
        thread.join(30)
    assert ledger.transactions - before == 2  # the first sale, then the four together
    sold = [e for e in _events(ledger) if e["type"] in ("stock.sold", "unit.issued")]
    assert len(sold) == 10
    for event in sold:
        actor = event["recorded_by"]
        n = int(actor["request_id"].removeprefix("req-"))
        assert event["payload"]["buyer" if event["type"] == "stock.sold" else "holder"] == f"b{n}"
        channel = event["payload"]["channel"]
        assert (actor["key_id"], actor["subject"]) == (KEYS[channel], channel)
    records = [e for e in _events(ledger) if e["payload"].get("key", "").startswith("s")]
    assert {r["recorded_by"]["request_id"] for r in records} == {f"req-{n}" for n in range(5)}


def test_sweeps_are_the_servers_one_request_id_each(shop: Any) -> None:
    ledger, good, clock = shop
    with acting(Actor.of_key(KEYS["shop"], "channel", "shop", "req-hold")):
        for tier in ("own", "view"):
            ledger.reserve(
                good, tier, channel="shop", quantity=1, ttl_seconds=5, idempotency_key=f"h{tier}"
            )
    clock.now = T0 + timedelta(seconds=10)
    due = [(good, "own"), (good, "view")]
    assert sweep(ledger, lambda _now: due) == 2
    # Housekeeping is the server's even when called in a request's context.
    with acting(Actor.of_key(KEYS["shop"], "channel", "shop", "req-late")):
        assert ledger.expire_holds(good, "own") == []
    released = [e for e in _events(ledger) if e["type"] == "stock.hold-released"]
    assert len(released) == 2
    actors = [e["recorded_by"] for e in released]
    assert {(a["role"], a["subject"]) for a in actors} == {("server", "edge-2")}
    assert "key_id" not in actors[0]
    assert actors[0]["request_id"] == actors[1]["request_id"]  # one sweep, one id
    held = [e for e in _events(ledger) if e["type"] == "stock.reserved"]
    assert {e["recorded_by"]["request_id"] for e in held} == {"req-hold"}
    assert sweep(ledger, lambda _now: []) == 0


def test_a_bad_server_name_is_refused(store_url: DatabaseURL) -> None:
    with pytest.raises(ValueError, match="subject"):
        Ledger(store_url, server_name="no spaces")
