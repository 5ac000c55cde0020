"""PostgreSQL: the event store's connection pool (below), and housekeeping:
creating and dropping whole databases.

The housekeeping is used by the tests (each run gets its own database) and
the benchmarks.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from eventsourcing.postgres import ConnectionPool, PostgresApplicationRecorder, PostgresFactory
from psycopg import sql
from psycopg_pool import PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from ledger.store.availability import DatabaseDownError, unavailable_reason
from ledger.store.database import APPLICATION_NAME, DEFAULT_DATABASE_TIMEOUT, DatabaseURL


def _connect(
    url: DatabaseURL, *, dbname: str, timeout: float, autocommit: bool = False
) -> psycopg.Connection[tuple[object, ...]]:
    """One plain connection (not the pool's) to ``dbname`` on the URL's server."""
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.user,
        password=url.password,
        dbname=dbname,
        autocommit=autocommit,
        connect_timeout=max(1, math.ceil(timeout)),
    )


def _admin_connection(url: DatabaseURL) -> psycopg.Connection[tuple[object, ...]]:
    return _connect(url, dbname="postgres", timeout=5, autocommit=True)


def server_reachable(url: DatabaseURL) -> str | None:
    """None if the server answers, else the reason it does not."""
    try:
        with _admin_connection(url) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


@dataclass(frozen=True, slots=True)
class ConnectProblem:
    """Why a database cannot be used, in a user's words."""

    cause: str  # e.g. 'Connection refused', 'database "x" does not exist'
    lasting: bool  # the server answered and refused: waiting will not help


# The server answered, and no retry will change its answer.
_LASTING = re.compile(
    r"does not exist|authentication failed|no pg_hba\.conf entry|password|"
    r"permission denied|not permitted"
)  # (a host name that does not resolve may yet: a database container still starting)


def connect_problem(
    url: DatabaseURL, timeout: float, *, store: bool = False
) -> ConnectProblem | None:
    """None if the database itself (not only its server) takes a connection
    within ``timeout`` seconds -- and, with ``store``, holds a ledger store
    (the events table, in the URL's schema: reading commands ask, so as not
    to create one) --, else why not."""
    try:
        with _connect(url, dbname=url.dbname, timeout=timeout) as connection:
            if not store:
                connection.execute("SELECT 1")
                return None
            name = sql.Identifier(url.schema, f"{APPLICATION_NAME}_events").as_string(connection)
            row = connection.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    except psycopg.Error as error:
        return connect_cause(str(error))
    if row is None or row[0] is None:
        return ConnectProblem(cause=NO_STORE, lasting=True)
    return None


NO_STORE = "no ledger store in this database"


def connect_cause(text: str) -> ConnectProblem:
    """The cause in libpq's message: its first line, after the last
    ``failed:``, without the severity ('FATAL:  database "x" does not exist'
    -> 'database "x" does not exist')."""
    first = text.strip().splitlines()[0] if text.strip() else "no connection"
    cause = first.rsplit("failed: ", 1)[-1]
    cause = re.sub(r"^(FATAL|ERROR):\s*", "", cause)
    cause = " ".join(cause.split())
    return ConnectProblem(cause=cause, lasting=_LASTING.search(cause) is not None)


def create_database(url: DatabaseURL) -> None:
    with _admin_connection(url) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (url.dbname,)
        ).fetchone()
        if found is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.dbname)))


def drop_database(url: DatabaseURL) -> None:
    with _admin_connection(url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.dbname))
        )


def create_schema(url: DatabaseURL) -> None:
    with psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.user,
        password=url.password,
        dbname=url.dbname,
        autocommit=True,
        connect_timeout=5,
    ) as connection:
        connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(url.schema))
        )


