"""In-process striped locks.

Within one process, commands on the same aggregate are serialised by these
locks so they queue instead of failing each other's optimistic-concurrency
check. They are only an optimisation: across processes the event store's
unique (aggregate id, version) key is what keeps the ledger correct, and a
conflict there is retried.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from uuid import UUID


class StripedLocks:
    def __init__(self, stripes: int = 256) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def lock_for(self, key: UUID) -> threading.Lock:
        return self._locks[key.int % len(self._locks)]

    @contextmanager
    def _held(self, key: UUID) -> Iterator[None]:
        with self.lock_for(key):
            yield

    def hold(self, key: UUID | None) -> AbstractContextManager[None]:
        if key is None:
            return nullcontext()
        return self._held(key)
