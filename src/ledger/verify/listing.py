"""A tier's listing (rule 8.15): paused, resumed and delisted, written from
the spec alone. While a pause is in force, and ever after a delisting, the
tier records no sale, hold or restock (``listing``); a pause of a scope
already paused, a resume of a scope that is not, and any change after a
delisting are ``listing-state`` findings."""

from __future__ import annotations

from collections.abc import Callable

from ledger.verify.facts import Event, Facts, Flag, Payload, Stock


class ListingRules:
    """``stock.paused``, ``stock.resumed``, ``stock.delisted``; and the check
    the stock's sales, holds and restocks make (:meth:`check`)."""

    def __init__(self, facts: Facts, stock_for: Callable[[Event], Stock | None]) -> None:
        self._flag = facts.flag
        self._stock_for = stock_for  # (settles what the stock's last event left awaiting)

    def on_paused(self, ev: Event, p: Payload) -> None:
        stock = self._listed(ev)
        if stock is None:
            return
        since = stock.paused.get(p["scope"])
        if since is not None:
            self._flag(
                ev, "listing-state", f"tier {stock.tier!r} is paused by its {p['scope']} already"
            )
        stock.paused[p["scope"]] = ev.timestamp or ""

    def on_resumed(self, ev: Event, p: Payload) -> None:
        stock = self._listed(ev)
        if stock is None:
            return
        if stock.paused.pop(p["scope"], None) is None:
            self._flag(
                ev,
                "listing-state",
                f"tier {stock.tier!r} is resumed by its {p['scope']}, which has not paused it",
            )

    def on_delisted(self, ev: Event, _p: Payload) -> None:
        stock = self._listed(ev)
        if stock is not None:
            stock.delisted = ev.timestamp or ""

    def _listed(self, ev: Event) -> Stock | None:
        """The event's stock; a change after its delisting is flagged."""
        stock = self._stock_for(ev)
        if stock is not None and stock.delisted is not None:
            self._flag(
                ev,
                "listing-state",
                f"tier {stock.tier!r} was delisted at {stock.delisted}: delisting is final",
            )
        return stock


def check_listed(flag: Flag, ev: Event, stock: Stock, what: str) -> None:
    """A sale, hold or restock happens only while its tier is listed and not paused."""
    if stock.delisted is not None:
        flag(ev, "listing", f"a {what} of tier {stock.tier!r}, delisted at {stock.delisted}")
    elif stock.paused:
        scope, since = min(stock.paused.items(), key=lambda kv: kv[1])
        flag(
            ev,
            "listing",
            f"a {what} of tier {stock.tier!r} while paused by its {scope} (since {since})",
        )
