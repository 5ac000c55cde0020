"""Keeping the views live: a thread that follows the store.

On PostgreSQL the runner LISTENs on the channel the event store NOTIFYs on
every insert, so a commit wakes it at once (with a slow poll as a safety
net). SQLite has no notifications: the runner polls the store's
notification log every ``poll_interval`` seconds while idle, and not at all
while it has a backlog.

It measures the lag from each event's timestamp (taken when the command
was decided, just before its commit) to the commit of the view update
that includes it, and tells subscribers (the stock streams) which goods
changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from ledger.domain.model import format_timestamp, parse_timestamp
from ledger.projections.projector import Changes
from ledger.projections.store import BATCH_EVENTS, ProjectionStore
from ledger.store.availability import unavailable_reason

logger = logging.getLogger("ledger.projections")
Listener = Callable[[Changes], None]
LAG_WINDOW = 2_048  # batches whose lag is kept for percentiles
T = TypeVar("T")


class ViewsBehindError(LookupError):
    """A lookup missed, and the views did not reach the store position it
    needed within the wait: the miss proves nothing yet."""

    def __init__(self, position: int, needed: int) -> None:
        super().__init__(f"the views are at store position {position} of {needed}")
        self.position, self.needed = position, needed


def now_text() -> str:
    """The present moment as the views record it."""
    return format_timestamp(datetime.now(UTC))


class LagStats:
    """Lag of each batch, from its first (longest-waiting) event's timestamp
    to the batch's commit; percentiles over the last ``LAG_WINDOW`` batches."""

    def __init__(self) -> None:
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self.last: float | None = None
        self.max: float = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._lags.append(seconds)
            self.count += 1
            self.last = seconds
            self.max = max(self.max, seconds)

    def summary(self) -> dict[str, float | int | None]:
        with self._lock:
            ordered = sorted(self._lags)

        def pct(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 6)

        return {
            "batches": self.count,
            "window": len(ordered),
            "last_seconds": self.last,
            "p50_seconds": pct(0.50),
            "p99_seconds": pct(0.99),
            "max_seconds": round(self.max, 6),
        }


