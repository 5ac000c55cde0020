"""The commands' answers: typed, frozen values.

A command decides a JSON answer -- what its idempotency record keeps, and
what the HTTP edge sends as canonical JSON -- and the caller gets it as one
of these types: typed attributes (``sale.units[0].serial``) over a
read-only ``dict`` of that JSON (``sale["units"][0]["serial"]``), so code
written against the JSON -- ``isinstance(answer, dict)``, ``==`` with a
dict, ``orjson.dumps`` -- reads on unchanged. :meth:`Answer.to_json` gives
the JSON back as it was decided, or as it was stored for a replay: a
replayed answer keeps the original bytes, whatever this version's types
would make of it. (A field must not be named like a ``dict`` method.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, Self

from ledger.domain.money import Money


class _ReplayedCheck(type):
    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, Answer) and instance.replayed


class Replayed(metaclass=_ReplayedCheck):
    """``isinstance(answer, Replayed)``: the first answer to an idempotency
    key, returned again -- nothing new was done (the HTTP edge says so with
    ``Idempotent-Replayed: true``). The same as ``answer.replayed``."""


_Converters = Mapping[str, Callable[[Any], Any]]  # field name -> JSON value to its type
_PLANS: dict[type, tuple[tuple[str, str, Callable[[Any], Any] | None], ...]] = {}


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Answer(dict[str, Any]):
    """A command's answer: typed attributes over the JSON it was decided as,
    which the answer is, as a read-only dict (equal to any mapping with the
    same JSON)."""

    replayed: bool = False

    # Fields read from JSON by another name or through a conversion.
    _convert: ClassVar[_Converters] = {}

    @classmethod
    def read(cls, raw: Mapping[str, Any], replayed: bool = False) -> Self:
        """The answer of ``raw``, a command's JSON answer (a field ``from_``
        is the JSON's ``from``; a key absent from old records reads as None)."""
        plan = _PLANS.get(cls)
        if plan is None:
            plan = _PLANS[cls] = tuple(
                (f.name, f.name.rstrip("_"), cls._convert.get(f.name))
                for f in dataclasses.fields(cls)
                if f.name != "replayed"
            )
        values = {}
        for name, key, convert in plan:
            value = raw.get(key)
            values[name] = value if convert is None or value is None else convert(value)
        answer = cls(replayed=replayed, **values)
        dict.update(answer, raw)
        return answer

    def to_json(self) -> dict[str, Any]:
        """The JSON answer, as decided (or as stored, for a replay)."""
        return dict(self)

    def __reduce__(self) -> tuple[Callable[..., Answer], tuple[Any, ...]]:
        """Pickled (another process's answers: multiprocessing) as its JSON,
        read again on the other side: a read-only dict cannot be refilled."""
        return _reread, (type(self), dict(self), self.replayed)

    def _read_only(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise TypeError(f"a {type(self).__name__} answer is read-only")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only


def _reread(kind: type[Answer], raw: dict[str, Any], replayed: bool) -> Answer:
    return kind.read(raw, replayed)


@dataclass(frozen=True, slots=True)
class SplitPart:
    """One recipient's part of a price (``ledger.domain.money.split``)."""

    recipient: str
    role: str
    amount: int


@dataclass(frozen=True, slots=True)
class Edition:
    """A unit's place in its edition, "No. ``serial`` of ``of``": ``basis``
    "quota" (the edition's size, for ever) or "lifetime-cap" (a restockable
    tier's cap, which restocks may reach); :mod:`ledger.domain.edition`."""

    serial: int
    of: int
    basis: str


def _edition(value: dict[str, Any]) -> Edition:
    return Edition(**value)


@dataclass(frozen=True, slots=True)
class SoldUnit:
    unit_id: str
    serial: int
    code_ref: str | None = None  # a redemption-code tier's unit: its code's ref
    edition: Edition | None = None  # (None in answers recorded before editions were)


@dataclass(frozen=True, slots=True)
class MintedTier:
    tier: str
    stock_id: str
    supply: int


@dataclass(frozen=True, slots=True)
class OfferedHold:
    """A hold a restock made for a waiting buyer (named by the entry's id)."""

    entry_id: str
    hold_id: str
    expires_at: str


def _parts(value: list[dict[str, Any]]) -> tuple[SplitPart, ...]:
    return tuple(SplitPart(**part) for part in value)


def _units(value: list[dict[str, Any]]) -> tuple[SoldUnit, ...]:
    return tuple(
        SoldUnit(
            unit["unit_id"],
            unit["serial"],
            unit.get("code_ref"),
            None if "edition" not in unit else _edition(unit["edition"]),
        )
        for unit in value
    )


def _tiers(value: list[dict[str, Any]]) -> tuple[MintedTier, ...]:
    return tuple(MintedTier(**tier) for tier in value)


def _offered(value: list[dict[str, Any]]) -> tuple[OfferedHold, ...]:
    return tuple(OfferedHold(**offer) for offer in value)


_SALE: dict[str, Callable[[Any], Any]] = {
    "unit_price": Money.from_json,
    "split_per_unit": _parts,
    "units": _units,
}


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class ChannelRegistered(Answer):
    channel: str
    channel_id: str
    fee_bps: int


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Minted(Answer):
    """A minted good (or a derived variant: ``master_id`` is its master's)."""

    _convert: ClassVar[_Converters] = {"tiers": _tiers}

    good_id: str
    fingerprint: str
    minted_at: str
    tiers: tuple[MintedTier, ...]
    master_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Sold(Answer):
    _convert: ClassVar[_Converters] = _SALE

    sale_id: str
    good_id: str
    tier: str
    buyer: str
    channel: str
    quantity: int
    unit_price: Money
    split_per_unit: tuple[SplitPart, ...]
    units: tuple[SoldUnit, ...]
    sold_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Resold(Answer):
    _convert: ClassVar[_Converters] = {
        "price": Money.from_json,
        "split": _parts,
        "edition": _edition,
    }

    resale_id: str
    unit_id: str
    good_id: str
    tier: str
    serial: int
    seller: str
    buyer: str
    channel: str
    price: Money
    split: tuple[SplitPart, ...]
    resold_at: str
    edition: Edition | None = None  # (None in answers recorded before editions were)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Restocked(Answer):
    _convert: ClassVar[_Converters] = {"offered": _offered}

    good_id: str
    tier: str
    quantity: int
    supply: int
    lifetime_cap: int | None
    offered: tuple[OfferedHold, ...]


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Refunded(Answer):
    _convert: ClassVar[_Converters] = {"amount": Money.from_json}

    refund_id: str
    unit_id: str
    kind: str
    refunded_acquisition: str
    holder: str
    returned_to: str | None
    amount: Money
    refunded_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Reserved(Answer):
    hold_id: str
    good_id: str
    tier: str
    channel: str
    quantity: int
    expires_at: str
    reserved_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class HoldPaid(Answer):
    """A hold's payment: ``outcome`` "sold" or "sold-late" (a sale: the sale's
    fields are set) or "refund-owed" (the refund's: ``refund_id``, ``amount``,
    ``decided_at``)."""

    _convert: ClassVar[_Converters] = {**_SALE, "amount": Money.from_json}

    outcome: str
    hold_id: str
    good_id: str
    tier: str
    buyer: str
    channel: str
    quantity: int
    sale_id: str | None = None
    unit_price: Money | None = None
    split_per_unit: tuple[SplitPart, ...] | None = None
    units: tuple[SoldUnit, ...] | None = None
    sold_at: str | None = None
    refund_id: str | None = None
    amount: Money | None = None
    decided_at: str | None = None


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class HoldReleased(Answer):
    hold_id: str
    good_id: str
    tier: str
    quantity: int
    how: str  # "released", or "expired" if its time was already up
    released_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class WaitlistJoined(Answer):
    entry_id: str
    good_id: str
    tier: str
    buyer: str
    channel: str
    quantity: int
    place: int
    joined_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class WaitlistLeft(Answer):
    entry_id: str
    good_id: str
    tier: str
    left_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Pool(Answer):
    """A channel's pool after an allotment, a return or a move."""

    good_id: str
    tier: str
    channel: str
    free: int
    overflow: bool
    shared_available: int
    at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class PoolMoved(Answer):
    _convert: ClassVar[_Converters] = {"from_": Pool.read, "to": Pool.read}

    from_: Pool
    to: Pool


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class RateSet(Answer):
    good_id: str
    tier: str
    channel: str
    per_minute: int | None
    set_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class PricesSet(Answer):
    """A tier's price schedule set (``steps`` None: lifted), and its price now."""

    good_id: str
    tier: str
    steps: list[dict[str, Any]] | None
    units_sold: int
    price_now: dict[str, Any] | None
    set_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class ListingChanged(Answer):
    """A pause, resume or delisting of a tier (``tier``) or a good (``tier`` None)."""

    good_id: str
    tier: str | None
    scope: str
    action: str
    reason: str
    at: str
    tiers: list[dict[str, Any]]


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class CodesImported(Answer):
    batch_id: str
    good_id: str
    tier: str
    imported: int
    codes_imported: int
    codes_available: int
    imported_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class CodeDelivered(Answer):
    """A unit's code revealed to its holder. ``code``, the text, is added
    from the vault after the command: the record never holds it."""

    _convert: ClassVar[_Converters] = {"edition": _edition}

    unit_id: str
    good_id: str
    tier: str
    serial: int
    holder: str
    code_ref: str
    state: str
    first_delivery: bool
    delivered_at: str
    code: str | None = None
    edition: Edition | None = None  # (None in answers recorded before editions were)

    def revealed(self, text: str) -> CodeDelivered:
        """This answer with the code's text (the record's own JSON untouched)."""
        return CodeDelivered.read({**self, "code": text}, self.replayed)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class CodeRedeemed(Answer):
    code_ref: str
    unit_id: str
    good_id: str
    tier: str
    holder: str
    redeemer: str
    redeemed_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class AccountOpened(Answer):
    account: str
    channel: str  # the channel that opened it, and serves it
    opened_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class HolderKey(Answer):
    account: str
    key_id: str
    state: str  # "registered" or "revoked"
    at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class UnitMoved(Answer):
    move_id: str
    unit_id: str
    holder: str
    from_channel: str
    to_channel: str
    consent: str  # "hand-off" or "holder-signature"
    moved_at: str


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class UnitTransferred(Answer):
    transfer_id: str
    unit_id: str
    giver: str
    recipient: str
    channel: str
    kind: str  # "gift", "inheritance" or "own-accounts"
    transferred_at: str
