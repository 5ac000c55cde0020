"""Buyer allowances (rule 8.4): a tier with a per-buyer limit counts each
sale (+quantity) and primary refund (-1) on the buyer's allowance, whose
total stays within 0 and the limit."""

from __future__ import annotations

from ledger.verify import codec
from ledger.verify.facts import Event, Facts, Payload
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.packing import Allowance


class AllowanceRules:
    """``allowance.started`` and ``allowance.counted``."""

    def __init__(self, facts: Facts) -> None:
        self._flag = facts.flag
        self._allowance = facts.packed.allowance
        self._keep_allowance = facts.packed.keep_allowance
        self._settle_sale = facts.settle_sale
        self._settle_refund = facts.settle_refund
        self._check_own_id = facts.check_own_id
        self._stocks = facts.stocks
        self._unreadable = facts.unreadable
        self._sales = facts.sales
        self._refunds = facts.refunds

    def on_started(self, ev: Event, p: Payload) -> None:
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
            self._keep_allowance(ev.key, Allowance(p["stock_id"], p["buyer"], 0, derived))

    def on_counted(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        allowance = self._allowance(ev.key)
        delta, reference = p["delta"], p["reference"]
        if allowance is not None:
            self._count(ev, allowance, delta)
        sale = self._sales.get(reference)
        refund = self._refunds.get(reference)
        if sale is not None:
            want = (
                self.allowance_id(ev.aggregate_id, allowance, sale.stock_id, sale.buyer),
                sale.quantity,
            )
            what = f"the sale of {sale.quantity} to {sale.buyer}"
            again = sale.counted
            sale.counted = True
        elif refund is not None:
            want = (
                self.allowance_id(ev.aggregate_id, allowance, refund.stock_id, refund.holder),
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

    def _count(self, ev: Event, allowance: Allowance, delta: int) -> None:
        """The allowance's new total, within 0 and the tier's limit."""
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

    @staticmethod
    def allowance_id(
        aggregate_id: str, allowance: Allowance | None, stock_id: str, buyer: str
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
