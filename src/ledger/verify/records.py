"""Command records (sections 5 and 6): an effect that names its command's
record by id (``command-missing``, ``command-mismatch``, ``command-orphan``)
and the answer its effects determine, which the record's ``result`` must be
(``command-result``). Both expectations are kept from the effect to the
record, then dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.verify.facts import Event, Facts, Payload, Stock, short
from ledger.verify.fastpath import canonical
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.packing import uuid_key

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


class _Open:
    """A member of a command's answer that no effect determines (or one that
    could not be read): any value passes, but the member must be there."""

    def __repr__(self) -> str:
        return "(any)"


OPEN: Any = _Open()


@dataclass(slots=True)
class Answer:
    """The answer a command's effects determine: its record's ``result``
    has exactly these members, with these values (:data:`OPEN`: any).
    Kept from the effect to the record, then dropped."""

    members: Payload
    stock_id: str = ""  # a sale's stock
    sale: bool = False  # built from a stock.sold: a sell's or a hold payment's answer
    hold_id: str | None = None  # the hold a sale's stock.hold-committed committed


def stock_answer(stock: Stock | None, ev: Event, time_name: str, **members: Any) -> Answer:
    """An answer naming its stock's good and tier, and the effect's time."""
    return Answer(
        {
            **members,
            "good_id": stock.good_id if stock is not None else OPEN,
            "tier": stock.tier if stock is not None else OPEN,
            time_name: ev.timestamp or OPEN,
        }
    )


class CommandRecords:
    """The records effects name, and the answers they determine."""

    def __init__(self, facts: Facts) -> None:
        self._flag = facts.flag
        self._check_own_id = facts.check_own_id
        self._packed = facts.packed
        self._stocks = facts.stocks
        self._unreadable = facts.unreadable
        # command id -> (event, acceptable command names, label)
        self.named: dict[str, tuple[Event, tuple[str, ...], str]] = {}
        # command id -> the answer its effects determine, until its record
        self.answers: dict[str, Answer] = {}

    def name(self, ev: Event, command_id: str, name: str | tuple[str, ...], label: str) -> bool:
        """``ev`` names the command record it was saved with (section 5): it
        must be in the log (after ``ev``, as the writer saves it last).
        Returns whether the record is awaited (not seen yet)."""
        if self._packed.kind(uuid_key(command_id)) != "command":  # (ids in payloads are UUIDs)
            names = (name,) if isinstance(name, str) else name
            self.named[command_id] = (ev.ref(), names, label)
            return True
        return False

    def on_recorded(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._check_own_id(ev, p)
        named = self.named.pop(ev.aggregate_id, None)
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
                f"command {short(p['command'])} is recorded under the {named[2]} of a "
                f"{named[0].type} at position {named[0].position}; expected "
                f"{' or '.join(map(repr, named[1]))}",
                expected=" or ".join(named[1]),
                actual=p["command"],
            )
            self.answers.pop(ev.aggregate_id, None)
        else:
            answer = self.answers.pop(ev.aggregate_id, None)
            if answer is not None:
                self._check_result(ev, p, answer)

    def _check_result(self, ev: Event, p: Payload, answer: Answer) -> None:
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
                "hold_id": OPEN if late_hold else answer.hold_id,
            }
        if result == want and canonical(result) == canonical(want):
            return  # (the common case: every member determined, and the same)
        if not _has_editions(result):
            want = _without_editions(want)  # written before units carried their edition
        if len(result) == len(want):
            filled = {k: result.get(k) if v is OPEN else v for k, v in want.items()}
            if (
                result == filled
                and canonical(result) == canonical(filled)
                and (not late_hold or self._expired_hold(answer, result["hold_id"]))
            ):
                return
        problems = self._result_problems(command, result, want)
        if late_hold and "hold_id" in result and not self._expired_hold(answer, result["hold_id"]):
            problems.append(
                f"hold_id {short(result['hold_id'])} is no expired hold of this "
                f"tier through {short(want.get('channel'))}: a payment after "
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

    @staticmethod
    def _result_problems(command: str, result: Payload, want: Payload) -> list[str]:
        """How ``result`` differs from the answer ``want``, member by member."""
        problems = []
        for name, value in want.items():
            if name not in result:
                problems.append(f"{name} is missing")
            elif value is not OPEN and canonical(result[name]) != canonical(value):
                problems.append(f"{name} is {short(result[name])}, its effects say {short(value)}")
        extra = [name for name in result if name not in want]
        if extra:
            problems.append(f"{', '.join(map(repr, extra))} is no member of a {command} answer")
        return problems

    def _expired_hold(self, answer: Answer, hold_id: object) -> bool:
        """Whether ``hold_id`` is an expired hold of the sale's stock, of
        the sale's channel (what a late payment pays for)."""
        stock = self._stocks.get(answer.stock_id)
        hold = stock.holds.get(hold_id) if stock is not None and type(hold_id) is str else None
        return (
            hold is not None
            and hold.state == "expired"
            and (hold.channel == answer.members["channel"])
        )

    def finish(self) -> None:
        """The records effects named that never came."""
        for command_id, (ev, _name, label) in self.named.items():
            if command_id not in self._unreadable:
                self._flag(
                    ev,
                    "command-missing",
                    f"no command.recorded with id {command_id} (its {label}) is in the log",
                )

    def clear(self) -> None:
        self.named.clear()
        self.answers.clear()


def _has_editions(result: Payload) -> bool:
    """Whether ``result`` names its units' editions (a resale's ``edition``,
    a sale's ``units[i].edition``): answers recorded before editions were
    name none, and are compared with the answer as it was then."""
    if "edition" in result:
        return True
    units = result.get("units")
    return type(units) is list and any(type(u) is dict and "edition" in u for u in units)


def _without_editions(want: Payload) -> Payload:
    """The answer ``want`` as written before units carried their edition."""
    if "edition" in want:
        return {k: v for k, v in want.items() if k != "edition"}
    units = want.get("units")
    if type(units) is list:
        return {**want, "units": [{k: v for k, v in u.items() if k != "edition"} for u in units]}
    return want
