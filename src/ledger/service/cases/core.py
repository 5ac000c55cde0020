"""The ledger's core: the store, the vault, the command runner and the
reads every use case shares; the use cases are grouped by area beside it
(goods, sales, holds, codes) and composed into :class:`~ledger.service.ledger.Ledger`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Self, TypeVar
from uuid import UUID

from ledger.domain import validate
from ledger.domain.actor import DEFAULT_SERVER_NAME, Actor
from ledger.domain.channel import Channel
from ledger.domain.code import Code
from ledger.domain.errors import (
    ChannelNotFoundError,
    CodesUnavailableError,
    CurrencyMismatchError,
    GoodNotFoundError,
    InvalidInputError,
    InvariantError,
    TierNotFoundError,
    UnitNotFoundError,
)
from ledger.domain.good import Good
from ledger.domain.ids import (
    channel_id_for,
    code_id_for,
    stock_id_for,
)
from ledger.domain.model import Aggregate
from ledger.domain.money import Money, split
from ledger.domain.stock import TierStock
from ledger.domain.unit import Unit
from ledger.service.combiner import BatchSizes
from ledger.service.runner import BATCH_COMMANDS_MAX, Clock, CommandRunner
from ledger.service.runner import StaleReadError as _StaleReadError
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


class LedgerCore:
    """The state and the shared reads of the application service."""

    def __init__(
        self,
        url: str | DatabaseURL | None = None,
        *,
        clock: Clock = utc_now,
        retries: int = 40,
        cache_size: int = 50_000,
        batch_max: int = BATCH_COMMANDS_MAX,
        code_keyring: Keyring | None = None,
        log_origin: str | None = None,
        server_name: str = DEFAULT_SERVER_NAME,
    ) -> None:
        # The origin of the log this ledger is sealed into: what a holder's
        # authorization names (docs/format.md section 10).
        self.log_origin = log_origin
        Actor.server(server_name)  # a name that cannot name the server is refused here
        self.server_name = server_name
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
            server_name=server_name,
        )

    def server_actor(self) -> Actor:
        """The server acting on its own (a sweep, a timer): a new request id each call."""
        return Actor.server(self.server_name)

    @property
    def conflicts_retried(self) -> int:
        """Version conflicts retried so far (this process)."""
        return self._runner.conflicts_retried

    @property
    def batch_sizes(self) -> BatchSizes:
        """Commands per group-commit batch so far (this process), a histogram."""
        return self._runner.batch_sizes

    @property
    def transactions(self) -> int:
        """Batches committed so far (this process)."""
        return self._runner.transactions

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
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

    def _open_if_due(self, uow: UnitOfWork, stock: TierStock, now: datetime) -> None:
        """A locked tier's opening, recorded by the first sale or hold that
        finds its condition met (ledger.domain.unlock); else its refusal."""
        if not stock.locked or stock.unlock is None:
            return
        after = stock.unlock.get("tier")
        sold = None
        if after is not None:
            sold = self._stock_in(uow, UUID(stock.good_id), str(after)).units_sold
        stock.open_if_due(now, sold)

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
