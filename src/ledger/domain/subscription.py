"""Webhook subscriptions: who is told about which events, and whether a
given event may be told to them.

A subscription is the aggregate ``webhook/<subscription_id>``: registered by
a channel or creator key (or an admin) for an endpoint URL and the event
types it wants, then rotated, paused, resumed, marked failing by the
server, replayed and deleted. Its events never hold a secret: the signing
secrets live beside the events (:mod:`ledger.store.webhooks`), named by
their generation, which ``webhook.secret-rotated`` counts.

Who may hear what is the read API's scoping, said once here: a channel
reads only what it sold, reserved, holds in custody or moved (``channel`` of
a sale, a hold, a unit's custody); a creator reads its own goods' sales,
resales and refunds (the creators of the good); an admin reads everything.
:class:`Audience` works out, from the log in order, which channels and
creators an event concerns (:class:`Concerns`); :func:`visible` decides.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.domain import limits, validate
from ledger.domain.errors import ConflictError, InvalidInputError, RuleViolation
from ledger.domain.ids import webhook_id_for
from ledger.domain.model import Aggregate, Created, Event

PAYLOAD_VERSION = 1
OWNER_ROLES = ("channel", "creator", "admin")
URL_CHARS_MAX = 2048
TYPES_MAX = 32
GRACE_DEFAULT = timedelta(hours=24)
GRACE_MAX = timedelta(seconds=limits.WEBHOOK_GRACE_SECONDS_MAX)

# What each role may subscribe to (the read API's scoping: see the module text).
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
SUBSCRIBABLE: Mapping[str, frozenset[str]] = {
    "channel": CHANNEL_TYPES,
    "creator": CREATOR_TYPES,
    "admin": CHANNEL_TYPES | CREATOR_TYPES,
}
_URL = re.compile(r"https?://[^\s/?#@]+(?::[0-9]{1,5})?(?:[/?#][^\s]*)?", re.IGNORECASE)


class SubscriptionDeletedError(ConflictError):
    code = "webhook-deleted"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"webhook {subscription_id} is deleted")


class SubscriptionStateError(RuleViolation):
    code = "webhook-state"

    def __init__(self, subscription_id: str, state: str, action: str) -> None:
        super().__init__(f"webhook {subscription_id} is {state}: it cannot be {action}")


class RotationRaceError(ConflictError):
    code = "webhook-rotation-conflict"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"webhook {subscription_id}'s secret was rotated meanwhile; try again")


def check_url(url: object) -> str:
    """The URL's form (http or https, a host, no credentials); whether its
    host may be dialled is the sender's check."""
    if not isinstance(url, str) or len(url) > URL_CHARS_MAX or not _URL.fullmatch(url):
        raise InvalidInputError(
            "url", f"must be an http(s) URL with a host, no user info, at most {URL_CHARS_MAX}"
        )
    return url


def check_types(role: str, types: object) -> list[str]:
    """The event types asked for: a non-empty list, each one this role may read."""
    allowed = SUBSCRIBABLE.get(role)
    if allowed is None:
        raise InvalidInputError("owner", f"a {role} key cannot subscribe to webhooks")
    if not isinstance(types, list) or not types or len(types) > TYPES_MAX:
        raise InvalidInputError("types", f"must be a list of 1 to {TYPES_MAX} event types")
    for item in types:
        if not isinstance(item, str) or item not in allowed:
            raise InvalidInputError(
                "types", f"{str(item)[:40]!r} is not one of {', '.join(sorted(allowed))}"
            )
    return sorted(set(types))


