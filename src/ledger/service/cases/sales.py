"""Use cases, sales: primary sales, resales and refunds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from ledger.domain import limits, validate
from ledger.domain.channel import Channel
from ledger.domain.command import check_key
from ledger.domain.edition import edition
from ledger.domain.errors import (
    ForbiddenError,
    UnitNotFoundError,
)
from ledger.domain.good import Good
from ledger.domain.ids import (
    command_id_for,
    stock_id_for,
    unit_id_for,
)
from ledger.domain.model import Aggregate, format_timestamp
from ledger.domain.money import Money, split
from ledger.domain.sale import SaleSource
from ledger.domain.stock import TierStock
from ledger.domain.unit import PRIMARY, Unit
from ledger.service.accounts import Acting
from ledger.service.answers import (
    Refunded,
    Resold,
    Sold,
)
from ledger.service.cases.core import LedgerCore, _check_currency, _uuid
from ledger.service.runner import StaleReadError as _StaleReadError
from ledger.service.sales import (
    SaleTerms,
    allowance_checked,
    count_allowance,
    issue_unit,
    primary_sale_of,
    sale_answer,
)
from ledger.service.unit_of_work import UnitOfWork

A = TypeVar("A", bound=Aggregate)


class Sales(LedgerCore):
    """Primary sales, resales and refunds."""

    def sell(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        buyer: str,
        channel: str,
        quantity: int,
        unit_price: Money,
        idempotency_key: str,
        scope: str = "",
        on_queued: Callable[[int], object] | None = None,
    ) -> Sold:
        """Primary sale of ``quantity`` units of one tier to ``buyer``.

        ``on_queued(position)`` is called as soon as the sale is queued behind
        the others for the same tier (group commit), with how many are ahead
        of it -- so a flash-sale buyer can be told their place at once."""
        good_uuid = _uuid(good_id, "good_id")
        buyer = validate.identifier(buyer, field="buyer")
        validate.integer(quantity, field="quantity", low=1, high=limits.SALE_QUANTITY_MAX)
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "buyer": buyer,
            "channel": channel,
            "quantity": quantity,
            "unit_price": unit_price.to_json(),
        }
        sale_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            good = self.good(good_uuid)
            stock = self._stock_in(uow, good_uuid, tier)
            _check_currency(good, unit_price)
            via = self.channel(channel)
            return self._sell_units(
                uow,
                good,
                stock,
                buyer=buyer,
                channel=via,
                quantity=quantity,
                unit_price=unit_price,
                sale_id=sale_id,
                now=now,
            )

        return self._runner.run(
            "sell",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            Sold.read,
            on_queued=on_queued,
            units=quantity,
        )

    def resell(
        self,
        unit_id: UUID | str,
        *,
        seller: str,
        buyer: str,
        channel: str,
        price: Money,
        idempotency_key: str,
        scope: str = "",
    ) -> Resold:
        """Secondary sale: the holder sells a transferable unit on."""
        unit_uuid = _uuid(unit_id, "unit_id")
        seller = validate.identifier(seller, field="seller")
        buyer = validate.identifier(buyer, field="buyer")
        args = {
            "unit_id": str(unit_uuid),
            "seller": seller,
            "buyer": buyer,
            "channel": channel,
            "price": price.to_json(),
        }
        resale_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            unit = uow.get(Unit, unit_uuid)
            if unit is None:
                raise UnitNotFoundError(unit_uuid)
            good = self.good(unit.good_id)
            _check_currency(good, price)
            via = self.channel(channel)
            unit.check_resale(seller, buyer)
            unit.check_custody(via.channel)
            acting = Acting(uow, buyer, via.channel)
            if unit.code:
                self._code_in(uow, unit.code).check_resale(str(unit.id))
            parts = split(price.amount, good.resale_shares(via.channel, via.fee_bps, seller))
            acting.open_if_new(uow, now)
            unit.resell(
                resale_id=resale_id,
                seller=seller,
                buyer=buyer,
                channel=via.channel,
                price=price.to_json(),
                split=parts,
                now=now,
            )
            answer = _resale_answer(unit, resale_id, seller, buyer, via.channel, price, parts, now)
            return answer | {"edition": edition(unit.serial, good.edition_size(unit.tier))}

        return self._runner.run(
            "resell", args, idempotency_key, scope, unit_uuid, decide, Resold.read
        )

    def refund(
        self,
        unit_id: UUID | str,
        *,
        reason: str,
        idempotency_key: str,
        scope: str = "",
        channel: str | None = None,
    ) -> Refunded:
        """Refund the current holder's acquisition of a unit (see
        :mod:`ledger.domain.unit` for what that does to stock).

        With ``channel``, only an acquisition made through that channel is
        refunded (checked in the same decision, so a resale racing the
        refund cannot slip another channel's acquisition under it)."""
        unit_uuid = _uuid(unit_id, "unit_id")
        reason = validate.text(reason, field="reason", max_chars=limits.REASON_CHARS_MAX)
        args = {"unit_id": str(unit_uuid), "reason": reason}
        refund_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            unit = uow.get(Unit, unit_uuid)
            if unit is None:
                raise UnitNotFoundError(unit_uuid)
            current = unit.current_acquisition()  # refuses a unit with nothing to refund
            if channel is not None:
                unit.check_custody(channel)
                if current["channel"] != channel:
                    raise ForbiddenError(
                        f"unit {unit.id} was last acquired through another "
                        f"channel; {channel!r} can only refund its own sales"
                    )
            code = self._code_in(uow, unit.code) if unit.code else None
            if code is not None:
                if code.unit_id != str(unit.id):
                    raise _StaleReadError
                code.check_refund(str(unit.id), primary=current["kind"] == PRIMARY)
            primary = primary_sale_of(uow, unit) if current["kind"] == PRIMARY else None
            acquisition = unit.refund(refund_id=refund_id, reason=reason, now=now)
            if primary is not None:
                primary.take_back(unit, code, refund_id, now)
            return {
                "refund_id": refund_id,
                "unit_id": str(unit.id),
                "kind": acquisition["kind"],
                "refunded_acquisition": acquisition["id"],
                "holder": acquisition["holder"],
                "returned_to": acquisition["from"],
                "amount": acquisition["price"],
                "refunded_at": format_timestamp(now),
            }

        return self._runner.run(
            "refund", args, idempotency_key, scope, unit_uuid, decide, Refunded.read
        )

    def _check_sale(
        self,
        uow: UnitOfWork,
        stock: TierStock,
        via: Channel,
        quantity: int,
        price: dict[str, Any],
        now: datetime,
        source: SaleSource,
    ) -> None:
        """Refuse a sale that cannot happen. (The one change before the
        checks: a locked tier's opening, recorded by the sale that finds it
        due; refused after that, the command is run alone and its changes
        discarded.)"""
        self._open_if_due(uow, stock, now)
        stock.check_sale(
            quantity,
            now,
            via.channel if source.draws_pool else None,
            rate_channel=via.channel,
            unit_price=price if source.may_be_early_bird else None,
            price=price,
        )

    def _sell_units(
        self,
        uow: UnitOfWork,
        good: Good,
        stock: TierStock,
        *,
        buyer: str,
        channel: Channel,
        quantity: int,
        unit_price: Money,
        sale_id: str,
        now: datetime,
        source: SaleSource = SaleSource.DIRECT,
    ) -> dict[str, Any]:
        """A primary sale from ``stock``, checked before anything changes
        (``source``: whether the pool comes first, early birds may buy)."""
        via = channel
        price = unit_price.to_json()
        # Every check before any change: a refusal must leave the batch's
        # shared aggregates untouched.
        self._check_sale(uow, stock, via, quantity, price, now, source)
        acting = Acting(uow, buyer, via.channel)  # refuses another channel's account
        allowance = allowance_checked(uow, stock, buyer, quantity)
        parts = self._primary_split(good, via, unit_price.amount)
        refs = stock.codes_for(quantity)  # a redemption-code tier: one code a unit
        codes = [self._code_in(uow, ref) for ref in refs or ()]
        if any(code.state != "free" for code in codes):
            raise _StaleReadError  # the stock was read before another process used it
        acting.open_if_new(uow, now)  # (the first change: every check has passed)
        first_fresh = stock.next_serial
        serials = stock.sell(
            sale_id=sale_id,
            buyer=buyer,
            channel=via.channel,
            quantity=quantity,
            unit_price=price,
            split=parts,
            now=now,
            source=source,
        )
        sale = SaleTerms(sale_id, stock.tier, buyer, via.channel, price, parts, now)
        count_allowance(uow, stock, allowance, quantity, sale)
        units = []
        for index, serial in enumerate(serials):
            returned = None
            if serial < first_fresh:  # a fresh serial has no unit yet
                returned = uow.get(Unit, unit_id_for(good.id, stock.tier, serial))
                if returned is not None and returned.holder is not None:
                    raise _StaleReadError  # reissued meanwhile by another process
            code = refs[index] if refs else None
            units.append(issue_unit(uow, good, serial, sale, returned=returned, code=code))
            if codes:
                codes[index].bind(unit_id=str(units[-1].id), sale_id=sale_id, now=now)
        return sale_answer(good, sale, units)


def _resale_answer(
    unit: Unit,
    resale_id: str,
    seller: str,
    buyer: str,
    channel: str,
    price: Money,
    parts: list[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """A resale's answer (what its record holds, byte for byte)."""
    return {
        "resale_id": resale_id,
        "unit_id": str(unit.id),
        "good_id": unit.good_id,
        "tier": unit.tier,
        "serial": unit.serial,
        "seller": seller,
        "buyer": buyer,
        "channel": channel,
        "price": price.to_json(),
        "split": parts,
        "resold_at": format_timestamp(now),
    }
