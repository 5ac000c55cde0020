"""The dispatcher: the event log is the outbox.

``ledger serve`` runs one :class:`Dispatcher` per process, and exactly one
of them is *active* per store (:class:`DispatchLock`: a session advisory
lock on PostgreSQL, held on a connection of its own, so a process killed
with -9 lets go when its connection dies; a file lock beside a SQLite
file). The others wait for the lock.

The active one, off the write path (threads of its own, which only read
the log and write the webhooks' own tables):

* the *reader* follows the log in position order: it learns whom later
  events concern (:class:`~ledger.domain.subscription.Audience`) and each
  subscription's life from its ``webhook.*`` events -- registered (its
  cursor starts after that event), paused, resumed (failed attempts
  forgotten), failing, deleted, replayed (its cursor moves back, once per
  replay event);
* a *worker* per live subscription sends, strictly in log order, each
  event of its types that its owner may read
  (:func:`~ledger.domain.subscription.visible`), signed with its secrets
  (during a rotation's grace, the old and the new), and moves its cursor
  past what was delivered. A failure (timeout, 5xx, 429, any other
  non-2xx) is retried after :func:`~ledger.domain.webhook.retry_delay`
  (which honours ``Retry-After``); after the last, the subscription is
  marked failing (``webhook.failing``, kept, resumable); a 410 marks it
  failing at once (reason ``gone``). Every attempt is in the delivery log.

At-least-once: the cursor is saved after each batch of deliveries, so a
process killed between a delivery and the save sends that event again
(same ``webhook-id``) -- receivers de-duplicate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ledger.domain import canonical
from ledger.domain.errors import LedgerError
from ledger.domain.model import parse_timestamp
from ledger.domain.subscription import LEARNT_FROM, Audience, payload_of, visible
from ledger.domain.webhook import retry_delay
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.store.webhooks import AttemptRow, Cursor, WebhookStore
from ledger.webhooks.sender import Attempt, Sender, SigningKey

logger = logging.getLogger("ledger.webhooks")
_WEBHOOK_EVENTS = (
    "webhook.registered",
    "webhook.secret-rotated",
    "webhook.paused",
    "webhook.resumed",
    "webhook.deleted",
    "webhook.failing",
    "webhook.replayed",
)
_READ_TOPICS = sorted(LEARNT_FROM | set(_WEBHOOK_EVENTS))
READ_BATCH = 1000
SEND_BATCH = 100
LOCK_RETRY = 1.0


class DispatchLock:
    """Exactly one active dispatcher per store."""

    def __init__(self, url: DatabaseURL) -> None:
        self._url = url
        self._conn: Any = None
        self._file: int | None = None

    def acquire(self) -> bool:
        if self._url.backend == "postgresql":
            return self._acquire_pg()
        fd = os.open(self._url.path + ".webhooks.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._file = fd
        return True

    def _acquire_pg(self) -> bool:
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        u = self._url
        key = int.from_bytes(
            hashlib.sha256(f"ledger-webhooks/{u.schema}".encode()).digest()[:8], "big", signed=True
        )
        try:
            conn = psycopg.connect(
                host=u.host,
                port=u.port,
                user=u.user,
                password=u.password,
                dbname=u.dbname,
                autocommit=True,
                connect_timeout=max(2, int(u.timeout)),
            )
        except psycopg.Error:
            return False
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not row or not row[0]:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        """Whether the lock is still ours (PostgreSQL: its connection answers)."""
        if self._conn is None:
            return self._file is not None
        try:
            self._conn.execute("SELECT 1")
        except Exception:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._file is not None:
            os.close(self._file)
            self._file = None


@dataclass
class _Sub:
    """A subscription as the log says it is."""

    subscription_id: str
    owner_role: str
    owner: str | None
    url: str
    types: list[str]
    state: str = "active"
    generation: int = 1
    grace_until: datetime | None = None
    cursor: Cursor = field(default_factory=lambda: Cursor("", 0))
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None


class Dispatcher:
    """Follows the log and delivers (see the module's text)."""

    def __init__(
        self,
        ledger: Ledger,
        store: WebhookStore,
        sender: Sender,
        url: DatabaseURL,
        *,
        poll_interval: float = 0.05,
        rng: random.Random | None = None,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._sender = sender
        self._lock = DispatchLock(url)
        self._poll = poll_interval
        self._rng = rng or random.SystemRandom()
        self._recorder = ledger.event_store.recorder
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._audience = Audience()
        self._audience_lock = threading.Lock()
        self._subs: dict[str, _Sub] = {}
        self._cursors: dict[str, Cursor] = {}
        self._by_aggregate: dict[str, str] = {}  # aggregate id -> subscription id
        self._secrets: dict[tuple[str, int], str] = {}
        self.head = 1  # the reader has learnt every position before this
        self.active = threading.Event()  # this process holds the lock
        self.caught_up = threading.Event()

    # -- life -----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ledger-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for sub in list(self._subs.values()):
            sub.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for sub in list(self._subs.values()):
            if sub.worker is not None:
                sub.worker.join(timeout=30)
        self._lock.release()
        self._sender.close()

    def nudge(self) -> None:
        """Something changed (a subscription's command): look now."""
        for sub in list(self._subs.values()):
            sub.wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                acquired = self._lock.acquire()
            except Exception:
                logger.exception("webhooks: cannot take the dispatch lock")
                acquired = False
            if not acquired:
                self._stop.wait(LOCK_RETRY)
                continue
            self.active.set()
            logger.info("webhooks: this process dispatches")
            try:
                self._dispatch()
            except Exception:
                logger.exception("webhooks: the dispatcher stopped; taking over again")
            finally:
                self.active.clear()
                self._lock.release()
            self._stop.wait(LOCK_RETRY)

    def _dispatch(self) -> None:
        self._cursors = self._store.cursors()
        checked = time.monotonic()
        while not self._stop.is_set():
            moved = self._read()
            if not moved:
                self.caught_up.set()
                self._start_workers()
                self._stop.wait(self._poll)
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if not self._lock.held():
                    logger.warning("webhooks: lost the dispatch lock")
                    return

    # -- the reader -------------------------------------------------------------
    def _read(self) -> bool:
        """Learn from the next events of the log; whether there were any."""
        last = int(self._recorder.max_notification_id() or 0)
        if last < self.head:
            return False
        stop = min(last, self.head + READ_BATCH * 10)
        rows = self._recorder.select_notifications(
            start=self.head, limit=READ_BATCH, stop=stop, topics=_READ_TOPICS
        )
        upto = rows[-1].id if len(rows) == READ_BATCH else stop
        with self._audience_lock:
            for row in rows:
                value = orjson.loads(bytes(row.state))
                kind, agg = row.topic, str(row.originator_id)
                if kind.startswith("webhook."):
                    self._on_webhook_event(kind, agg, value, row.id)
                else:
                    self._audience.learn(kind, agg, value["payload"], row.id)
            self.head = upto + 1
        for sub in self._subs.values():
            sub.wake.set()
        return True

    def _on_webhook_event(self, kind: str, agg: str, value: dict[str, Any], position: int) -> None:
        p = value["payload"]
        if kind == "webhook.registered":
            sid = self._by_aggregate[agg] = p["subscription_id"]
            cursor = self._cursors.get(sid) or Cursor(sid, position + 1)
            self._subs[sid] = _Sub(sid, p["owner_role"], p["owner"], p["url"], p["types"])
            self._subs[sid].cursor = cursor
            if sid not in self._cursors:
                self._cursors[sid] = cursor
                self._store.save(cursor)
            return
        sub = self._subs.get(self._by_aggregate.get(agg, ""))
        if sub is None:
            return
        with sub.lock:
            self._change(sub, kind, p, position)
        sub.wake.set()

    def _change(self, sub: _Sub, kind: str, p: dict[str, Any], position: int) -> None:
        if kind == "webhook.secret-rotated":
            sub.generation = p["generation"]
            sub.grace_until = parse_timestamp(p["grace_until"])
        elif kind == "webhook.paused":
            sub.state = "paused"
        elif kind == "webhook.resumed":
            sub.state = "active"
            sub.cursor.attempts, sub.cursor.next_at = 0, 0.0
        elif kind == "webhook.failing":
            sub.state = "failing"
        elif kind == "webhook.deleted":
            sub.state = "deleted"
        elif kind == "webhook.replayed" and sub.cursor.replayed < position:
            c = sub.cursor
            c.position, c.attempts, c.next_at, c.replayed = p["from_position"], 0, 0.0, position
            self._store.save(c)

    def _start_workers(self) -> None:
        for sub in self._subs.values():
            if sub.worker is None and sub.state != "deleted":
                sub.worker = threading.Thread(
                    target=self._work,
                    args=(sub,),
                    name=f"ledger-webhook-{sub.subscription_id[:8]}",
                    daemon=True,
                )
                sub.worker.start()

    # -- a worker ---------------------------------------------------------------
    def _work(self, sub: _Sub) -> None:
        while not self._stop.is_set() and self.active.is_set() and sub.state != "deleted":
            sub.wake.clear()
            try:
                wait = self._deliver_some(sub)
            except Exception:
                logger.exception("webhooks: subscription %s", sub.subscription_id)
                wait = 1.0
            if wait:
                sub.wake.wait(wait)
        sub.worker = None

    def _deliver_some(self, sub: _Sub) -> float:
        """Deliver the subscription's next events; how long to wait then (0: go on)."""
        c = sub.cursor
        if sub.state != "active":
            return 1.0
        if c.next_at > time.time():
            return min(c.next_at - time.time(), 1.0)
        head = self.head
        if c.position >= head:
            return 1.0
        rows = self._recorder.select_notifications(
            start=c.position, limit=SEND_BATCH, stop=head - 1, topics=sub.types
        )
        logged: list[AttemptRow] = []
        wait = 0.0
        for row in rows:
            if self._stop.is_set() or sub.state != "active":
                break
            value = orjson.loads(bytes(row.state))
            agg = str(row.originator_id)
            with self._audience_lock:
                concerns = self._audience.concerns(row.topic, agg, value["payload"], row.id)
            if not visible(sub.owner_role, sub.owner, row.topic, concerns):
                c.position = row.id + 1
                continue
            body = canonical.encode(
                payload_of(
                    row.topic,
                    agg,
                    row.originator_version,
                    row.id,
                    value["timestamp"],
                    value["payload"],
                )
            )
            msg_id = str(orjson.loads(body)["id"])
            attempt = self._sender.send(
                sub.url, msg_id=msg_id, body=body, keys=self._keys(sub), now=datetime.now(UTC)
            )
            logged.append(self._logged(sub, row.id, msg_id, attempt))
            if attempt.delivered:
                c.position, c.attempts = row.id + 1, 0
                continue
            wait = self._failed(sub, row.id, attempt, logged)
            break
        else:
            if len(rows) < SEND_BATCH:
                c.position = max(c.position, head)
        with sub.lock:
            self._store.save(c, logged)
        return wait

    def _logged(self, sub: _Sub, position: int, msg_id: str, attempt: Attempt) -> AttemptRow:
        c = sub.cursor
        c.seq += 1
        outcome = "delivered" if attempt.delivered else ("gone" if attempt.gone else "retry")
        return AttemptRow(
            sub.subscription_id,
            c.seq,
            position,
            msg_id,
            c.attempts + 1,
            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            attempt.status,
            attempt.latency_ms,
            attempt.error,
            attempt.excerpt,
            outcome,
            None,
        )

    def _failed(
        self, sub: _Sub, position: int, attempt: Attempt, logged: list[AttemptRow]
    ) -> float:
        c = sub.cursor
        c.attempts += 1
        delay = None if attempt.gone else retry_delay(c.attempts, attempt.retry_after, self._rng)
        last = logged[-1]
        if delay is None:
            logged[-1] = _replace(last, outcome="gone" if attempt.gone else "failing")
            reason = "gone" if attempt.gone else "exhausted"
            try:
                self._ledger.webhook_failing(sub.subscription_id, position, c.attempts, reason)
            except LedgerError as error:  # paused or deleted meanwhile
                logger.info("webhooks: %s not marked failing: %s", sub.subscription_id, error)
            sub.state = "failing"
            return 1.0
        c.next_at = time.time() + delay
        logged[-1] = _replace(
            last,
            next_at=datetime.fromtimestamp(c.next_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        )
        return min(delay, 1.0)

    def _keys(self, sub: _Sub) -> list[SigningKey]:
        generations = [sub.generation]
        if sub.grace_until is not None and datetime.now(UTC) < sub.grace_until:
            generations.append(sub.generation - 1)
        missing = [g for g in generations if (sub.subscription_id, g) not in self._secrets]
        if missing:
            for g, secret in self._store.secrets(sub.subscription_id, missing).items():
                self._secrets[sub.subscription_id, g] = secret
        return [
            SigningKey("v1", self._secrets[sub.subscription_id, g])
            for g in generations
            if (sub.subscription_id, g) in self._secrets
        ]


def _replace(row: AttemptRow, **changes: Any) -> AttemptRow:
    return dataclasses.replace(row, **changes)
