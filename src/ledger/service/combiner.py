"""Group commit by flat combining.

Every command names the aggregate it contends on (a tier's stock for a sale,
a unit for a resale...). Threads submitting commands for the same key queue
up; the one that gets the key's lock becomes the combiner: it takes
everything queued -- up to ``batch_max`` -- and runs it as one batch, in
arrival order, in one transaction; then the next batch, until its own
request is answered, when it hands the queue to the owner of the first
request still waiting and returns. The others sleep until their request is
answered (or it is their turn), without touching the lock. Under no load a
batch is one command; under a flash sale, one commit carries many sales, so
throughput grows with load instead of collapsing into conflicts.

The lock is per process. Across processes, correctness comes from the event
store (a batch that loses a version race is retried whole).

**Tickets.** A place in a queue is a ticket. Requests that take units
(sales, reservations) say how many; a key's tickets never promise more units
than it had left when its last batch was decided: a request that would
take more than ``remaining - queued`` is refused at once (:class:`NoTicket`)
instead of waiting in line for nothing (with nothing queued ahead, a
request is always run, and its own decision answers it). ``remaining`` and ``queued`` change
together, under one lock, when a batch ends -- so a unit is never counted
both as sold and as still queued. Until a key's first batch in this process
its remaining units are read from the store by its first request. Units freed
outside this process's batches (a refund, another process's restock) are
found by reading the store before a request is refused.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ledger.domain.errors import InvariantError
from ledger.service.locks import StripedLocks

TICKET_KEYS_MAX = 100_000  # keys whose units left are remembered
WAIT_SECONDS = 1.0  # a waiter looks again this often, in case a wake-up went astray
# Before refusing a ticket, what is left is read from the store unless it
# was learnt this recently: units freed elsewhere show within this time,
# and a crowd turned away from a sold-out tier costs a read per interval.
REFRESH_AFTER_SECONDS = 0.05
# Upper bounds of the batch-size histogram's buckets (commands per batch).
BATCH_SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _taken_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


class NoTicket(Exception):  # noqa: N818 - an answer, not a failure of the combiner
    """Fewer units are left than those already queued plus this request's."""

    def __init__(self, remaining: int, queued: int) -> None:
        super().__init__(f"{remaining} unit(s) left, {queued} queued ahead")
        self.remaining = remaining
        self.queued = queued


@dataclass
class _Tickets:
    remaining: int | None = None  # units left after the key's last batch
    queued: int = 0  # units of the requests queued or in a running batch
    running: int = 0  # of which in a batch being decided now
    generation: int = 0  # batches ended
    known_at: float = float("-inf")  # when ``remaining`` was last learnt (monotonic)


@dataclass(eq=False)
class Request:
    """One submitted command and, once run, its outcome."""

    run: Any  # the command's decision function; the batch runner knows its type
    position: int = 0  # how many were queued ahead of it on arrival
    units: int = 0  # units it would take (its ticket), for admission
    done: bool = False
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    # Released when the request is answered, or when it is its turn to run
    # the queue (the previous combiner handed over). A bare lock, taken at
    # birth: far cheaper to make and to signal than a threading.Event, and
    # a flash sale makes and signals one per buyer.
    _signal: threading.Lock = field(default_factory=_taken_lock, repr=False)

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # already signalled
            self._signal.release()

    def sleep(self, timeout: float) -> None:
        """Until woken (or ``timeout``); a wake-up is consumed."""
        self._signal.acquire(timeout=timeout)

    def succeed(self, result: dict[str, Any]) -> None:
        self.result, self.error, self.done = result, None, True

    def fail(self, error: BaseException) -> None:
        self.result, self.error, self.done = None, error, True

    def outcome(self) -> dict[str, Any]:
        if not self.done:
            raise InvariantError("a request left its batch unanswered")
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise InvariantError("a successful request has no result")
        return self.result


