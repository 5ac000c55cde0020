"""Use cases, goods: channels, goods, variants and restocks: what creators and operators set up."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain.channel import Channel
from ledger.domain.errors import (
    ChannelAlreadyExistsError,
    GoodAlreadyExistsError,
    GoodNotFoundError,
)
from ledger.domain.good import Good, GoodSpec
from ledger.domain.ids import (
    stock_id_for,
)
from ledger.domain.stock import TierStock
from ledger.service.answers import (
    ChannelRegistered,
    Minted,
    Restocked,
)
from ledger.service.cases.core import LedgerCore, _uuid
from ledger.service.unit_of_work import UnitOfWork


class GoodsAndChannels(LedgerCore):
    """Channels, goods, variants and restocks: what creators and operators set up."""

    # ------------------------------------------------------------------
    # Commands
    # ------------------------------------------------------------------
    def register_channel(
        self, channel: str, name: str, fee_bps: int, *, idempotency_key: str, scope: str = ""
    ) -> ChannelRegistered:
        args = {"channel": channel, "name": name, "fee_bps": fee_bps}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            registered = Channel.register(channel, name, fee_bps, now)
            if uow.get(Channel, registered.id) is not None:
                raise ChannelAlreadyExistsError(channel)
            uow.add(registered)
            return {
                "channel": registered.channel,
                "channel_id": str(registered.id),
                "fee_bps": registered.fee_bps,
            }

        return self._runner.run(
            "register-channel", args, idempotency_key, scope, None, decide, ChannelRegistered.read
        )

    def mint(
        self, spec: GoodSpec | Mapping[str, Any], *, idempotency_key: str, scope: str = ""
    ) -> Minted:
        good_spec = spec if isinstance(spec, GoodSpec) else GoodSpec.from_json(spec)
        args = {"spec": good_spec.to_json()}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            return _take_in_new_good(uow, Good.mint(good_spec, now), now)

        return self._runner.run("mint", args, idempotency_key, scope, None, decide, Minted.read)

    def derive_variant(
        self,
        master_id: UUID | str,
        spec: GoodSpec | Mapping[str, Any],
        *,
        idempotency_key: str,
        scope: str = "",
    ) -> Minted:
        master_uuid = _uuid(master_id, "master_id")
        good_spec = spec if isinstance(spec, GoodSpec) else GoodSpec.from_json(spec)
        args = {"master_id": str(master_uuid), "spec": good_spec.to_json()}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            master = uow.get(Good, master_uuid)
            if master is None:
                raise GoodNotFoundError(master_uuid)
            variant = master.derive_variant(good_spec, now)
            return _take_in_new_good(uow, variant, now) | {"master_id": str(master.id)}

        return self._runner.run(
            "derive-variant", args, idempotency_key, scope, master_uuid, decide, Minted.read
        )

    def restock(
        self,
        good_id: UUID | str,
        tier: str,
        quantity: int,
        *,
        idempotency_key: str,
        scope: str = "",
    ) -> Restocked:
        good_uuid = _uuid(good_id, "good_id")
        args = {"good_id": str(good_uuid), "tier": tier, "quantity": quantity}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            offered = stock.restock(quantity, now)
            return {
                "good_id": str(good_uuid),
                "tier": tier,
                "quantity": quantity,
                "supply": stock.supply,
                "lifetime_cap": stock.lifetime_cap,
                "offered": [
                    {"entry_id": e, "hold_id": e, "expires_at": stock.holds[e]["expires_at"]}
                    for e in offered
                ],
            }

        return self._runner.run(
            "restock",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            Restocked.read,
        )


def _take_in_new_good(uow: UnitOfWork, good: Good, now: datetime) -> dict[str, Any]:
    """Add a just-minted good and one stock per tier; the mint's answer."""
    if uow.get(Good, good.id) is not None:
        raise GoodAlreadyExistsError(good.id)
    uow.add(good)
    stocks = [TierStock.open(good, tier.name, now) for tier in good.spec.tiers]
    for stock in stocks:
        uow.add(stock)
    return {
        "good_id": str(good.id),
        "fingerprint": good.fingerprint,
        "minted_at": good.definition["minted_at"],
        "tiers": [{"tier": s.tier, "stock_id": str(s.id), "supply": s.supply} for s in stocks],
    }
