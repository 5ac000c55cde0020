"""The glue between the event stream and :class:`~ledger.verify.codes.CodeRules`
(rules 8.11): the code events that name a command record, a good or a tier's
stock, or a unit's holder, each resolved here from the shared facts before the
code rules see it."""

from __future__ import annotations

from ledger.verify.codes import CodeRules
from ledger.verify.facts import Event, Facts, Handler, Payload
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.packing import uuid_key
from ledger.verify.records import OPEN, CommandRecords, stock_answer


class CodeEvents:
    """``code.*`` and a stock's code events, for :class:`CodeRules`."""

    def __init__(self, facts: Facts, records: CommandRecords, codes: CodeRules) -> None:
        self._flag = facts.flag
        self._packed = facts.packed
        self._goods = facts.goods
        self._stocks = facts.stocks
        self._unreadable = facts.unreadable
        self._records = records
        self._codes = codes

    def handlers(self) -> dict[str, Handler]:
        codes = self._codes
        return {
            "stock.codes-imported": self.on_codes_imported,
            "stock.code-returned": self.on_code_returned,
            "code.imported": self.on_code_imported,
            "code.bound": codes.bound,
            "code.delivered": self.on_code_delivered,
            "code.redeemed": codes.redeemed,
            "code.returned": lambda ev, p: codes.settled(ev, p, "returned"),
            "code.voided": lambda ev, p: codes.settled(ev, p, "voided"),
        }

    def on_code_imported(self, ev: Event, p: Payload) -> None:
        self._records.name(ev, p["batch_id"], "import-codes", "batch_id")
        good = self._goods.get(p["good_id"])
        if good is None and p["good_id"] not in self._unreadable:
            self._flag(ev, "unknown-ref", f"good {p['good_id']} is not minted before its codes")
        self._codes.imported(ev, p, None if good is None else {"kind": good.kind})

    def on_codes_imported(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._records.name(ev, p["batch_id"], "import-codes", "batch_id")
        self._codes.listed(ev, ev.aggregate_id, p)
        stock = self._stocks.get(ev.aggregate_id)
        if stock is not None:
            stock.codes_imported += len(p["refs"])
        if awaited:
            self._records.answers[p["batch_id"]] = stock_answer(
                stock,
                ev,
                "imported_at",
                batch_id=p["batch_id"],
                imported=len(p["refs"]),
                codes_imported=stock.codes_imported if stock is not None else OPEN,
                codes_available=self._codes.free(ev.aggregate_id),
            )

    def on_code_returned(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._records.name(ev, p["refund_id"], "refund", "refund_id")
        self._codes.returned_to_pool(ev, ev.aggregate_id, p)

    def on_code_delivered(self, ev: Event, p: Payload) -> None:
        unit = self._packed.unit(uuid_key(p["unit_id"]))
        self._codes.delivered(ev, p, unit.holder if unit is not None else None)
