"""Telling "the database is unavailable" from every other database error.

A version conflict, a lock timeout or SQLite's "database is locked" are
contention: the service retries them. A connection that cannot be made or
was lost, a pool that gave no connection within its timeout, a server
shutting down or starting up: those mean the database cannot be reached
now. Retrying them like conflicts held sales for up to a minute during an
outage; instead they are answered at once with a 503
``database-unavailable`` problem and a ``Retry-After`` header.

This module imports no domain code (the verifier may read stores through
the same machinery).
"""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

# SQLSTATEs that mean the server cannot serve us now: class 08 (connection
# exception), 57P01-57P03 (admin shutdown, crash shutdown, cannot connect
# now: starting up or shutting down) and 53300 (too many connections).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
RETRY_AFTER_SECONDS = 1  # what a client is told to wait before trying again


class DatabaseUnavailableError(Exception):
    """The database could not be reached within the time bound.

    ``outcome_unknown``: the connection was lost while a command's commit
    was under way, so it may or may not have been stored. Either way the
    client retries with the same idempotency key and gets the one answer.
    """

    code = "database-unavailable"

    def __init__(self, reason: str, *, outcome_unknown: bool = False) -> None:
        if outcome_unknown:
            message = (
                f"the database became unavailable while the command was being "
                f"committed ({reason}); it may or may not have been recorded: retry "
                f"with the same Idempotency-Key to get its one answer"
            )
        else:
            message = f"the database is unavailable ({reason}); nothing was changed"
        super().__init__(message)
        self.reason = reason
        self.outcome_unknown = outcome_unknown


class DatabaseDownError(PoolTimeout):
    """Raised at once, without waiting, while the database is known to be
    down (see :class:`ledger.store.postgres.Availability`)."""


def unavailable_reason(error: BaseException) -> str | None:
    """A one-line reason if ``error`` (or what it wraps) means the database
    cannot be reached now; None for anything else (conflicts, bad SQL...)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseUnavailableError):
            return current.reason
        if isinstance(current, PoolTimeout):
            return _first_line(current) or "no database connection within the time bound"
        if isinstance(current, psycopg.OperationalError | psycopg.InterfaceError):
            state = current.sqlstate
            if state is None or state.startswith(_UNAVAILABLE_STATES):
                return _first_line(current) or type(current).__name__
            return None
        current = current.__cause__
    return None


def fast_failure(error: BaseException) -> bool:
    """Whether ``error`` was raised without waiting because the database is
    known to be down (retrying it at once would only spin)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseDownError):
            return True
        current = current.__cause__
    return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else ""
