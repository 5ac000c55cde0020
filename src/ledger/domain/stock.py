"""Tier stock: the count of one tier of one good, and its serials.

Each tier is its own aggregate, so selling ``view`` never touches ``own``.
Serials are dense: a sale takes returned serials first (lowest first), then
new ones from ``next_serial``. A serial is issued to at most one live unit,
and ``issued <= supply <= lifetime_cap`` always holds.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain import limits
from ledger.domain.errors import (
    AbsoluteEditionError,
    BuyerLimitError,
    InvalidInputError,
    LifetimeCapError,
    SaleWindowError,
    SoldOutError,
)
from ledger.domain.good import RESTOCKABLE, Good
from ledger.domain.ids import allowance_id_for, stock_id_for
from ledger.domain.model import Aggregate, Created, Event, format_timestamp


class TierStock(Aggregate):
    good_id: str
    tier: str
    supply: int
    lifetime_cap: int
    restockable: bool
    transferable: bool
    per_buyer_limit: int | None
    sale_opens_at: str | None
    sale_closes_at: str | None
    next_serial: int
    free_serials: list[int]
    sold_total: int
    returned_total: int

    @classmethod
    def open(cls, good: Good, tier_name: str, now: datetime) -> TierStock:
        tier = good.tier(tier_name)
        spec = good.spec
        return cls._create(
            cls.Opened, stock_id_for(good.id, tier.name), now,
            good_id=str(good.id), tier=tier.name, supply=tier.quota,
            lifetime_cap=tier.lifetime_cap or tier.quota,
            restockable=spec.edition_policy == RESTOCKABLE,
            transferable=tier.transferable, per_buyer_limit=tier.per_buyer_limit,
            sale_opens_at=spec.sale_opens_at, sale_closes_at=spec.sale_closes_at,
        )

    # -- queries ----------------------------------------------------------
    @property
    def issued(self) -> int:
        """Units currently issued (held by someone)."""
        return self.next_serial - 1 - len(self.free_serials)

    @property
    def available(self) -> int:
        return self.supply - self.issued

    def serials_for(self, quantity: int) -> list[int]:
        """The serials a sale of ``quantity`` would take, in order."""
        reused = self.free_serials[:quantity]
        fresh = range(self.next_serial, self.next_serial + quantity - len(reused))
        return [*reused, *fresh]

    def check_sale(self, quantity: int, now: datetime) -> None:
        if not isinstance(quantity, int) or not 1 <= quantity <= limits.SALE_QUANTITY_MAX:
            raise InvalidInputError("quantity", f"must be 1 to {limits.SALE_QUANTITY_MAX}")
        moment = format_timestamp(now)
        if self.sale_opens_at is not None and moment < self.sale_opens_at:
            raise SaleWindowError(f"sales of tier {self.tier!r} open at {self.sale_opens_at}")
        if self.sale_closes_at is not None and moment >= self.sale_closes_at:
            raise SaleWindowError(f"sales of tier {self.tier!r} closed at {self.sale_closes_at}")
        if quantity > self.available:
            raise SoldOutError(self.tier, quantity, self.available)

    # -- commands ---------------------------------------------------------
    def sell(
        self, *, sale_id: str, buyer: str, channel: str, quantity: int,
        unit_price: dict[str, Any], split: list[dict[str, Any]], now: datetime,
    ) -> list[int]:
        self.check_sale(quantity, now)
        serials = self.serials_for(quantity)
        self._trigger(
            TierStock.Sold, now, sale_id=sale_id, buyer=buyer, channel=channel,
            serials=serials, unit_price=unit_price, split=split,
        )
        return serials

    def restock(self, quantity: int, now: datetime) -> None:
        if not isinstance(quantity, int) or not 1 <= quantity <= limits.TIER_QUOTA_MAX:
            raise InvalidInputError("quantity", f"must be 1 to {limits.TIER_QUOTA_MAX}")
        if not self.restockable:
            raise AbsoluteEditionError(self.good_id)
        if self.supply + quantity > self.lifetime_cap:
            raise LifetimeCapError(self.tier, self.lifetime_cap, self.supply, quantity)
        self._trigger(TierStock.Restocked, now, quantity=quantity, supply=self.supply + quantity)

    def take_back(self, *, serial: int, refund_id: str, now: datetime) -> None:
        """A refunded primary sale returns its serial to stock."""
        if not 1 <= serial < self.next_serial or serial in self.free_serials:
            raise AssertionError(f"serial {serial} of {self.tier!r} is not issued")
        self._trigger(TierStock.Returned, now, serial=serial, refund_id=refund_id)

    # -- events -----------------------------------------------------------
    @dataclass(frozen=True)
    class Opened(Created):
        TYPE = "stock.opened"
        good_id: str
        tier: str
        supply: int
        lifetime_cap: int
        restockable: bool
        transferable: bool
        per_buyer_limit: int | None
        sale_opens_at: str | None
        sale_closes_at: str | None

        def apply(self, aggregate: TierStock) -> None:
            for name in ("good_id", "tier", "supply", "lifetime_cap", "restockable",
                         "transferable", "per_buyer_limit", "sale_opens_at", "sale_closes_at"):
                setattr(aggregate, name, getattr(self, name))
            aggregate.next_serial = 1
            aggregate.free_serials = []
            aggregate.sold_total = 0
            aggregate.returned_total = 0

    @dataclass(frozen=True)
    class Sold(Event):
        TYPE = "stock.sold"
        sale_id: str
        buyer: str
        channel: str
        serials: list[int]
        unit_price: dict[str, Any]
        split: list[dict[str, Any]]

        def apply(self, aggregate: TierStock) -> None:
            for serial in self.serials:
                if serial == aggregate.next_serial:
                    aggregate.next_serial += 1
                else:
                    aggregate.free_serials.remove(serial)
            aggregate.sold_total += len(self.serials)

    @dataclass(frozen=True)
    class Restocked(Event):
        TYPE = "stock.restocked"
        quantity: int
        supply: int

        def apply(self, aggregate: TierStock) -> None:
            aggregate.supply = self.supply

    @dataclass(frozen=True)
    class Returned(Event):
        TYPE = "stock.returned"
        serial: int
        refund_id: str

        def apply(self, aggregate: TierStock) -> None:
            bisect.insort(aggregate.free_serials, self.serial)
            aggregate.returned_total += 1


TierStock.Opened.AGGREGATE = TierStock


class BuyerAllowance(Aggregate):
    """How many units of one tier one buyer has bought (primary sales, net of
    refunds). Exists only for tiers with a per-buyer limit; being its own
    aggregate, two sales to one buyer conflict in the store, so the limit
    holds across processes."""

    stock_id: str
    buyer: str
    bought: int

    @classmethod
    def start(cls, stock: TierStock, buyer: str, now: datetime) -> BuyerAllowance:
        return cls._create(
            cls.Started, allowance_id_for(stock.id, buyer), now,
            stock_id=str(stock.id), buyer=buyer,
        )

    def check(self, quantity: int, limit: int, tier: str) -> None:
        if self.bought + quantity > limit:
            raise BuyerLimitError(self.buyer, tier, limit, self.bought)

    def count(self, delta: int, reference: str, now: datetime) -> None:
        if self.bought + delta < 0:
            raise AssertionError("a buyer cannot have bought fewer than zero units")
        self._trigger(BuyerAllowance.Counted, now, delta=delta, reference=reference)

    @dataclass(frozen=True)
    class Started(Created):
        TYPE = "allowance.started"
        stock_id: str
        buyer: str

        def apply(self, aggregate: BuyerAllowance) -> None:
            aggregate.stock_id = self.stock_id
            aggregate.buyer = self.buyer
            aggregate.bought = 0

    @dataclass(frozen=True)
    class Counted(Event):
        TYPE = "allowance.counted"
        delta: int
        reference: str

        def apply(self, aggregate: BuyerAllowance) -> None:
            aggregate.bought += self.delta


BuyerAllowance.Started.AGGREGATE = BuyerAllowance

