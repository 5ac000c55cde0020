"""Webhook subscriptions' rules (ledger.domain.subscription): registration
checks, the state machine, who manages a subscription, who may hear which
event (the read API's scoping) and the payload's public shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import InvalidInputError
from ledger.domain.subscription import (
    CHANNEL_TYPES,
    CREATOR_TYPES,
    Audience,
    Concerns,
    RotationRaceError,
    Subscription,
    SubscriptionDeletedError,
    SubscriptionStateError,
    manages,
    message_id,
    payload_of,
    visible,
)

NOW = datetime(2026, 12, 8, tzinfo=UTC)


def _sub(role: str = "channel", owner: str | None = "shop") -> Subscription:
    return Subscription.register("a" * 32, role, owner, "https://x.test/h", ["stock.sold"], NOW)


def test_registration_checks_url_and_types() -> None:
    sub = _sub()
    assert sub.to_json()["state"] == "active"
    assert sub.to_json()["secret_generation"] == 1
    with pytest.raises(InvalidInputError, match="url"):
        Subscription.register("a" * 32, "channel", "shop", "ftp://x", ["stock.sold"], NOW)
    with pytest.raises(InvalidInputError, match="url"):
        Subscription.register("a" * 32, "channel", "s", "https://u:p@x/", ["stock.sold"], NOW)
    with pytest.raises(InvalidInputError, match="types"):
        Subscription.register("a" * 32, "creator", "c", "https://x/", ["stock.reserved"], NOW)
    with pytest.raises(InvalidInputError, match="types"):
        Subscription.register("a" * 32, "channel", "s", "https://x/", [], NOW)
    with pytest.raises(InvalidInputError, match="owner"):
        Subscription.register("a" * 32, "auditor", None, "https://x/", ["stock.sold"], NOW)


def test_the_state_machine() -> None:
    sub = _sub()
    with pytest.raises(SubscriptionStateError):
        sub.resume(NOW)
    sub.pause(NOW)
    with pytest.raises(SubscriptionStateError):
        sub.pause(NOW)
    with pytest.raises(SubscriptionStateError):
        sub.fail(3, 8, "exhausted", NOW)  # a paused subscription is not tried
    sub.resume(NOW)
    sub.fail(3, 8, "exhausted", NOW)
    assert sub.state == "failing"
    sub.resume(NOW)
    with pytest.raises(RotationRaceError):
        sub.rotate(3, timedelta(hours=1), NOW)
    sub.rotate(2, timedelta(hours=1), NOW)
    assert sub.grace_until == "2026-12-08T01:00:00.000000Z"
    with pytest.raises(InvalidInputError):
        sub.rotate(3, timedelta(days=8), NOW)
    sub.delete(NOW)
    for act in (sub.pause, sub.resume, sub.delete):
        with pytest.raises(SubscriptionDeletedError):
            act(NOW)


def test_who_manages() -> None:
    sub = _sub()
    assert manages(sub, "channel", "shop")
    assert manages(sub, "admin", None)
    assert not manages(sub, "channel", "market")
    assert not manages(sub, "creator", "shop")


def test_audience_follows_custody_and_holds() -> None:
    audience = Audience()
    positions = iter(range(1, 100))

    def feed(kind: str, agg: str, payload: dict[str, object]) -> Concerns:
        return audience.feed(kind, agg, payload, next(positions))

    good = {"definition": {"spec": {"creators": [{"id": "ann", "share_bps": 10000}]}}}
    feed("good.minted", "g1", good)
    feed("stock.opened", "s1", {"good_id": "g1"})
    sold = feed("stock.sold", "s1", {"channel": "shop"})
    assert sold == Concerns(frozenset({"shop"}), frozenset({"ann"}))
    feed("unit.issued", "u1", {"good_id": "g1", "channel": "shop"})
    assert feed("stock.reserved", "s1", {"hold_id": "h1", "channel": "mall"}).channels == {"mall"}
    assert feed("stock.hold-released", "s1", {"hold_id": "h1"}).channels == {"mall"}
    refund_at = next(positions)  # a refund judged later, after the unit moved on
    moved = feed("unit.moved", "u1", {"from_channel": "shop", "to_channel": "mall"})
    assert moved.channels == {"shop", "mall"}
    refunded = feed("unit.refunded", "u1", {})
    assert refunded == Concerns(frozenset({"mall"}), frozenset({"ann"}))
    assert audience.concerns("unit.refunded", "u1", {}, refund_at).channels == {"shop"}
    assert feed("code.delivered", "c1", {"unit_id": "u1"}).channels == {"mall"}


@given(
    role=st.sampled_from(["channel", "creator", "admin"]),
    subject=st.sampled_from(["shop", "mall", "ann"]),
    event_type=st.sampled_from(sorted(CHANNEL_TYPES | {"good.minted", "command.recorded"})),
    channels=st.frozensets(st.sampled_from(["shop", "mall", "ann"])),
    creators=st.frozensets(st.sampled_from(["shop", "mall", "ann"])),
)
def test_visible_is_the_read_scoping(
    role: str,
    subject: str,
    event_type: str,
    channels: frozenset[str],
    creators: frozenset[str],
) -> None:
    seen = visible(role, subject, event_type, Concerns(channels, creators))
    if role == "channel":
        assert seen == (event_type in CHANNEL_TYPES and subject in channels)
    elif role == "creator":
        assert seen == (event_type in CREATOR_TYPES and subject in creators)
    else:
        assert seen == (event_type in CHANNEL_TYPES)


def test_payload_shape_and_message_id() -> None:
    agg = "01a97295-a3ed-56b1-9fc9-f8b6c0da289f"
    body = payload_of("stock.sold", agg, 7, 42, "2026-12-08T00:00:00.000000Z", {"channel": "s"})
    assert body["id"] == message_id(agg, 7) == "evt_01a97295a3ed56b19fc9f8b6c0da289f_7"
    assert "." not in body["id"]
    assert body["version"] == 1
    assert body["aggregate"] == {"id": agg, "kind": "stock"}
    assert (body["sequence"], body["position"]) == (7, 42)
    assert body["data"] == {"channel": "s"}