# ---------------------------------------------------------------------------
# The event store's connections: bounded waits, fast failure, fast recovery
# ---------------------------------------------------------------------------
#
# The ``eventsourcing`` PostgreSQL recorder, as it comes, waits up to its
# connect timeout for a pooled connection and retries each call ten times on
# any OperationalError; its pool, after losing its connections, reconnects
# with a backoff that doubles without limit. Under an outage that held a
# request for tens of seconds, and after one the pool took seconds more to
# notice the database was back. The factory below (named in the store's
# settings, see DatabaseURL.event_store_env) keeps the library's SQL and
# replaces only that: a pool that waits at most ``DATABASE_TIMEOUT`` seconds,
# fails at once while the database is known to be down, reconnects every
# half second, and is refreshed as soon as a probe finds the database again;
# and a recorder whose calls are not retried (the service decides what to
# retry: conflicts, never an outage beyond the time bound).

PROBE_INTERVAL = 0.2  # seconds between probes while the database is down
RECONNECT_DELAY_MAX = 0.5  # the pool's reconnection backoff stops growing here

logger = logging.getLogger("ledger.store")


class Availability:
    """Whether the database answers, as this process last found out.

    Up until something fails (a pool timeout, a connection lost or failing
    its check); then a probe connects in the background, and if it cannot,
    the database is *down*: every request for a connection fails at once
    (:class:`DatabaseDownError`) instead of waiting, until a probe --
    every ``PROBE_INTERVAL`` s -- connects again. Then the pool's idle
    connections (made before, likely dead) are dropped, and it is up."""

    def __init__(self, connect_kwargs: dict[str, Any], display: str, connect_timeout: int) -> None:
        self._kwargs = {k: v for k, v in connect_kwargs.items() if k != "row_factory"}
        self._kwargs["connect_timeout"] = connect_timeout
        self.display = display
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._reason = ""
        self._prober: threading.Thread | None = None
        self._closed = threading.Event()
        self.on_up: Callable[[], object] | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def check(self) -> None:
        """Raise :class:`DatabaseDownError` at once if the database is down."""
        if self._down_since is not None:
            raise DatabaseDownError(f"the database is unavailable: {self._reason}")

    def suspect(self, reason: str) -> None:
        """Something failed: find out, in the background, whether the
        database still answers (one probe at a time)."""
        with self._lock:
            if self._closed.is_set() or (self._prober is not None and self._prober.is_alive()):
                return
            self._prober = threading.Thread(
                target=self._probe, args=(reason,), name="ledger-db-probe", daemon=True
            )
            self._prober.start()

    def confirm(self, reason: str) -> None:
        """A connection failed its check: ask the server now. If it does not
        answer, the database is down from this moment (and the background
        probe watches for its return): raise :class:`DatabaseDownError`."""
        self.check()
        try:
            self.probe_once()
        except Exception as error:
            self._mark_down(unavailable_reason(error) or str(error).strip() or reason)
            self.suspect(reason)  # the background probe, to see it come back
            self.check()

    def _mark_down(self, reason: str) -> None:
        with self._lock:
            self._reason = reason
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        logger.warning(
            "the database at %s is unavailable (%s): requests are answered 503 "
            "database-unavailable until it is back",
            self.display,
            reason,
        )

    def probe_once(self) -> None:
        """Connect and ask the server one question; raises if it cannot."""
        with psycopg.connect(autocommit=True, **self._kwargs) as connection:
            connection.execute("SELECT 1")

    def _probe(self, reason: str) -> None:
        while not self._closed.is_set():
            try:
                self.probe_once()
            except Exception as error:  # the database does not answer (or not well)
                reason = unavailable_reason(error) or str(error).strip() or reason
                self._mark_down(reason)
                self._closed.wait(PROBE_INTERVAL)
                continue
            break
        since = self._down_since
        if since is not None and not self._closed.is_set():
            if self.on_up is not None:
                self.on_up()  # before letting requests through: no stale connections
            self._down_since = None
            logger.warning(
                "the database at %s answers again (down %.1f s)",
                self.display,
                time.monotonic() - since,
            )

    def close(self) -> None:
        self._closed.set()


