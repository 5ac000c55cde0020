"""Webhook subscriptions (rule 8.14), written from ``docs/format.md`` alone.

A ``webhook/<subscription_id>`` aggregate is registered by its owner -- a
channel or creator key for itself, or an admin key for the admin -- for
event types that owner may read; each later event is recorded by the
owner, an admin or the operator, except ``webhook.failing``, which only the
server records. Its life is a state machine: active, paused, failing,
deleted; nothing follows ``webhook.deleted``; each rotation counts the
secret's generation up by one and keeps the old secret no longer than
seven days. Findings: ``webhook-owner`` (registered for another principal,
or for types its role may not read), ``webhook-actor`` (an event recorded
by someone else), ``webhook-state`` (a step the state machine does not
allow, or any event after the deletion).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger.verify.facts import Event, Facts, Flag, Handler, Payload

CHANNEL_TYPES = frozenset(
    {
        "stock.sold",
        "stock.reserved",
        "stock.hold-committed",
        "stock.hold-released",
        "unit.resold",
        "unit.refunded",
        "unit.moved",
        "unit.transferred",
        "code.delivered",
        "code.redeemed",
    }
)
CREATOR_TYPES = frozenset({"stock.sold", "unit.resold", "unit.refunded"})
READABLE = {
    "channel": CHANNEL_TYPES,
    "creator": CREATOR_TYPES,
    "admin": CHANNEL_TYPES | CREATOR_TYPES,
}
GRACE_MAX = timedelta(days=7)
_MANAGERS = frozenset({"admin", "operator"})
# state -> the events that may follow it, and the state each leaves
_NEXT = {
    "active": {"webhook.paused": "paused", "webhook.failing": "failing"},
    "paused": {"webhook.resumed": "active"},
    "failing": {"webhook.resumed": "active", "webhook.paused": "paused"},
}
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _moment(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


@dataclass(slots=True)
class _Sub:
    role: str
    owner: str | None
    state: str = "active"
    generation: int = 1


_CHANGES = (
    "webhook.secret-rotated",
    "webhook.paused",
    "webhook.resumed",
    "webhook.deleted",
    "webhook.failing",
    "webhook.replayed",
)


class WebhookRules:
    """Rule 8.14: each subscription's owner, actors and life."""

    def __init__(self, facts: Facts) -> None:
        self._flag: Flag = facts.flag
        self._facts = facts
        self._subs: dict[str, _Sub] = {}  # by aggregate id

    def handlers(self) -> dict[str, Handler]:
        return {"webhook.registered": self.on_registered, **dict.fromkeys(_CHANGES, self.on_change)}

    def on_registered(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None or not self._facts.check_own_id(ev, p):
            return
        role, owner = p["owner_role"], p["owner"]
        if (role == "admin") != (owner is None):
            self._flag(ev, "webhook-owner", f"a {role} subscription's owner is {owner!r}")
        unreadable = sorted(set(p["types"]) - READABLE.get(role, frozenset()))
        if unreadable:
            self._flag(
                ev,
                "webhook-owner",
                f"a {role} may not read {', '.join(unreadable)}, yet subscribes to it",
            )
        if not _acts_for(ev.recorded_by, role, owner):
            self._flag(
                ev,
                "webhook-owner",
                f"a subscription of {role} {owner!r} registered by {_who(ev.recorded_by)}",
                expected=f"{role} {owner}",
                actual=_who(ev.recorded_by),
            )
        self._subs[ev.aggregate_id] = _Sub(role, owner)

    def on_change(self, ev: Event, p: Payload) -> None:
        sub = self._subs.get(ev.aggregate_id or "")
        if sub is None or ev.type is None:  # its registration was unreadable (a finding)
            return
        self._check_actor(ev, sub)
        if sub.state == "deleted":
            self._flag(ev, "webhook-state", f"{ev.type} after webhook.deleted")
        elif ev.type == "webhook.deleted":
            sub.state = "deleted"
        elif ev.type == "webhook.secret-rotated":
            self._rotated(ev, p, sub)
        elif ev.type != "webhook.replayed":
            after = _NEXT[sub.state].get(ev.type)
            if after is None:
                self._flag(ev, "webhook-state", f"{ev.type} while the subscription is {sub.state}")
            else:
                sub.state = after

    def _rotated(self, ev: Event, p: Payload, sub: _Sub) -> None:
        if p["generation"] != sub.generation + 1:
            self._flag(
                ev,
                "webhook-state",
                f"secret generation {p['generation']} does not follow {sub.generation}",
                expected=str(sub.generation + 1),
                actual=str(p["generation"]),
            )
        sub.generation = p["generation"]
        grace = _moment(p["grace_until"]) - _moment(ev.timestamp or p["grace_until"])
        if not timedelta(0) <= grace <= GRACE_MAX:
            self._flag(ev, "webhook-state", f"the old secret's grace is {grace}, not 0 to 7 days")

    def _check_actor(self, ev: Event, sub: _Sub) -> None:
        actor = ev.recorded_by
        if ev.type == "webhook.failing":
            if actor is None or actor.get("role") != "server":
                self._flag(
                    ev,
                    "webhook-actor",
                    f"webhook.failing recorded by {_who(actor)}, not the server",
                )
        elif not _acts_for(actor, sub.role, sub.owner):
            self._flag(
                ev,
                "webhook-actor",
                f"{ev.type} of {sub.role} {sub.owner!r}'s subscription recorded by {_who(actor)}",
                expected=f"{sub.role} {sub.owner}",
                actual=_who(actor),
            )


def _acts_for(actor: Payload | None, role: str, owner: str | None) -> bool:
    """Whether ``actor`` may manage a subscription of ``role`` ``owner``:
    the owner's own key, an admin key or the operator."""
    if actor is None:
        return False
    return actor.get("role") in _MANAGERS or (actor.get("role"), actor.get("subject")) == (
        role,
        owner,
    )


def _who(actor: Payload | None) -> str:
    if actor is None:
        return "no one"
    return f"{actor.get('role')} {actor.get('subject')!r}"