class BatchSizes:
    """How many commands each batch carried, as a histogram (counts per
    bucket of :data:`BATCH_SIZE_BOUNDS`, the last one unbounded): a few
    additions per batch, read by ``/metrics`` at scrape time. Callers hold
    a lock (the combiner's guard)."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BATCH_SIZE_BOUNDS) + 1)
        self.total = 0  # commands, over every batch

    def add(self, size: int) -> None:
        self.counts[bisect.bisect_left(BATCH_SIZE_BOUNDS, size)] += 1
        self.total += size

    def snapshot(self) -> tuple[list[tuple[float, int]], int]:
        """Cumulative ``(upper bound, batches)`` pairs ending at +Inf, and
        the number of commands."""
        counts, total = list(self.counts), self.total
        bounds = [*map(float, BATCH_SIZE_BOUNDS), float("inf")]
        return list(zip(bounds, itertools.accumulate(counts), strict=True)), total


class Combiner:
    def __init__(self, batch_max: int) -> None:
        self._batch_max = batch_max
        self.batch_sizes = BatchSizes()
        self._locks = StripedLocks()
        self._guard = threading.Lock()
        self._queues: dict[UUID, deque[Request]] = {}
        self._tickets: dict[UUID, _Tickets] = {}

    def submit(
        self,
        key: UUID | None,
        request: Request,
        run_batch: Callable[[list[Request]], int | None],
        on_queued: Callable[[int], object] | None = None,
        refresh: Callable[[UUID], int | None] | None = None,
    ) -> dict[str, Any]:
        """Run ``request`` in a batch; ``on_queued(position)`` is told at once
        how many requests were queued ahead of it. ``run_batch`` returns the
        key's units left after the batch, if it knows them; ``refresh`` reads
        them from the store (for units freed elsewhere: another process's
        restock, a refund) before a request is refused its ticket."""
        if key is None:
            if on_queued is not None:
                on_queued(0)
            with self._guard:
                self.batch_sizes.add(1)
            run_batch([request])
            return request.outcome()
        self._admit(key, request, refresh)
        if on_queued is not None:
            on_queued(request.position)
        lock = self._locks.lock_for(key)
        while not request.done:
            if not lock.acquire(blocking=False):
                # Someone is running this key's queue: they (or whoever they
                # hand over to) will run this request too.
                request.sleep(WAIT_SECONDS)
                continue
            try:
                self._combine(key, request, run_batch)
            finally:
                lock.release()
            # Requests queued while the lock was being let go: the first of
            # them takes over (or is already trying to).
            with self._guard:
                queue = self._queues.get(key)
                head = queue[0] if queue else None
            if head is not None:
                head.wake()
        return request.outcome()

    def _combine(
        self, key: UUID, mine: Request, run_batch: Callable[[list[Request]], int | None]
    ) -> None:
        """Run the key's queue, batch after batch, until this thread's own
        request is answered (then hand over) or the queue is empty."""
        while not mine.done:
            with self._guard:
                queue = self._queues.get(key)
                if not queue:
                    self._queues.pop(key, None)
                    return
                batch = [queue.popleft() for _ in range(min(len(queue), self._batch_max))]
                if not queue:
                    self._queues.pop(key, None)
                units = sum(r.units for r in batch)
                self._tickets_of(key).running += units
                self.batch_sizes.add(len(batch))
            remaining = None
            try:
                remaining = run_batch(batch)
            except BaseException as error:  # never leave a waiter unanswered
                for waiting in batch:
                    if not waiting.done:
                        waiting.fail(error)
                raise
            finally:
                with self._guard:  # the counts move together
                    tickets = self._tickets_of(key)
                    tickets.queued -= units
                    tickets.running -= units
                    tickets.generation += 1
                    if remaining is not None:
                        tickets.remaining = remaining
                        tickets.known_at = time.monotonic()
                for waiting in batch:
                    waiting.wake()

    def _admit(
        self, key: UUID, request: Request, refresh: Callable[[UUID], int | None] | None
    ) -> None:
        """Queue ``request`` with its ticket, or raise :class:`NoTicket`.

        Short of units -- every unit left is promised to requests queued
        ahead -- it is refused, like a buyer when the tickets are gone (a
        ticket whose request then fails for its own reason frees its unit
        for whoever comes next). Unless what is left was learnt within
        ``REFRESH_AFTER_SECONDS``, the store is read first, in case units
        were freed elsewhere; a read is taken as the truth only if no batch
        ran meanwhile, so no unit is counted twice."""
        reads = 0
        while True:
            with self._guard:
                tickets = self._tickets_of(key)
                generation = tickets.generation
                if (
                    request.units
                    and refresh is not None
                    and tickets.remaining is None
                    and not reads
                ):
                    pass  # the key's first request in this process: learn what is left
                elif not (
                    request.units
                    and tickets.queued
                    and tickets.remaining is not None
                    and tickets.queued + request.units > tickets.remaining
                ):
                    # Enough left -- or nothing queued ahead: then it runs, and
                    # its own decision says precisely why, if it cannot be served.
                    tickets.queued += request.units
                    queue = self._queues.setdefault(key, deque())
                    request.position = len(queue)
                    queue.append(request)
                    return
                elif (
                    refresh is None
                    or reads >= 2
                    or time.monotonic() - tickets.known_at < REFRESH_AFTER_SECONDS
                ):
                    raise NoTicket(tickets.remaining or 0, tickets.queued)
            if refresh is None:
                raise InvariantError("refresh unset")
            fresh = refresh(key)
            reads += 1
            with self._guard:
                tickets = self._tickets_of(key)
                if fresh is not None and tickets.generation == generation and not tickets.running:
                    tickets.remaining = fresh
                    tickets.known_at = time.monotonic()

    def _tickets_of(self, key: UUID) -> _Tickets:
        """(Under the guard.)"""
        tickets = self._tickets.get(key)
        if tickets is None:
            if len(self._tickets) >= TICKET_KEYS_MAX:
                for idle in [k for k, t in self._tickets.items() if not t.queued]:
                    del self._tickets[idle]
            tickets = self._tickets[key] = _Tickets()
        return tickets

    def tickets(self, key: UUID) -> tuple[int | None, int]:
        """(units left as of the key's last batch, units queued now)."""
        with self._guard:
            found = self._tickets.get(key, _Tickets())
            return found.remaining, found.queued