class _QuickRetry(AttemptWithBackoff):
    """The pool's reconnection backoff, capped at RECONNECT_DELAY_MAX."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_DELAY_MAX)


class LedgerPool(ConnectionPool[Any]):
    """The event store's pool, told about the database's availability."""

    def __init__(
        self, *args: Any, availability: Availability, pre_ping: bool, **kwargs: Any
    ) -> None:
        self.availability = availability
        self._pre_ping = pre_ping
        availability.on_up = self.drain
        super().__init__(*args, **kwargs)

    def getconn(self, timeout: float | None = None) -> Any:
        """A connection within ``timeout`` (default: the pool's), checked if
        pre-ping is on. A connection that fails its check makes the pool
        ask the server at once (:meth:`Availability.confirm`): down, and this
        fails now rather than at the timeout (the library's own check loop
        would sleep 1, 2, 4 s between dead connections)."""
        self.availability.check()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                conn = super().getconn(max(0.001, deadline - time.monotonic()))
            except PoolTimeout as error:
                self.availability.suspect(str(error))
                raise
            if not self._pre_ping:
                return conn
            try:
                ConnectionPool.check_connection(conn)
            except Exception as error:
                self.putconn(conn)  # broken: the pool replaces it
                self.availability.confirm(str(error))  # raises if the server is down
                continue
            return conn

    def putconn(self, conn: Any) -> None:
        if conn.broken:  # lost mid-use: is it just this one?
            self.availability.suspect("a connection to the database was lost")
        super().putconn(conn)

    def _add_connection(self, attempt: Any, growing: bool = False) -> None:
        super()._add_connection(attempt or _QuickRetry(timeout=self.reconnect_timeout), growing)

    def close(self, timeout: float = 5.0) -> None:
        self.availability.close()
        super().close(timeout)


def _unwrapped(method: Any) -> Any:
    """The library's recorder method without its retry decorator."""
    return getattr(method, "__wrapped__", method)


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """The library's recorder, less its ten retries of each call on any
    OperationalError (ten pool timeouts per call during an outage)."""

    insert_events = _unwrapped(PostgresApplicationRecorder.insert_events)
    select_events = _unwrapped(PostgresApplicationRecorder.select_events)
    select_notifications = _unwrapped(PostgresApplicationRecorder.select_notifications)
    max_notification_id = _unwrapped(PostgresApplicationRecorder.max_notification_id)


class LedgerPostgresFactory(PostgresFactory):
    """``eventsourcing.postgres`` with :class:`LedgerPool` and
    :class:`LedgerPostgresRecorder` (see above)."""

    application_recorder_class = LedgerPostgresRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        timeout = float(self.env.get("DATABASE_TIMEOUT") or DEFAULT_DATABASE_TIMEOUT)
        datastore = self.datastore
        old = datastore.pool  # not opened yet: only its settings are taken
        kwargs: dict[str, Any] = dict(cast(dict[str, Any], old.kwargs))
        connect_timeout = max(2, math.ceil(timeout))  # (libpq's least is 2 s)
        kwargs["connect_timeout"] = connect_timeout
        display = (
            f"postgresql://{kwargs.get('user')}@{kwargs.get('host')}:"
            f"{kwargs.get('port')}/{kwargs.get('dbname')}"
        )
        availability = Availability(kwargs, display, connect_timeout)

        datastore.pool = LedgerPool(
            connection_class=old.connection_class,
            kwargs=kwargs,
            min_size=old.min_size,
            max_size=old.max_size,
            open=False,
            configure=datastore.after_connect_func(),
            timeout=timeout,
            max_waiting=old.max_waiting,
            max_lifetime=old.max_lifetime,
            reconnect_timeout=24 * 3600.0,
            availability=availability,
            pre_ping=bool(datastore.pre_ping),
        )


def availability_of(recorder: object) -> Availability | None:
    """The availability tracker behind a recorder's pool (None: SQLite)."""
    pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    found = getattr(pool, "availability", None)
    return found if isinstance(found, Availability) else None