class Subscription(Aggregate):
    subscription_id: str
    owner_role: str
    owner: str | None
    url: str
    types: list[str]
    generation: int
    grace_until: str | None
    state: str  # active, paused, failing, deleted

    @classmethod
    def register(
        cls,
        subscription_id: str,
        owner_role: str,
        owner: str | None,
        url: str,
        types: Sequence[str],
        now: datetime,
    ) -> Subscription:
        if owner_role not in OWNER_ROLES:
            raise InvalidInputError("owner", f"a {owner_role} key cannot subscribe to webhooks")
        owner = None if owner_role == "admin" else validate.identifier(owner, field="owner")
        return cls._create(
            cls.Registered,
            webhook_id_for(subscription_id),
            now,
            subscription_id=subscription_id,
            owner_role=owner_role,
            owner=owner,
            url=check_url(url),
            types=check_types(owner_role, list(types)),
            version=PAYLOAD_VERSION,
        )

    def _live(self) -> None:
        if self.state == "deleted":
            raise SubscriptionDeletedError(self.subscription_id)

    def rotate(self, generation: int, grace: timedelta, now: datetime) -> None:
        self._live()
        if generation != self.generation + 1:
            raise RotationRaceError(self.subscription_id)
        if not timedelta(0) <= grace <= GRACE_MAX:
            raise InvalidInputError("grace_seconds", f"must be 0 to {GRACE_MAX.days} days")
        until = (now + grace).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._trigger(self.SecretRotated, now, generation=generation, grace_until=until)

    def pause(self, now: datetime) -> None:
        self._live()
        if self.state == "paused":
            raise SubscriptionStateError(self.subscription_id, self.state, "paused")
        self._trigger(self.Paused, now, subscription_id=self.subscription_id)

    def resume(self, now: datetime) -> None:
        self._live()
        if self.state == "active":
            raise SubscriptionStateError(self.subscription_id, self.state, "resumed")
        self._trigger(self.Resumed, now, subscription_id=self.subscription_id)

    def delete(self, now: datetime) -> None:
        self._live()
        self._trigger(self.Deleted, now, subscription_id=self.subscription_id)

    def fail(self, position: int, attempts: int, reason: str, now: datetime) -> None:
        """The server gives up on the event at ``position`` (kept, resumable)."""
        self._live()
        if self.state != "active":
            raise SubscriptionStateError(self.subscription_id, self.state, "marked failing")
        self._trigger(self.Failing, now, position=position, attempts=attempts, reason=reason)

    def replay(self, from_position: int, now: datetime) -> None:
        self._live()
        self._trigger(self.Replayed, now, from_position=from_position)

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "owner_role": self.owner_role,
            "owner": self.owner,
            "url": self.url,
            "types": list(self.types),
            "version": PAYLOAD_VERSION,
            "state": self.state,
            "secret_generation": self.generation,
            "previous_secret_until": self.grace_until,
        }

    @dataclass(frozen=True)
    class Registered(Created):
        TYPE = "webhook.registered"
        subscription_id: str
        owner_role: str
        owner: str | None
        url: str
        types: list[str]
        version: int

        def apply(self, aggregate: Subscription) -> None:
            aggregate.subscription_id = self.subscription_id
            aggregate.owner_role = self.owner_role
            aggregate.owner = self.owner
            aggregate.url = self.url
            aggregate.types = list(self.types)
            aggregate.generation = 1
            aggregate.grace_until = None
            aggregate.state = "active"

    @dataclass(frozen=True)
    class SecretRotated(Event):
        TYPE = "webhook.secret-rotated"
        generation: int
        grace_until: str

        def apply(self, aggregate: Subscription) -> None:
            aggregate.generation = self.generation
            aggregate.grace_until = self.grace_until

    @dataclass(frozen=True)
    class Paused(Event):
        TYPE = "webhook.paused"
        subscription_id: str

        def apply(self, aggregate: Subscription) -> None:
            aggregate.state = "paused"

    @dataclass(frozen=True)
    class Resumed(Event):
        TYPE = "webhook.resumed"
        subscription_id: str

        def apply(self, aggregate: Subscription) -> None:
            aggregate.state = "active"

    @dataclass(frozen=True)
    class Deleted(Event):
        TYPE = "webhook.deleted"
        subscription_id: str

        def apply(self, aggregate: Subscription) -> None:
            aggregate.state = "deleted"

    @dataclass(frozen=True)
    class Failing(Event):
        TYPE = "webhook.failing"
        position: int
        attempts: int
        reason: str  # "exhausted" (retries used up) or "gone" (410)

        def apply(self, aggregate: Subscription) -> None:
            aggregate.state = "failing"

    @dataclass(frozen=True)
    class Replayed(Event):
        TYPE = "webhook.replayed"
        from_position: int

        def apply(self, aggregate: Subscription) -> None:
            pass


Subscription.Registered.AGGREGATE = Subscription


def manages(sub: Subscription, role: str, subject: str | None) -> bool:
    """Whether a principal may see and change a subscription: its owner, or an admin."""
    return role == "admin" or (sub.owner_role, sub.owner) == (role, subject)


# -- who hears what ------------------------------------------------------------
@dataclass(frozen=True)
class Concerns:
    """The channels and creators an event concerns (whose reads would show it)."""

    channels: frozenset[str] = frozenset()
    creators: frozenset[str] = frozenset()


NOBODY = Concerns()


def visible(role: str, subject: str | None, event_type: str, concerns: Concerns) -> bool:
    """Whether a principal may be told of an event: the read API's scoping."""
    if event_type not in SUBSCRIBABLE.get(role, ()):
        return False
    if role == "admin":
        return True
    if role == "channel":
        return subject in concerns.channels
    return subject in concerns.creators


# The event types whose facts say whom later events concern.
LEARNT_FROM = frozenset(
    {
        "good.minted",
        "stock.opened",
        "stock.reserved",
        "unit.issued",
        "unit.reissued",
        "unit.resold",
        "unit.transferred",
        "unit.moved",
    }
)


