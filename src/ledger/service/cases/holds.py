"""Use cases, holds: holds (reserve, pay, release, expire), waitlists, pools and rate rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from ledger.domain import limits, validate
from ledger.domain.command import check_key
from ledger.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from ledger.domain.holds import HoldPayment, hold_payment, settle_hold
from ledger.domain.ids import (
    command_id_for,
    stock_id_for,
)
from ledger.domain.model import Aggregate, format_timestamp
from ledger.domain.money import Money
from ledger.domain.stock import TierStock
from ledger.service.accounts import Acting
from ledger.service.answers import (
    HoldPaid,
    HoldReleased,
    Pool,
    PoolMoved,
    RateSet,
    Reserved,
    WaitlistJoined,
    WaitlistLeft,
)
from ledger.service.cases.core import _answered_before, _check_currency, _expired, _uuid
from ledger.service.cases.sales import Sales
from ledger.service.sales import (
    RefundOwed,
    owe_refund,
)
from ledger.service.unit_of_work import UnitOfWork

A = TypeVar("A", bound=Aggregate)


class HoldsAndPools(Sales):
    """Holds (reserve, pay, release, expire), waitlists, pools and rate rules.

    A hold's payment is a sale: this area builds on :class:`Sales`."""

    # ------------------------------------------------------------------
    # Reservations: the inventory gateway
    # ------------------------------------------------------------------
    def reserve(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        channel: str,
        quantity: int,
        ttl_seconds: int,
        idempotency_key: str,
        scope: str = "",
    ) -> Reserved:
        """Hold ``quantity`` units of a tier for ``channel`` for ``ttl_seconds``."""
        good_uuid = _uuid(good_id, "good_id")
        validate.integer(quantity, field="quantity", low=1, high=limits.HOLD_QUANTITY_MAX)
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "channel": channel,
            "quantity": quantity,
            "ttl_seconds": ttl_seconds,
        }
        hold_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            _answered_before(uow, hold_id in stock.holds or hold_id in stock.waitlist)
            via = self.channel(channel)
            self._open_if_due(uow, stock, now)
            expires_at = stock.reserve(
                hold_id=hold_id,
                channel=via.channel,
                quantity=quantity,
                ttl_seconds=ttl_seconds,
                now=now,
            )
            return {
                "hold_id": hold_id,
                "good_id": str(good_uuid),
                "tier": tier,
                "channel": via.channel,
                "quantity": quantity,
                "expires_at": expires_at,
                "reserved_at": format_timestamp(now),
            }

        return self._runner.run(
            "reserve",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            Reserved.read,
            units=quantity,
        )

    def commit_hold(
        self,
        good_id: UUID | str,
        tier: str,
        hold_id: UUID | str,
        *,
        buyer: str,
        quantity: int,
        unit_price: Money,
        idempotency_key: str,
        scope: str = "",
        channel: str | None = None,
    ) -> HoldPaid:
        """The payment for a hold arrived: sell ``quantity`` of it to ``buyer``;
        the rest of the hold returns to stock. Paid late, the late rule of
        :mod:`ledger.domain.holds` decides: ``outcome`` "sold-late" or
        "refund-owed". With ``channel``, only that channel's holds may be committed."""
        good_uuid = _uuid(good_id, "good_id")
        hold_key = str(_uuid(hold_id, "hold_id"))
        buyer = validate.identifier(buyer, field="buyer")
        validate.integer(quantity, field="quantity", low=1, high=limits.HOLD_QUANTITY_MAX)
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "hold_id": hold_key,
            "buyer": buyer,
            "quantity": quantity,
            "unit_price": unit_price.to_json(),
        }
        sale_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            good = self.good(good_uuid)
            _check_currency(good, unit_price)
            stock = self._stock_in(uow, good_uuid, tier)
            payment = hold_payment(stock, hold_key, quantity=quantity, channel=channel, now=now)
            via = self.channel(stock.find_hold(hold_key)["channel"])
            settle_hold(stock, payment, hold_key, sale_id=sale_id, quantity=quantity, now=now)
            if payment is HoldPayment.REFUND_OWED:
                owed = RefundOwed(hold_key, sale_id, buyer, via.channel, quantity, unit_price)
                return owe_refund(stock, owed, now)
            sold = self._sell_units(
                uow,
                good,
                stock,
                buyer=buyer,
                channel=via,
                quantity=quantity,
                unit_price=unit_price,
                sale_id=sale_id,
                now=now,
                source=payment.source,
            )
            return sold | {"outcome": payment.value, "hold_id": hold_key}

        stock_key = stock_id_for(good_uuid, tier)
        return self._runner.run(
            "commit-hold", args, idempotency_key, scope, stock_key, decide, HoldPaid.read
        )

    def release_hold(
        self,
        good_id: UUID | str,
        tier: str,
        hold_id: UUID | str,
        *,
        idempotency_key: str,
        scope: str = "",
        channel: str | None = None,
    ) -> HoldReleased:
        """Give a hold's units back before it expires (if its time is already
        up, it is recorded as expired instead: the units return either way)."""
        good_uuid = _uuid(good_id, "good_id")
        hold_key = str(_uuid(hold_id, "hold_id"))
        args = {"good_id": str(good_uuid), "tier": tier, "hold_id": hold_key}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            if channel is not None and stock.find_hold(hold_key)["channel"] != channel:
                raise ForbiddenError(f"hold {hold_key} belongs to another channel")
            hold = stock.hold(hold_key)
            expired = format_timestamp(now) >= hold["expires_at"]
            stock.release_hold(hold_key, now=now, expired=expired)
            return {
                "hold_id": hold_key,
                "good_id": str(good_uuid),
                "tier": tier,
                "quantity": hold["quantity"],
                "how": "expired" if expired else "released",
                "released_at": format_timestamp(now),
            }

        return self._runner.run(
            "release-hold",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            HoldReleased.read,
        )

    def expire_holds(self, good_id: UUID | str, tier: str) -> list[str]:
        """Record the expiry of every hold of a tier whose time is up (the
        server's sweeper calls this). Not a client command: no record; the
        stock's version makes each expiry happen once, whoever races it."""
        good_uuid = _uuid(good_id, "good_id")

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            return {"expired": stock.expire_due(now)}

        return self._runner.run(
            "expire-holds",
            {},
            "",
            "",
            stock_id_for(good_uuid, tier),
            decide,
            _expired,
            recorded=False,
        )

    # ------------------------------------------------------------------
    # Waitlists
    # ------------------------------------------------------------------
    def join_waitlist(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        buyer: str,
        channel: str,
        quantity: int,
        idempotency_key: str,
        scope: str = "",
    ) -> WaitlistJoined:
        """Wait for a restock of a sold-out, restockable tier. A restock holds
        units for waiting buyers first, in the order they joined; the hold's
        id is the entry's, and the channel commits it like any hold."""
        good_uuid = _uuid(good_id, "good_id")
        buyer = validate.identifier(buyer, field="buyer")
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "buyer": buyer,
            "channel": channel,
            "quantity": quantity,
        }
        entry_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            _answered_before(uow, entry_id in stock.waitlist or entry_id in stock.holds)
            via = self.channel(channel)
            acting = Acting(uow, buyer, via.channel)  # refuses another channel's account
            place = stock.join_waitlist(
                entry_id=entry_id, buyer=buyer, channel=via.channel, quantity=quantity, now=now
            )
            acting.open_if_new(uow, now)
            return {
                "entry_id": entry_id,
                "good_id": str(good_uuid),
                "tier": tier,
                "buyer": buyer,
                "channel": via.channel,
                "quantity": quantity,
                "place": place,
                "joined_at": format_timestamp(now),
            }

        return self._runner.run(
            "join-waitlist",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            WaitlistJoined.read,
        )

    def leave_waitlist(
        self,
        good_id: UUID | str,
        tier: str,
        entry_id: UUID | str,
        *,
        idempotency_key: str,
        scope: str = "",
        channel: str | None = None,
    ) -> WaitlistLeft:
        good_uuid = _uuid(good_id, "good_id")
        entry = str(_uuid(entry_id, "entry_id"))
        args = {"good_id": str(good_uuid), "tier": tier, "entry_id": entry}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            found = stock.waitlist.get(entry)
            if found is None:
                raise NotFoundError(f"tier {tier!r} has no waitlist entry {entry}")
            if channel is not None and found["channel"] != channel:
                raise ForbiddenError(f"entry {entry} belongs to another channel")
            stock.leave_waitlist(entry, now)
            return {
                "entry_id": entry,
                "good_id": str(good_uuid),
                "tier": tier,
                "left_at": format_timestamp(now),
            }

        return self._runner.run(
            "leave-waitlist",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            WaitlistLeft.read,
        )

    # ------------------------------------------------------------------
    # Channels' pools
    # ------------------------------------------------------------------
    def allot_pool(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        channel: str,
        quantity: int,
        overflow: bool = False,
        idempotency_key: str,
        scope: str = "",
    ) -> Pool:
        """Set ``quantity`` units of the shared stock aside for ``channel``
        (a livestream room's 2,000). With ``overflow``, the channel sells on
        from the shared stock once its pool is empty."""
        good_uuid = _uuid(good_id, "good_id")
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "channel": channel,
            "quantity": quantity,
            "overflow": overflow,
        }

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            via = self.channel(channel)
            stock.allot(channel=via.channel, quantity=quantity, overflow=overflow, now=now)
            return self._pool_answer(stock, via.channel, now)

        return self._runner.run(
            "allot-pool",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            Pool.read,
        )

    def return_pool(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        channel: str,
        quantity: int,
        idempotency_key: str,
        scope: str = "",
    ) -> Pool:
        """Give ``quantity`` unsold units of ``channel``'s pool back to the shared stock."""
        good_uuid = _uuid(good_id, "good_id")
        args = {"good_id": str(good_uuid), "tier": tier, "channel": channel, "quantity": quantity}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            stock.return_pool(channel=channel, quantity=quantity, now=now)
            return self._pool_answer(stock, channel, now)

        return self._runner.run(
            "return-pool",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            Pool.read,
        )

    def move_pool(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        from_channel: str,
        to_channel: str,
        quantity: int,
        idempotency_key: str,
        scope: str = "",
    ) -> PoolMoved:
        """Move unsold units from one channel's pool to another's, in one step
        (the destination keeps its overflow setting; a new pool has none)."""
        good_uuid = _uuid(good_id, "good_id")
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "from": from_channel,
            "to": to_channel,
            "quantity": quantity,
        }

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            to = self.channel(to_channel)
            if to.channel == from_channel:
                raise InvalidInputError("to", "must be another channel than from")
            stock.return_pool(channel=from_channel, quantity=quantity, now=now)
            overflow = bool(stock.pools.get(to.channel, {}).get("overflow", False))
            stock.allot(channel=to.channel, quantity=quantity, overflow=overflow, now=now)
            return {
                "from": self._pool_answer(stock, from_channel, now),
                "to": self._pool_answer(stock, to.channel, now),
            }

        return self._runner.run(
            "move-pool",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            PoolMoved.read,
        )

    def set_rate(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        channel: str,
        per_minute: int | None,
        idempotency_key: str,
        scope: str = "",
    ) -> RateSet:
        """Cap ``channel``'s primary sales of a tier per minute (anti-bot);
        ``None`` lifts the cap. Checked on the stock's own version, so the cap
        holds with the sales whatever process makes them."""
        good_uuid = _uuid(good_id, "good_id")
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "channel": channel,
            "per_minute": per_minute,
        }

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            stock = self._stock_in(uow, good_uuid, tier)
            via = self.channel(channel)
            stock.set_rate(channel=via.channel, per_minute=per_minute, now=now)
            return {
                "good_id": str(good_uuid),
                "tier": tier,
                "channel": via.channel,
                "per_minute": per_minute,
                "set_at": format_timestamp(now),
            }

        return self._runner.run(
            "set-rate",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            RateSet.read,
        )

    @staticmethod
    def _pool_answer(stock: TierStock, channel: str, now: datetime) -> dict[str, Any]:
        pool = stock.pools.get(channel, {"free": 0, "overflow": False})
        return {
            "good_id": stock.good_id,
            "tier": stock.tier,
            "channel": channel,
            "free": int(pool["free"]),
            "overflow": bool(pool["overflow"]),
            "shared_available": stock.available,
            "at": format_timestamp(now),
        }
