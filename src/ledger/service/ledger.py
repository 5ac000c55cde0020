"""The application service: the only write path into the ledger.

Each command is *load -> decide (domain) -> save*: a use case here checks
its input, derives ids and says what it decides; the command runner
(:mod:`ledger.service.runner`) runs it -- idempotency record in the same
transaction as the effects, group commit, retries, careful and optimistic
attempts, an unreachable database -- and the caller gets a typed answer
(:mod:`ledger.service.answers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from ledger.domain import canonical, limits, validate
from ledger.domain.channel import Channel
from ledger.domain.code import Code, check_code, code_list
from ledger.domain.code import code_range as code_range_of
from ledger.domain.code_import import check_batch_repeats, check_coded
from ledger.domain.command import check_key
from ledger.domain.errors import (
    ChannelAlreadyExistsError,
    ChannelNotFoundError,
    CodeNotFoundError,
    CodeStateError,
    CodesUnavailableError,
    CurrencyMismatchError,
    DuplicateCodeError,
    ForbiddenError,
    GoodAlreadyExistsError,
    GoodNotFoundError,
    InvalidInputError,
    InvariantError,
    NotFoundError,
    NotHolderError,
    TierNotFoundError,
    UnitNotFoundError,
    UnitNotHeldError,
)
from ledger.domain.good import Good, GoodSpec
from ledger.domain.holds import HoldPayment, hold_payment, settle_hold
from ledger.domain.ids import (
    channel_id_for,
    code_id_for,
    command_id_for,
    stock_id_for,
    unit_id_for,
)
from ledger.domain.model import Aggregate, format_timestamp
from ledger.domain.money import Money, split
from ledger.domain.sale import SaleSource
from ledger.domain.stock import TierStock
from ledger.domain.unit import PRIMARY, Unit
from ledger.service.answers import (
    ChannelRegistered,
    CodeDelivered,
    CodeRedeemed,
    CodesImported,
    HoldPaid,
    HoldReleased,
    Minted,
    Pool,
    PoolMoved,
    RateSet,
    Refunded,
    Reserved,
    Resold,
    Restocked,
    Sold,
    WaitlistJoined,
    WaitlistLeft,
)
from ledger.service.runner import BATCH_COMMANDS_MAX, Clock, CommandRunner
from ledger.service.runner import StaleReadError as _StaleReadError
from ledger.service.sales import (
    RefundOwed,
    SaleTerms,
    allowance_checked,
    count_allowance,
    issue_unit,
    owe_refund,
    primary_sale_of,
    sale_answer,
)
from ledger.service.unit_of_work import HotAggregates, UnitOfWork
from ledger.store.codevault import CodeVault, Keyring, VaultError
from ledger.store.database import DatabaseURL
from ledger.store.eventstore import AggregateNotFoundError, EventStore

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _expired(answer: dict[str, Any], _replayed: bool) -> list[str]:
    """The answer of ``expire_holds`` (housekeeping: no record, no replay)."""
    return list(answer["expired"])


def _answered_before(uow: UnitOfWork, taken: bool) -> None:
    """A hold or waitlist entry is named by its command's id: finding that id
    taken means the command was answered before -- by another process, or
    before a restart -- and this optimistic attempt assumed its record away.
    Decide again, carefully: that attempt reads the record and replays it."""
    if taken and not uow.careful:
        raise _StaleReadError


class Ledger:
    """Goods, stock, units and channels, recorded as hash-chained events."""

    def __init__(
        self,
        url: str | DatabaseURL | None = None,
        *,
        clock: Clock = utc_now,
        retries: int = 40,
        cache_size: int = 50_000,
        batch_max: int = BATCH_COMMANDS_MAX,
        code_keyring: Keyring | None = None,
    ) -> None:
        self.url = url if isinstance(url, DatabaseURL) else DatabaseURL.parse(url)
        self._store = EventStore(self.url, cache_size=cache_size)
        # Redemption codes' sealed text, beside the events (see codevault).
        try:
            self.vault = CodeVault(self._store.recorder, code_keyring)
        except BaseException:
            self._store.close()
            raise
        self._splits: dict[tuple[UUID, str, int, int], list[dict[str, Any]]] = {}
        self._hot = HotAggregates(cache_size)
        # Definitions never change after mint, nor do channel fees: safe to
        # keep. These objects are read-only; commands that change a Good
        # load it afresh in their unit of work.
        self._goods: dict[UUID, Good] = {}
        self._channels: dict[str, Channel] = {}
        self._runner = CommandRunner(
            self._store,
            self._hot,
            clock=clock,
            retries=retries,
            timeout=self.url.timeout,
            batch_max=batch_max,
        )

    @property
    def conflicts_retried(self) -> int:
        """Version conflicts retried so far (this process)."""
        return self._runner.conflicts_retried

    @property
    def transactions(self) -> int:
        """Batches committed so far (this process)."""
        return self._runner.transactions

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def event_store(self) -> EventStore:
        return self._store

    # ------------------------------------------------------------------
    # Reads
    # ------------------------------------------------------------------
    def good(self, good_id: UUID | str) -> Good:
        """The good's definition (its variant list may lag: see fresh_good)."""
        good_uuid = _uuid(good_id, "good_id")
        good = self._goods.get(good_uuid)
        if good is None:
            good = self._load(Good, good_uuid, GoodNotFoundError(good_uuid))
            self._goods[good_uuid] = good
        return good

    def fresh_good(self, good_id: UUID | str) -> Good:
        good_uuid = _uuid(good_id, "good_id")
        return self._load(Good, good_uuid, GoodNotFoundError(good_uuid))

    def stock(self, good_id: UUID | str, tier: str) -> TierStock:
        good = self.good(good_id)
        good.tier(tier)
        return self._load(TierStock, stock_id_for(good.id, tier), TierNotFoundError(good.id, tier))

    def unit(self, unit_id: UUID | str) -> Unit:
        unit_uuid = _uuid(unit_id, "unit_id")
        return self._load(Unit, unit_uuid, UnitNotFoundError(unit_uuid))

    def channel(self, channel: str) -> Channel:
        found = self._channels.get(channel)
        if found is None:
            channel = validate.identifier(channel, field="channel")
            found = self._load(Channel, channel_id_for(channel), ChannelNotFoundError(channel))
            self._channels[channel] = found
        return found

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
            if unit.code:
                self._code_in(uow, unit.code).check_resale(str(unit.id))
            parts = split(price.amount, good.resale_shares(via.channel, via.fee_bps, seller))
            unit.resell(
                resale_id=resale_id,
                seller=seller,
                buyer=buyer,
                channel=via.channel,
                price=price.to_json(),
                split=parts,
                now=now,
            )
            return {
                "resale_id": resale_id,
                "unit_id": str(unit.id),
                "good_id": unit.good_id,
                "tier": unit.tier,
                "serial": unit.serial,
                "seller": seller,
                "buyer": buyer,
                "channel": via.channel,
                "price": price.to_json(),
                "split": parts,
                "resold_at": format_timestamp(now),
            }

        return self._runner.run(
            "resell", args, idempotency_key, scope, unit_uuid, decide, Resold.read
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
            if channel is not None and current["channel"] != channel:
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
        """A primary sale from ``stock`` (checked before anything changes);
        ``source`` says whether the channel's pool comes first and whether
        it may be an early-bird sale."""
        via = channel
        price = unit_price.to_json()
        # Every check before any change: a refusal must leave the batch's
        # shared aggregates untouched.
        stock.check_sale(
            quantity,
            now,
            via.channel if source.draws_pool else None,
            rate_channel=via.channel,
            unit_price=price if source.may_be_early_bird else None,
        )
        allowance = allowance_checked(uow, stock, buyer, quantity)
        parts = self._primary_split(good, via, unit_price.amount)
        refs = stock.codes_for(quantity)  # a redemption-code tier: one code a unit
        codes = [self._code_in(uow, ref) for ref in refs or ()]
        if any(code.state != "free" for code in codes):
            raise _StaleReadError  # the stock was read before another process used it
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

        return self._runner.run(
            "commit-hold",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            HoldPaid.read,
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
            place = stock.join_waitlist(
                entry_id=entry_id, buyer=buyer, channel=via.channel, quantity=quantity, now=now
            )
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

    # ------------------------------------------------------------------
    # Redemption codes
    # ------------------------------------------------------------------
    def import_codes(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        codes: list[str] | None = None,
        code_range: Mapping[str, Any] | None = None,
        idempotency_key: str,
        scope: str = "",
    ) -> CodesImported:
        """Add a batch of codes to a tier of a ``redemption-code`` good: a list
        of codes, or a consecutive range ``{prefix, width, start, end}``.

        The codes are sealed into the vault first (a repeat is harmless), then
        one transaction records each code's ``code.imported`` -- the code's own
        aggregate, so a code imported before is refused by the store itself --
        and the tier's ``stock.codes-imported``. Neither the events nor the
        idempotency record hold a code's text: only refs (keyed hashes)."""
        good_uuid = _uuid(good_id, "good_id")
        texts = _batch_texts(codes, code_range)
        refs = self._vault_call(lambda: self.vault.refs(texts))
        check_batch_repeats(refs)
        check_coded(self.good(good_uuid), tier)
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "count": len(refs),
            "refs_sha256": canonical.sha256_hex("".join(refs).encode()),
        }
        batch_id = str(command_id_for(scope, check_key(idempotency_key)))
        self._vault_call(lambda: self.vault.stash(list(zip(refs, texts, strict=True))))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            for position, ref in enumerate(refs):
                if uow.get_or_assume_new(Code, code_id_for(ref)) is not None:
                    raise DuplicateCodeError(position, "imported before")
            for ref in refs:  # the codes' events first, then the tier's
                uow.add(
                    Code.import_(
                        ref=ref, good_id=str(good_uuid), tier=tier, batch_id=batch_id, now=now
                    )
                )
            stock = self._stock_in(uow, good_uuid, tier)
            stock.import_codes(batch_id=batch_id, refs=refs, now=now)
            return {
                "batch_id": batch_id,
                "good_id": str(good_uuid),
                "tier": tier,
                "imported": len(refs),
                "codes_imported": stock.codes_imported,
                "codes_available": stock.codes_available,
                "imported_at": format_timestamp(now),
            }

        return self._runner.run(
            "import-codes",
            args,
            idempotency_key,
            scope,
            stock_id_for(good_uuid, tier),
            decide,
            CodesImported.read,
        )

    def deliver_code(
        self,
        unit_id: UUID | str,
        *,
        holder: str,
        idempotency_key: str,
        scope: str = "",
        channel: str | None = None,
    ) -> CodeDelivered:
        """Reveal a unit's code to its current holder. The first delivery is
        recorded (``code.delivered``); asking again answers the same code and
        records nothing. With ``channel``, only for a unit whose current
        acquisition was made through that channel.

        The code's text is added to the answer after the command, from the
        vault: it is never in the idempotency record."""
        unit_uuid = _uuid(unit_id, "unit_id")
        holder = validate.identifier(holder, field="holder")
        args = {"unit_id": str(unit_uuid), "holder": holder}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            unit = uow.get(Unit, unit_uuid)
            if unit is None:
                raise UnitNotFoundError(unit_uuid)
            if unit.holder is None:
                raise UnitNotHeldError(unit_uuid)
            if unit.holder != holder:
                raise NotHolderError(unit_uuid, holder)
            if channel is not None and unit.current_acquisition()["channel"] != channel:
                raise ForbiddenError(
                    f"unit {unit.id} was last acquired through another "
                    f"channel; {channel!r} delivers only its own sales' codes"
                )
            if unit.code is None:
                raise CodeStateError(f"unit {unit.id} carries no redemption code")
            code = self._code_in(uow, unit.code)
            if code.unit_id != str(unit.id):
                raise _StaleReadError  # the unit was refunded and sold again meanwhile
            first = code.deliver(unit_id=str(unit.id), holder=holder, now=now)
            return {
                "unit_id": str(unit.id),
                "good_id": unit.good_id,
                "tier": unit.tier,
                "serial": unit.serial,
                "holder": holder,
                "code_ref": code.ref,
                "state": code.state,
                "first_delivery": first,
                "delivered_at": code.delivered_at,
            }

        answer = self._runner.run(
            "deliver-code", args, idempotency_key, scope, unit_uuid, decide, CodeDelivered.read
        )
        return answer.revealed(self._vault_call(lambda: self.vault.reveal(answer.code_ref)))

    def redeem_code(
        self,
        code: str,
        *,
        redeemer: str,
        idempotency_key: str,
        scope: str = "",
        creator: str | None = None,
    ) -> CodeRedeemed:
        """Redeem a delivered code, once. With ``creator``, only a code of that
        creator's goods (any other code is answered as unknown)."""
        text = check_code(code)
        redeemer = validate.identifier(redeemer, field="redeemer")
        ref = self._vault_call(lambda: self.vault.refs([text]))[0]
        args = {"ref": ref, "redeemer": redeemer}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            found = uow.get(Code, code_id_for(ref))
            if found is None:
                raise CodeNotFoundError()
            if creator is not None and creator not in {
                c.id for c in self.good(found.good_id).spec.creators
            }:
                raise CodeNotFoundError()
            found.redeem(redeemer=redeemer, now=now)
            return {
                "code_ref": ref,
                "unit_id": found.unit_id,
                "good_id": found.good_id,
                "tier": found.tier,
                "holder": found.holder,
                "redeemer": redeemer,
                "redeemed_at": format_timestamp(now),
            }

        return self._runner.run(
            "redeem-code", args, idempotency_key, scope, code_id_for(ref), decide, CodeRedeemed.read
        )

    def code_counts(self, good_id: UUID | str, tier: str) -> dict[str, Any]:
        """A tier's codes: imported, free (unbound and not lent to a hold), lent to holds."""
        stock = self.stock(good_id, tier)
        lent = sum(len(h.get("codes", ())) for h in stock.holds.values())
        return {
            "good_id": stock.good_id,
            "tier": stock.tier,
            "coded": stock.coded,
            "imported": stock.codes_imported,
            "available": stock.codes_available,
            "held": lent,
            "bound": stock.codes_imported - stock.codes_available - lent,
        }

    def _code_in(self, uow: UnitOfWork, ref: str) -> Code:
        code = uow.get(Code, code_id_for(ref))
        if code is None:
            raise InvariantError(f"code {ref} is in use but was never imported")
        return code

    def _vault_call(self, work: Callable[[], T]) -> T:
        try:
            return work()
        except VaultError as error:
            raise CodesUnavailableError(str(error)) from None

    def _stock_in(self, uow: UnitOfWork, good_id: UUID, tier: str) -> TierStock:
        good = self.good(good_id)
        good.tier(tier)
        stock = uow.get(TierStock, stock_id_for(good.id, tier))
        if stock is None:
            raise TierNotFoundError(good.id, tier)
        return stock

    def _primary_split(self, good: Good, channel: Channel, amount: int) -> list[dict[str, Any]]:
        """The split of one unit's price (remembered: a flash sale splits one
        price, through one channel, thousands of times; goods' definitions
        and channels' fees never change)."""
        key = (good.id, channel.channel, channel.fee_bps, amount)
        parts = self._splits.get(key)
        if parts is None:
            if len(self._splits) >= 10_000:
                self._splits.clear()
            parts = self._splits[key] = split(
                amount, good.primary_shares(channel.channel, channel.fee_bps)
            )
        return [dict(part) for part in parts]

    def _load(self, kind: type[A], aggregate_id: UUID, missing: Exception) -> A:
        """The aggregate as stored now. What this process committed last
        (the hot cache) is brought up to date with any later events rather
        than replayed: a stock's first read after a flash sale would replay
        every sale (0.35 s for 10,000)."""
        hot = self._hot.copy_of(aggregate_id)
        if hot is not None:
            found = self._store.fast_forward(hot)
        else:
            try:
                found = self._store.load(aggregate_id)
            except AggregateNotFoundError:
                raise missing from None
        if not isinstance(found, kind):
            raise InvalidInputError("id", f"{aggregate_id} is not a {kind.__name__}")
        return found


def _uuid(value: UUID | str, field: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInputError(field, f"{value!r} is not a UUID") from None


def _check_currency(good: Good, price: Money) -> None:
    if price.currency != good.spec.currency:
        raise CurrencyMismatchError(good.spec.currency, price.currency)


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


def _batch_texts(codes: list[str] | None, code_range: Mapping[str, Any] | None) -> list[str]:
    """The codes of an import: a list, or a range -- exactly one of them."""
    if (codes is None) == (code_range is None):
        raise InvalidInputError("codes", "give either a list of codes or a range")
    if codes is not None:
        return code_list(codes)
    if code_range is None:
        raise InvariantError("code_range unset")
    if not isinstance(code_range, Mapping) or set(code_range) != {
        "prefix",
        "width",
        "start",
        "end",
    }:
        raise InvalidInputError("range", "must be {prefix, width, start, end}")
    return code_range_of(**code_range)
