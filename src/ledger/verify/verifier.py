"""The streaming verifier's core: feed it events in commit order, then
``finish``.

It reads each event (the fast path, :mod:`ledger.verify.fastpath`, or the
general path, which names each problem in the bytes, columns and envelope),
checks its aggregate's chain, and dispatches it to its rule family, one
module each, all sharing one :class:`~ledger.verify.facts.Facts` object:

- :mod:`~ledger.verify.goods`: channels, goods and variants, section 7's splits;
- :mod:`~ledger.verify.stock`: a tier's stock, its sales, restocks and returns;
- :mod:`~ledger.verify.holds`: holds, channels' pools, waitlists and rates;
- :mod:`~ledger.verify.units`: unit events against their sales, resales, refunds;
- :mod:`~ledger.verify.allowances`: buyers' allowances;
- :mod:`~ledger.verify.records`: command records and the answers they hold;
- :mod:`~ledger.verify.code_events` and :mod:`~ledger.verify.codes`: redemption codes.

It keeps, per aggregate, the last version and event hash, plus the small
rule state section 8 of ``docs/format.md`` needs. Facts that span aggregates
-- a sale's unit events, a refund's returned serial, the command record an
effect names -- are matched by id, not by adjacency: section 6 lets the
events of one command be interleaved with others of its batch. Such
expectations are dropped once met, so the verifier never holds the log.
What it keeps per aggregate is packed into bytes
(:mod:`ledger.verify.packing`) in a
:class:`~ledger.verify.state.StateTable`, which moves the oldest entries to
disk past its memory budget. The findings, and what is checked at the end
of the log, are here.

Every rule is written from the spec; see :mod:`ledger.verify` for the check
codes.
"""

from __future__ import annotations

import hashlib
import time

import orjson

from ledger.verify import codec
from ledger.verify.accounts import AccountRules
from ledger.verify.actors import ActorRules
from ledger.verify.allowances import AllowanceRules
from ledger.verify.code_events import CodeEvents
from ledger.verify.codes import CodeRules
from ledger.verify.envelope import check_columns, read_envelope
from ledger.verify.facts import Event, Facts, Handler, Payload, short
from ledger.verify.fastpath import (
    RECORD_KEYS,
    RECORD_KEYS_ACTOR,
    STATE_KEYS,
    STATE_KEYS_ACTOR,
    clean_state,
    record_bytes,
)
from ledger.verify.goods import GoodRules, Splits
from ledger.verify.holds import HoldRules
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.listing import ListingRules
from ledger.verify.packing import (
    CHAIN,
    KIND_AT,
    KIND_CODES,
    KIND_NAMES,
    U32,
    key_of,
    pack,
    unpack,
    uuid_key,
)
from ledger.verify.pricing import PriceRules
from ledger.verify.records import CommandRecords
from ledger.verify.report import FINDINGS_KEPT, Finding, Report
from ledger.verify.schema import CREATION_TYPES, KINDS, payload_problem
from ledger.verify.signing import NO_TIME, unsigned_finding
from ledger.verify.state import DEFAULT_BUDGET, StateTable
from ledger.verify.stock import StockRules
from ledger.verify.units import UnitRules
from ledger.verify.unlock import UnlockRules
from ledger.verify.webhooks import WebhookRules

