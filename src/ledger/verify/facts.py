"""The facts the verifier's rule families share: one :class:`Facts` object.

Goods (a definition in brief), tier stocks (supply, serials, holds, pools,
waitlists, rates), channels and their fees, the aggregates that could not be
read, units' and allowances' packed state, and the expectations that span
families -- a sale's unit events and allowance count, a primary refund's
returned serial and count -- which are dropped once met. Each family
(:mod:`~ledger.verify.goods`, :mod:`~ledger.verify.stock`,
:mod:`~ledger.verify.holds`, :mod:`~ledger.verify.units`,
:mod:`~ledger.verify.allowances`, :mod:`~ledger.verify.records`,
:mod:`~ledger.verify.code_events`) keeps what only it reads itself, and reads
and writes these. The checks several families make (an id's derivation, a
price's currency, a split, a channel's fee) are here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.verify import codec
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.packing import PackedState
from ledger.verify.state import StateTable

Payload = dict[str, Any]
Flag = Callable[..., None]  # (event, check, message, expected=, actual=)


@dataclass(slots=True)
class Event:
    position: int | None
    aggregate_id: str | None = None
    version: int | None = None
    type: str | None = None
    timestamp: str | None = None
    prev_hash: str | None = None
    payload: Payload | None = None
    hash: bytes = b""  # SHA-256 of the record
    id_ok: bool = False  # (a creation event) its id is known to be OWN_ID's derivation
    key: bytes | str = ""  # its aggregate's key in the state table (see packing.key_of)
    recorded_by: Payload | None = None  # who recorded it, if the record says (well-formed)

    def ref(self) -> Event:
        """Where the event is, without its payload (to keep for later findings)."""
        return Event(self.position, self.aggregate_id, self.version, self.type)


Handler = Callable[[Event, Payload], None]


@dataclass(slots=True)
class Good:
    event: Event
    fingerprint: str
    currency: str
    kind: str
    creators: list[tuple[str, int]]
    resale_bps: int
    policy: str
    opens: str | None
    closes: str | None
    tiers: dict[str, Payload]
    variant_rules: Payload | None
    unopened: set[str] | None  # tiers with no stock.opened yet
    master_id: str | None = None
    master_creators: list[tuple[str, int]] = field(default_factory=list)
    master_primary_bps: int = 0
    master_resale_bps: int = 0
    variants: int = 0


def edition(serial: int, stock: Stock) -> Payload:
    """A unit's place in its edition, "No. ``serial`` of ``of``"
    (docs/verification.md, "A record's result"): ``of`` is the tier's
    ``lifetime_cap`` from its ``stock.opened`` -- an absolute edition's is
    its quota (``basis`` "quota"), a restockable one's is the most its
    restocks may reach (``basis`` "lifetime-cap")."""
    return {
        "serial": serial,
        "of": stock.lifetime_cap,
        "basis": "lifetime-cap" if stock.restockable else "quota",
    }


@dataclass(slots=True)
class Hold:
    channel: str
    quantity: int
    expires_at: str
    state: str = "held"  # then committed, released or expired


@dataclass(slots=True)
class Stock:
    good_id: str
    tier: str
    supply: int
    lifetime_cap: int
    restockable: bool
    transferable: bool
    per_buyer_limit: int | None
    opens: str | None
    closes: str | None
    next_serial: int = 1  # 1 + the number of serials ever issued
    free: list[int] = field(default_factory=list)  # returned serials, sorted
    reserved: int = 0  # units in live holds
    holds: dict[str, Hold] = field(default_factory=dict)  # every hold, by id
    # A hold-committed awaiting its stock.sold (the stock's very next event).
    # (event, sale_id, quantity, channel, hold_id)
    pending: tuple[Event, str, int, str, str] | None = None
    pools: dict[str, list[Any]] = field(default_factory=dict)  # channel -> [free, overflow]
    # A pool-drawn awaiting its stock.sold (the stock's very next event).
    drawing: tuple[Event, str, int, str] | None = None  # event, sale_id, quantity, channel
    # Waitlist entries in the order they joined: id -> [state, quantity, channel].
    waitlist: dict[str, list[Any]] = field(default_factory=dict)
    waiting: int = 0  # entries of the waitlist still waiting
    offering: Event | None = None  # a restock whose offers to the waitlist are under way
    rates: dict[str, list[Any]] = field(default_factory=dict)  # channel -> [cap, minute, sold]
    early_bird: Payload | None = None  # the allotment, from stock.opened
    early_bird_sold: int = 0
    codes_imported: int = 0  # codes ever imported into the tier
    paused: dict[str, str] = field(default_factory=dict)  # scope -> since (rule 8.15)
    delisted: str | None = None  # when, if it was
    unlock: Payload | None = None  # its unlock condition, from stock.opened (rule 8.16)
    unlocked: str | None = None  # when it was unlocked
    units_sold: int = 0  # serials its sales sold, refunds not subtracted
    prices: list[Payload] | None = None  # its price schedule in force (rule 8.17)

    @property
    def live(self) -> int:
        return self.next_serial - 1 - len(self.free)

    @property
    def pooled(self) -> int:
        return sum(int(p[0]) for p in self.pools.values())

    @property
    def committed(self) -> int:
        """Units live, held or pooled: never more than the supply."""
        live = self.next_serial - 1 - len(self.free)
        return live + self.reserved + self.pooled if self.pools else live + self.reserved


@dataclass(slots=True)
class Sale:
    """A ``stock.sold`` whose unit events (and allowance count) are awaited."""

    event: Event
    stock_id: str
    sale_id: str
    buyer: str
    channel: str
    price: Payload
    split: list[Payload]
    quantity: int
    fresh: set[int]  # serials never issued before this sale
    waiting: set[int]  # serials no unit event has issued yet
    limited: bool
    counted: bool = False
    good_id: str = ""  # the stock's good and tier, whose unit ids it awaits
    tier: str = ""
    terms: bytes = b""  # the acquisition terms of its units (once computed)


@dataclass(slots=True)
class Refund:
    """A refunded primary sale, whose ``stock.returned`` (and allowance
    count) are awaited."""

    event: Event
    stock_id: str
    serial: int
    holder: str
    limited: bool
    returned: bool = False
    counted: bool = False


# The id a creation event's aggregate must have (section 4): the derivation
# from these parts of its payload.
OWN_ID: dict[str, Callable[[Payload], tuple[Any, ...]]] = {
    "account.opened": lambda p: ("account", p["account"]),
    "channel.registered": lambda p: ("channel", p["channel"]),
    "apikey.issued": lambda p: ("apikey", p["key_id"]),
    "webhook.registered": lambda p: ("webhook", p["subscription_id"]),
    "command.recorded": lambda p: ("command", p["scope"], p["key"]),
    "good.minted": lambda p: ("good", p["fingerprint"]),
    "stock.opened": lambda p: ("stock", p["good_id"], p["tier"]),
    "allowance.started": lambda p: ("allowance", p["stock_id"], p["buyer"]),
    "unit.issued": lambda p: ("unit", p["good_id"], p["tier"], p["serial"]),
}


def short(value: object, limit: int = 80) -> str:
    """A value for a one-line message: its repr, cut short if long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(parts: list[Payload]) -> str:
    return ", ".join(f"{p['recipient']}/{p['role']} {p['amount']}" for p in parts)


