"""What a primary sale does beside the stock: the buyer's allowance and the
units it issues (the decisions are the domain's; this loads and adds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.good import Good
from ledger.domain.ids import allowance_id_for
from ledger.domain.model import format_timestamp
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
            {"unit_id": str(u.id), "serial": u.serial} | ({"code_ref": u.code} if u.code else {})
            for u in units
        ],
        "sold_at": format_timestamp(sale.now),
    }
