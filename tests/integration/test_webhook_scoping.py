"""A channel never receives another channel's events, nor a creator another
creator's (issue 17 item 5), as a property: random subscriptions (owner,
types) over random sales, holds, releases and refunds by several channels
of two creators' goods; the real dispatcher delivers to a real receiver
(tests/webhook_receiver.py, every signature verified), and each
subscription gets exactly the events of its types its owner may read --
the read API's scoping, computed here from the payloads alone -- each once.
"""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.actor import Actor, acting
from ledger.domain.model import parse_timestamp
from ledger.domain.money import Money
from ledger.domain.subscription import CHANNEL_TYPES, CREATOR_TYPES, message_id
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.store.records import RecordReader
from ledger.store.webhooks import WebhookStore
from ledger.webhooks.dispatcher import Dispatcher
from ledger.webhooks.sender import Sender
from ledger.webhooks.subscriptions import Webhooks
from tests.strategies import good_spec
from tests.webhook_receiver import WebhookReceiver

CHANNELS = ("c0", "c1", "c2")
CREATORS = ("ann", "bob")
PRICE = Money(1_000, "EUR")

owners = st.sampled_from([("channel", c) for c in CHANNELS] + [("creator", c) for c in CREATORS])
subscription = owners.flatmap(
    lambda owner: st.tuples(
        st.just(owner),
        st.sets(
            st.sampled_from(sorted(CHANNEL_TYPES if owner[0] == "channel" else CREATOR_TYPES)),
            min_size=1,
        ),
    )
)
act = st.tuples(
    st.sampled_from(["sell", "hold", "release", "refund"]),
    st.sampled_from(CHANNELS),
    st.sampled_from(CREATORS),
)


def _world(ledger: Ledger, acts: list[tuple[str, str, str]]) -> None:
    for channel in CHANNELS:
        ledger.register_channel(channel, channel, 100, idempotency_key=f"ch-{channel}")
    goods = {
        creator: ledger.mint(
            good_spec(
                title=creator,
                creators=[{"id": creator, "share_bps": 10_000}],
                tiers=[{"name": "own", "quota": 100, "transferable": True}],
            ),
            idempotency_key=f"g-{creator}",
        )["good_id"]
        for creator in CREATORS
    }
    holds: list[tuple[str, str, str]] = []
    units: list[tuple[str, str]] = []
    for n, (kind, channel, creator) in enumerate(acts):
        good, key = goods[creator], f"a{n}"
        if kind == "sell" or (kind == "refund" and not units):
            sold = ledger.sell(
                good, "own", buyer=f"{channel}-b{n}", channel=channel, quantity=1,
                unit_price=PRICE, idempotency_key=key,
            )  # fmt: skip
            units.append((sold["units"][0]["unit_id"], channel))
        elif kind == "refund":
            unit, seller = units.pop(0)
            ledger.refund(unit, reason="test", idempotency_key=key, channel=seller)
        elif kind == "hold" or not holds:
            hold = ledger.reserve(
                good, "own", channel=channel, quantity=1, ttl_seconds=600, idempotency_key=key
            )
            holds.append((good, hold["hold_id"], channel))
        else:
            good, hold_id, holder = holds.pop(0)
            ledger.release_hold(good, "own", hold_id, idempotency_key=key, channel=holder)


def _expected(url: DatabaseURL, role: str, who: str, types: set[str]) -> list[str]:
    """From the payloads alone: the events a principal's reads would show."""
    holds, custody, creators, stock_good, unit_good = {}, {}, {}, {}, {}
    found = []
    with RecordReader(url) as reader:
        for r in reader:
            p = orjson.loads(r.state)["payload"]
            kind, agg = r.event_type, r.aggregate_id
            channels: set[str] = set()
            good = None
            if kind == "good.minted":
                creators[agg] = {c["id"] for c in p["definition"]["spec"]["creators"]}
            elif kind == "stock.opened":
                stock_good[agg] = p["good_id"]
            elif kind == "stock.reserved":
                holds[p["hold_id"]] = p["channel"]
            if kind in ("stock.sold", "stock.reserved"):
                channels, good = {p["channel"]}, stock_good.get(agg)
            elif kind in ("stock.hold-committed", "stock.hold-released"):
                channels = {holds[p["hold_id"]]}
            elif kind == "unit.refunded":
                channels, good = {custody[agg]}, unit_good[agg]
            if kind == "unit.issued":
                unit_good[agg] = p["good_id"]
            if kind in ("unit.issued", "unit.reissued"):  # (a refunded unit is sold again)
                custody[agg] = p["channel"]
            if kind not in types:
                continue
            if (role == "channel" and who in channels) or (
                role == "creator" and who in creators.get(good or "", set())
            ):
                found.append(message_id(agg, r.version))
    return found


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    subscriptions=st.lists(subscription, min_size=1, max_size=5),
    acts=st.lists(act, min_size=1, max_size=25),
)
def test_each_subscription_gets_what_its_owner_may_read(
    subscriptions: list[tuple[tuple[str, str], set[str]]], acts: list[tuple[str, str, str]]
) -> None:
    with tempfile.TemporaryDirectory() as directory, WebhookReceiver() as receiver:
        url = DatabaseURL.parse(f"sqlite:///{Path(directory) / 'ledger.db'}")
        ledger = Ledger(url)
        store = WebhookStore(ledger.event_store.recorder)
        hooks = Webhooks(ledger, store, Sender(allow_private=True))
        paths: dict[str, tuple[str, str, set[str]]] = {}
        with acting(Actor.operator()):
            for n, ((role, who), types) in enumerate(subscriptions):
                path = f"/s{n}"
                made = hooks.register(
                    (role, who), receiver.url(path), sorted(types), idempotency_key=f"s{n}",
                    scope=f"{role}:{who}",
                )  # fmt: skip
                receiver.add_secret(made["secret"], path=path)
                paths[path] = (role, who, types)
            _world(ledger, acts)
        dispatcher = Dispatcher(ledger, store, Sender(allow_private=True), url, poll_interval=0.01)
        dispatcher.start()
        try:
            expected = {p: _expected(url, *owner) for p, owner in paths.items()}
            receiver.wait_for(
                lambda r: all(len(r.unique(p)) >= len(e) for p, e in expected.items()),
                timeout=30,
            )
            time.sleep(0.3)  # (anything more would show now)
            receiver.check()
            for path, want in expected.items():
                got = [r.id for r in receiver.unique(path)]
                assert got == want, (paths[path], got, want)  # in log order, once each
        finally:
            dispatcher.stop()
            ledger.close()


def test_a_replay_since_a_moment_starts_at_its_first_event(store_url: DatabaseURL) -> None:
    ledger = Ledger(store_url)
    try:
        hooks = Webhooks(ledger, WebhookStore(ledger.event_store.recorder), Sender())
        _world(ledger, [("sell", "c0", "ann")] * 3)
        stamps = []
        with RecordReader(store_url) as reader:
            for r in reader:
                stamps.append((r.position, orjson.loads(r.state)["timestamp"]))
        for position, stamp in stamps[1:]:
            moment = parse_timestamp(stamp)
            first = min(p for p, s in stamps if s == stamp)
            assert hooks.position_at(moment) == first, (position, stamp)
        assert hooks.position_at(parse_timestamp(stamps[-1][1]) + timedelta(seconds=1)) == (
            stamps[-1][0] + 1
        )
    finally:
        ledger.close()
