"""The streaming verifier: feed it events in commit order, then ``finish``.

It keeps, per aggregate, the last version and event hash, plus the small
rule state section 8 of ``docs/format.md`` needs (a good's definition in
brief, a stock's supply and free serials, a unit's holder and unrefunded
acquisitions, a channel's fee, an allowance's running total). Facts that
span aggregates -- a sale's unit events, a refund's returned serial, the
command record an effect names -- are matched by id, not by adjacency:
section 6 lets the events of one command be interleaved with others of its
batch. So is the answer a command's effects determine, which its record's
``result`` must be (``command-result``). Such expectations are dropped once
met, so the verifier never holds the log. What it keeps per aggregate (its
chain head; a unit's holder and acquisitions; an allowance's total) is
packed into bytes in a
:class:`~ledger.verify.state.StateTable`, which moves the oldest entries to
disk past its memory budget.

Most events are fine, and they take a fast path: a state that parses, is
canonical, has its members of the right types (one generated check per type,
:data:`~ledger.verify.schema.PAYLOAD_OK`) and holds no float goes straight to
the rules; anything else takes the general path, which names each problem.
Both reach the same findings.

Every rule is written from the spec; see :mod:`ledger.verify` for the check
codes.
"""

from __future__ import annotations

import bisect
import hashlib
import marshal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from ledger.verify import codec
from ledger.verify.codes import CodeRules
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.report import FINDINGS_KEPT, Finding, Report
from ledger.verify.schema import (
    CREATION_TYPES,
    KINDS,
    PAYLOAD_OK,
    UNTYPED_MEMBERS,
    definition_rule_problems,
    definition_shape_problem,
    payload_problem,
)
from ledger.verify.splits import largest_remainder, primary_weights, resale_weights
from ledger.verify.state import DEFAULT_BUDGET, StateTable

Payload = dict[str, Any]

STATE_KEYS = frozenset({"payload", "prev_hash", "timestamp"})
RECORD_KEYS = STATE_KEYS | {"aggregate_id", "type", "version"}

_sha256 = hashlib.sha256
_loads = orjson.loads
_dumps = orjson.dumps
_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_uuid_match = codec.UUID_PATTERN.fullmatch
_hex64_match = codec.HEX64_PATTERN.fullmatch
_timestamp_ok = codec.is_timestamp_text
_TYPE_TAILS = codec.TYPE_TAILS
_MAX = codec.SAFE_INTEGER_MAX
# Types with members that may hold any JSON (so maybe a float), and those.
_UNTYPED = {event_type: names for event_type, names in UNTYPED_MEMBERS.items() if names}

# An aggregate's state, packed. Tag 0: chain only -- head digest, version,
# position, kind (an index into _KIND_NAMES). Tag 1: marshal of (head,
# version, position, kind, unit, allowance) for the rest (a unit's or an
# allowance's rule state; a version or position beyond 32 bits, or None).
_CHAIN = struct.Struct("<B32sIIB")
_KIND_AT = _CHAIN.size - 1
_U32 = 0xFFFF_FFFF
_KIND_NAMES = ("", *sorted(set(KINDS.values())))
_KIND_CODES = {name: code for code, name in enumerate(_KIND_NAMES)}
_SELLER = "(seller)"  # a label, replaced by the seller's name in remembered resale splits
_KIND_FLAG = {"sale": True, "resale": False}  # acquisition kinds as packed
_KIND_OF = {True: "sale", False: "resale"}
# Commands whose effects name their record by its id (docs/format.md section
# 5): a record of one needs an earlier event that names it (command-orphan),
# as each such event needs its record (command-missing). Other commands'
# effects do not name their record, and some legitimately write none (a
# second delivery of a code records only the answer).
_NAMED_BY = {
    "sell": "sale_id",
    "commit-hold": "sale_id or refund_id",
    "resell": "resale_id",
    "refund": "refund_id",
    "reserve": "hold_id",
    "join-waitlist": "entry_id",
    "import-codes": "batch_id",
}
_NO_TIME = "~"  # after every timestamp's text
_TERMS_KEPT = 16_384  # distinct terms numbered at most (the rest are kept whole)


@dataclass(slots=True)
class _Event:
    position: int | None
    aggregate_id: str | None = None
    version: int | None = None
    type: str | None = None
    timestamp: str | None = None
    prev_hash: str | None = None
    payload: Payload | None = None
    hash: bytes = b""  # SHA-256 of the record
    id_ok: bool = False  # (a creation event) its id is known to be OWN_ID's derivation
    key: bytes | str = ""  # its aggregate's key in the state table (see _key)

    def ref(self) -> _Event:
        """Where the event is, without its payload (to keep for later findings)."""
        return _Event(self.position, self.aggregate_id, self.version, self.type)


@dataclass(slots=True)
class _Good:
    event: _Event
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


@dataclass(slots=True)
class _Stock:
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
    holds: dict[str, _Hold] = field(default_factory=dict)  # every hold, by id
    # A hold-committed awaiting its stock.sold (the stock's very next event).
    # (event, sale_id, quantity, channel, hold_id)
    pending: tuple[_Event, str, int, str, str] | None = None
    pools: dict[str, list[Any]] = field(default_factory=dict)  # channel -> [free, overflow]
    # A pool-drawn awaiting its stock.sold (the stock's very next event).
    drawing: tuple[_Event, str, int, str] | None = None  # event, sale_id, quantity, channel
    # Waitlist entries in the order they joined: id -> [state, quantity, channel].
    waitlist: dict[str, list[Any]] = field(default_factory=dict)
    waiting: int = 0  # entries of the waitlist still waiting
    offering: _Event | None = None  # a restock whose offers to the waitlist are under way
    rates: dict[str, list[Any]] = field(default_factory=dict)  # channel -> [cap, minute, sold]
    early_bird: Payload | None = None  # the allotment, from stock.opened
    early_bird_sold: int = 0
    codes_imported: int = 0  # codes ever imported into the tier

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
class _Hold:
    channel: str
    quantity: int
    expires_at: str
    state: str = "held"  # then committed, released or expired


@dataclass(slots=True)
class _Acquisition:
    id: str
    kind: str  # "sale" or "resale"
    holder: str
    source: str | None  # the seller of a resale
    terms: bytes  # SHA-256 of the canonical [price, split]


@dataclass(slots=True)
class _Unit:
    stock_id: str
    serial: int
    transferable: bool
    holder: str | None
    # Unrefunded acquisitions, latest last: a refund undoes the last one.
    acquisitions: list[_Acquisition]


@dataclass(slots=True)
class _Allowance:
    stock_id: str
    buyer: str
    total: int = 0
    derived: bool = False  # its id is the derivation from stock_id and buyer


@dataclass(slots=True)
class _Sale:
    """A ``stock.sold`` whose unit events (and allowance count) are awaited."""

    event: _Event
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
class _Refund:
    """A refunded primary sale, whose ``stock.returned`` (and allowance
    count) are awaited."""

    event: _Event
    stock_id: str
    serial: int
    holder: str
    limited: bool
    returned: bool = False
    counted: bool = False


@dataclass(slots=True)
class _Derivation:
    event: _Event
    master_id: str
    fingerprint: str


class _Open:
    """A member of a command's answer that no effect determines (or one that
    could not be read): any value passes, but the member must be there."""

    def __repr__(self) -> str:
        return "(any)"


_OPEN: Any = _Open()


@dataclass(slots=True)
class _Answer:
    """The answer a command's effects determine: its record's ``result``
    has exactly these members, with these values (:data:`_OPEN`: any).
    Kept from the effect to the record, then dropped."""

    members: Payload
    stock_id: str = ""  # a sale's stock
    sale: bool = False  # built from a stock.sold: a sell's or a hold payment's answer
    hold_id: str | None = None  # the hold a sale's stock.hold-committed committed


Handler = Callable[[_Event, Payload], None]