@dataclass
class Audience:
    """Which channels and creators each event concerns, learnt from the log
    fed in order (pure: the dispatcher feeds it the events of
    :data:`LEARNT_FROM` it reads, with their store positions).

    It remembers the few facts that say so: each stock's good, each good's
    creators, each hold's channel, each unit's good and its custody over
    time -- so an event is judged by the custody *before* it, however far
    ahead the learning has gone (a refund or a move concerns the channel
    holding the unit when it happened)."""

    stock_good: dict[str, str] = field(default_factory=dict)
    good_creators: dict[str, frozenset[str]] = field(default_factory=dict)
    hold_channel: dict[str, str] = field(default_factory=dict)
    unit_good: dict[str, str] = field(default_factory=dict)
    custody: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def feed(
        self, event_type: str, aggregate_id: str, payload: Mapping[str, Any], position: int = 0
    ) -> Concerns:
        """Learn from one event, and say whom it concerns."""
        concerns = self.concerns(event_type, aggregate_id, payload, position)
        self.learn(event_type, aggregate_id, payload, position)
        return concerns

    def _creators_of_stock(self, stock_id: str) -> frozenset[str]:
        return self.good_creators.get(self.stock_good.get(stock_id, ""), frozenset())

    def _creators_of_unit(self, unit_id: str) -> frozenset[str]:
        return self.good_creators.get(self.unit_good.get(unit_id, ""), frozenset())

    def _held(self, unit_id: str, position: int) -> frozenset[str]:
        """The channel holding the unit just before ``position``."""
        history = self.custody.get(unit_id)
        if not history:
            return frozenset()
        at = bisect.bisect_left(history, (position, ""))
        return frozenset({history[at - 1][1]}) if at else frozenset()

    def concerns(self, kind: str, agg: str, p: Mapping[str, Any], position: int = 0) -> Concerns:
        """Whom an event concerns (everything before ``position`` learnt)."""
        if kind == "stock.sold":
            return Concerns(frozenset({p["channel"]}), self._creators_of_stock(agg))
        if kind == "stock.reserved":
            return Concerns(frozenset({p["channel"]}))
        if kind in ("stock.hold-committed", "stock.hold-released"):
            return Concerns(_some(self.hold_channel.get(p["hold_id"])))
        if kind == "unit.resold":
            channels = {p["channel"], *self._held(agg, position)}
            return Concerns(frozenset(channels), self._creators_of_unit(agg))
        if kind == "unit.refunded":
            return Concerns(self._held(agg, position), self._creators_of_unit(agg))
        if kind == "unit.moved":
            return Concerns(frozenset({p["from_channel"], p["to_channel"]}))
        if kind == "unit.transferred":
            return Concerns(frozenset({p["channel"]}))
        if kind in ("code.delivered", "code.redeemed"):
            return Concerns(self._held(p["unit_id"], position))
        return NOBODY

    def learn(self, kind: str, agg: str, p: Mapping[str, Any], position: int = 0) -> None:
        if kind == "stock.opened":
            self.stock_good[agg] = p["good_id"]
        elif kind == "good.minted":
            creators = p["definition"]["spec"]["creators"]
            self.good_creators[agg] = frozenset(c["id"] for c in creators)
        elif kind == "stock.reserved":
            self.hold_channel[p["hold_id"]] = p["channel"]
        elif kind == "unit.issued":
            self.unit_good[agg] = p["good_id"]
            self.custody.setdefault(agg, []).append((position, p["channel"]))
        elif kind in ("unit.reissued", "unit.resold", "unit.transferred"):
            self.custody.setdefault(agg, []).append((position, p["channel"]))
        elif kind == "unit.moved":
            self.custody.setdefault(agg, []).append((position, p["to_channel"]))


def _some(value: str | None) -> frozenset[str]:
    return frozenset() if value is None else frozenset({value})


def message_id(aggregate_id: str, version: int) -> str:
    """The ``webhook-id`` of an event: stable across retries and replays, and
    the same for every subscriber (no ``.``, as Standard Webhooks asks)."""
    return f"evt_{aggregate_id.replace('-', '')}_{version}"


def payload_of(
    event_type: str,
    aggregate_id: str,
    version: int,
    position: int,
    timestamp: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The public shape of an event, as a webhook carries it (version 1): the
    event's payload as the log holds it -- which never holds a secret or a
    code's text, only a code's keyed ref -- without who recorded it."""
    return {
        "id": message_id(aggregate_id, version),
        "type": event_type,
        "version": PAYLOAD_VERSION,
        "aggregate": {"id": aggregate_id, "kind": event_type.split(".", 1)[0]},
        "sequence": version,
        "position": position,
        "timestamp": timestamp,
        "data": dict(data),
    }
