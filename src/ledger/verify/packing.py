"""An aggregate's state as the verifier keeps it: packed into bytes in a
:class:`~ledger.verify.state.StateTable` (which moves the oldest entries to
disk past its memory budget).

Tag 0: chain only -- head digest, version, position, kind (an index into
:data:`KIND_NAMES`). Tag 1: marshal of (head, version, position, kind, unit,
allowance) for the rest (a unit's or an allowance's rule state; a version or
position beyond 32 bits, or None). :class:`PackedState` reads and writes a
unit's and an allowance's state there, with the chain it shares.
"""

from __future__ import annotations

import marshal
import struct
from dataclasses import dataclass
from typing import Any

from ledger.verify import codec
from ledger.verify.schema import KINDS
from ledger.verify.state import StateTable

Key = bytes | str

CHAIN = struct.Struct("<B32sIIB")
KIND_AT = CHAIN.size - 1
U32 = 0xFFFF_FFFF
KIND_NAMES = ("", *sorted(set(KINDS.values())))
KIND_CODES = {name: code for code, name in enumerate(KIND_NAMES)}
_KIND_FLAG = {"sale": True, "resale": False}  # acquisition kinds as packed
_KIND_OF = {True: "sale", False: "resale"}
_TERMS_KEPT = 16_384  # distinct terms numbered at most (the rest are kept whole)
_uuid_match = codec.UUID_PATTERN.fullmatch


@dataclass(slots=True)
class Acquisition:
    id: str
    kind: str  # "sale" or "resale"
    holder: str
    source: str | None  # the seller of a resale
    terms: bytes  # SHA-256 of the canonical [price, split]
    channel: str  # the channel it was made through


@dataclass(slots=True)
class Unit:
    stock_id: str
    serial: int
    transferable: bool
    holder: str | None
    # Unrefunded acquisitions, latest last: a refund undoes the last one.
    acquisitions: list[Acquisition]
    custody: str | None  # the channel it is held through


@dataclass(slots=True)
class Allowance:
    stock_id: str
    buyer: str
    total: int = 0
    derived: bool = False  # its id is the derivation from stock_id and buyer


def pack(
    head: bytes, version: int, position: int | None, code: int, unit: Any, allowance: Any
) -> bytes:
    """An aggregate's state as bytes (see :data:`CHAIN`)."""
    if (
        unit is None
        and allowance is None
        and type(position) is int
        and 0 <= position <= U32
        and version <= U32
    ):
        return CHAIN.pack(0, head, version, position, code)
    return b"\x01" + marshal.dumps((head, version, position, code, unit, allowance))


def unpack(blob: bytes) -> tuple[bytes, int, int | None, int, Any, Any]:
    if blob[0]:
        # Bytes this verifier packed itself (never read from the log).
        head, version, position, code, unit, allowance = marshal.loads(blob[1:])  # noqa: S302
        return head, version, position, code, unit, allowance
    _, head, version, position, code = CHAIN.unpack(blob)
    return head, version, position, code, None, None


def uuid_str(key: bytes) -> str:
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid_key(aggregate_id: str) -> bytes:
    """The state table's key for a lowercase UUID: its 16 bytes (a third of
    the string's memory)."""
    return bytes.fromhex(aggregate_id.replace("-", ""))


def key_of(aggregate_id: str) -> Key:
    """The state table's key for any id: a UUID's bytes, or the string
    itself if it is none (a damaged log's), which no UUID's key equals."""
    return uuid_key(aggregate_id) if _uuid_match(aggregate_id) is not None else aggregate_id


class PackedState:
    """Units' and allowances' rule state, kept with their aggregates' chain
    heads: stock ids and acquisition terms numbered, ids as UUID bytes."""

    def __init__(self, table: StateTable) -> None:
        self.table = table
        # Stock ids as packed in units' and allowances' state.
        self._stock_refs: dict[str, int] = {}
        self._stock_names: list[str] = []
        # Acquisition terms, numbered (as units' state keeps them).
        self._terms_ids: dict[bytes, int] = {}
        self._terms_list: list[bytes] = []

    def kind(self, key: Key) -> str | None:
        """The kind of an aggregate seen so far (None: never seen)."""
        blob = self.table.get(key)
        return None if blob is None else KIND_NAMES[unpack(blob)[3]]

    def _stock_ref(self, stock_id: str) -> int:
        ref = self._stock_refs.get(stock_id)
        if ref is None:
            ref = self._stock_refs[stock_id] = len(self._stock_names)
            self._stock_names.append(stock_id)
        return ref

    def unit(self, key: Key) -> Unit | None:
        blob = self.table.get(key)
        if blob is None or not blob[0]:
            return None
        packed = unpack(blob)[4]
        if packed is None:
            return None
        stock_ref, serial, transferable, holder, acquisitions, custody = packed
        terms = self._terms_list
        return Unit(
            self._stock_names[stock_ref],
            serial,
            transferable,
            holder,
            [
                Acquisition(
                    uuid_str(i) if type(i) is bytes else i,
                    _KIND_OF[k] if type(k) is bool else k,
                    h,
                    src,
                    terms[t] if type(t) is int else t,
                    c,
                )
                for i, k, h, src, t, c in acquisitions
            ],
            custody,
        )

    def keep_unit(self, key: Key, unit: Unit) -> None:
        """Store a unit's state with its aggregate's (whose chain is known):
        acquisition ids as a UUID's bytes, kinds as booleans, terms by
        their number in a table of terms seen (a sale's units share theirs)."""
        head, version, position, code, _, allowance = unpack(self._known(key))
        packed = (
            self._stock_ref(unit.stock_id),
            unit.serial,
            unit.transferable,
            unit.holder,
            [
                (
                    key_of(a.id),
                    _KIND_FLAG.get(a.kind, a.kind),
                    a.holder,
                    a.source,
                    self._terms_ref(a.terms),
                    a.channel,
                )
                for a in unit.acquisitions
            ],
            unit.custody,
        )
        self.table.put(key, pack(head, version, position, code, packed, allowance))

    def _terms_ref(self, terms: bytes) -> bytes | int:
        found = self._terms_ids.get(terms)
        if found is None:
            if len(self._terms_list) >= _TERMS_KEPT:
                return terms
            found = self._terms_ids[terms] = len(self._terms_list)
            self._terms_list.append(terms)
        return found

    def allowance(self, key: Key) -> Allowance | None:
        blob = self.table.get(key)
        if blob is None or not blob[0]:
            return None
        packed = unpack(blob)[5]
        if packed is None:
            return None
        stock_ref, buyer, total, derived = packed
        return Allowance(self._stock_names[stock_ref], buyer, total, derived)

    def keep_allowance(self, key: Key, allowance: Allowance) -> None:
        head, version, position, code, unit, _ = unpack(self._known(key))
        packed = (
            self._stock_ref(allowance.stock_id),
            allowance.buyer,
            allowance.total,
            allowance.derived,
        )
        self.table.put(key, pack(head, version, position, code, unit, packed))

    def _known(self, key: Key) -> bytes:
        blob = self.table.get(key)
        if blob is None:  # pragma: no cover - handlers run after the chain is recorded
            raise AssertionError(f"no chain recorded for {key!r}")
        return blob
