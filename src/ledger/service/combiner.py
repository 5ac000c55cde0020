"""Group commit by flat combining.

Every command names the aggregate it contends on (a tier's stock for a sale,
a unit for a resale...). Threads submitting commands for the same key queue
up; whichever thread holds the key's lock takes everything queued -- up to
``batch_max`` -- and runs it as one batch, in arrival order, in one
transaction. The others find their command already answered when they get
the lock. Under no load a batch is one command; under a flash sale, one
commit carries many sales, so throughput grows with load instead of
collapsing into conflicts.

The lock is per process. Across processes, correctness comes from the event
store (a batch that loses a version race is retried whole).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ledger.service.locks import StripedLocks


@dataclass(eq=False)
class Request:
    """One submitted command and, once run, its outcome."""

    run: Any  # the command's decision function; the batch runner knows its type
    position: int = 0  # how many were queued ahead of it on arrival
    done: bool = False
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def succeed(self, result: dict[str, Any]) -> None:
        self.result, self.error, self.done = result, None, True

    def fail(self, error: BaseException) -> None:
        self.result, self.error, self.done = None, error, True

    def outcome(self) -> dict[str, Any]:
        if not self.done:
            raise AssertionError("a request left its batch unanswered")
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise AssertionError("a successful request has no result")
        return self.result


class Combiner:
    def __init__(self, batch_max: int) -> None:
        self._batch_max = batch_max
        self._locks = StripedLocks()
        self._guard = threading.Lock()
        self._queues: dict[UUID, deque[Request]] = {}

    def submit(
        self, key: UUID | None, request: Request, run_batch: Callable[[list[Request]], None],
        on_queued: Callable[[int], object] | None = None,
    ) -> dict[str, Any]:
        """Run ``request`` in a batch; ``on_queued(position)`` is told at once
        how many requests were queued ahead of it."""
        if key is None:
            if on_queued is not None:
                on_queued(0)
            run_batch([request])
            return request.outcome()
        with self._guard:
            queue = self._queues.setdefault(key, deque())
            request.position = len(queue)
            queue.append(request)
        if on_queued is not None:
            on_queued(request.position)
        while not request.done:
            with self._locks.hold(key):
                if request.done:
                    break
                with self._guard:
                    batch = [queue.popleft() for _ in range(min(len(queue), self._batch_max))]
                    if not queue:
                        self._queues.pop(key, None)
                try:
                    run_batch(batch)
                except BaseException as error:  # never leave a waiter unanswered
                    for waiting in batch:
                        if not waiting.done:
                            waiting.fail(error)
                    raise
        return request.outcome()
