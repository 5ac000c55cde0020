"""A tier's holds, channels' pools, waitlists and rate rules (rules 8.2 and
8.10): a hold made, committed or released; units allotted to a channel and
drawn from its pool; a waitlist joined, left and offered holds after a
restock, first come first served; a channel's sales per minute."""

from __future__ import annotations

from typing import Any

from ledger.verify.codes import CodeRules
from ledger.verify.facts import Event, Facts, Hold, Payload, Stock
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.listing import check_listed
from ledger.verify.records import OPEN, CommandRecords, stock_answer
from ledger.verify.unlock import check_unlocked


class HoldRules:
    """The events of a stock's holds, pools, waitlist and rates; and what a
    stock's earlier event left awaiting (:meth:`settle_pending`)."""

    def __init__(self, facts: Facts, records: CommandRecords, codes: CodeRules) -> None:
        self._facts = facts
        self._flag = facts.flag
        self._fee = facts.fee
        self._stocks = facts.stocks
        self._goods = facts.goods
        self._records = records
        self._answers = records.answers
        self._codes = codes

    # -- what a stock's events leave awaiting -----------------------------------
    def stock_for_hold(self, ev: Event, *, offer: bool = False) -> Stock | None:
        """The stock of a hold event; a commit left without its sale is
        flagged, and so is a restock's offer to the waitlist that was skipped
        (unless ``offer``: this event is the next offer)."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        stock = self._stocks.get(ev.aggregate_id)
        if stock is not None:
            self.settle_pending(stock, offers=not offer)
        return stock

    def settle_pending(self, stock: Stock, *, offers: bool = True) -> None:
        """What an earlier event of the stock left awaiting must have come by
        now: the sale after a hold-committed or a pool-drawn, and (``offers``)
        every offer a restock owed the waitlist."""
        if offers and stock.offering is not None:
            self.close_offers(stock)
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

    def finish(self) -> None:
        for stock in self._stocks.values():
            self.settle_pending(stock)

    def check_committed(self, ev: Event, stock: Stock, what: str) -> None:
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

    # -- reservations -------------------------------------------------------------
    def _live_hold(self, ev: Event, stock: Stock, hold_id: str) -> Hold | None:
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

    def on_reserved(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        known = self._stocks.get(ev.aggregate_id)
        entry = known.waitlist.get(p["hold_id"]) if known is not None else None
        if entry is None and self._records.name(ev, p["hold_id"], "reserve", "hold_id"):
            self._answers[p["hold_id"]] = stock_answer(
                known,
                ev,
                "reserved_at",
                hold_id=p["hold_id"],
                channel=p["channel"],
                quantity=p["quantity"],
                expires_at=p["expires_at"],
            )
        stock = self.stock_for_hold(ev, offer=entry is not None)
        if stock is None:
            return
        if entry is not None:
            self._check_offer(ev, stock, p, entry)
        if stock.paused or stock.delisted is not None:
            check_listed(self._flag, ev, stock, "hold")
        if stock.unlock is not None:
            check_unlocked(self._flag, ev, stock, "hold")
        self._check_hold_times(ev, stock, p)
        self._fee(ev, p["channel"])
        if p["hold_id"] in stock.holds:
            self._flag(ev, "hold-state", f"hold {p['hold_id']} is made twice")
            return
        stock.holds[p["hold_id"]] = Hold(p["channel"], p["quantity"], p["expires_at"])
        stock.reserved += p["quantity"]
        self._codes.reserved(ev, ev.aggregate_id, p)
        self.check_committed(ev, stock, "reservation")

    def _check_hold_times(self, ev: Event, stock: Stock, p: Payload) -> None:
        """A hold is made inside the sale window, and expires after it is made."""
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

    def on_committed(self, ev: Event, p: Payload) -> None:
        stock = self.stock_for_hold(ev)
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

    def on_released(self, ev: Event, p: Payload) -> None:
        stock = self.stock_for_hold(ev)
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

    def on_refund_owed(self, ev: Event, p: Payload) -> None:
        awaited = self._records.name(ev, p["refund_id"], "commit-hold", "refund_id")
        stock = self.stock_for_hold(ev)
        hold = stock.holds.get(p["hold_id"]) if stock is not None else None
        if awaited:
            self._answers[p["refund_id"]] = stock_answer(
                stock,
                ev,
                "decided_at",
                outcome="refund-owed",
                hold_id=p["hold_id"],
                refund_id=p["refund_id"],
                buyer=p["buyer"],
                channel=hold.channel if hold is not None else OPEN,
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
            self._facts.check_currency(ev, p["amount"], good)

    # -- rate rules ---------------------------------------------------------------
    def on_rate_set(self, ev: Event, p: Payload) -> None:
        stock = self.stock_for_hold(ev)
        if stock is None:
            return
        self._fee(ev, p["channel"])
        rule = stock.rates.setdefault(p["channel"], [None, "", 0])
        rule[0] = p["per_minute"]

    def check_rate(self, ev: Event, stock: Stock, p: Payload) -> None:
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
    def on_waitlisted(self, ev: Event, p: Payload) -> None:
        awaited = self._records.name(ev, p["entry_id"], "join-waitlist", "entry_id")
        stock = self.stock_for_hold(ev)
        again = stock is not None and (
            p["entry_id"] in stock.waitlist or p["entry_id"] in stock.holds
        )
        if awaited:
            # Its place in line: 1 + the entries still waiting before it.
            place = OPEN if stock is None or again else stock.waiting + 1
            self._answers[p["entry_id"]] = stock_answer(
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

    def on_waitlist_left(self, ev: Event, p: Payload) -> None:
        stock = self.stock_for_hold(ev)
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

    def _check_offer(self, ev: Event, stock: Stock, p: Payload, entry: list[Any]) -> None:
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

    def close_offers(self, stock: Stock) -> None:
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
    def on_allotted(self, ev: Event, p: Payload) -> None:
        stock = self.stock_for_hold(ev)
        if stock is None:
            return
        self._fee(ev, p["channel"])
        pool = stock.pools.setdefault(p["channel"], [0, False])
        pool[0] += p["quantity"]
        pool[1] = p["overflow"]
        self.check_committed(ev, stock, "allotment")

    def on_pool_returned(self, ev: Event, p: Payload) -> None:
        stock = self.stock_for_hold(ev)
        if stock is not None:
            self._take_from_pool(ev, stock, p, "returns")

    def on_pool_drawn(self, ev: Event, p: Payload) -> None:
        stock = self.stock_for_hold(ev)
        if stock is not None:
            self._take_from_pool(ev, stock, p, "draws")
            stock.drawing = (ev.ref(), p["sale_id"], p["quantity"], p["channel"])

    def _take_from_pool(self, ev: Event, stock: Stock, p: Payload, verb: str) -> None:
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

    def check_pool_sale(self, ev: Event, stock: Stock, p: Payload, *, from_hold: bool) -> None:
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
