"""Price rules by sell-through (rule 8.17), written from the spec alone:
after a ``stock.price-set``, every ``stock.sold`` of the tier that is not an
early-bird sale has the unit price its schedule has in force -- the last
step whose threshold is reached, counting the tier's units sold before that
sale (refunds not subtracted) or comparing its timestamp (``price-rule``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ledger.verify.facts import Event, Facts, Flag, Payload, Stock


class PriceRules:
    """``stock.price-set``; and the check each sale makes (:func:`check_price`)."""

    def __init__(self, facts: Facts, stock_for: Callable[[Event], Stock | None]) -> None:
        self._flag = facts.flag
        self._goods = facts.goods
        self._stock_for = stock_for  # (settles what the stock's last event left awaiting)

    def on_price_set(self, ev: Event, p: Payload) -> None:
        stock = self._stock_for(ev)
        if stock is None:
            return
        steps = p["steps"]
        good = self._goods.get(stock.good_id)
        problem = _schedule_problem(steps, good.currency if good is not None else None)
        if problem is not None:
            self._flag(ev, "price-rule", f"tier {stock.tier!r}'s price schedule: {problem}")
            steps = None
        stock.prices = steps


def _schedule_problem(steps: list[Payload] | None, currency: str | None) -> str | None:
    if steps is None:
        return None
    kinds = {k for step in steps for k in ("after_sold", "at") if k in step}
    if len(kinds) > 1:
        return "mixes after_sold and at"
    if any(k in steps[0] for k in ("after_sold", "at")):
        return "its first step has a threshold"
    if any(not ("after_sold" in s or "at" in s) for s in steps[1:]):
        return "a later step has no threshold"
    if kinds:
        key = kinds.pop()
        marks = [s[key] for s in steps[1:]]
        if any(b <= a for a, b in itertools.pairwise(marks)):
            return "its thresholds do not increase"
    if currency is not None and any(s["price"]["currency"] != currency for s in steps):
        return f"a price is not in the good's currency {currency}"
    return None


def price_in_force(steps: list[Payload], sold: int, moment: str) -> Any:
    price = steps[0]["price"]
    for step in steps[1:]:
        if not (sold >= step["after_sold"] if "after_sold" in step else moment >= step["at"]):
            break
        price = step["price"]
    return price


def check_price(flag: Flag, ev: Event, stock: Stock, p: Payload) -> None:
    """A sale (not an early bird's) at the price in force (before its own units count)."""
    if stock.prices is None or p.get("early_bird") or ev.timestamp is None:
        return
    expected = price_in_force(stock.prices, stock.units_sold, ev.timestamp)
    if p["unit_price"] != expected:
        flag(
            ev,
            "price-rule",
            f"a sale of tier {stock.tier!r} at {p['unit_price']['amount']}, "
            f"{stock.units_sold} unit(s) sold before it; its schedule's price is "
            f"{expected['amount']}",
            expected=str(expected["amount"]),
            actual=str(p["unit_price"]["amount"]),
        )