class Facts:
    """What several rule families read and write (see the module's text)."""

    def __init__(self, flag: Flag, table: StateTable) -> None:
        self.flag = flag
        self.packed = PackedState(table)
        self.goods: dict[str, Good] = {}
        self.stocks: dict[str, Stock] = {}
        self.channels: dict[str, int] = {}
        # Aggregates with an event that could not be read: facts about them
        # are unknown, so expectations that depend on them are not reported.
        self.unreadable: set[str] = set()
        # Expectations across aggregates, dropped once met.
        self.sales: dict[str, Sale] = {}  # by sale_id
        self.awaited_units: dict[str, tuple[Sale, int]] = {}  # unit id -> sale, serial
        self.refunds: dict[str, Refund] = {}  # primary refunds, by refund_id

    def check_own_id(self, ev: Event, p: Payload) -> bool:
        """A creation event's aggregate id is the derivation of section 4
        from its payload (:data:`OWN_ID`), unless already known to be."""
        if ev.type is None:
            raise VerifierInvariantError("ev.type unset")
        return ev.id_ok or self.check_id(ev, *OWN_ID[ev.type](p))

    def check_id(self, ev: Event, kind: str, *parts: object) -> bool:
        """Whether the event's aggregate id is the derivation (else flagged)."""
        want = codec.derive_id(kind, *parts)
        if ev.aggregate_id == want:
            return True
        name = "/".join((kind, *(str(p) for p in parts)))
        self.flag(
            ev,
            "bad-id",
            f"aggregate id is not UUIDv5 of {short(name, 120)}: expected {want}, "
            f"found {ev.aggregate_id}",
            expected=want,
            actual=ev.aggregate_id,
        )
        return False

    def check_currency(self, ev: Event, price: Payload, good: Good) -> None:
        if price["currency"] != good.currency:
            self.flag(
                ev,
                "currency",
                f"price in {price['currency']}, but the good trades in {good.currency}",
                expected=good.currency,
                actual=price["currency"],
            )

    def check_split(
        self, ev: Event, parts: list[Payload], price: int, want: list[Payload] | None
    ) -> None:
        if want is not None and parts == want:
            return  # (section 7's parts always sum to the price)
        total = sum(part["amount"] for part in parts)
        if total != price:
            self.flag(
                ev,
                "split-sum",
                f"split parts sum to {total}, not the price {price}",
                expected=str(price),
                actual=str(total),
            )
            return
        if want is None:
            self.flag(
                ev,
                "split-mismatch",
                "section 7's weights for this sale are negative or all zero, so no split is valid",
            )
        elif parts != want:
            self.flag(
                ev,
                "split-mismatch",
                f"split is not section 7's: expected {describe(want)}; found {describe(parts)}",
                expected=codec.encode(want).decode(),
                actual=codec.encode(parts).decode(),
            )

    def fee(self, ev: Event, channel: str) -> int | None:
        fee = self.channels.get(channel)
        if fee is None:
            self.flag(ev, "unknown-ref", f"channel {short(channel)} is not registered")
        return fee

    def settle_sale(self, sale: Sale) -> None:
        if not sale.waiting and (sale.counted or not sale.limited):
            self.sales.pop(sale.sale_id, None)

    def settle_refund(self, refund_id: str, refund: Refund) -> None:
        if refund.returned and (refund.counted or not refund.limited):
            self.refunds.pop(refund_id, None)

    def finish(self) -> None:
        """The sales and primary refunds whose unit events, returned serial
        or allowance count never came."""
        unreadable = self.unreadable
        for sale in self.sales.values():
            if sale.waiting:
                self.flag(
                    sale.event,
                    "dangling-sale",
                    f"serial(s) {sorted(sale.waiting)} sold but never issued by a unit "
                    "event of this sale",
                )
            allowance_id = codec.derive_id("allowance", sale.stock_id, sale.buyer)
            if sale.limited and not sale.counted and allowance_id not in unreadable:
                self.flag(
                    sale.event,
                    "allowance-mismatch",
                    "the tier has a per-buyer limit but no allowance.counted counts this sale",
                )
        for refund in self.refunds.values():
            if not refund.returned and refund.stock_id not in unreadable:
                self.flag(
                    refund.event,
                    "return-mismatch",
                    f"refunding a primary sale returns serial {refund.serial} to "
                    "stock, but no stock.returned does",
                )
            allowance_id = codec.derive_id("allowance", refund.stock_id, refund.holder)
            if refund.limited and not refund.counted and allowance_id not in unreadable:
                self.flag(
                    refund.event,
                    "allowance-mismatch",
                    "the tier has a per-buyer limit but no allowance.counted -1 counts this refund",
                )

    def clear(self) -> None:
        """Drop the expectations (the log has ended)."""
        self.sales.clear()
        self.refunds.clear()
        self.awaited_units.clear()
