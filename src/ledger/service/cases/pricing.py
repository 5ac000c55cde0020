"""Use cases, pricing: a tier's price schedule by sell-through, set by the
good's creator (the rule is the tier stock's: :mod:`ledger.domain.pricing`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain.ids import stock_id_for
from ledger.domain.model import format_timestamp
from ledger.domain.pricing import price_in_force, read_schedule
from ledger.service.answers import PricesSet
from ledger.service.cases.core import LedgerCore, _uuid
from ledger.service.unit_of_work import UnitOfWork


class Pricing(LedgerCore):
    """A tier's price schedule."""

    def set_prices(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        steps: list[dict[str, Any]] | None,
        idempotency_key: str,
        scope: str = "",
    ) -> PricesSet:
        """Set ``tier``'s price schedule (``None`` lifts it); the answer says
        the price in force now."""
        good_uuid = _uuid(good_id, "good_id")
        args = {"good_id": str(good_uuid), "tier": tier, "steps": steps}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            good = self.good(good_uuid)
            schedule = read_schedule(steps, good.spec.currency)
            stock = self._stock_in(uow, good_uuid, tier)
            stock.set_prices(steps=schedule, now=now)
            return {
                "good_id": str(good_uuid),
                "tier": tier,
                "steps": schedule,
                "units_sold": stock.units_sold,
                "price_now": None
                if schedule is None
                else price_in_force(schedule, stock.units_sold, now),
                "set_at": format_timestamp(now),
            }

        return self._runner.run(
            "set-prices",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            PricesSet.read,
        )