_sha256 = hashlib.sha256
_COLUMNS = RECORD_KEYS - STATE_KEYS  # the record's members that are not in the state
_loads = orjson.loads


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
        self._facts = facts = Facts(self._flag, self._aggregates)
        # The newest timestamp seen, and the oldest event (by timestamp) fed
        # since the log was last known signed (see mark_signed).
        self._newest = ""
        self._oldest_unsigned = NO_TIME  # sorts after every timestamp
        self._unsigned_at: Event | None = None
        self._codes = CodeRules(self._flag)  # redemption codes (rules 8.11)
        self._actors = ActorRules(facts)  # who recorded each event (rule 8.12)
        self._records = CommandRecords(facts)
        self._goods = GoodRules(facts)
        self._holds = HoldRules(facts, self._records, self._codes)
        self._handlers = self._dispatch(Splits())

    def _dispatch(self, splits: Splits) -> dict[str, Handler]:
        """Each event type's rules: one family's handler."""
        facts, records, codes, holds, goods = (
            self._facts,
            self._records,
            self._codes,
            self._holds,
            self._goods,
        )
        listing = ListingRules(facts, holds.stock_for_hold)
        unlocks = UnlockRules(facts, holds.stock_for_hold)
        prices = PriceRules(facts, holds.stock_for_hold)
        stock = StockRules(facts, records, holds, codes, splits)
        accounts = self._accounts = AccountRules(facts)
        units = UnitRules(facts, records, codes, splits, accounts)
        allowances = AllowanceRules(facts)
        return accounts.around(
            {
                "channel.registered": goods.on_channel_registered,
                "good.minted": goods.on_minted,
                "good.variant-derived": goods.on_variant_derived,
                "stock.opened": stock.on_opened,
                "stock.sold": stock.on_sold,
                "stock.restocked": stock.on_restocked,
                "stock.returned": stock.on_returned,
                "stock.reserved": holds.on_reserved,
                "stock.hold-committed": holds.on_committed,
                "stock.hold-released": holds.on_released,
                "stock.refund-owed": holds.on_refund_owed,
                "stock.allotted": holds.on_allotted,
                "stock.waitlisted": holds.on_waitlisted,
                "stock.rate-set": holds.on_rate_set,
                "stock.unlocked": unlocks.on_unlocked,
                "stock.price-set": prices.on_price_set,
                "stock.paused": listing.on_paused,
                "stock.resumed": listing.on_resumed,
                "stock.delisted": listing.on_delisted,
                "stock.waitlist-left": holds.on_waitlist_left,
                "stock.pool-returned": holds.on_pool_returned,
                "stock.pool-drawn": holds.on_pool_drawn,
                "allowance.started": allowances.on_started,
                "allowance.counted": allowances.on_counted,
                "unit.issued": units.on_issued,
                "unit.reissued": units.on_reissued,
                "unit.resold": units.on_resold,
                "unit.refunded": units.on_refunded,
                "command.recorded": records.on_recorded,
                "account.opened": accounts.on_opened,
                "account.linked": accounts.on_linked,
                "account.key-registered": accounts.on_key_registered,
                "account.key-revoked": accounts.on_key_revoked,
                "unit.moved": accounts.on_moved,
                "unit.transferred": units.on_transferred,
                "apikey.issued": self._actors.on_issued,
                "apikey.revoked": self._actors.on_revoked,
                **WebhookRules(facts).handlers(),
                **CodeEvents(facts, records, codes).handlers(),
            }
        )

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
        ev = Event(
            position,
            aggregate_id,
            version,
            event_type,
            value["timestamp"],
            value["prev_hash"],
            value["payload"],
            digest,
            id_ok,
            uuid_key(aggregate_id),
            value.get("recorded_by"),
        )
        self._events += 1
        by_type = self._by_type
        by_type[event_type] = by_type.get(event_type, 0) + 1
        self._process(ev, checked=True)

    def _feed_general(
        self, position: int, aggregate_id: str, version: int, event_type: str, state: bytes
    ) -> None:
        ev = Event(
            position,
            aggregate_id if isinstance(aggregate_id, str) else None,
            version if codec.is_int(version) else None,
            event_type if isinstance(event_type, str) else None,
        )
        self._count(ev)
        usable = check_columns(self._flag, ev, aggregate_id, version, event_type)
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
                if set(value) not in (STATE_KEYS, STATE_KEYS_ACTOR):
                    self._flag(
                        ev,
                        "bad-envelope",
                        f"state members are {', '.join(sorted(value))}; expected "
                        "payload, prev_hash, [recorded_by,] timestamp",
                    )
                read_envelope(self._flag, ev, value)
        if usable:
            ev.key = key_of(aggregate_id)
            self._process(ev)

    def feed_record(self, position: int, record: bytes) -> None:
        """One line of an export file: the record bytes, without the newline."""
        ev = Event(position)
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
        members = set(value)
        complete = members in (RECORD_KEYS, RECORD_KEYS_ACTOR)
        if not complete:
            self._flag(
                ev,
                "bad-envelope",
                f"record members are {', '.join(sorted(value))}; expected "
                f"{', '.join(sorted(RECORD_KEYS))} (and maybe recorded_by)",
            )
        usable = check_columns(self._flag, ev, aggregate_id, version, event_type)
        read_envelope(self._flag, ev, value)
        if usable and complete and problem is None:
            try:
                state = codec.encode({k: value[k] for k in sorted(members - _COLUMNS)})
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
            ev.key = key_of(ev.aggregate_id)
            self._process(ev)

    def report_unreadable(self, position: int | None, message: str) -> None:
        """Record that the source could not be read (a finding ``unreadable``)."""
        self._flag(Event(position), "unreadable", message)

    def report_line(self, position: int, check: str, message: str) -> None:
        """Record a problem with an export line itself (e.g. ``bad-line``)."""
        self._flag(Event(position), check, message)

    def mark_signed(self) -> None:
        """Every event fed so far is under a checkpoint that verified."""
        self._oldest_unsigned, self._unsigned_at = NO_TIME, None

    def unsigned_finding(self, max_age: float) -> Finding | None:
        """``unsigned-events`` if an event fed since :meth:`mark_signed` is
        more than ``max_age`` seconds older than the newest event fed (by
        their timestamps), located at the oldest such event."""
        return unsigned_finding(self._unsigned_at, self._oldest_unsigned, self._newest, max_age)

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
    def _count(self, ev: Event) -> None:
        self._events += 1
        key = ev.type if ev.type is not None else "?"
        self._by_type[key] = self._by_type.get(key, 0) + 1

    def _flag(
        self,
        ev: Event,
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

    def _process(self, ev: Event, *, checked: bool = False) -> None:  # noqa: C901, PLR0912 - per-event hot loop, flat on purpose (measured)
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
            or not 0 <= position <= U32
            or ev.version > U32
        ):
            had = self._check_chain(ev, kind)
        elif blob is None:
            if ev.version == 1 and (ev.prev_hash is None or ev.prev_hash == codec.ZERO_HASH):
                table.add(ev.key, CHAIN.pack(0, ev.hash, 1, position, KIND_CODES[kind]))
                had = ""
            else:
                had = self._check_chain(ev, kind)
        elif blob[0] == 0 and blob[KIND_AT] == KIND_CODES[kind]:
            _, head, version, _, code = CHAIN.unpack(blob)
            if ev.version == version + 1 and (ev.prev_hash is None or ev.prev_hash == head.hex()):
                table.put(ev.key, CHAIN.pack(0, ev.hash, ev.version, position, code))
                had = kind
            else:
                had = self._check_chain(ev, kind)
        else:
            had = self._check_chain(ev, kind)
        if ev.recorded_by is not None:
            self._actors.check(ev, ev.recorded_by)
        if kind is None:
            self._flag(ev, "unknown-type", f"{short(ev.type)} is not an event type of section 5")
            return
        if (had and had != kind) or (ev.type in CREATION_TYPES) != (ev.version == 1):
            self._check_type(ev, had, kind)
        payload = ev.payload
        if payload is not None and not checked:
            problem = payload_problem(ev.type, payload)
            if problem is not None:
                self._flag(ev, "bad-payload", problem)
                payload = None
        if payload is None:
            self._unreadable_event(ev)
            return
        try:
            self._handlers[ev.type](ev, payload)
        except Exception as error:  # a verifier reports, never crashes
            self._unverifiable(ev, error)

    def _unverifiable(self, ev: Event, error: Exception) -> None:
        self._flag(
            ev,
            "unverifiable",
            f"the verifier could not check this event: {type(error).__name__}: {error}",
        )

    def _check_type(self, ev: Event, had: str, kind: str) -> None:
        """The event's type is of its aggregate's kind, and creates it at
        version 1 (only)."""
        if had and had != kind:
            self._flag(ev, "wrong-type", f"a {ev.type} event in a {had} aggregate")
        creates = ev.type in CREATION_TYPES
        if creates and ev.version != 1:
            self._flag(ev, "wrong-type", f"{ev.type} creates its aggregate, so must be version 1")
        elif not creates and ev.version == 1:
            self._flag(ev, "wrong-type", f"{ev.type} cannot be the first event of an aggregate")

    def _unreadable_event(self, ev: Event) -> None:
        """An event whose payload cannot be read: facts about its aggregate
        are unknown from now on."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._facts.unreadable.add(ev.aggregate_id)
        # A unit event that cannot be read still answers for its serial.
        awaited = self._facts.awaited_units.pop(ev.aggregate_id, None)
        if awaited is not None:
            awaited[0].waiting.discard(awaited[1])
            self._facts.settle_sale(awaited[0])

    def _check_chain(self, ev: Event, kind: str | None) -> str:
        """Version and ``prev_hash`` against the aggregate's head, which then
        moves to this event; the aggregate takes ``kind`` if it has none yet.
        Returns the kind it had."""
        if ev.aggregate_id is None or ev.version is None:
            raise VerifierInvariantError("ev.aggregate_id, ev.version unset")
        table = self._aggregates
        blob = table.get(ev.key)
        if blob is None:
            self._check_first(ev)
            code = 0 if kind is None else KIND_CODES[kind]
            table.add(ev.key, pack(ev.hash, ev.version, ev.position, code, None, None))
            return ""
        head, version, position, code, unit, allowance = unpack(blob)
        old_code = code
        self._check_next(ev, head, version, position)
        had = KIND_NAMES[code]
        if not had and kind is not None:
            code = KIND_CODES[kind]
        if ev.version >= version + 1:
            # Resynchronise on what is stored, so one break is one finding.
            table.put(ev.key, pack(ev.hash, ev.version, ev.position, code, unit, allowance))
        elif code != old_code:
            table.put(ev.key, pack(head, version, position, code, unit, allowance))
        return had

    def _check_first(self, ev: Event) -> None:
        """An aggregate's first event: version 1, prev_hash 64 zeros."""
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

    def _check_next(self, ev: Event, head: bytes, version: int, position: int | None) -> None:
        """An aggregate's next event: the next version, chained to the head."""
        if ev.version is None:
            raise VerifierInvariantError("ev.version unset")
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

    # ------------------------------------------------------------------
    # The end of the log: expectations never met
    # ------------------------------------------------------------------
    def _end_of_log(self) -> None:
        self._facts.finish()  # sales and primary refunds
        self._holds.finish()
        self._codes.finish(self._facts.unreadable)
        self._records.finish()
        self._goods.finish()  # variants and tiers
        self._accounts.finish()  # acts for accounts never opened
        self._facts.clear()
        self._records.clear()