class ProjectionRunner:
    def __init__(
        self,
        store: ProjectionStore,
        *,
        poll_interval: float = 0.05,
        min_interval: float = 0.02,
        batch_events: int = BATCH_EVENTS,
        listen_dsn: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.min_interval = min_interval
        self.batch_events = batch_events
        self.lag = LagStats()
        self.error: str | None = None
        self.caught_up = threading.Event()  # has applied everything there was, once
        self._listen_dsn = listen_dsn  # PostgreSQL: where to LISTEN
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._applied = threading.Condition()
        self._position = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listen_thread: threading.Thread | None = None

    # -- subscribers ---------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _tell(self, changes: Changes) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(changes)
            except Exception:  # a broken stream must not stop the views
                logger.exception("projection listener failed")

    # -- running -------------------------------------------------------------
    def poke(self) -> None:
        """Something was committed: look now rather than at the next poll."""
        self._wake.set()

    def step(self) -> int:
        """Apply everything there is now; return how many events."""
        total = 0
        while not self._stop.is_set():
            changes = self._apply_batch()
            if changes is None:
                break
            total += changes.events
        return total

    def _apply_next(self) -> tuple[Changes | None, int]:
        """Apply the next batch: what it changed (None: nothing new), and
        the views' position as last read."""
        changes = self.store.apply_next(now_text, limit=self.batch_events)
        return changes, self.store.seen_position

    def _apply_batch(self) -> Changes | None:
        changes, seen = self._apply_next()
        if changes is None:  # nothing new; another runner may have moved the views on
            with self._applied:
                self._position = max(self._position, seen)
                self._applied.notify_all()
            return None
        if changes.events:
            if changes.first_event_at is not None:  # the batch's longest wait
                decided = parse_timestamp(changes.first_event_at)
                self.lag.add(max(0.0, (datetime.now(UTC) - decided).total_seconds()))
            self._tell(changes)
        with self._applied:
            self._position = max(self._position, changes.position)
            self._applied.notify_all()
        return changes

    @property
    def position(self) -> int:
        """The store position the views have reached (as this runner knows)."""
        with self._applied:
            return self._position

    def wait_for(self, position: int, timeout: float = 10.0) -> bool:
        """Block until the views include store position ``position``."""
        deadline = time.monotonic() + timeout
        self.poke()
        with self._applied:
            while self._position < position:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._applied.wait(min(left, 0.05))
        return True

    def lookup(
        self, fetch: Callable[[], T | None], head: Callable[[], int], timeout: float
    ) -> T | None:
        """``fetch()`` from the views; None only if the views it read held
        every event stored before this call (``head()``: the store's
        position now), so that a miss means "not there" and never "not
        there yet" -- what a client has just been told is created is found.

        The position that counts is the one read *before* the fetch: a
        batch committed while the fetch ran may have moved the views past
        the store's head by the time it is asked, yet the fetch read them
        as they were. (Comparing with the position after the fetch is how
        a unit just sold was once reported missing.) When the views are
        behind, wait up to ``timeout`` for them and fetch again; if they
        are still behind, raise :class:`ViewsBehindError`."""
        # The runner's position moves only after a batch commits, so the
        # views the fetch reads are at least this far on.
        before = self.position
        found = fetch()
        if found is not None:
            return found
        needed = head()
        if before >= needed:
            return None
        if not self.wait_for(needed, timeout):
            raise ViewsBehindError(self.position, needed)
        return fetch()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._position = self.store.position().position
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="projections", daemon=True)
        self._thread.start()
        if self._listen_dsn is not None:
            self._listen_thread = threading.Thread(
                target=self._listen, name="projections-listen", daemon=True
            )
            self._listen_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._listen_thread):
            if thread is not None:
                thread.join(timeout=10)
        self._thread = self._listen_thread = None

    def _run(self) -> None:
        # A full batch means a backlog: go straight on. Otherwise wait for the
        # next notification (PostgreSQL) or poll (SQLite), and never start
        # batches closer than min_interval: under a stream of commits that
        # gathers them into fewer, larger transactions instead of spinning.
        idle_wait = self.poll_interval if self._listen_dsn is None else 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            backlog = False
            try:
                changes = self._apply_batch()
                backlog = changes is not None and changes.events >= self.batch_events
                self.error = None
                if not backlog:
                    self.caught_up.set()
            except Exception as error:  # keep following; report the failure
                reason = unavailable_reason(error)
                if reason is None:
                    logger.exception("projection batch failed; retrying")
                elif self.error is None:  # once per outage, without a traceback
                    logger.warning("the views wait for the database (%s)", reason)
                self.error = f"{type(error).__name__}: {error}"
                # (an outage fails at once: look again soon, to follow its end closely)
                self._stop.wait(1.0 if reason is None else 0.2)
            if backlog:
                continue
            self._stop.wait(max(0.0, self.min_interval - (time.monotonic() - started)))
            self._wake.wait(idle_wait)
            self._wake.clear()

    def _listen(self) -> None:
        channel = getattr(self.store.recorder, "channel_name", "ledger_events")
        while not self._stop.is_set():
            try:
                with psycopg.connect(autocommit=True, **(self._listen_dsn or {})) as connection:
                    connection.execute(f'LISTEN "{channel}"')
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=0.5, stop_after=1):
                            self._wake.set()
            except Exception as error:
                if unavailable_reason(error) is None:
                    logger.exception("LISTEN for new events failed; polling meanwhile")
                self._stop.wait(1.0)

    def status(self) -> dict[str, Any]:
        view = self.store.position()
        head = self.store.store_position()
        return {
            "position": view.position,
            "store_position": head,
            "behind": max(0, head - view.position),
            "events_applied": view.events,
            "last_event_at": view.last_event_at,
            "applied_at": view.applied_at,
            "lag": self.lag.summary(),
            "error": self.error,
        }