class Verifier:
    """Checks a ledger's events, fed one at a time in commit order."""

    def __init__(self, *, keep: int = FINDINGS_KEPT, memory: int = DEFAULT_BUDGET) -> None:
        """``keep``: findings kept in full (all are counted). ``memory``: the
        bytes of per-aggregate state kept in memory before the oldest move
        to a temporary file (see :mod:`ledger.verify.state`)."""
        self._keep = keep
        self._findings: list[Finding] = []
        self._total = 0
        self._events = 0
        self._by_type: dict[str, int] = {}
        self._started = time.perf_counter()
        # Per aggregate: chain heads, units' and allowances' state, packed.
        self._aggregates = StateTable(memory)
        self._goods: dict[str, _Good] = {}
        self._stocks: dict[str, _Stock] = {}
        self._channels: dict[str, int] = {}
        # Stock ids as packed in units' and allowances' state.
        self._stock_refs: dict[str, int] = {}
        self._stock_names: list[str] = []
        # Remembered derivations (pure functions of their arguments).
        self._stock_ids: dict[tuple[str, str], str] = {}
        self._primary_splits: dict[tuple[str, str, int, int], list[Payload] | None] = {}
        self._resale_splits: dict[tuple[str, str, int, int], list[Payload] | None] = {}
        # Acquisition terms, numbered (as units' state keeps them).
        self._terms_ids: dict[bytes, int] = {}
        self._terms_list: list[bytes] = []
        # Expectations across aggregates, dropped once met.
        self._sales: dict[str, _Sale] = {}  # by sale_id
        self._awaited_units: dict[str, tuple[_Sale, int]] = {}  # unit id -> sale, serial
        self._refunds: dict[str, _Refund] = {}  # primary refunds, by refund_id
        self._derivations: dict[str, _Derivation] = {}  # by variant id
        # command id -> (event, acceptable command names, label)
        self._commands_named: dict[str, tuple[_Event, tuple[str, ...], str]] = {}
        # command id -> the answer its effects determine, until its record
        self._answers: dict[str, _Answer] = {}
        # Aggregates with an event that could not be read: facts about them
        # are unknown, so expectations that depend on them are not reported.
        self._unreadable: set[str] = set()
        # The newest timestamp seen, and the oldest event (by timestamp) fed
        # since the log was last known signed (see mark_signed).
        self._newest = ""
        self._oldest_unsigned = _NO_TIME  # sorts after every timestamp
        self._unsigned_at: _Event | None = None
        self._codes = CodeRules(self._flag)  # redemption codes (rules 8.11)
        self._handlers: dict[str, Handler] = {
            "channel.registered": self._on_channel_registered,
            "good.minted": self._on_good_minted,
            "good.variant-derived": self._on_variant_derived,
            "stock.opened": self._on_stock_opened,
            "stock.sold": self._on_stock_sold,
            "stock.restocked": self._on_stock_restocked,
            "stock.returned": self._on_stock_returned,
            "stock.reserved": self._on_stock_reserved,
            "stock.hold-committed": self._on_hold_committed,
            "stock.hold-released": self._on_hold_released,
            "stock.refund-owed": self._on_refund_owed,
            "stock.allotted": self._on_allotted,
            "stock.waitlisted": self._on_waitlisted,
            "stock.rate-set": self._on_rate_set,
            "stock.waitlist-left": self._on_waitlist_left,
            "stock.pool-returned": self._on_pool_returned,
            "stock.pool-drawn": self._on_pool_drawn,
            "allowance.started": self._on_allowance_started,
            "allowance.counted": self._on_allowance_counted,
            "unit.issued": self._on_unit_issued,
            "unit.reissued": self._on_unit_reissued,
            "unit.resold": self._on_unit_resold,
            "unit.refunded": self._on_unit_refunded,
            "command.recorded": self._on_command_recorded,
            "stock.codes-imported": self._on_codes_imported,
            "stock.code-returned": self._on_code_returned,
            "code.imported": self._on_code_imported,
            "code.bound": self._codes.bound,
            "code.delivered": self._on_code_delivered,
            "code.redeemed": self._codes.redeemed,
            "code.returned": lambda ev, p: self._codes.settled(ev, p, "returned"),
            "code.voided": lambda ev, p: self._codes.settled(ev, p, "voided"),
        }

    # ------------------------------------------------------------------
    # Input
    # ------------------------------------------------------------------
    def feed(
        self, position: int, aggregate_id: str, version: int, event_type: str, state: bytes
    ) -> None:
        """One stored row: its columns and the stored ``state`` bytes."""
        self.feed_stored(position, aggregate_id, version, event_type, state)

    def feed_stored(
        self, position: int, aggregate_id: str, version: int, event_type: str, state: bytes
    ) -> bytes | None:
        """:meth:`feed`, returning the record bytes it spliced and hashed if
        the event took the fast path (None otherwise): the global log's leaf
        is the same bytes."""
        value = clean_state(aggregate_id, version, event_type, state)
        if value is not None:
            record = record_bytes(aggregate_id, version, event_type, state)
            self._accept(
                position, aggregate_id, version, event_type, value, _sha256(record).digest()
            )
            return record
        self._feed_general(position, aggregate_id, version, event_type, state)
        return None

    def feed_checked(
        self,
        position: int,
        aggregate_id: str,
        version: int,
        event_type: str,
        state: bytes,
        digest: bytes,
        id_ok: bool = False,
    ) -> None:
        """:meth:`feed` for a row that :func:`clean_state` has passed (in
        another process, say) and whose record hashes to ``digest``;
        ``id_ok``: :func:`own_id_ok` holds for it."""
        self._accept(position, aggregate_id, version, event_type, _loads(state), digest, id_ok)

    def _accept(
        self,
        position: int,
        aggregate_id: str,
        version: int,
        event_type: str,
        value: Payload,
        digest: bytes,
        id_ok: bool = False,
    ) -> None:
        """An event whose bytes, columns, envelope and payload members are
        known to be right: its chain and rules."""
        ev = _Event(
            position,
            aggregate_id,
            version,
            event_type,
            value["timestamp"],
            value["prev_hash"],
            value["payload"],
            digest,
            id_ok,
            _uuid_key(aggregate_id),
        )
        self._events += 1
        by_type = self._by_type
        by_type[event_type] = by_type.get(event_type, 0) + 1
        self._process(ev, checked=True)

    def _feed_general(
        self, position: int, aggregate_id: str, version: int, event_type: str, state: bytes
    ) -> None:
        ev = _Event(
            position,
            aggregate_id if isinstance(aggregate_id, str) else None,
            version if codec.is_int(version) else None,
            event_type if isinstance(event_type, str) else None,
        )
        self._count(ev)
        usable = self._check_columns(ev, aggregate_id, version, event_type)
        if isinstance(state, (bytes, bytearray, memoryview)):
            data = bytes(state)
        else:
            self._flag(ev, "bad-envelope", f"state is {type(state).__name__}, not bytes")
            data = b""
        if usable:
            # Hashed as stored, even if damaged (findings below say how).
            ev.hash = _sha256(codec.splice(aggregate_id, version, event_type, data)).digest()
        try:
            value, problem = codec.parse(data)
        except codec.NotJSONError as error:
            self._flag(ev, "bad-json", f"stored state is not JSON ({error})")
            value = None
        else:
            if problem is not None:
                self._flag(ev, "not-canonical", f"stored state {problem}")
        if value is not None:
            if not isinstance(value, dict):
                self._flag(ev, "bad-envelope", "stored state is not a JSON object")
            else:
                if set(value) != STATE_KEYS:
                    self._flag(
                        ev,
                        "bad-envelope",
                        f"state members are {', '.join(sorted(value))}; expected "
                        "payload, prev_hash, timestamp",
                    )
                self._read_envelope(ev, value)
        if usable:
            ev.key = _key(aggregate_id)
            self._process(ev)

    def feed_record(self, position: int, record: bytes) -> None:
        """One line of an export file: the record bytes, without the newline."""
        ev = _Event(position)
        data = bytes(record)
        ev.hash = _sha256(data).digest()
        try:
            value, problem = codec.parse(data)
        except codec.NotJSONError as error:
            self._count(ev)
            self._flag(ev, "bad-json", f"line is not JSON ({error})")
            return
        if not isinstance(value, dict):
            self._count(ev)
            self._flag(ev, "bad-envelope", "line is not a JSON object")
            return
        aggregate_id, version, event_type = (
            value.get("aggregate_id"),
            value.get("version"),
            value.get("type"),
        )
        ev.aggregate_id = aggregate_id if isinstance(aggregate_id, str) else None
        ev.version = version if codec.is_int(version) else None
        ev.type = event_type if isinstance(event_type, str) else None
        self._count(ev)
        if problem is not None:
            self._flag(ev, "not-canonical", f"record {problem}")
        complete = set(value) == RECORD_KEYS
        if not complete:
            self._flag(
                ev,
                "bad-envelope",
                f"record members are {', '.join(sorted(value))}; expected "
                f"{', '.join(sorted(RECORD_KEYS))}",
            )
        usable = self._check_columns(ev, aggregate_id, version, event_type)
        self._read_envelope(ev, value)
        if usable and complete and problem is None:
            try:
                state = codec.encode({k: value[k] for k in sorted(STATE_KEYS)})
                if ev.aggregate_id is None or ev.version is None or ev.type is None:
                    raise VerifierInvariantError("ev.aggregate_id, ev.version, ev.type unset")
                spliced = codec.splice(ev.aggregate_id, ev.version, ev.type, state)
            except (TypeError, ValueError) as error:  # pragma: no cover - defensive
                self._flag(ev, "record-mismatch", f"record cannot be split into state: {error}")
            else:
                if spliced != data:
                    self._flag(
                        ev, "record-mismatch", "record is not the splice of its state and columns"
                    )
        if usable:
            if ev.aggregate_id is None:
                raise VerifierInvariantError("ev.aggregate_id unset")
            ev.key = _key(ev.aggregate_id)
            self._process(ev)

    def report_unreadable(self, position: int | None, message: str) -> None:
        """Record that the source could not be read (a finding ``unreadable``)."""
        self._flag(_Event(position), "unreadable", message)

    def report_line(self, position: int, check: str, message: str) -> None:
        """Record a problem with an export line itself (e.g. ``bad-line``)."""
        self._flag(_Event(position), check, message)

    def mark_signed(self) -> None:
        """Every event fed so far is under a checkpoint that verified."""
        self._oldest_unsigned, self._unsigned_at = _NO_TIME, None

    def unsigned_finding(self, max_age: float) -> Finding | None:
        """``unsigned-events`` if an event fed since :meth:`mark_signed` is
        more than ``max_age`` seconds older than the newest event fed (by
        their timestamps), located at the oldest such event."""
        ev, stamp = self._unsigned_at, self._oldest_unsigned
        if ev is None or not self._newest:
            return None
        age = (_instant(self._newest) - _instant(stamp)).total_seconds()
        if age <= max_age:
            return None
        return Finding(
            ev.position,
            ev.aggregate_id,
            ev.version,
            ev.type,
            "unsigned-events",
            f"this event ({stamp}) is outside every checkpoint, {age:g} s older "
            f"than the newest event ({self._newest}): the log was not signed "
            "for longer than the sealer ever leaves it, or its later checkpoints "
            "were removed",
            expected=f"<= {max_age:g} s",
            actual=f"{age:g} s",
        )

    def findings_so_far(self) -> list[Finding]:
        """Findings kept so far, in detection order (for followers that feed
        the log incrementally and never reach its end)."""
        return list(self._findings)

    def finish(self, source: str) -> Report:
        """Run the end-of-log checks and sum up."""
        self._end_of_log()
        aggregates = len(self._aggregates)
        self._aggregates.close()
        findings = sorted(self._findings, key=lambda f: (f.position is None, f.position or 0))
        return Report(
            source=source,
            events=self._events,
            aggregates=aggregates,
            findings=findings,
            findings_total=self._total,
            by_type=dict(self._by_type),
            elapsed_s=time.perf_counter() - self._started,
        )

    # ------------------------------------------------------------------
    # Envelope and chain
    # ------------------------------------------------------------------
    def _count(self, ev: _Event) -> None:
        self._events += 1
        key = ev.type if ev.type is not None else "?"
        self._by_type[key] = self._by_type.get(key, 0) + 1

    def _flag(
        self,
        ev: _Event,
        check: str,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        self._total += 1
        if len(self._findings) < self._keep:
            self._findings.append(
                Finding(
                    ev.position,
                    ev.aggregate_id,
                    ev.version,
                    ev.type,
                    check,
                    message,
                    expected,
                    actual,
                )
            )

    def _check_columns(
        self, ev: _Event, aggregate_id: object, version: object, event_type: object
    ) -> bool:
        usable = True
        if not codec.is_uuid(aggregate_id):
            self._flag(
                ev,
                "bad-envelope",
                f"aggregate id {_short(aggregate_id)} is not a lowercase 8-4-4-4-12 UUID",
            )
            usable = isinstance(aggregate_id, str)
        if not (
            isinstance(version, int)
            and codec.is_int(version)
            and 1 <= version <= codec.SAFE_INTEGER_MAX
        ):
            self._flag(
                ev, "bad-envelope", f"version {_short(version)} is not an integer in 1..2**53-1"
            )
            usable = False
        if not isinstance(event_type, str):
            self._flag(ev, "bad-envelope", f"type {_short(event_type)} is not a string")
            usable = False
        return usable

    def _read_envelope(self, ev: _Event, value: Payload) -> None:
        prev = value.get("prev_hash")
        if codec.is_hex64(prev):
            ev.prev_hash = prev
        elif "prev_hash" in value:
            self._flag(
                ev, "bad-envelope", f"prev_hash {_short(prev)} is not 64 lowercase hex digits"
            )
        stamp = value.get("timestamp")
        if codec.is_timestamp(stamp):
            ev.timestamp = stamp
        elif "timestamp" in value:
            self._flag(
                ev, "bad-timestamp", f"timestamp {_short(stamp)} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
            )
        payload = value.get("payload")
        if isinstance(payload, dict):
            ev.payload = payload
        elif "payload" in value:
            self._flag(ev, "bad-envelope", "payload is not an object")

    def _process(self, ev: _Event, *, checked: bool = False) -> None:  # noqa: C901, PLR0912, PLR0915 - per-event hot loop; issue 13 step 3
        """Chain, type and rules; ``checked``: the payload is known to pass
        :func:`~ledger.verify.schema.payload_problem`."""
        if ev.aggregate_id is None or ev.version is None or ev.type is None:
            raise VerifierInvariantError("ev.aggregate_id, ev.version, ev.type unset")
        stamp = ev.timestamp
        if stamp is not None:
            # (The text sorts as the instants. Not max(): ten times slower, measured.)
            if stamp > self._newest:  # noqa: PLR1730
                self._newest = stamp
            if stamp < self._oldest_unsigned:
                self._oldest_unsigned, self._unsigned_at = stamp, ev.ref()
        kind = KINDS.get(ev.type)
        # The chain, when it holds and its state is only a chain head (most
        # events): inline. Anything else: _check_chain.
        table = self._aggregates
        blob = table.get(ev.key)
        position = ev.position
        if (
            kind is None
            or type(position) is not int
            or not 0 <= position <= _U32
            or ev.version > _U32
        ):
            had = self._check_chain(ev, kind)
        elif blob is None:
            if ev.version == 1 and (ev.prev_hash is None or ev.prev_hash == codec.ZERO_HASH):
                table.add(ev.key, _CHAIN.pack(0, ev.hash, 1, position, _KIND_CODES[kind]))
                had = ""
            else:
                had = self._check_chain(ev, kind)
        elif blob[0] == 0 and blob[_KIND_AT] == _KIND_CODES[kind]:
            _, head, version, _, code = _CHAIN.unpack(blob)
            if ev.version == version + 1 and (ev.prev_hash is None or ev.prev_hash == head.hex()):
                table.put(ev.key, _CHAIN.pack(0, ev.hash, ev.version, position, code))
                had = kind
            else:
                had = self._check_chain(ev, kind)
        else:
            had = self._check_chain(ev, kind)
        if kind is None:
            self._flag(ev, "unknown-type", f"{_short(ev.type)} is not an event type of section 5")
            return
        if had and had != kind:
            self._flag(ev, "wrong-type", f"a {ev.type} event in a {had} aggregate")
        creates = ev.type in CREATION_TYPES
        if creates and ev.version != 1:
            self._flag(ev, "wrong-type", f"{ev.type} creates its aggregate, so must be version 1")
        elif not creates and ev.version == 1:
            self._flag(ev, "wrong-type", f"{ev.type} cannot be the first event of an aggregate")
        payload = ev.payload
        if payload is not None and not checked:
            problem = payload_problem(ev.type, payload)
            if problem is not None:
                self._flag(ev, "bad-payload", problem)
                payload = None
        if payload is None:
            self._unreadable.add(ev.aggregate_id)
            # A unit event that cannot be read still answers for its serial.
            awaited = self._awaited_units.pop(ev.aggregate_id, None)
            if awaited is not None:
                awaited[0].waiting.discard(awaited[1])
                self._settle_sale(awaited[0])
            return
        try:
            self._handlers[ev.type](ev, payload)
        except Exception as error:  # a verifier reports, never crashes
            self._flag(
                ev,
                "unverifiable",
                f"the verifier could not check this event: {type(error).__name__}: {error}",
            )

    def _check_chain(self, ev: _Event, kind: str | None) -> str:
        """Version and ``prev_hash`` against the aggregate's head, which then
        moves to this event; the aggregate takes ``kind`` if it has none yet.
        Returns the kind it had."""
        if ev.aggregate_id is None or ev.version is None:
            raise VerifierInvariantError("ev.aggregate_id, ev.version unset")
        table = self._aggregates
        blob = table.get(ev.key)
        if blob is None:
            if ev.version == 1:
                if ev.prev_hash is not None and ev.prev_hash != codec.ZERO_HASH:
                    self._flag(
                        ev,
                        "prev-hash-mismatch",
                        f"prev_hash is not 64 zeros (version 1); expected {codec.ZERO_HASH}, "
                        f"found {ev.prev_hash}",
                        expected=codec.ZERO_HASH,
                        actual=ev.prev_hash,
                    )
            else:
                self._flag(
                    ev,
                    "version-gap",
                    f"the aggregate's first event has version {ev.version}; "
                    "expected 1 (events missing)",
                    expected="1",
                    actual=str(ev.version),
                )
            code = 0 if kind is None else _KIND_CODES[kind]
            table.add(ev.key, _pack(ev.hash, ev.version, ev.position, code, None, None))
            return ""
        head, version, position, code, unit, allowance = _unpack(blob)
        old_code = code
        expected_version = version + 1
        if ev.version == expected_version:
            if ev.prev_hash is not None and ev.prev_hash != head.hex():
                expected_prev = head.hex()
                self._flag(
                    ev,
                    "prev-hash-mismatch",
                    f"prev_hash is not the hash of v{version} (at position {position}): that "
                    f"event or this one was altered; expected {expected_prev}, found "
                    f"{ev.prev_hash}",
                    expected=expected_prev,
                    actual=ev.prev_hash,
                )
        elif ev.version > expected_version:
            self._flag(
                ev,
                "version-gap",
                f"version {ev.version} follows v{version}; expected {expected_version} "
                "(events missing)",
                expected=str(expected_version),
                actual=str(ev.version),
            )
        else:
            self._flag(
                ev,
                "version-order",
                f"version {ev.version} repeats or goes back after v{version}",
                expected=str(expected_version),
                actual=str(ev.version),
            )
        had = _KIND_NAMES[code]
        if not had and kind is not None:
            code = _KIND_CODES[kind]
        if ev.version >= expected_version:
            # Resynchronise on what is stored, so one break is one finding.
            table.put(ev.key, _pack(ev.hash, ev.version, ev.position, code, unit, allowance))
        elif code != old_code:
            table.put(ev.key, _pack(head, version, position, code, unit, allowance))
        return had

    def _kind(self, key: Key) -> str | None:
        """The kind of an aggregate seen so far (None: never seen)."""
        blob = self._aggregates.get(key)
        return None if blob is None else _KIND_NAMES[_unpack(blob)[3]]

    def _stock_ref(self, stock_id: str) -> int:
        ref = self._stock_refs.get(stock_id)
        if ref is None:
            ref = self._stock_refs[stock_id] = len(self._stock_names)
            self._stock_names.append(stock_id)
        return ref

    def _unit(self, key: Key) -> _Unit | None:
        blob = self._aggregates.get(key)
        if blob is None or not blob[0]:
            return None
        packed = _unpack(blob)[4]
        if packed is None:
            return None
        stock_ref, serial, transferable, holder, acquisitions = packed
        terms = self._terms_list
        return _Unit(
            self._stock_names[stock_ref],
            serial,
            transferable,
            holder,
            [
                _Acquisition(
                    _uuid_str(i) if type(i) is bytes else i,
                    _KIND_OF[k] if type(k) is bool else k,
                    h,
                    src,
                    terms[t] if type(t) is int else t,
                )
                for i, k, h, src, t in acquisitions
            ],
        )

    def _keep_unit(self, key: Key, unit: _Unit) -> None:
        """Store a unit's state with its aggregate's (whose chain is known):
        acquisition ids as a UUID's bytes, kinds as booleans, terms by
        their number in a table of terms seen (a sale's units share theirs)."""
        head, version, position, code, _, allowance = _unpack(self._known(key))
        packed = (
            self._stock_ref(unit.stock_id),
            unit.serial,
            unit.transferable,
            unit.holder,
            [
                (
                    _key(a.id),
                    _KIND_FLAG.get(a.kind, a.kind),
                    a.holder,
                    a.source,
                    self._terms_ref(a.terms),
                )
                for a in unit.acquisitions
            ],
        )
        self._aggregates.put(key, _pack(head, version, position, code, packed, allowance))

    def _terms_ref(self, terms: bytes) -> bytes | int:
        found = self._terms_ids.get(terms)
        if found is None:
            if len(self._terms_list) >= _TERMS_KEPT:
                return terms
            found = self._terms_ids[terms] = len(self._terms_list)
            self._terms_list.append(terms)
        return found

    def _allowance(self, key: Key) -> _Allowance | None:
        blob = self._aggregates.get(key)
        if blob is None or not blob[0]:
            return None
        packed = _unpack(blob)[5]
        if packed is None:
            return None
        stock_ref, buyer, total, derived = packed
        return _Allowance(self._stock_names[stock_ref], buyer, total, derived)

    def _keep_allowance(self, key: Key, allowance: _Allowance) -> None:
        head, version, position, code, unit, _ = _unpack(self._known(key))
        packed = (
            self._stock_ref(allowance.stock_id),
            allowance.buyer,
            allowance.total,
            allowance.derived,
        )
        self._aggregates.put(key, _pack(head, version, position, code, unit, packed))

    def _known(self, key: Key) -> bytes:
        blob = self._aggregates.get(key)
        if blob is None:  # pragma: no cover - handlers run after the chain is recorded
            raise AssertionError(f"no chain recorded for {key!r}")
        return blob

    # ------------------------------------------------------------------
    # Shared rule helpers
    # ------------------------------------------------------------------
    def _check_own_id(self, ev: _Event, p: Payload) -> bool:
        """A creation event's aggregate id is the derivation of section 4
        from its payload (:data:`OWN_ID`), unless already known to be."""
        if ev.type is None:
            raise VerifierInvariantError("ev.type unset")
        return ev.id_ok or self._check_id(ev, *OWN_ID[ev.type](p))

    def _check_id(self, ev: _Event, kind: str, *parts: object) -> bool:
        """Whether the event's aggregate id is the derivation (else flagged)."""
        want = codec.derive_id(kind, *parts)
        if ev.aggregate_id == want:
            return True
        name = "/".join((kind, *(str(p) for p in parts)))
        self._flag(
            ev,
            "bad-id",
            f"aggregate id is not UUIDv5 of {_short(name, 120)}: expected {want}, "
            f"found {ev.aggregate_id}",
            expected=want,
            actual=ev.aggregate_id,
        )
        return False

    def _check_currency(self, ev: _Event, price: Payload, good: _Good) -> None:
        if price["currency"] != good.currency:
            self._flag(
                ev,
                "currency",
                f"price in {price['currency']}, but the good trades in {good.currency}",
                expected=good.currency,
                actual=price["currency"],
            )

    def _check_split(
        self, ev: _Event, parts: list[Payload], price: int, want: list[Payload] | None
    ) -> None:
        if want is not None and parts == want:
            return  # (section 7's parts always sum to the price)
        total = sum(part["amount"] for part in parts)
        if total != price:
            self._flag(
                ev,
                "split-sum",
                f"split parts sum to {total}, not the price {price}",
                expected=str(price),
                actual=str(total),
            )
            return
        if want is None:
            self._flag(
                ev,
                "split-mismatch",
                "section 7's weights for this sale are negative or all zero, so no split is valid",
            )
        elif parts != want:
            self._flag(
                ev,
                "split-mismatch",
                f"split is not section 7's: expected {_describe(want)}; found {_describe(parts)}",
                expected=codec.encode(want).decode(),
                actual=codec.encode(parts).decode(),
            )

    def _fee(self, ev: _Event, channel: str) -> int | None:
        fee = self._channels.get(channel)
        if fee is None:
            self._flag(ev, "unknown-ref", f"channel {_short(channel)} is not registered")
        return fee

    # ------------------------------------------------------------------
    # Channels and goods
    # ------------------------------------------------------------------
    def _on_channel_registered(self, ev: _Event, p: Payload) -> None:
        self._check_own_id(ev, p)
        self._channels.setdefault(sys.intern(p["channel"]), p["fee_bps"])

    def _on_command_recorded(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._check_own_id(ev, p)
        named = self._commands_named.pop(ev.aggregate_id, None)
        if named is None:
            label = _NAMED_BY.get(p["command"])
            if label is not None:
                self._flag(
                    ev,
                    "command-orphan",
                    f"a {p['command']} command is recorded, but no event before its record "
                    f"names it (as its {label}): the command's effects are missing",
                )
        elif p["command"] not in named[1]:
            self._flag(
                ev,
                "command-mismatch",
                f"command {_short(p['command'])} is recorded under the {named[2]} of a "
                f"{named[0].type} at position {named[0].position}; expected "
                f"{' or '.join(map(repr, named[1]))}",
                expected=" or ".join(named[1]),
                actual=p["command"],
            )
            self._answers.pop(ev.aggregate_id, None)
        else:
            answer = self._answers.pop(ev.aggregate_id, None)
            if answer is not None:
                self._check_result(ev, p, answer)

    def _name_command(
        self, ev: _Event, command_id: str, name: str | tuple[str, ...], label: str
    ) -> bool:
        """``ev`` names the command record it was saved with (section 5): it
        must be in the log (after ``ev``, as the writer saves it last).
        Returns whether the record is awaited (not seen yet)."""
        if self._kind(_uuid_key(command_id)) != "command":  # (ids in payloads are UUIDs)
            names = (name,) if isinstance(name, str) else name
            self._commands_named[command_id] = (ev.ref(), names, label)
            return True
        return False

    def _check_result(self, ev: _Event, p: Payload, answer: _Answer) -> None:
        """The record's ``result`` -- what a retry is answered, byte for byte
        -- is the answer its command's effects determine: the same members,
        each of the same value and JSON type."""
        command, result = p["command"], p["result"]
        want = answer.members
        late_hold = False
        if answer.sale and command == "commit-hold":
            # A hold's payment answers as a sale, with how it went.
            late_hold = answer.hold_id is None
            want = {
                **want,
                "outcome": "sold-late" if late_hold else "sold",
                "hold_id": _OPEN if late_hold else answer.hold_id,
            }
        if result == want and _canonical(result) == _canonical(want):
            return  # (the common case: every member determined, and the same)
        if len(result) == len(want):
            filled = {k: result.get(k) if v is _OPEN else v for k, v in want.items()}
            if (
                result == filled
                and _canonical(result) == _canonical(filled)
                and (not late_hold or self._expired_hold(answer, result["hold_id"]))
            ):
                return
        problems = []
        for name, value in want.items():
            if name not in result:
                problems.append(f"{name} is missing")
            elif value is not _OPEN and _canonical(result[name]) != _canonical(value):
                problems.append(
                    f"{name} is {_short(result[name])}, its effects say {_short(value)}"
                )
        extra = [name for name in result if name not in want]
        if extra:
            problems.append(f"{', '.join(map(repr, extra))} is no member of a {command} answer")
        if late_hold and "hold_id" in result and not self._expired_hold(answer, result["hold_id"]):
            problems.append(
                f"hold_id {_short(result['hold_id'])} is no expired hold of this "
                f"tier through {_short(want.get('channel'))}: a payment after "
                "expiry answers with the hold it paid for"
            )
        if problems:
            self._flag(
                ev,
                "command-result",
                f"the result recorded for this {command} is not "
                "the answer its effects determine (a retry would be answered with it): "
                + "; ".join(problems),
            )

    def _expired_hold(self, answer: _Answer, hold_id: object) -> bool:
        """Whether ``hold_id`` is an expired hold of the sale's stock, of
        the sale's channel (what a late payment pays for)."""
        stock = self._stocks.get(answer.stock_id)
        hold = stock.holds.get(hold_id) if stock is not None and type(hold_id) is str else None
        return (
            hold is not None
            and hold.state == "expired"
            and (hold.channel == answer.members["channel"])
        )

    def _stock_answer(
        self, stock: _Stock | None, ev: _Event, time_name: str, **members: Any
    ) -> _Answer:
        """An answer naming its stock's good and tier, and the effect's time."""
        return _Answer(
            {
                **members,
                "good_id": stock.good_id if stock is not None else _OPEN,
                "tier": stock.tier if stock is not None else _OPEN,
                time_name: ev.timestamp or _OPEN,
            }
        )

    def _on_good_minted(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        definition, fingerprint = p["definition"], p["fingerprint"]
        actual = codec.sha256_hex(codec.encode(definition))
        if actual != fingerprint:
            self._flag(
                ev,
                "bad-fingerprint",
                f"fingerprint is not SHA-256 of the definition: expected {actual}, "
                f"found {fingerprint}",
                expected=actual,
                actual=fingerprint,
            )
        self._check_own_id(ev, p)
        shape_problem = definition_shape_problem(definition)
        if shape_problem is not None:
            self._flag(ev, "bad-definition", shape_problem)
            self._unreadable.add(ev.aggregate_id)
            return
        for problem in definition_rule_problems(definition):
            self._flag(ev, "bad-definition", problem)
        if definition["minted_at"] != ev.timestamp:
            self._flag(
                ev,
                "bad-definition",
                f"minted_at {definition['minted_at']} is not the event's timestamp {ev.timestamp}",
            )
        good = _good_from(ev.ref(), definition, fingerprint)
        master = definition["master"]
        if master is not None:
            self._check_master(ev, good, master)
            self._check_derivation(ev, fingerprint, master)
        if ev.aggregate_id not in self._goods:
            self._goods[ev.aggregate_id] = good

    def _check_master(self, ev: _Event, good: _Good, master: Payload) -> None:
        found = self._goods.get(master["good_id"])
        if found is None:
            if master["good_id"] not in self._unreadable:
                self._flag(
                    ev,
                    "unknown-ref",
                    f"master good {master['good_id']} is not minted before its variant",
                )
            return
        diffs = []
        if master["fingerprint"] != found.fingerprint:
            diffs.append(f"fingerprint {master['fingerprint']} (master's: {found.fingerprint})")
        if [(c["id"], c["share_bps"]) for c in master["creators"]] != found.creators:
            diffs.append("creators differ from the master's")
        rules = found.variant_rules
        if rules is not None:
            if master["primary_bps"] != rules["master_primary_bps"]:
                diffs.append(
                    f"primary_bps {master['primary_bps']} (master's rules: "
                    f"{rules['master_primary_bps']})"
                )
            if master["resale_bps"] != rules["master_resale_bps"]:
                diffs.append(
                    f"resale_bps {master['resale_bps']} (master's rules: "
                    f"{rules['master_resale_bps']})"
                )
        if diffs:
            self._flag(
                ev,
                "variant-mismatch",
                "definition.master is not copied from the master: " + "; ".join(diffs),
            )
        if rules is None:
            self._flag(ev, "variant-limit", f"master {master['good_id']} declares no variant rules")
            return
        cap = rules["max_supply_per_variant"]
        for name, tier in good.tiers.items():
            if tier["lifetime_cap"] > cap:
                self._flag(
                    ev,
                    "variant-limit",
                    f"variant tier {name!r} has lifetime_cap {tier['lifetime_cap']}, "
                    f"over the master's max_supply_per_variant {cap}",
                    expected=f"<= {cap}",
                    actual=str(tier["lifetime_cap"]),
                )

    def _check_derivation(self, ev: _Event, fingerprint: str, master: Payload) -> None:
        """A variant is minted only as its master's ``good.variant-derived``
        says (which the writer saves first)."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        derived = self._derivations.pop(ev.aggregate_id, None)
        if derived is None:
            if master["good_id"] not in self._unreadable:
                self._flag(
                    ev,
                    "variant-mismatch",
                    "no good.variant-derived on its master names this variant",
                )
            return
        diffs = []
        if derived.master_id != master["good_id"]:
            diffs.append(
                f"it was derived by {derived.master_id}, not by the master named in "
                f"its definition ({master['good_id']})"
            )
        if derived.fingerprint != fingerprint:
            diffs.append(
                f"its fingerprint is not the variant_fingerprint {derived.fingerprint} derived"
            )
        if diffs:
            self._flag(
                ev,
                "variant-mismatch",
                "the variant is not the one its master derived: " + "; ".join(diffs),
            )

    def _on_variant_derived(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        if p["variant_id"] != codec.derive_id("good", p["variant_fingerprint"]):
            self._flag(
                ev,
                "variant-mismatch",
                "variant_id is not the good id derived from variant_fingerprint",
            )
        self._derivations[p["variant_id"]] = _Derivation(
            ev.ref(), ev.aggregate_id, p["variant_fingerprint"]
        )
        good = self._goods.get(ev.aggregate_id)
        if good is None:
            return
        good.variants += 1
        if p["index"] != good.variants:
            self._flag(
                ev,
                "variant-mismatch",
                f"index {p['index']}, but this is the good's variant No. {good.variants}",
                expected=str(good.variants),
                actual=str(p["index"]),
            )
        rules = good.variant_rules
        if rules is None:
            self._flag(
                ev, "variant-limit", "the good declares no variant rules, so it derives no variants"
            )
        elif good.variants > rules["max_variants"]:
            self._flag(
                ev,
                "variant-limit",
                f"variant No. {good.variants} exceeds max_variants {rules['max_variants']}",
                expected=f"<= {rules['max_variants']}",
                actual=str(good.variants),
            )

    # ------------------------------------------------------------------
    # Tier stock
    # ------------------------------------------------------------------
    def _on_stock_opened(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._check_own_id(ev, p)
        good = self._goods.get(p["good_id"])
        if good is None:
            if p["good_id"] not in self._unreadable:
                self._flag(ev, "unknown-ref", f"good {p['good_id']} is not minted before its stock")
        else:
            tier = good.tiers.get(p["tier"])
            if tier is None:
                self._flag(
                    ev, "stock-mismatch", f"good {p['good_id']} has no tier {_short(p['tier'])}"
                )
            else:
                expected = {
                    "supply": tier["quota"],
                    "lifetime_cap": tier["lifetime_cap"],
                    "restockable": good.policy == "restockable",
                    "transferable": tier["transferable"],
                    "per_buyer_limit": tier["per_buyer_limit"],
                    "sale_opens_at": good.opens,
                    "sale_closes_at": good.closes,
                    "early_bird": tier.get("early_bird"),
                }
                diffs = [
                    f"{k} {p.get(k)!r} (definition: {v!r})"
                    for k, v in expected.items()
                    if p.get(k) != v
                ]
                if diffs:
                    self._flag(
                        ev,
                        "stock-mismatch",
                        "stock.opened differs from its tier's definition: " + "; ".join(diffs),
                    )
            if good.unopened is not None:
                good.unopened.discard(p["tier"])
                if not good.unopened:
                    good.unopened = None
        if p["supply"] > p["lifetime_cap"]:
            self._flag(
                ev,
                "lifetime-cap",
                f"supply {p['supply']} exceeds the lifetime cap {p['lifetime_cap']}",
                expected=f"<= {p['lifetime_cap']}",
                actual=str(p["supply"]),
            )
        self._codes.opened(ev, ev.aggregate_id, p, good.kind if good is not None else None)
        if ev.aggregate_id not in self._stocks:
            self._stocks[ev.aggregate_id] = _Stock(
                good_id=sys.intern(p["good_id"]),
                tier=sys.intern(p["tier"]),
                supply=p["supply"],
                lifetime_cap=p["lifetime_cap"],
                restockable=p["restockable"],
                transferable=p["transferable"],
                per_buyer_limit=p["per_buyer_limit"],
                opens=p["sale_opens_at"],
                closes=p["sale_closes_at"],
                early_bird=p.get("early_bird"),
            )

    def _on_stock_sold(self, ev: _Event, p: Payload) -> None:  # noqa: C901, PLR0912 - stock rules; issue 13 step 3 splits them out
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        answering = self._name_command(ev, p["sale_id"], ("sell", "commit-hold"), "sale_id")
        stock = self._stocks.get(ev.aggregate_id)
        if stock is None:
            return
        if stock.offering is not None:
            self._close_offers(stock)
        from_hold = stock.pending is not None
        hold_id = None
        if stock.pending is not None:
            _, sale_id, quantity, channel, committed = stock.pending
            stock.pending = None
            if sale_id == p["sale_id"]:
                hold_id = committed
            if (sale_id, quantity, channel) != (p["sale_id"], len(p["serials"]), p["channel"]):
                self._flag(
                    ev,
                    "hold-mismatch",
                    f"the hold committed just before sells {quantity} through {channel!r} as "
                    f"sale {sale_id}; this sale is {len(p['serials'])} through "
                    f"{p['channel']!r} as {p['sale_id']}",
                )
        moment = ev.timestamp
        if p.get("early_bird"):
            self._check_early_bird(ev, stock, p)
        elif moment is not None and (
            (stock.opens is not None and moment < stock.opens)
            or (stock.closes is not None and moment >= stock.closes)
        ):
            self._flag(
                ev,
                "sale-window",
                f"sold at {moment}, outside the sale window "
                f"[{stock.opens or '-∞'}, {stock.closes or '∞'})",
            )
        serials: list[int] = p["serials"]
        unit_ids = codec.derive_ids("unit", (stock.good_id, stock.tier), serials)
        if answering:
            self._answers[p["sale_id"]] = self._sale_answer(ev, stock, p, unit_ids, hold_id)
        self._codes.sold(ev, ev.aggregate_id, p, unit_ids)
        if stock.drawing is not None or stock.pools:  # (else nothing to check)
            self._check_pool_sale(ev, stock, p, from_hold=from_hold)
        if stock.rates:
            self._check_rate(ev, stock, p)
        fresh = self._take_serials(ev, stock, serials)
        if stock.committed > stock.supply:
            self._flag(
                ev,
                "oversold",
                f"{stock.live} units of tier {stock.tier!r} are live, {stock.reserved} held "
                f"and {stock.pooled} pooled after this sale, over its supply of {stock.supply}",
                expected=f"<= {stock.supply}",
                actual=str(stock.committed),
            )
        good = self._goods.get(stock.good_id)
        price = p["unit_price"]
        if good is not None:
            self._check_currency(ev, price, good)
            fee = self._fee(ev, p["channel"])
            if fee is not None:
                self._check_split(
                    ev,
                    p["split"],
                    price["amount"],
                    self._primary_split(stock.good_id, good, p["channel"], fee, price["amount"]),
                )
        # Await one unit event per serial, and the buyer's allowance count.
        sale = _Sale(
            event=ev.ref(),
            stock_id=ev.aggregate_id,
            sale_id=p["sale_id"],
            buyer=p["buyer"],
            channel=p["channel"],
            price=price,
            split=p["split"],
            quantity=len(serials),
            fresh=fresh,
            waiting=set(serials),
            limited=stock.per_buyer_limit is not None,
            good_id=stock.good_id,
            tier=stock.tier,
        )
        self._sales[sale.sale_id] = sale
        awaited = self._awaited_units
        for serial, unit_id in zip(serials, unit_ids, strict=True):
            awaited[unit_id] = (sale, serial)

    @staticmethod
    def _sale_answer(
        ev: _Event, stock: _Stock, p: Payload, unit_ids: list[str], hold_id: str | None
    ) -> _Answer:
        """A sale's answer (a hold payment's adds its outcome and hold)."""
        serials = p["serials"]
        codes = p.get("codes")
        units: Any
        if codes is None:
            units = [{"unit_id": u, "serial": s} for u, s in zip(unit_ids, serials, strict=True)]
        elif type(codes) is list and len(codes) == len(serials):
            units = [
                {"unit_id": u, "serial": s, "code_ref": c}
                for u, s, c in zip(unit_ids, serials, codes, strict=True)
            ]
        else:
            units = _OPEN  # (flagged as a code-binding)
        return _Answer(
            {
                "sale_id": p["sale_id"],
                "good_id": stock.good_id,
                "tier": stock.tier,
                "buyer": p["buyer"],
                "channel": p["channel"],
                "quantity": len(serials),
                "unit_price": p["unit_price"],
                "split_per_unit": p["split"],
                "units": units,
                "sold_at": ev.timestamp or _OPEN,
            },
            stock_id=ev.aggregate_id or "",
            sale=True,
            hold_id=hold_id,
        )

    def _resale_split(
        self, stock: _Stock | None, good: _Good, channel: str, fee: int, amount: int, seller: str
    ) -> list[Payload] | None:
        """Section 7's split of a resale. The seller's name is only a label:
        its part is the last and its weight does not depend on it, so the
        split is remembered per good, channel and price, the seller's part
        relabelled."""
        if stock is None:
            raise VerifierInvariantError("stock unset")
        key = (stock.good_id, channel, fee, amount)
        try:
            parts = self._resale_splits[key]
        except KeyError:
            weights = resale_weights(
                good.creators,
                good.resale_bps,
                good.master_creators,
                good.master_resale_bps,
                channel,
                fee,
                _SELLER,
            )
            parts = largest_remainder(amount, weights)
            if len(self._resale_splits) >= 10_000:
                self._resale_splits.clear()
            self._resale_splits[key] = parts
        if parts and parts[-1]["role"] == "seller":
            return [*parts[:-1], {**parts[-1], "recipient": seller}]
        return parts

    def _primary_split(
        self, good_id: str, good: _Good, channel: str, fee: int, amount: int
    ) -> list[Payload] | None:
        """Section 7's split of a primary sale (remembered: a good's sales
        through one channel at one price all split alike). Not to be changed
        by the caller."""
        key = (good_id, channel, fee, amount)
        try:
            return self._primary_splits[key]
        except KeyError:
            pass
        weights = primary_weights(
            good.creators, good.master_creators, good.master_primary_bps, channel, fee
        )
        parts = largest_remainder(amount, weights)
        if len(self._primary_splits) >= 10_000:
            self._primary_splits.clear()
        self._primary_splits[key] = parts
        return parts

    def _check_early_bird(self, ev: _Event, stock: _Stock, p: Payload) -> None:
        """An early-bird sale: inside the allotment's window, within its
        quantity, at its price (rules 8.2)."""
        early = stock.early_bird
        if early is None:
            self._flag(ev, "early-bird", f"tier {stock.tier!r} has no early-bird allotment")
            return
        stock.early_bird_sold += len(p["serials"])
        moment = ev.timestamp
        if moment is not None and not early["opens_at"] <= moment < early["closes_at"]:
            self._flag(
                ev,
                "early-bird",
                f"sold at {moment}, outside the early bird's window "
                f"[{early['opens_at']}, {early['closes_at']})",
            )
        if stock.early_bird_sold > early["quantity"]:
            self._flag(
                ev,
                "early-bird",
                f"{stock.early_bird_sold} early-bird units sold, over its {early['quantity']}",
                expected=f"<= {early['quantity']}",
                actual=str(stock.early_bird_sold),
            )
        if p["unit_price"] != early["price"]:
            self._flag(
                ev,
                "early-bird",
                f"sold at {_short(p['unit_price'])}, not the early "
                f"bird's price {_short(early['price'])}",
            )

    # -- reservations ---------------------------------------------------------
    def _stock_for_hold(self, ev: _Event, *, offer: bool = False) -> _Stock | None:
        """The stock of a hold event; a commit left without its sale is
        flagged, and so is a restock's offer to the waitlist that was skipped
        (unless ``offer``: this event is the next offer)."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        stock = self._stocks.get(ev.aggregate_id)
        if stock is not None:
            self._settle_pending(stock, offers=not offer)
        return stock

    def _settle_pending(self, stock: _Stock, *, offers: bool = True) -> None:
        """What an earlier event of the stock left awaiting must have come by
        now: the sale after a hold-committed or a pool-drawn, and (``offers``)
        every offer a restock owed the waitlist."""
        if offers and stock.offering is not None:
            self._close_offers(stock)
        if stock.pending is not None:
            self._flag(
                stock.pending[0],
                "hold-mismatch",
                "a hold-committed is not followed by its stock.sold",
            )
            stock.pending = None
        if stock.drawing is not None:
            self._flag(
                stock.drawing[0], "pool-mismatch", "a pool-drawn is not followed by its stock.sold"
            )
            stock.drawing = None

    def _live_hold(self, ev: _Event, stock: _Stock, hold_id: str) -> _Hold | None:
        hold = stock.holds.get(hold_id)
        if hold is None:
            self._flag(ev, "hold-state", f"tier {stock.tier!r} has no hold {hold_id}")
            return None
        if hold.state != "held":
            self._flag(
                ev,
                "hold-state",
                f"hold {hold_id} was already {hold.state}",
                expected="held",
                actual=hold.state,
            )
            return None
        return hold

    def _on_stock_reserved(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        known = self._stocks.get(ev.aggregate_id)
        entry = known.waitlist.get(p["hold_id"]) if known is not None else None
        if entry is None and self._name_command(ev, p["hold_id"], "reserve", "hold_id"):
            self._answers[p["hold_id"]] = self._stock_answer(
                known,
                ev,
                "reserved_at",
                hold_id=p["hold_id"],
                channel=p["channel"],
                quantity=p["quantity"],
                expires_at=p["expires_at"],
            )
        stock = self._stock_for_hold(ev, offer=entry is not None)
        if stock is None:
            return
        if entry is not None:
            self._check_offer(ev, stock, p, entry)
        moment = ev.timestamp
        if moment is not None and (
            (stock.opens is not None and moment < stock.opens)
            or (stock.closes is not None and moment >= stock.closes)
        ):
            self._flag(
                ev,
                "sale-window",
                f"reserved at {moment}, outside the sale window "
                f"[{stock.opens or '-∞'}, {stock.closes or '∞'})",
            )
        if moment is not None and p["expires_at"] <= moment:
            self._flag(
                ev,
                "hold-expiry",
                f"the hold expires at {p['expires_at']}, not after it was made ({moment})",
            )
        self._fee(ev, p["channel"])
        if p["hold_id"] in stock.holds:
            self._flag(ev, "hold-state", f"hold {p['hold_id']} is made twice")
            return
        stock.holds[p["hold_id"]] = _Hold(p["channel"], p["quantity"], p["expires_at"])
        stock.reserved += p["quantity"]
        self._codes.reserved(ev, ev.aggregate_id, p)
        self._check_committed(ev, stock, "reservation")

    def _check_committed(self, ev: _Event, stock: _Stock, what: str) -> None:
        if stock.committed > stock.supply:
            self._flag(
                ev,
                "oversold",
                f"{stock.live} units of tier {stock.tier!r} are live, {stock.reserved} held "
                f"and {stock.pooled} pooled after this {what}, over its supply of "
                f"{stock.supply}",
                expected=f"<= {stock.supply}",
                actual=str(stock.committed),
            )

    # -- rate rules ---------------------------------------------------------------
    def _on_rate_set(self, ev: _Event, p: Payload) -> None:
        stock = self._stock_for_hold(ev)
        if stock is None:
            return
        self._fee(ev, p["channel"])
        rule = stock.rates.setdefault(p["channel"], [None, "", 0])
        rule[0] = p["per_minute"]

    def _check_rate(self, ev: _Event, stock: _Stock, p: Payload) -> None:
        """A channel's sales of a tier in one minute stay within its rate rule."""
        rule = stock.rates.get(p["channel"])
        if rule is None or ev.timestamp is None:
            return
        minute = ev.timestamp[:16]
        if rule[1] != minute:
            rule[1], rule[2] = minute, 0
        rule[2] += len(p["serials"])
        if rule[0] is not None and rule[2] > rule[0]:
            self._flag(
                ev,
                "rate-limit",
                f"{p['channel']!r} sold {rule[2]} unit(s) of tier "
                f"{stock.tier!r} in the minute {minute}, over its rule of {rule[0]}",
                expected=f"<= {rule[0]}",
                actual=str(rule[2]),
            )

    # -- waitlists ---------------------------------------------------------------
    def _on_waitlisted(self, ev: _Event, p: Payload) -> None:
        awaited = self._name_command(ev, p["entry_id"], "join-waitlist", "entry_id")
        stock = self._stock_for_hold(ev)
        again = stock is not None and (
            p["entry_id"] in stock.waitlist or p["entry_id"] in stock.holds
        )
        if awaited:
            # Its place in line: 1 + the entries still waiting before it.
            place = _OPEN if stock is None or again else stock.waiting + 1
            self._answers[p["entry_id"]] = self._stock_answer(
                stock,
                ev,
                "joined_at",
                entry_id=p["entry_id"],
                buyer=p["buyer"],
                channel=p["channel"],
                quantity=p["quantity"],
                place=place,
            )
        if stock is None:
            return
        self._fee(ev, p["channel"])
        if again:
            self._flag(ev, "waitlist-state", f"entry {p['entry_id']} joins twice")
            return
        available = stock.supply - stock.committed
        if not stock.restockable or p["quantity"] <= available:
            self._flag(
                ev,
                "waitlist-early",
                f"waits for {p['quantity']} of tier "
                f"{stock.tier!r}, which has {available} available"
                + ("" if stock.restockable else " and can never be restocked"),
            )
        stock.waitlist[p["entry_id"]] = ["waiting", p["quantity"], p["channel"]]
        stock.waiting += 1

    def _on_waitlist_left(self, ev: _Event, p: Payload) -> None:
        stock = self._stock_for_hold(ev)
        if stock is None:
            return
        entry = stock.waitlist.get(p["entry_id"])
        if entry is None or entry[0] != "waiting":
            self._flag(
                ev,
                "waitlist-state",
                f"entry {p['entry_id']} leaves, but it is {entry[0] if entry else 'unknown'}",
            )
            return
        entry[0] = "left"
        stock.waiting -= 1

    def _check_offer(self, ev: _Event, stock: _Stock, p: Payload, entry: list[Any]) -> None:
        first = next((e for e, v in stock.waitlist.items() if v[0] == "waiting"), None)
        if stock.offering is None or entry[0] != "waiting" or first != p["hold_id"]:
            self._flag(
                ev,
                "waitlist-order",
                f"a hold for waitlist entry {p['hold_id']} "
                "that is not the restock's next offer, first come first served",
            )
        if (entry[1], entry[2]) != (p["quantity"], p["channel"]):
            self._flag(
                ev,
                "waitlist-mismatch",
                f"the offer holds {p['quantity']} for "
                f"{p['channel']!r}; the entry waits for {entry[1]} through {entry[2]!r}",
            )
        if entry[0] == "waiting":
            stock.waiting -= 1
        entry[0] = "offered"

    def _close_offers(self, stock: _Stock) -> None:
        """A restock's offers ended: the next waiting entry must not have fit."""
        restock = stock.offering
        stock.offering = None
        if restock is None:
            raise VerifierInvariantError("restock unset")
        moment = restock.timestamp
        if moment is not None and (
            (stock.opens is not None and moment < stock.opens)
            or (stock.closes is not None and moment >= stock.closes)
        ):
            return  # outside the sale window no holds are offered
        first = next((v for v in stock.waitlist.values() if v[0] == "waiting"), None)
        available = stock.supply - stock.committed
        if first is not None and first[1] <= available:
            self._flag(
                restock,
                "waitlist-skipped",
                f"after this restock {available} unit(s) "
                f"were available, but the first waiting buyer (for {first[1]}) was "
                "offered no hold",
            )

    # -- channels' pools -------------------------------------------------------
    def _on_allotted(self, ev: _Event, p: Payload) -> None:
        stock = self._stock_for_hold(ev)
        if stock is None:
            return
        self._fee(ev, p["channel"])
        pool = stock.pools.setdefault(p["channel"], [0, False])
        pool[0] += p["quantity"]
        pool[1] = p["overflow"]
        self._check_committed(ev, stock, "allotment")

    def _on_pool_returned(self, ev: _Event, p: Payload) -> None:
        stock = self._stock_for_hold(ev)
        if stock is not None:
            self._take_from_pool(ev, stock, p, "returns")

    def _on_pool_drawn(self, ev: _Event, p: Payload) -> None:
        stock = self._stock_for_hold(ev)
        if stock is not None:
            self._take_from_pool(ev, stock, p, "draws")
            stock.drawing = (ev.ref(), p["sale_id"], p["quantity"], p["channel"])

    def _take_from_pool(self, ev: _Event, stock: _Stock, p: Payload, verb: str) -> None:
        """Units leave a channel's pool: at most the unsold ones."""
        pool = stock.pools.get(p["channel"])
        free = pool[0] if pool else 0
        if p["quantity"] > free:
            self._flag(
                ev,
                "pool-mismatch",
                f"{verb} {p['quantity']} unit(s) from the pool of "
                f"{p['channel']!r}, which has {free} unsold",
                expected=f"<= {free}",
                actual=str(p["quantity"]),
            )
        if pool is not None:
            pool[0] = max(0, free - p["quantity"])

    def _check_pool_sale(self, ev: _Event, stock: _Stock, p: Payload, *, from_hold: bool) -> None:
        """A channel with a pool sells from it first, and beyond it only with
        overflow; a pool-drawn is followed by the sale it draws for."""
        drawn = 0
        if stock.drawing is not None:
            _, sale_id, drawn, channel = stock.drawing
            stock.drawing = None
            if (sale_id, channel) != (p["sale_id"], p["channel"]) or drawn > len(p["serials"]):
                self._flag(
                    ev,
                    "pool-mismatch",
                    f"the pool-drawn just before draws {drawn} for "
                    f"sale {sale_id} through {channel!r}; this sale is "
                    f"{len(p['serials'])} through {p['channel']!r} as {p['sale_id']}",
                )
                return
        pool = stock.pools.get(p["channel"])
        if pool is None or from_hold:
            return  # no pool, or a hold's units (from the shared stock)
        rest = len(p["serials"]) - drawn
        if rest and pool[0] > 0:
            self._flag(
                ev,
                "pool-order",
                f"{rest} unit(s) sold beyond the pool of "
                f"{p['channel']!r} while {pool[0]} of it were unsold",
            )
        elif rest and not pool[1]:
            self._flag(
                ev,
                "pool-overflow",
                f"{rest} unit(s) sold from the shared stock by "
                f"{p['channel']!r}, whose pool does not overflow",
            )

    def _on_hold_committed(self, ev: _Event, p: Payload) -> None:
        stock = self._stock_for_hold(ev)
        if stock is None:
            return
        hold = self._live_hold(ev, stock, p["hold_id"])
        if hold is None:
            return
        if ev.timestamp is not None and ev.timestamp >= hold.expires_at:
            self._flag(
                ev,
                "hold-expiry",
                f"committed at {ev.timestamp}, after the hold expired at {hold.expires_at}",
            )
        if p["quantity"] + p["returned"] != hold.quantity:
            self._flag(
                ev,
                "hold-mismatch",
                f"commits {p['quantity']} and returns {p['returned']} of a hold of {hold.quantity}",
                expected=str(hold.quantity),
                actual=str(p["quantity"] + p["returned"]),
            )
        hold.state = "committed"
        stock.reserved -= hold.quantity
        stock.pending = (ev.ref(), p["sale_id"], p["quantity"], hold.channel, p["hold_id"])
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._codes.hold_resolved(ev.aggregate_id, p["hold_id"], p["quantity"])

    def _on_hold_released(self, ev: _Event, p: Payload) -> None:
        stock = self._stock_for_hold(ev)
        if stock is None:
            return
        hold = self._live_hold(ev, stock, p["hold_id"])
        if hold is None:
            return
        if p["quantity"] != hold.quantity:
            self._flag(
                ev,
                "hold-mismatch",
                f"releases {p['quantity']} of a hold of {hold.quantity}",
                expected=str(hold.quantity),
                actual=str(p["quantity"]),
            )
        if p["reason"] == "expired" and ev.timestamp is not None and ev.timestamp < hold.expires_at:
            self._flag(
                ev, "hold-expiry", f"expired at {ev.timestamp}, before its time {hold.expires_at}"
            )
        hold.state = p["reason"]
        stock.reserved -= hold.quantity
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._codes.hold_resolved(ev.aggregate_id, p["hold_id"], 0)

    def _on_refund_owed(self, ev: _Event, p: Payload) -> None:
        awaited = self._name_command(ev, p["refund_id"], "commit-hold", "refund_id")
        stock = self._stock_for_hold(ev)
        hold = stock.holds.get(p["hold_id"]) if stock is not None else None
        if awaited:
            self._answers[p["refund_id"]] = self._stock_answer(
                stock,
                ev,
                "decided_at",
                outcome="refund-owed",
                hold_id=p["hold_id"],
                refund_id=p["refund_id"],
                buyer=p["buyer"],
                channel=hold.channel if hold is not None else _OPEN,
                quantity=p["quantity"],
                amount=p["amount"],
            )
        if stock is None:
            return
        if hold is None or hold.state != "expired":
            self._flag(
                ev,
                "hold-state",
                f"a refund is owed only for an expired hold; hold "
                f"{p['hold_id']} is {hold.state if hold else 'unknown'}",
            )
        good = self._goods.get(stock.good_id)
        if good is not None:
            self._check_currency(ev, p["amount"], good)

    def _take_serials(self, ev: _Event, stock: _Stock, serials: list[int]) -> set[int]:
        """Check and apply a sale's serials; return those never issued before."""
        first = stock.next_serial
        if not stock.free and serials == list(range(first, first + len(serials))):
            # The common case, as the general rule below has it: new serials
            # in order, none returned to take first.
            stock.next_serial = first + len(serials)
            return set(serials)
        free = set(stock.free)
        reused: list[int] = []
        seen: set[int] = set()
        for serial in serials:
            if serial in seen or (serial < stock.next_serial and serial not in free):
                reused.append(serial)
            seen.add(serial)
        reused_from_free = stock.free[: len(serials)]
        fresh_count = len(serials) - len(reused_from_free)
        expected = [*reused_from_free, *range(stock.next_serial, stock.next_serial + fresh_count)]
        if reused:
            self._flag(
                ev,
                "serial-reused",
                f"serial(s) {reused} are already live (issued and not returned)",
            )
        elif serials != expected:
            self._flag(
                ev,
                "serial-order",
                f"serials {serials}; expected {expected} (returned serials first, "
                "lowest first, then new ones in order)",
                expected=str(expected),
                actual=str(serials),
            )
        fresh = {s for s in serials if s >= stock.next_serial}
        for serial in dict.fromkeys(serials):
            if serial in free:
                free.discard(serial)
            elif serial >= stock.next_serial:
                # Serials skipped over were never issued: they stay available.
                free.update(range(stock.next_serial, serial))
                stock.next_serial = serial + 1
        stock.free = sorted(free)
        return fresh

    def _on_stock_restocked(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        stock = self._stock_for_hold(ev)
        if stock is None:
            return
        if not stock.restockable:
            self._flag(
                ev,
                "restock-forbidden",
                f"tier {stock.tier!r} is an absolute edition's; it cannot be restocked",
            )
        quantity, supply = p["quantity"], p["supply"]
        if quantity < 1 or supply != stock.supply + quantity:
            self._flag(
                ev,
                "restock-mismatch",
                f"restocking {quantity} onto a supply of {stock.supply} gives "
                f"{stock.supply + quantity}, not {supply}",
                expected=str(stock.supply + quantity),
                actual=str(supply),
            )
        if supply > stock.lifetime_cap:
            self._flag(
                ev,
                "lifetime-cap",
                f"supply {supply} exceeds the lifetime cap {stock.lifetime_cap}",
                expected=f"<= {stock.lifetime_cap}",
                actual=str(supply),
            )
        stock.supply = supply
        stock.offering = ev.ref()

    def _on_stock_returned(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        stock = self._stock_for_hold(ev)
        serial = p["serial"]
        if stock is not None:
            if serial >= stock.next_serial or serial in stock.free:
                self._flag(
                    ev,
                    "serial-not-live",
                    f"serial {serial} is not live: {stock.next_serial - 1} issued, "
                    f"returned {stock.free[:10]}",
                )
            else:
                bisect.insort(stock.free, serial)
        refund = self._refunds.get(p["refund_id"])
        if refund is None:
            unit_id = (
                None
                if stock is None
                else codec.derive_id("unit", stock.good_id, stock.tier, serial)
            )
            if unit_id not in self._unreadable:
                self._flag(
                    ev,
                    "return-mismatch",
                    f"no refund of a primary sale with refund_id {p['refund_id']} "
                    "comes before this stock.returned",
                )
            return
        if refund.returned:
            self._flag(
                ev, "return-mismatch", f"refund {p['refund_id']} already returned its serial"
            )
        refund.returned = True
        if (ev.aggregate_id, serial) != (refund.stock_id, refund.serial):
            self._flag(
                ev,
                "return-mismatch",
                f"returns serial {serial} of stock {ev.aggregate_id}; the refund gives "
                f"back serial {refund.serial} of stock {refund.stock_id}",
            )
        self._settle_refund(p["refund_id"], refund)

    # ------------------------------------------------------------------
    # Buyer allowances
    # ------------------------------------------------------------------
    def _on_allowance_started(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        derived = self._check_own_id(ev, p)
        stock = self._stocks.get(p["stock_id"])
        if stock is None:
            if p["stock_id"] not in self._unreadable:
                self._flag(ev, "unknown-ref", f"stock {p['stock_id']} is not opened")
        elif stock.per_buyer_limit is None:
            self._flag(
                ev,
                "allowance-mismatch",
                f"tier {stock.tier!r} has no per-buyer limit, so no allowance",
            )
        if self._allowance(ev.key) is None:
            self._keep_allowance(ev.key, _Allowance(p["stock_id"], p["buyer"], 0, derived))

    def _on_allowance_counted(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        allowance = self._allowance(ev.key)
        delta, reference = p["delta"], p["reference"]
        if allowance is not None:
            allowance.total += delta
            self._keep_allowance(ev.key, allowance)
            stock = self._stocks.get(allowance.stock_id)
            limit = stock.per_buyer_limit if stock is not None else None
            if allowance.total < 0 or (limit is not None and allowance.total > limit):
                self._flag(
                    ev,
                    "buyer-limit",
                    f"{allowance.buyer} has bought {allowance.total} unit(s) of the "
                    f"tier, outside 0…{limit if limit is not None else '∞'}",
                    expected=f"0…{limit}",
                    actual=str(allowance.total),
                )
        sale = self._sales.get(reference)
        refund = self._refunds.get(reference)
        if sale is not None:
            want = (
                self._allowance_id(ev.aggregate_id, allowance, sale.stock_id, sale.buyer),
                sale.quantity,
            )
            what = f"the sale of {sale.quantity} to {sale.buyer}"
            again = sale.counted
            sale.counted = True
        elif refund is not None:
            want = (
                self._allowance_id(ev.aggregate_id, allowance, refund.stock_id, refund.holder),
                -1,
            )
            what = f"the refund of one unit from {refund.holder}"
            again = refund.counted
            refund.counted = True
        else:
            stock_id = allowance.stock_id if allowance is not None else None
            if stock_id not in self._unreadable and ev.aggregate_id not in self._unreadable:
                self._flag(
                    ev,
                    "allowance-mismatch",
                    f"reference {reference} names no sale or primary refund awaiting "
                    "an allowance count",
                )
            return
        if again:
            self._flag(ev, "allowance-mismatch", f"{what} is counted twice")
        elif (ev.aggregate_id, delta) != want:
            self._flag(
                ev,
                "allowance-mismatch",
                f"counts {delta:+d} on allowance {ev.aggregate_id}; {what} counts "
                f"{want[1]:+d} on allowance {want[0]}",
            )
        if sale is not None:
            self._settle_sale(sale)
        elif refund is not None:
            self._settle_refund(reference, refund)

    @staticmethod
    def _allowance_id(
        aggregate_id: str, allowance: _Allowance | None, stock_id: str, buyer: str
    ) -> str:
        """The id of (stock, buyer)'s allowance: ``aggregate_id`` if it is the
        allowance for them whose id was derived when it started."""
        if (
            allowance is not None
            and allowance.derived
            and allowance.stock_id == stock_id
            and allowance.buyer == buyer
        ):
            return aggregate_id
        return codec.derive_id("allowance", stock_id, buyer)

    # ------------------------------------------------------------------
    # Units
    # ------------------------------------------------------------------
    def _on_unit_issued(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._awaited_units.get(ev.aggregate_id)
        if awaited is None or (awaited[0].good_id, awaited[0].tier, awaited[1]) != (
            p["good_id"],
            p["tier"],
            p["serial"],
        ):
            # (Else the sale derived this very id from these very parts.)
            self._check_own_id(ev, p)
        stock_id = self._stock_id(p["good_id"], p["tier"])
        stock = self._stocks.get(stock_id)
        if stock is None:
            if stock_id not in self._unreadable:
                self._flag(
                    ev,
                    "unknown-ref",
                    f"no stock.opened for tier {_short(p['tier'])} of good {p['good_id']}",
                )
        elif p["transferable"] != stock.transferable:
            self._flag(
                ev,
                "unit-mismatch",
                f"transferable is {p['transferable']}, the tier's is {stock.transferable}",
            )
        terms = self._match_sale(ev, stock_id, p, issued=True)
        self._codes.unit_sold(ev, ev.aggregate_id, p)
        if self._unit(ev.key) is None:
            self._keep_unit(
                ev.key,
                _Unit(
                    stock_id=stock_id,
                    serial=p["serial"],
                    transferable=p["transferable"],
                    holder=p["holder"],
                    acquisitions=[_acquisition(p["sale_id"], "sale", p["holder"], None, p, terms)],
                ),
            )

    def _stock_id(self, good_id: str, tier: str) -> str:
        key = (good_id, tier)
        found = self._stock_ids.get(key)
        if found is None:
            if len(self._stock_ids) >= 4_096:
                self._stock_ids.clear()
            found = self._stock_ids[key] = codec.derive_id("stock", good_id, tier)
        return found

    def _on_unit_reissued(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        unit = self._unit(ev.key)
        if unit is None:
            return
        if unit.holder is not None:
            self._flag(
                ev,
                "unit-held",
                f"the unit is held by {unit.holder}; only a returned unit is sold again",
            )
        terms = self._match_sale(ev, unit.stock_id, p, issued=False)
        self._codes.unit_sold(ev, ev.aggregate_id, p)
        unit.holder = p["holder"]
        unit.acquisitions = [_acquisition(p["sale_id"], "sale", p["holder"], None, p, terms)]
        self._keep_unit(ev.key, unit)

    def _match_sale(  # noqa: PLR0912 - unit rules; issue 13 step 3 splits them out
        self,
        ev: _Event,
        stock_id: str,
        p: Payload,
        *,
        issued: bool,
    ) -> bytes | None:
        """A unit event answers for one serial of an earlier ``stock.sold``,
        on that sale's terms. Returns the acquisition terms of the unit if
        they are the sale's (which then computes them once for its units)."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._awaited_units.pop(ev.aggregate_id, None)
        if awaited is None:
            if stock_id not in self._unreadable:
                self._flag(
                    ev,
                    "unit-mismatch",
                    f"no stock.sold awaits this unit (sale_id {p['sale_id']}): its "
                    "serial was not sold, or is already issued",
                )
            return None
        sale, serial = awaited
        sale.waiting.discard(serial)
        if (
            p["sale_id"] == sale.sale_id
            and p["holder"] == sale.buyer
            and p["channel"] == sale.channel
            and p["price"] == sale.price
            and p["split"] == sale.split
            and (serial in sale.fresh) == issued
        ):
            # As the sale says (the general comparison below would find nothing).
            self._settle_sale(sale)
            if not sale.terms:
                sale.terms = _terms(sale.price, sale.split)
            return sale.terms
        diffs = []
        for name, value in (
            ("sale_id", sale.sale_id),
            ("holder", sale.buyer),
            ("channel", sale.channel),
            ("price", sale.price),
        ):
            if p[name] != value:
                diffs.append(f"{name} {_short(p[name])} (sale: {_short(value)})")
        same_terms = p["price"] == sale.price
        if p["split"] != sale.split:
            same_terms = False
            diffs.append("split differs from the sale's")
        if issued and serial not in sale.fresh:
            diffs.append(
                f"serial {serial} was returned before, so the sale reissues its unit "
                "(unit.reissued)"
            )
        if not issued and serial in sale.fresh:
            diffs.append(f"serial {serial} is new, so the sale issues it (unit.issued)")
        if diffs:
            self._flag(
                ev,
                "unit-mismatch",
                f"the unit event does not match the sale at position "
                f"{sale.event.position}: " + "; ".join(diffs),
            )
        self._settle_sale(sale)
        if not same_terms:
            return None
        if not sale.terms:
            sale.terms = _terms(sale.price, sale.split)
        return sale.terms

    def _on_unit_resold(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._name_command(ev, p["resale_id"], "resell", "resale_id")
        unit = self._unit(ev.key)
        if awaited:
            answer = self._stock_answer(
                self._stocks.get(unit.stock_id) if unit is not None else None,
                ev,
                "resold_at",
                resale_id=p["resale_id"],
                unit_id=ev.aggregate_id,
                serial=unit.serial if unit is not None else _OPEN,
                seller=p["seller"],
                buyer=p["buyer"],
                channel=p["channel"],
                price=p["price"],
                split=p["split"],
            )
            self._answers[p["resale_id"]] = answer
        if unit is None:
            return
        seller = p["seller"]
        if unit.holder is None:
            self._flag(
                ev,
                "not-holder",
                f"the unit is not held (it is back in stock); {seller} cannot resell it",
            )
        elif unit.holder != seller:
            self._flag(
                ev,
                "not-holder",
                f"seller {seller} is not the holder {unit.holder}",
                expected=unit.holder,
                actual=seller,
            )
        stock = self._stocks.get(unit.stock_id)
        if not unit.transferable:
            tier = repr(stock.tier) if stock is not None else "of this unit"
            self._flag(
                ev,
                "not-transferable",
                f"tier {tier} is not transferable; its units cannot be resold",
            )
        good = self._goods.get(stock.good_id) if stock is not None else None
        price = p["price"]
        if good is not None:
            self._check_currency(ev, price, good)
            fee = self._fee(ev, p["channel"])
            if fee is not None:
                self._check_split(
                    ev,
                    p["split"],
                    price["amount"],
                    self._resale_split(stock, good, p["channel"], fee, price["amount"], seller),
                )
        self._codes.resold(ev, ev.aggregate_id)
        unit.holder = p["buyer"]
        unit.acquisitions.append(_acquisition(p["resale_id"], "resale", p["buyer"], seller, p))
        self._keep_unit(ev.key, unit)

    def _on_unit_refunded(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        if self._name_command(ev, p["refund_id"], "refund", "refund_id"):
            self._answers[p["refund_id"]] = _Answer(
                {
                    "refund_id": p["refund_id"],
                    "unit_id": ev.aggregate_id,
                    "kind": p["kind"],
                    "refunded_acquisition": p["acquisition_id"],
                    "holder": p["holder"],
                    "returned_to": p["returned_to"],
                    "amount": p["price"],
                    "refunded_at": ev.timestamp or _OPEN,
                }
            )
        unit = self._unit(ev.key)
        if unit is None:
            return
        latest = unit.acquisitions[-1] if unit.holder is not None and unit.acquisitions else None
        undone = _acquisition(p["acquisition_id"], p["kind"], p["holder"], p["returned_to"], p)
        if latest is None:
            self._flag(
                ev,
                "refund-mismatch",
                "the unit is not held, so there is no acquisition to refund"
                if unit.holder is None
                else f"{unit.holder} holds the unit with no unrefunded acquisition left",
            )
        else:
            diffs = []
            for name, value, want in (
                ("acquisition_id", undone.id, latest.id),
                ("kind", undone.kind, latest.kind),
                ("holder", undone.holder, latest.holder),
                ("returned_to", undone.source, latest.source),
            ):
                if value != want:
                    diffs.append(f"{name} {_short(value)} (expected {_short(want)})")
            if undone.terms != latest.terms:
                diffs.append("price or split differ from the acquisition's")
            if diffs:
                self._flag(
                    ev,
                    "refund-mismatch",
                    f"the refund does not undo the holder's latest unrefunded "
                    f"acquisition ({latest.kind} {latest.id}): " + "; ".join(diffs),
                )
        self._codes.refunded(ev, ev.aggregate_id, p)
        # Resynchronise: undo the acquisition the refund names, if known.
        ids = [a.id for a in unit.acquisitions]
        if undone.id in ids:
            del unit.acquisitions[ids.index(undone.id) :]
        unit.holder = p["returned_to"]
        self._keep_unit(ev.key, unit)
        if p["kind"] == "sale":
            # Awaiting: the serial back in stock, and the buyer's count back down.
            stock = self._stocks.get(unit.stock_id)
            self._refunds[p["refund_id"]] = _Refund(
                event=ev.ref(),
                stock_id=unit.stock_id,
                serial=unit.serial,
                holder=p["holder"],
                limited=stock is not None and stock.per_buyer_limit is not None,
            )

    # -- redemption codes (rules 8.11; see ledger.verify.codes) ----------------
    def _on_code_imported(self, ev: _Event, p: Payload) -> None:
        self._name_command(ev, p["batch_id"], "import-codes", "batch_id")
        good = self._goods.get(p["good_id"])
        if good is None and p["good_id"] not in self._unreadable:
            self._flag(ev, "unknown-ref", f"good {p['good_id']} is not minted before its codes")
        self._codes.imported(ev, p, None if good is None else {"kind": good.kind})

    def _on_codes_imported(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._name_command(ev, p["batch_id"], "import-codes", "batch_id")
        self._codes.listed(ev, ev.aggregate_id, p)
        stock = self._stocks.get(ev.aggregate_id)
        if stock is not None:
            stock.codes_imported += len(p["refs"])
        if awaited:
            self._answers[p["batch_id"]] = self._stock_answer(
                stock,
                ev,
                "imported_at",
                batch_id=p["batch_id"],
                imported=len(p["refs"]),
                codes_imported=stock.codes_imported if stock is not None else _OPEN,
                codes_available=self._codes.free(ev.aggregate_id),
            )

    def _on_code_returned(self, ev: _Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._name_command(ev, p["refund_id"], "refund", "refund_id")
        self._codes.returned_to_pool(ev, ev.aggregate_id, p)

    def _on_code_delivered(self, ev: _Event, p: Payload) -> None:
        unit = self._unit(_uuid_key(p["unit_id"]))
        self._codes.delivered(ev, p, unit.holder if unit is not None else None)

    # ------------------------------------------------------------------
    # Expectations met, and those never met
    # ------------------------------------------------------------------
    def _settle_sale(self, sale: _Sale) -> None:
        if not sale.waiting and (sale.counted or not sale.limited):
            self._sales.pop(sale.sale_id, None)

    def _settle_refund(self, refund_id: str, refund: _Refund) -> None:
        if refund.returned and (refund.counted or not refund.limited):
            self._refunds.pop(refund_id, None)

    def _end_of_log(self) -> None:  # noqa: PLR0912 - sale rules; issue 13 step 3 splits them out
        for sale in self._sales.values():
            if sale.waiting:
                self._flag(
                    sale.event,
                    "dangling-sale",
                    f"serial(s) {sorted(sale.waiting)} sold but never issued by a unit "
                    "event of this sale",
                )
            allowance_id = codec.derive_id("allowance", sale.stock_id, sale.buyer)
            if sale.limited and not sale.counted and allowance_id not in self._unreadable:
                self._flag(
                    sale.event,
                    "allowance-mismatch",
                    "the tier has a per-buyer limit but no allowance.counted counts this sale",
                )
        for refund in self._refunds.values():
            if not refund.returned and refund.stock_id not in self._unreadable:
                self._flag(
                    refund.event,
                    "return-mismatch",
                    f"refunding a primary sale returns serial {refund.serial} to "
                    "stock, but no stock.returned does",
                )
            allowance_id = codec.derive_id("allowance", refund.stock_id, refund.holder)
            if refund.limited and not refund.counted and allowance_id not in self._unreadable:
                self._flag(
                    refund.event,
                    "allowance-mismatch",
                    "the tier has a per-buyer limit but no allowance.counted -1 counts this refund",
                )
        for stock in self._stocks.values():
            self._settle_pending(stock)
        self._codes.finish(self._unreadable)
        for command_id, (ev, _name, label) in self._commands_named.items():
            if command_id not in self._unreadable:
                self._flag(
                    ev,
                    "command-missing",
                    f"no command.recorded with id {command_id} (its {label}) is in the log",
                )
        for variant_id, derived in self._derivations.items():
            if variant_id not in self._unreadable:
                self._flag(
                    derived.event,
                    "variant-mismatch",
                    f"the variant {variant_id} it derives is never minted",
                )
        for good in self._goods.values():
            if good.unopened:
                self._flag(
                    good.event,
                    "stock-mismatch",
                    f"tier(s) {sorted(good.unopened)} of the good have no stock.opened",
                )
        self._sales.clear()
        self._refunds.clear()
        self._commands_named.clear()
        self._answers.clear()
        self._derivations.clear()
        self._awaited_units.clear()


def _instant(stamp: str) -> datetime:
    """A timestamp already checked to be ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.fromisoformat(stamp[:-1])


def _acquisition(
    acquisition_id: str,
    kind: str,
    holder: str,
    source: str | None,
    p: Payload,
    terms: bytes | None = None,
) -> _Acquisition:
    """What a refund must name and give back; its price and split hashed
    (``terms``, if already known to be those of ``p``)."""
    return _Acquisition(
        acquisition_id, kind, holder, source, terms or _terms(p["price"], p["split"])
    )


def _terms(price: Payload, split: list[Payload]) -> bytes:
    return _sha256(codec.encode([price, split])).digest()


def _pack(
    head: bytes, version: int, position: int | None, code: int, unit: Any, allowance: Any
) -> bytes:
    """An aggregate's state as bytes (see _CHAIN)."""
    if (
        unit is None
        and allowance is None
        and type(position) is int
        and 0 <= position <= _U32
        and version <= _U32
    ):
        return _CHAIN.pack(0, head, version, position, code)
    return b"\x01" + marshal.dumps((head, version, position, code, unit, allowance))


def _unpack(blob: bytes) -> tuple[bytes, int, int | None, int, Any, Any]:
    if blob[0]:
        # Bytes this verifier packed itself (never read from the log).
        head, version, position, code, unit, allowance = marshal.loads(blob[1:])  # noqa: S302
        return head, version, position, code, unit, allowance
    _, head, version, position, code = _CHAIN.unpack(blob)
    return head, version, position, code, None, None


def clean_state(
    aggregate_id: object, version: object, event_type: object, state: object
) -> Payload | None:
    """The parsed state of a stored row in which :meth:`Verifier.feed` would
    find nothing wrong with the bytes, the columns, the envelope or the
    payload's members (so no finding but what the chain and the rules say);
    None for any other row. It depends on the row alone."""
    if not (
        type(aggregate_id) is str
        and type(version) is int
        and type(event_type) is str
        and type(state) is bytes
        and 0 < version <= _MAX
        and _uuid_match(aggregate_id) is not None
        and state.isascii()
    ):
        return None
    try:
        value = _loads(state)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict or value.keys() != STATE_KEYS:
        return None
    payload = value["payload"]
    prev_hash = value["prev_hash"]
    timestamp = value["timestamp"]
    payload_ok = PAYLOAD_OK.get(event_type)
    if (
        payload_ok is not None
        and type(prev_hash) is str
        and _hex64_match(prev_hash) is not None
        and type(timestamp) is str
        and _timestamp_ok(timestamp)
        and type(payload) is dict
        and payload_ok(payload)
        and (event_type not in _UNTYPED or _float_free(payload, _UNTYPED[event_type]))
        and _canonical(value) == state
    ):
        return value
    return None


# The id a creation event's aggregate must have (section 4): the derivation
# from these parts of its payload.
OWN_ID: dict[str, Callable[[Payload], tuple[Any, ...]]] = {
    "channel.registered": lambda p: ("channel", p["channel"]),
    "command.recorded": lambda p: ("command", p["scope"], p["key"]),
    "good.minted": lambda p: ("good", p["fingerprint"]),
    "stock.opened": lambda p: ("stock", p["good_id"], p["tier"]),
    "allowance.started": lambda p: ("allowance", p["stock_id"], p["buyer"]),
    "unit.issued": lambda p: ("unit", p["good_id"], p["tier"], p["serial"]),
}


def own_id_ok(aggregate_id: str, event_type: str, payload: Payload) -> bool:
    """Whether a creation event (of a clean row) has its derived id."""
    parts = OWN_ID.get(event_type)
    return parts is not None and aggregate_id == codec.derive_id(*parts(payload))


def record_bytes(aggregate_id: str, version: int, event_type: str, state: bytes) -> bytes:
    """:func:`~ledger.verify.codec.splice`, for a row :func:`clean_state` passed."""
    tail = _TYPE_TAILS.get(event_type)
    if tail is None:
        tail = codec.type_tail(event_type)
    return b"".join(
        (
            b'{"aggregate_id":"',
            aggregate_id.encode(),
            b'",',
            state[1:-1],
            tail,
            str(version).encode(),
            b"}",
        )
    )


Key = bytes | str


def _uuid_str(key: bytes) -> str:
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuid_key(aggregate_id: str) -> bytes:
    """The state table's key for a lowercase UUID: its 16 bytes (a third of
    the string's memory)."""
    return bytes.fromhex(aggregate_id.replace("-", ""))


def _key(aggregate_id: str) -> Key:
    """The state table's key for any id: a UUID's bytes, or the string
    itself if it is none (a damaged log's), which no UUID's key equals."""
    return _uuid_key(aggregate_id) if _uuid_match(aggregate_id) is not None else aggregate_id


def _canonical(value: Any) -> bytes | None:
    """The canonical bytes of a parsed value (None: it holds an integer
    beyond 64 bits, which cannot be re-encoded)."""
    try:
        return _dumps(value, option=_CANONICAL)
    except orjson.JSONEncodeError:
        return None


def _float_free(payload: Payload, members: tuple[str, ...]) -> bool:
    """No float anywhere in these members of the payload (False also when
    they nest deeper than :data:`_DEPTH`: the general path then looks)."""
    return all(_no_float(payload[name], _DEPTH) for name in members)


_DEPTH = 64


def _no_float(value: Any, depth: int) -> bool:
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return kind is not float
    if not depth:
        return False
    for item in items:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and not _no_float(item, depth - 1)):
            return False
    return True


def _good_from(event: _Event, definition: Payload, fingerprint: str) -> _Good:
    spec = definition["spec"]
    edition = spec["edition"]
    good = _Good(
        event=event,
        fingerprint=fingerprint,
        currency=spec["currency"],
        kind=spec["kind"],
        creators=[(c["id"], c["share_bps"]) for c in spec["creators"]],
        resale_bps=spec["royalty"]["resale_bps"],
        policy=edition["policy"],
        opens=edition["sale_opens_at"],
        closes=edition["sale_closes_at"],
        tiers={t["name"]: t for t in spec["tiers"]},
        variant_rules=spec["variant_rules"],
        unopened={t["name"] for t in spec["tiers"]},
    )
    master = definition["master"]
    if master is not None:
        good.master_id = master["good_id"]
        good.master_creators = [(c["id"], c["share_bps"]) for c in master["creators"]]
        good.master_primary_bps = master["primary_bps"]
        good.master_resale_bps = master["resale_bps"]
    return good


def _short(value: object, limit: int = 80) -> str:
    """A value for a one-line message: its repr, cut short if long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(parts: list[Payload]) -> str:
    return ", ".join(f"{p['recipient']}/{p['role']} {p['amount']}" for p in parts)
