"""What a primary sale does beside the stock: the buyer's allowance and the
units it issues (the decisions are the domain's; this loads and adds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain.code import Code
from ledger.domain.edition import edition
from ledger.domain.errors import InvariantError
from ledger.domain.good import Good
from ledger.domain.ids import allowance_id_for, stock_id_for
from ledger.domain.model import format_timestamp
from ledger.domain.money import Money
from ledger.domain.sale import check_buyer_limit
from ledger.domain.stock import BuyerAllowance, TierStock
from ledger.domain.unit import Unit
from ledger.service.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class SaleTerms:
    """What every unit of one primary sale is sold on."""

    sale_id: str
    tier: str
    buyer: str
    channel: str
    price: dict[str, Any]
    split: list[dict[str, Any]]
    now: datetime


def allowance_checked(
    uow: UnitOfWork, stock: TierStock, buyer: str, quantity: int
) -> BuyerAllowance | None:
    """The buyer's allowance on a limited tier (None: no limit, or nothing
    bought yet), once the per-buyer limit allows ``quantity`` more."""
    if stock.per_buyer_limit is None:
        return None
    allowance = uow.get_or_assume_new(BuyerAllowance, allowance_id_for(stock.id, buyer))
    check_buyer_limit(
        buyer=buyer,
        tier=stock.tier,
        limit=stock.per_buyer_limit,
        bought=allowance.bought if allowance else 0,
        quantity=quantity,
    )
    return allowance


def count_allowance(
    uow: UnitOfWork,
    stock: TierStock,
    allowance: BuyerAllowance | None,
    quantity: int,
    sale: SaleTerms,
) -> None:
    """Count a sale on a limited tier against its buyer's allowance."""
    if stock.per_buyer_limit is None:
        return
    if allowance is None:
        allowance = BuyerAllowance.start(stock, sale.buyer, sale.now)
        uow.add(allowance)
    allowance.count(quantity, sale.sale_id, sale.now)


def issue_unit(
    uow: UnitOfWork,
    good: Good,
    serial: int,
    sale: SaleTerms,
    *,
    returned: Unit | None,
    code: str | None,
) -> Unit:
    """The unit of ``serial`` to the sale's buyer: the ``returned`` unit
    reissued, or a new unit for a serial that has none."""
    if returned is not None:
        returned.reissue(
            buyer=sale.buyer,
            sale_id=sale.sale_id,
            channel=sale.channel,
            price=sale.price,
            split=sale.split,
            now=sale.now,
            code=code,
        )
        return returned
    unit = Unit.issue(
        good_id=good.id,
        tier=sale.tier,
        serial=serial,
        transferable=good.tier(sale.tier).transferable,
        buyer=sale.buyer,
        sale_id=sale.sale_id,
        channel=sale.channel,
        price=sale.price,
        split=sale.split,
        now=sale.now,
        code=code,
    )
    uow.add(unit)
    return unit


def sale_answer(good: Good, sale: SaleTerms, units: list[Unit]) -> dict[str, Any]:
    """A primary sale's answer."""
    size = good.edition_size(sale.tier)
    return {
        "sale_id": sale.sale_id,
        "good_id": str(good.id),
        "tier": sale.tier,
        "buyer": sale.buyer,
        "channel": sale.channel,
        "quantity": len(units),
        "unit_price": sale.price,
        "split_per_unit": sale.split,
        "units": [
            {"unit_id": str(u.id), "serial": u.serial, "edition": edition(u.serial, size)}
            | ({"code_ref": u.code} if u.code else {})
            for u in units
        ],
        "sold_at": format_timestamp(sale.now),
    }


@dataclass(frozen=True)
class RefundOwed:
    """A late payment for a hold that found nothing left to sell."""

    hold_id: str
    refund_id: str
    buyer: str
    channel: str
    quantity: int
    unit_price: Money


def owe_refund(stock: TierStock, owed: RefundOwed, now: datetime) -> dict[str, Any]:
    """Record that the hold's channel owes the buyer the amount back; the answer."""
    amount = Money(owed.unit_price.amount * owed.quantity, owed.unit_price.currency).to_json()
    stock.owe_refund(
        hold_id=owed.hold_id,
        refund_id=owed.refund_id,
        buyer=owed.buyer,
        quantity=owed.quantity,
        amount=amount,
        now=now,
    )
    return {
        "outcome": "refund-owed",
        "hold_id": owed.hold_id,
        "refund_id": owed.refund_id,
        "good_id": stock.good_id,
        "tier": stock.tier,
        "buyer": owed.buyer,
        "channel": owed.channel,
        "quantity": owed.quantity,
        "amount": amount,
        "decided_at": format_timestamp(now),
    }


@dataclass(frozen=True)
class PrimarySale:
    """What a refund of a unit's primary sale gives back to: the tier's stock,
    and its buyer's allowance on a limited tier."""

    stock: TierStock
    allowance: BuyerAllowance | None

    def take_back(self, unit: Unit, code: Code | None, refund_id: str, now: datetime) -> None:
        """The refunded unit's serial returns to stock, its code (undelivered)
        to the pool, and the buyer's allowance is counted down."""
        self.stock.take_back(serial=unit.serial, refund_id=refund_id, now=now)
        if code is not None and code.settle_refund(
            unit_id=str(unit.id), refund_id=refund_id, now=now
        ):
            self.stock.return_code(ref=code.ref, refund_id=refund_id, now=now)
        if self.allowance is not None:
            self.allowance.count(-1, refund_id, now)


def primary_sale_of(uow: UnitOfWork, unit: Unit) -> PrimarySale:
    """The stock (and allowance) a unit's current, primary acquisition came from."""
    stock = uow.get(TierStock, stock_id_for(UUID(unit.good_id), unit.tier))
    if stock is None:
        raise InvariantError(f"unit {unit.id} has no stock")
    if stock.per_buyer_limit is None:
        return PrimarySale(stock, None)
    holder = unit.current_acquisition()["holder"]
    allowance = uow.get(BuyerAllowance, allowance_id_for(stock.id, holder))
    if allowance is None:
        raise InvariantError("a limited tier's buyer has no allowance record")
    return PrimarySale(stock, allowance)
