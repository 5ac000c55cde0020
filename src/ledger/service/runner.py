"""The command runner: how every command of :class:`~ledger.service.Ledger`
is run, apart from what it decides.

A use case hands the runner a command -- its name and arguments (hashed
for idempotency), the caller's idempotency key and scope, the aggregate it
contends on, a ``decide`` function (*load -> decide (domain)* against a
unit of work, returning the JSON answer) and a ``read`` function (the JSON
answer -> the typed answer the caller gets). The runner owns the rest:

- **Idempotency.** The command's record is saved in the same transaction
  as its effects; a key answered before is replayed from its record (the
  same JSON, so the same bytes), another body under it is refused.
- **Group commit.** Commands contending on one aggregate are combined
  into batches (:mod:`ledger.service.combiner`); a batch is one
  transaction.
- **Retries.** Optimistic-concurrency conflicts from the event store --
  another process got there first -- are retried from a fresh load, with
  jittered backoff, up to ``retries`` times. A database that cannot be
  reached is not a conflict: within the URL's time bound the batch is
  tried again (a connection lost alone), past it -- or at once while the
  database is known to be down -- every command of the batch fails with
  :class:`DatabaseUnavailableError` (503; "retry with the same idempotency
  key", which is right whether or not a commit under way was stored).
- **Careful and optimistic attempts.** A first attempt decides on what
  this process last committed (the hot cache) and assumes a command has
  no record yet; a refusal on that state is checked against the store
  before it is final. Later attempts read everything from the store.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from ledger.domain import validate
from ledger.domain.actor import (
    DEFAULT_SERVER_NAME,
    Actor,
    current_actor,
    reset_actor,
    set_actor,
)
from ledger.domain.command import CommandRecord, check_key, request_hash
from ledger.domain.errors import (
    BuyerLimitError,
    ConcurrencyError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    InvariantError,
    LedgerError,
    NotServedError,
    SoldOutError,
)
from ledger.domain.ids import command_id_for
from ledger.domain.stock import TierStock
from ledger.service.combiner import Combiner, NoTicket, Request
from ledger.service.unit_of_work import HotAggregates, UnitOfWork
from ledger.store.availability import (
    DatabaseUnavailableError,
    fast_failure,
    unavailable_reason,
)
from ledger.store.eventstore import (
    AggregateNotFoundError,
    EventStore,
    IntegrityError,
    InterfaceError,
    OperationalError,
)

T = TypeVar("T")
Clock = Callable[[], datetime]
Decide = Callable[[UnitOfWork, datetime], dict[str, Any]]
Read = Callable[[dict[str, Any], bool], T]  # (the JSON answer, replayed?) -> the typed answer

BATCH_COMMANDS_MAX = 256
_CHECKS_KEY = UUID(int=0)  # the queue of record existence checks


class StaleReadError(Exception):
    """Two aggregates read at different moments contradict each other (one
    was changed by another process in between): decide again, carefully.
    Had the decision gone on, its commit would have conflicted anyway."""


class _Replayed(dict[str, Any]):
    """The first answer to an idempotency key, found again (inside the
    runner; its ``read`` tells the caller with ``replayed=True``)."""


@dataclass(frozen=True)
class _Command:
    name: str
    scope: str
    key: str
    request_hash: str
    decide: Decide
    recorded: bool = True  # False: housekeeping with no idempotency record
    contended: UUID | None = None  # the aggregate it queues on (group commit)
    actor: Actor | None = None  # who submitted it: named by every event it records

    @functools.cached_property
    def record_id(self) -> UUID:
        return command_id_for(self.scope, self.key)


@dataclass(frozen=True)
class _Spoiled:
    """A lone command answered (usually refused) after it changed aggregates:
    its changes must be discarded, not committed."""

    outcome: dict[str, Any] | LedgerError


@dataclass(frozen=True)
class _Unconfirmed:
    """A refusal by an optimistic attempt, which assumed the command has no
    record yet: final once the store confirms it has none."""

    error: LedgerError
    command: _Command


class _PoisonedBatchError(Exception):
    """A command failed after changing aggregates of a shared batch."""


_Outcome = dict[str, Any] | LedgerError | _Unconfirmed
_Failure = (IntegrityError, OperationalError, InterfaceError, StaleReadError)


def _replay(record: CommandRecord, command: _Command) -> dict[str, Any] | LedgerError:
    """The record's first answer to ``command``, or the conflict of a key
    reused with another request."""
    try:
        return _Replayed(record.answer(command.name, command.request_hash))
    except LedgerError as conflict:
        return conflict


def _fail_waiting(batch: list[Request], error: Exception) -> None:
    for request in batch:
        if not request.done:
            request.fail(error)


class CommandRunner:
    """Runs commands: idempotency, group commit, retries, careful and
    optimistic attempts (see the module's docstring)."""

    def __init__(
        self,
        store: EventStore,
        hot: HotAggregates,
        *,
        clock: Clock,
        retries: int,
        timeout: float,
        batch_max: int = BATCH_COMMANDS_MAX,
        server_name: str = DEFAULT_SERVER_NAME,
    ) -> None:
        self._server_name = server_name
        self._store = store
        self._hot = hot
        self._clock = clock
        self._retries = retries
        self._timeout = timeout  # how long an unreachable database is waited for
        self._combiner = Combiner(batch_max)
        self._checks = Combiner(1_000)  # existence checks of command records
        self._inflight: Counter[UUID] = Counter()  # commands submitted, not yet answered
        self._inflight_lock = threading.Lock()
        self.conflicts_retried = 0
        self.transactions = 0
        self.batch_sizes = self._combiner.batch_sizes  # (read by /metrics)

    def run(
        self,
        name: str,
        args: dict[str, Any],
        idempotency_key: str,
        scope: str,
        contended: UUID | None,
        decide: Decide,
        read: Read[T],
        *,
        recorded: bool = True,
        on_queued: Callable[[int], object] | None = None,
        units: int = 0,
    ) -> T:
        """Run a command through the combiner; its answer as ``read`` makes
        it. ``units``: what it would take of ``contended``'s stock -- its
        ticket (see the combiner); a request beyond the units left is
        refused at once, unless it is the replay of one already answered --
        or a duplicate of one still in flight, which rides on that one's
        ticket. ``recorded=False``: housekeeping, with no key and no record."""
        key = check_key(idempotency_key) if recorded else ""
        if scope:
            validate.identifier(scope, field="scope")
        actor = current_actor()
        if not recorded and (actor is None or actor.role != "server"):
            actor = Actor.server(self._server_name)  # housekeeping is the server's own
        command = _Command(
            name, scope, key, request_hash(name, args), decide, recorded, contended, actor
        )
        with self._inflight_lock:
            duplicate = command.record_id in self._inflight
            self._inflight[command.record_id] += 1
        try:
            answer = self._submit(command, args, 0 if duplicate else units, units, on_queued)
        finally:
            with self._inflight_lock:
                self._inflight[command.record_id] -= 1
                if not self._inflight[command.record_id]:
                    del self._inflight[command.record_id]
        return read(answer, isinstance(answer, _Replayed))

    def _submit(
        self,
        command: _Command,
        args: dict[str, Any],
        ticket: int,
        units: int,
        on_queued: Callable[[int], object] | None,
    ) -> dict[str, Any]:
        try:
            return self._combiner.submit(
                command.contended,
                Request(run=command, units=ticket),
                self._run_batch,
                on_queued,
                self._remaining,
            )
        except NoTicket as refused:
            if not self._recorded(command.record_id):
                raise SoldOutError(
                    args.get("tier", "?"), units, max(0, refused.remaining - refused.queued)
                ) from None
            try:
                record = self._store.load(command.record_id)
            except AggregateNotFoundError:
                raise InvariantError("a command record vanished") from None
            if not isinstance(record, CommandRecord):
                raise InvariantError("a command id names another kind of aggregate") from None
            return _Replayed(record.answer(command.name, command.request_hash))

    def _recorded(self, record_id: UUID) -> bool:
        """Whether a command's record exists. Asked by every buyer turned
        away without a ticket, so the questions are combined like commands:
        one query answers all that are waiting."""
        request = Request(run=record_id)
        self._checks.submit(_CHECKS_KEY, request, self._check_records)
        return bool(request.outcome()["recorded"])

    def _check_records(self, batch: list[Request]) -> None:
        found = self._store.existing([request.run for request in batch])
        for request in batch:
            request.succeed({"recorded": request.run in found})

    def _remaining(self, stock_id: UUID) -> int | None:
        """A stock's units left, as stored now (None: not a stock)."""
        try:
            found = self._store.load(stock_id)
        except AggregateNotFoundError:
            return None
        return found.remaining if isinstance(found, TierStock) else None

    # ------------------------------------------------------------------
    # Batches
    # ------------------------------------------------------------------
    def _run_batch(self, batch: list[Request]) -> int | None:
        """Run a batch; return the units its stock has left (None: not a stock,
        or unknown)."""
        try:
            return self._attempt_batch(batch)
        except _PoisonedBatchError:
            # Run each alone: a failure then discards only its own changes.
            remaining = None
            for request in batch:
                if not request.done:
                    remaining = self._attempt_batch([request])
            return remaining

    def _attempt_batch(self, batch: list[Request]) -> int | None:
        """Decide every command of the batch against one unit of work, then
        commit once. Outcomes become final only when the commit succeeds; a
        version conflict re-decides the whole batch from fresh state.
        Returns the contended stock's units left, as committed."""
        deadline = time.monotonic() + self._timeout
        unknown = False  # a commit of this batch may have been stored (connection lost)
        for attempt in range(self._retries):
            uow = UnitOfWork(self._store, self._hot, careful=attempt > 0)
            committing = False
            try:
                outcomes = self._decide_batch(batch, uow)
                if outcomes is None:  # a lone command spoiled: answered, nothing saved
                    return None
                committing = True
                uow.commit()
                settled = self._confirm(outcomes)
            except _Failure as failure:
                reason = unavailable_reason(failure)
                unknown = unknown or (committing and reason is not None)
                if not self._may_retry(failure, reason, uow, batch, deadline, unknown, attempt):
                    return None
                continue
            self.transactions += 1
            for request, outcome in settled:
                if isinstance(outcome, LedgerError):
                    request.fail(outcome)
                else:
                    request.succeed(outcome)
            stock = uow.seen(batch[0].run.contended)
            return stock.remaining if isinstance(stock, TierStock) else None
        _fail_waiting(
            batch,
            ConcurrencyError(
                f"still conflicting after {self._retries} attempts; "
                "retry with the same idempotency key"
            ),
        )
        return None

    def _may_retry(
        self,
        failure: Exception,
        reason: str | None,
        uow: UnitOfWork,
        batch: list[Request],
        deadline: float,
        unknown: bool,
        attempt: int,
    ) -> bool:
        """After a failed attempt: wait and say whether to try again, or fail
        the batch's commands and say not to."""
        if reason is not None:
            # The database cannot be reached: not a conflict. Try again only
            # within the time bound, and never while the database is known
            # to be down (that fails at once).
            uow.forget()
            if fast_failure(failure) or time.monotonic() + 0.1 >= deadline:
                _fail_waiting(batch, DatabaseUnavailableError(reason, outcome_unknown=unknown))
                return False
            time.sleep(0.1)
            return True
        if isinstance(failure, StaleReadError):
            uow.forget()
        self.conflicts_retried += 1
        time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))
        return True

    def _decide_batch(
        self, batch: list[Request], uow: UnitOfWork
    ) -> list[tuple[Request, _Outcome]] | None:
        """Every command's outcome against ``uow``; None if a lone command
        spoiled the unit of work (it is answered, nothing is to be saved)."""
        now = self._clock()
        outcomes: list[tuple[Request, _Outcome]] = []
        decided: dict[UUID, tuple[_Command, dict[str, Any]]] = {}
        for request in batch:
            outcome = self._decide(request.run, uow, now, decided, shared=len(batch) > 1)
            if isinstance(outcome, _Spoiled):  # nothing of it may be saved
                if isinstance(outcome.outcome, LedgerError):
                    request.fail(outcome.outcome)
                else:
                    request.succeed(outcome.outcome)
                return None
            outcomes.append((request, outcome))
        return outcomes

    # ------------------------------------------------------------------
    # One command
    # ------------------------------------------------------------------
    def _decide(
        self,
        command: _Command,
        uow: UnitOfWork,
        now: datetime,
        decided: dict[UUID, tuple[_Command, dict[str, Any]]],
        *,
        shared: bool,
    ) -> _Outcome | _Spoiled:
        """One command's outcome: its result, or the error refusing it, or
        :class:`_Spoiled` if it was refused after changing aggregates, or
        :class:`_Unconfirmed` if refused unless its record turns up."""
        # The command acts as its submitter, whichever thread decides the batch.
        token = set_actor(command.actor)
        try:
            return self._decide_as_actor(command, uow, now, decided, shared=shared)
        finally:
            reset_actor(token)

    def _decide_as_actor(
        self,
        command: _Command,
        uow: UnitOfWork,
        now: datetime,
        decided: dict[UUID, tuple[_Command, dict[str, Any]]],
        *,
        shared: bool,
    ) -> _Outcome | _Spoiled:
        if not command.recorded:
            return self._decide_unrecorded(command, uow, now, shared=shared)
        earlier = decided.get(command.record_id)
        if earlier is not None:  # the same key twice in one batch
            first, result = earlier
            same = first.name == command.name and first.request_hash == command.request_hash
            return _Replayed(result) if same else IdempotencyKeyReusedError(command.key)
        record = uow.get_or_assume_new(CommandRecord, command.record_id)
        if record is not None:
            return _replay(record, command)
        before = uow.pending_events()
        try:
            result = command.decide(uow, now)
        except LedgerError as error:
            return self._refused(command, uow, error, before, shared=shared)
        uow.add(
            CommandRecord.record(
                scope=command.scope,
                key=command.key,
                command=command.name,
                request_hash=command.request_hash,
                result=result,
                now=now,
            )
        )
        decided[command.record_id] = (command, result)
        return result

    def _refused(
        self,
        command: _Command,
        uow: UnitOfWork,
        error: LedgerError,
        before: int,
        *,
        shared: bool,
    ) -> _Outcome | _Spoiled:
        """The outcome of a command its decision refused (``before``: the
        unit of work's pending events when the decision began)."""
        outcome: dict[str, Any] | LedgerError = error
        if (
            not uow.careful
            and not isinstance(error, InvalidInputError)
            and (
                isinstance(error, BuyerLimitError | NotServedError)
                or not uow.is_current(command.contended)
            )
        ):
            # Refused on what this process last wrote, which another
            # process has changed since (a restock, a refund, a buyer's
            # allowance or account -- another channel linked...): decide
            # again on the stored state.
            raise StaleReadError from error
        if not uow.careful and uow.pending_events() == before:
            # The optimistic attempt assumed no record; before refusing,
            # make sure this is not a retry of a command already answered
            # (checked for the whole batch at once, see _confirm).
            return _Unconfirmed(error, command)
        if not uow.careful:
            stored = uow.stored(CommandRecord, command.record_id)
            if stored is not None:
                outcome = _replay(stored, command)
        if uow.pending_events() == before:
            return outcome
        if shared:
            raise _PoisonedBatchError from error
        return _Spoiled(outcome)

    def _confirm(
        self, outcomes: list[tuple[Request, _Outcome]]
    ) -> list[tuple[Request, dict[str, Any] | LedgerError]]:
        """Settle the batch's unconfirmed refusals with one query: a command
        whose record exists after all is a retry, answered from the record."""
        unsure = [o.command.record_id for _, o in outcomes if isinstance(o, _Unconfirmed)]
        recorded = self._store.existing(unsure) if unsure else set()
        settled: list[tuple[Request, dict[str, Any] | LedgerError]] = []
        for request, outcome in outcomes:
            if not isinstance(outcome, _Unconfirmed):
                settled.append((request, outcome))
                continue
            command = outcome.command
            if command.record_id not in recorded:
                settled.append((request, outcome.error))
                continue
            record = self._store.load(command.record_id)
            if not isinstance(record, CommandRecord):
                raise InvariantError("a command id names another kind of aggregate")
            settled.append((request, _replay(record, command)))
        return settled

    def _decide_unrecorded(
        self, command: _Command, uow: UnitOfWork, now: datetime, *, shared: bool
    ) -> dict[str, Any] | LedgerError | _Spoiled:
        before = uow.pending_events()
        try:
            return command.decide(uow, now)
        except LedgerError as error:
            if uow.pending_events() == before:
                return error
            if shared:
                raise _PoisonedBatchError from error
            return _Spoiled(error)
