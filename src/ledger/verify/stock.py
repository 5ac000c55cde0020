"""Tier stock (rule 8.2): a tier's stock opened as its good defines it, its
sales (serials taken returned-first, within the supply and the sale window,
at section 7's split), restocks and returned serials."""

from __future__ import annotations

import bisect
import sys
from typing import Any

from ledger.verify import codec
from ledger.verify.codes import CodeRules
from ledger.verify.facts import Event, Facts, Good, Payload, Sale, Stock, edition, short
from ledger.verify.goods import Splits
from ledger.verify.holds import HoldRules
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.listing import check_listed
from ledger.verify.pricing import check_price
from ledger.verify.records import OPEN, Answer, CommandRecords
from ledger.verify.unlock import check_unlocked


class StockRules:
    """``stock.opened``, ``stock.sold``, ``stock.restocked``, ``stock.returned``."""

    def __init__(
        self,
        facts: Facts,
        records: CommandRecords,
        holds: HoldRules,
        codes: CodeRules,
        splits: Splits,
    ) -> None:
        self._facts = facts
        self._flag = facts.flag
        self._check_currency = facts.check_currency
        self._check_split = facts.check_split
        self._fee = facts.fee
        self._name_command = records.name
        self._goods = facts.goods
        self._stocks = facts.stocks
        self._unreadable = facts.unreadable
        self._sales = facts.sales
        self._awaited_units = facts.awaited_units
        self._refunds = facts.refunds
        self._records = records
        self._answers = records.answers
        self._holds = holds
        self._codes = codes
        self._splits = splits

    def on_opened(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        self._facts.check_own_id(ev, p)
        good = self._goods.get(p["good_id"])
        if good is None:
            if p["good_id"] not in self._unreadable:
                self._flag(ev, "unknown-ref", f"good {p['good_id']} is not minted before its stock")
        else:
            self._check_tier(ev, good, p)
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
            self._stocks[ev.aggregate_id] = Stock(
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
                unlock=p.get("unlock"),
            )

    def _check_tier(self, ev: Event, good: Good, p: Payload) -> None:
        """A stock.opened is its tier's definition; the tier is now opened."""
        tier = good.tiers.get(p["tier"])
        if tier is None:
            self._flag(ev, "stock-mismatch", f"good {p['good_id']} has no tier {short(p['tier'])}")
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
                "unlock": tier.get("unlock"),
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

    def on_sold(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        answering = self._name_command(ev, p["sale_id"], ("sell", "commit-hold"), "sale_id")
        stock = self._stocks.get(ev.aggregate_id)
        if stock is None:
            return
        if stock.offering is not None:
            self._holds.close_offers(stock)
        from_hold = stock.pending is not None
        hold_id = None if stock.pending is None else self._after_hold(ev, stock, p)
        self._check_strategies(ev, stock, p)
        if p.get("early_bird"):
            self._check_early_bird(ev, stock, p)
        else:
            moment = ev.timestamp
            if moment is not None and (
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
            self._answers[p["sale_id"]] = self.sale_answer(ev, stock, p, unit_ids, hold_id)
        self._codes.sold(ev, ev.aggregate_id, p, unit_ids)
        if stock.drawing is not None or stock.pools:  # (else nothing to check)
            self._holds.check_pool_sale(ev, stock, p, from_hold=from_hold)
        if stock.rates:
            self._holds.check_rate(ev, stock, p)
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
        self._check_price(ev, stock, p)
        self._await_units(ev, stock, p, fresh, unit_ids)

    def _check_strategies(self, ev: Event, stock: Stock, p: Payload) -> None:
        """Listing (8.15), unlock (8.16) and price rules (8.17); then count the sale."""
        if stock.paused or stock.delisted is not None:
            check_listed(self._flag, ev, stock, "sale")
        if stock.unlock is not None:
            check_unlocked(self._flag, ev, stock, "sale")
        if stock.prices is not None:
            check_price(self._flag, ev, stock, p)
        stock.units_sold += len(p["serials"])

    def _after_hold(self, ev: Event, stock: Stock, p: Payload) -> str | None:
        """A sale just after a hold-committed is that hold's (returns its id)."""
        if stock.pending is None:
            raise VerifierInvariantError("stock.pending unset")
        _, sale_id, quantity, channel, committed = stock.pending
        stock.pending = None
        if (sale_id, quantity, channel) != (p["sale_id"], len(p["serials"]), p["channel"]):
            self._flag(
                ev,
                "hold-mismatch",
                f"the hold committed just before sells {quantity} through {channel!r} as "
                f"sale {sale_id}; this sale is {len(p['serials'])} through "
                f"{p['channel']!r} as {p['sale_id']}",
            )
        return committed if sale_id == p["sale_id"] else None

    def _check_price(self, ev: Event, stock: Stock, p: Payload) -> None:
        """The sale's currency is its good's, and its split section 7's."""
        good = self._goods.get(stock.good_id)
        if good is None:
            return
        price = p["unit_price"]
        self._check_currency(ev, price, good)
        fee = self._fee(ev, p["channel"])
        if fee is not None:
            self._check_split(
                ev,
                p["split"],
                price["amount"],
                self._splits.primary(stock.good_id, good, p["channel"], fee, price["amount"]),
            )

    def _await_units(
        self, ev: Event, stock: Stock, p: Payload, fresh: set[int], unit_ids: list[str]
    ) -> None:
        """Await one unit event per serial, and the buyer's allowance count."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        serials: list[int] = p["serials"]
        sale = Sale(
            event=ev.ref(),
            stock_id=ev.aggregate_id,
            sale_id=p["sale_id"],
            buyer=p["buyer"],
            channel=p["channel"],
            price=p["unit_price"],
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
    def sale_answer(
        ev: Event, stock: Stock, p: Payload, unit_ids: list[str], hold_id: str | None
    ) -> Answer:
        """A sale's answer (a hold payment's adds its outcome and hold)."""
        serials = p["serials"]
        codes = p.get("codes")
        units: Any
        if codes is None:
            units = [
                {"unit_id": u, "serial": s, "edition": edition(s, stock)}
                for u, s in zip(unit_ids, serials, strict=True)
            ]
        elif type(codes) is list and len(codes) == len(serials):
            units = [
                {"unit_id": u, "serial": s, "code_ref": c, "edition": edition(s, stock)}
                for u, s, c in zip(unit_ids, serials, codes, strict=True)
            ]
        else:
            units = OPEN  # (flagged as a code-binding)
        return Answer(
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
                "sold_at": ev.timestamp or OPEN,
            },
            stock_id=ev.aggregate_id or "",
            sale=True,
            hold_id=hold_id,
        )

    def _check_early_bird(self, ev: Event, stock: Stock, p: Payload) -> None:
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
                f"sold at {short(p['unit_price'])}, not the early "
                f"bird's price {short(early['price'])}",
            )

    def _take_serials(self, ev: Event, stock: Stock, serials: list[int]) -> set[int]:
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

    def on_restocked(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        stock = self._holds.stock_for_hold(ev)
        if stock is None:
            return
        if stock.paused or stock.delisted is not None:
            check_listed(self._flag, ev, stock, "restock")
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

    def on_returned(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        stock = self._holds.stock_for_hold(ev)
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
        self._facts.settle_refund(p["refund_id"], refund)
