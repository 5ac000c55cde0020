"""Use cases, listing: pause, resume and delist a good or one of its tiers
(the rules are the tier stock's: :mod:`ledger.domain.listing`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain.ids import stock_id_for
from ledger.domain.listing import sale_state
from ledger.domain.model import format_timestamp
from ledger.service.answers import ListingChanged
from ledger.service.cases.core import LedgerCore, _uuid
from ledger.service.unit_of_work import UnitOfWork


class Listing(LedgerCore):
    """Pause, resume and delist: on one tier, or on every tier of a good at once."""

    def pause(
        self,
        good_id: UUID | str,
        tier: str | None = None,
        *,
        reason: str,
        idempotency_key: str,
        scope: str = "",
    ) -> ListingChanged:
        """Stop sales, holds and restocks of ``tier`` (None: of every tier of the good)."""
        return self._change_listing("pause", good_id, tier, reason, idempotency_key, scope)

    def resume(
        self,
        good_id: UUID | str,
        tier: str | None = None,
        *,
        reason: str,
        idempotency_key: str,
        scope: str = "",
    ) -> ListingChanged:
        """Lift the pause of ``tier`` (None: the good's own pause)."""
        return self._change_listing("resume", good_id, tier, reason, idempotency_key, scope)

    def delist(
        self,
        good_id: UUID | str,
        tier: str | None = None,
        *,
        reason: str,
        idempotency_key: str,
        scope: str = "",
    ) -> ListingChanged:
        """Stop selling ``tier`` (None: the whole good) for good."""
        return self._change_listing("delist", good_id, tier, reason, idempotency_key, scope)

    def _change_listing(
        self,
        action: str,
        good_id: UUID | str,
        tier: str | None,
        reason: str,
        idempotency_key: str,
        scope: str,
    ) -> ListingChanged:
        good_uuid = _uuid(good_id, "good_id")
        args = {"good_id": str(good_uuid), "tier": tier, "reason": reason}
        level = "good" if tier is None else "tier"

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            names = [t.name for t in self.good(good_uuid).spec.tiers] if tier is None else [tier]
            stocks = [self._stock_in(uow, good_uuid, name) for name in names]
            if tier is None:  # the good's: its tiers still listed (delisting one is final)
                stocks = [s for s in stocks if s.delisted is None] or stocks[:1]
            for stock in stocks:  # (all or none: a refusal raises before the batch commits)
                getattr(stock, action)(scope=level, reason=reason, now=now)
            return {
                "good_id": str(good_uuid),
                "tier": tier,
                "scope": level,
                "action": action,
                "reason": reason,
                "at": format_timestamp(now),
                "tiers": [
                    {
                        "tier": s.tier,
                        "sale_state": sale_state(s.paused, s.delisted, locked=s.locked),
                    }
                    for s in stocks
                ],
            }

        return self._runner.run(
            action,
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier) if tier is not None else None,
            decide,
            ListingChanged.read,
        )
