"""Unlock tiers (rule 8.16), written from the spec alone: a tier whose
definition has an ``unlock`` records no sale or hold before its
``stock.unlocked`` (``locked``); that event comes once, only on such a tier,
at or after its time -- or once the tier it waits on has sold its units,
counting that tier's ``stock.sold`` serials before it in commit order
(``unlock``)."""

from __future__ import annotations

from collections.abc import Callable

from ledger.verify import codec
from ledger.verify.facts import Event, Facts, Flag, Payload, Stock


class UnlockRules:
    """``stock.unlocked``; and the check a locked tier's sales and holds make
    (:func:`check_unlocked`)."""

    def __init__(self, facts: Facts, stock_for: Callable[[Event], Stock | None]) -> None:
        self._flag = facts.flag
        self._stocks = facts.stocks
        self._stock_for = stock_for  # (settles what the stock's last event left awaiting)

    def on_unlocked(self, ev: Event, p: Payload) -> None:
        stock = self._stock_for(ev)
        if stock is None:
            return
        unlock = stock.unlock
        if unlock is None:
            self._flag(ev, "unlock", f"tier {stock.tier!r} has no unlock condition to meet")
        elif stock.unlocked is not None:
            self._flag(
                ev, "unlock", f"tier {stock.tier!r} was unlocked already at {stock.unlocked}"
            )
        elif p["cause"] != ("time" if "at" in unlock else "sales"):
            self._flag(
                ev,
                "unlock",
                f"tier {stock.tier!r} opens by {'time' if 'at' in unlock else 'sales'}, "
                f"not by {p['cause']}",
            )
        elif "at" in unlock:
            if ev.timestamp is not None and ev.timestamp < unlock["at"]:
                self._flag(
                    ev,
                    "unlock",
                    f"tier {stock.tier!r} unlocked at {ev.timestamp}, before its time",
                    expected=f">= {unlock['at']}",
                    actual=ev.timestamp,
                )
        else:
            other = self._stocks.get(codec.derive_id("stock", stock.good_id, unlock["tier"]))
            sold = other.units_sold if other is not None else 0
            # (its ``sold`` is what the sale read: at least the threshold, and
            # at most the count by now -- a read a moment old may be lower)
            said = p.get("sold", sold)
            if sold < unlock["sold"] or not unlock["sold"] <= said <= sold:
                self._flag(
                    ev,
                    "unlock",
                    f"tier {stock.tier!r} unlocked when tier {unlock['tier']!r} had sold "
                    f"{sold} unit(s) (its event says {said}; it opens at {unlock['sold']})",
                    expected=f">= {unlock['sold']}",
                    actual=str(min(sold, said)),
                )
        stock.unlocked = ev.timestamp or ""


def check_unlocked(flag: Flag, ev: Event, stock: Stock, what: str) -> None:
    """A sale or hold of a tier with an unlock condition comes after its unlocking."""
    if stock.unlock is not None and stock.unlocked is None:
        flag(ev, "locked", f"a {what} of tier {stock.tier!r} before it was unlocked")
