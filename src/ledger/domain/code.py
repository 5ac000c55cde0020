"""Redemption codes: secrets sold with the units of a ``redemption-code`` good.

The ledger never sees a code's text in its events. A code is named by its
*ref*: a keyed hash of the text (32 hex digits), computed at the edge with a
key the ledger's operator holds (see :mod:`ledger.store.codevault`, which also
keeps the text, encrypted). Each code is an aggregate whose id is derived from
its ref, so importing a code twice would create one id twice at version 1,
which the event store refuses: uniqueness comes from the database.

A code's life::

    imported --bound (to a unit, at its sale)--> bound --delivered--> delivered
        ^                                          |                    |   \\
        +--------------- returned (refund) --------+        redeemed <--+    voided (refund)

While free it waits in its tier's pool (on the stock, which also lends codes
to holds); a sale binds one code to each unit it issues. Delivery reveals the
text to the unit's holder and is recorded once; asking again shows the same
code. A delivered code is redeemed at most once; a refund of its sale voids it
(its text was seen) rather than returning it to the pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain import limits
from ledger.domain.errors import CodeStateError, InvalidInputError
from ledger.domain.ids import code_id_for
from ledger.domain.model import Aggregate, Created, Event, format_timestamp

REF_CHARS = 32  # hex digits of a code's ref
_REF = re.compile(r"[0-9a-f]{32}")
_CODE = re.compile(limits.CODE_PATTERN)

FREE, BOUND, DELIVERED, REDEEMED, VOIDED = "free", "bound", "delivered", "redeemed", "voided"


def check_ref(ref: object) -> str:
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        raise InvalidInputError("ref", "a code's ref is 32 lowercase hex digits")
    return ref


def check_code(text: object, *, field: str = "code") -> str:
    """A code's text: printable ASCII without spaces, 1 to CODE_CHARS_MAX
    characters. Codes are case-sensitive and taken exactly as given."""
    if not isinstance(text, str) or not 1 <= len(text) <= limits.CODE_CHARS_MAX:
        raise InvalidInputError(field, f"must be 1 to {limits.CODE_CHARS_MAX} characters")
    if not _CODE.fullmatch(text):
        raise InvalidInputError(field, "must be printable ASCII without spaces")
    return text


def code_list(codes: object) -> list[str]:
    """A batch given as a list of codes (each checked; duplicates are found later,
    by ref, without naming the code)."""
    if not isinstance(codes, list) or not 1 <= len(codes) <= limits.CODES_PER_IMPORT_MAX:
        raise InvalidInputError("codes", f"must list 1 to {limits.CODES_PER_IMPORT_MAX} codes")
    return [check_code(c, field=f"codes[{i}]") for i, c in enumerate(codes)]


def code_range(prefix: object, width: object, start: object, end: object) -> list[str]:
    """A consecutive batch: ``prefix`` then the counter from ``start`` to
    ``end`` (inclusive), zero-padded to ``width`` digits."""
    if not isinstance(prefix, str) or len(prefix) > limits.CODE_CHARS_MAX - 1:
        raise InvalidInputError("prefix", f"must be at most {limits.CODE_CHARS_MAX - 1} characters")
    if prefix:
        check_code(prefix, field="prefix")
    width, start, end = (
        _count(name, value) for name, value in (("width", width), ("start", start), ("end", end))
    )
    if not 1 <= width <= limits.CODE_RANGE_WIDTH_MAX:
        raise InvalidInputError("width", f"must be 1 to {limits.CODE_RANGE_WIDTH_MAX} digits")
    if len(prefix) + width > limits.CODE_CHARS_MAX:
        raise InvalidInputError(
            "width", f"prefix and counter exceed {limits.CODE_CHARS_MAX} characters"
        )
    if end >= 10**width:
        raise InvalidInputError("end", f"does not fit in {width} digit(s)")
    if not start <= end:
        raise InvalidInputError("end", "must not be below start")
    if end - start + 1 > limits.CODES_PER_IMPORT_MAX:
        raise InvalidInputError(
            "end", f"a range holds at most {limits.CODES_PER_IMPORT_MAX} codes; import it in parts"
        )
    return [f"{prefix}{n:0{width}d}" for n in range(start, end + 1)]


def _count(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError(name, "must be a whole number, 0 or more")
    return value


class Code(Aggregate):
    ref: str
    good_id: str
    tier: str
    batch_id: str
    state: str
    unit_id: str | None
    holder: str | None
    delivered_at: str | None

    @classmethod
    def import_(cls, *, ref: str, good_id: str, tier: str, batch_id: str, now: datetime) -> Code:
        return cls._create(
            cls.Imported,
            code_id_for(check_ref(ref)),
            now,
            ref=ref,
            good_id=good_id,
            tier=tier,
            batch_id=batch_id,
        )

    def bind(self, *, unit_id: str, sale_id: str, now: datetime) -> None:
        if self.state != FREE:
            raise AssertionError(f"code {self.ref} is {self.state}, not free to bind")
        self._trigger(Code.Bound, now, unit_id=unit_id, sale_id=sale_id)

    def deliver(self, *, unit_id: str, holder: str, now: datetime) -> bool:
        """Reveal the code to ``holder``; False if it was delivered to them
        already (nothing recorded: asking again shows the same code)."""
        self._check_unit(unit_id)
        if self.state == DELIVERED and self.holder == holder:
            return False
        if self.state != BOUND:
            raise CodeStateError(
                f"the code of unit {unit_id} is {self.state}: it cannot be delivered"
            )
        self._trigger(Code.Delivered, now, unit_id=unit_id, holder=holder)
        return True

    def redeem(self, *, redeemer: str, now: datetime) -> None:
        if self.state == REDEEMED:
            raise CodeStateError("this code was redeemed already")
        if self.state != DELIVERED:
            raise CodeStateError(
                f"this code is {self.state}: only a code delivered to its holder can be redeemed"
            )
        self._trigger(
            Code.Redeemed, now, unit_id=self.unit_id, holder=self.holder, redeemer=redeemer
        )

    def settle_refund(self, *, unit_id: str, refund_id: str, now: datetime) -> bool:
        """The sale that bound this code is refunded: an undelivered code goes
        back to its pool (returns True), a delivered one is voided."""
        self._check_unit(unit_id)
        if self.state == BOUND:
            self._trigger(Code.Returned, now, unit_id=unit_id, refund_id=refund_id)
            return True
        if self.state == DELIVERED:
            self._trigger(Code.Voided, now, unit_id=unit_id, refund_id=refund_id)
            return False
        raise CodeStateError(
            f"the code of unit {unit_id} is {self.state}: its sale can no longer be refunded"
        )

    def check_resale(self, unit_id: str) -> None:
        """A unit whose code was revealed to its holder can no longer be resold."""
        if self.state != BOUND:
            raise CodeStateError(
                f"the code of unit {unit_id} was revealed to its holder: "
                "the unit can no longer be resold"
            )

    def check_refund(self, unit_id: str, *, primary: bool) -> None:
        """Whether the current acquisition of this code's unit may be refunded:
        a delivered code can be voided by refunding its ``primary`` sale,
        until it is redeemed; no other refund undoes a reveal."""
        if self.state != BOUND and (self.state == REDEEMED or not primary):
            raise CodeStateError(
                f"the code of unit {unit_id} was {self.state}: this "
                "acquisition can no longer be refunded"
            )

    def _check_unit(self, unit_id: str) -> None:
        if self.unit_id != unit_id:
            raise AssertionError(f"code {self.ref} is not bound to unit {unit_id}")

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "good_id": self.good_id,
            "tier": self.tier,
            "state": self.state,
            "unit_id": self.unit_id,
        }

    # -- events -----------------------------------------------------------
    @dataclass(frozen=True)
    class Imported(Created):
        TYPE = "code.imported"
        ref: str
        good_id: str
        tier: str
        batch_id: str

        def apply(self, aggregate: Code) -> None:
            aggregate.ref = self.ref
            aggregate.good_id = self.good_id
            aggregate.tier = self.tier
            aggregate.batch_id = self.batch_id
            aggregate.state = FREE
            aggregate.unit_id = None
            aggregate.holder = None
            aggregate.delivered_at = None

    @dataclass(frozen=True)
    class Bound(Event):
        TYPE = "code.bound"
        unit_id: str
        sale_id: str

        def apply(self, aggregate: Code) -> None:
            aggregate.state = BOUND
            aggregate.unit_id = self.unit_id

    @dataclass(frozen=True)
    class Delivered(Event):
        TYPE = "code.delivered"
        unit_id: str
        holder: str

        def apply(self, aggregate: Code) -> None:
            aggregate.state = DELIVERED
            aggregate.holder = self.holder
            aggregate.delivered_at = format_timestamp(self.timestamp)

    @dataclass(frozen=True)
    class Redeemed(Event):
        TYPE = "code.redeemed"
        unit_id: str
        holder: str
        redeemer: str

        def apply(self, aggregate: Code) -> None:
            aggregate.state = REDEEMED

    @dataclass(frozen=True)
    class Returned(Event):
        TYPE = "code.returned"
        unit_id: str
        refund_id: str

        def apply(self, aggregate: Code) -> None:
            aggregate.state = FREE
            aggregate.unit_id = None
            aggregate.holder = None

    @dataclass(frozen=True)
    class Voided(Event):
        TYPE = "code.voided"
        unit_id: str
        refund_id: str

        def apply(self, aggregate: Code) -> None:
            aggregate.state = VOIDED


Code.Imported.AGGREGATE = Code
