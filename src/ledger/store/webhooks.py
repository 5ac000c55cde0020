"""Webhooks' tables beside the events: signing secrets, each subscription's
delivery cursor, and the delivery log.

* ``webhook_secrets``: one row per subscription and secret generation
  (``webhook.secret-rotated`` counts them). Sealed with AES-256-GCM under
  the code keyring's active key when the server has one (``--code-keyring``,
  the same keys as the redemption codes, :mod:`ledger.store.codevault`),
  with ``webhook/<subscription>/<generation>`` as associated data; without a
  keyring the secret is kept as it is (``key_id`` empty), in a file or
  schema that is private like the API keys' hashes. Never in an event.
* ``webhook_cursors``: where each subscription's deliveries are: the next
  store position to consider, the failed attempts at it, when to try next,
  the last replay and the last attempt number applied. Written by the one
  active dispatcher only.
* ``webhook_attempts``: the delivery log, one row per attempt: the event's
  position and ``webhook-id``, the attempt number, when, HTTP status,
  latency, error, a response excerpt, the outcome and the next try.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from ledger.store.codevault import Keyring
from ledger.store.dialect import TableStore

_DDL_LOCK_KEY = 0x77686F6B  # "whok": advisory lock id for CREATE TABLE on PostgreSQL


@dataclass
class Cursor:
    subscription_id: str
    position: int  # the next store position to consider
    attempts: int = 0  # failed attempts at the event at ``position``
    next_at: float = 0.0  # Unix seconds: not before
    replayed: int = 0  # the position of the last webhook.replayed applied
    seq: int = 0  # attempts logged so far


@dataclass(frozen=True)
class AttemptRow:
    subscription_id: str
    seq: int
    position: int
    msg_id: str
    attempt: int
    at: str
    status: int | None
    latency_ms: float
    error: str | None
    excerpt: str
    outcome: str  # delivered, retry, failing, gone
    next_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt_id": self.seq,
            "position": self.position,
            "webhook_id": self.msg_id,
            "attempt": self.attempt,
            "at": self.at,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "error": self.error,
            "response_excerpt": self.excerpt,
            "outcome": self.outcome,
            "next_attempt_at": self.next_at,
        }


_ATTEMPT_COLUMNS = (
    "subscription_id, seq, position, msg_id, attempt, at, status, latency_ms, error, "
    "excerpt, outcome, next_at"
)


class WebhookStore(TableStore):
    """Secrets (``{s}``), cursors (``{c}``) and attempts (``{a}``)."""

    def __init__(self, recorder: ApplicationRecorder, keyring: Keyring | None = None) -> None:
        super().__init__(recorder, s="webhook_secrets", c="webhook_cursors", a="webhook_attempts")
        self._keyring = keyring
        blob = self.dialect.blob
        self._create(
            _DDL_LOCK_KEY,
            "CREATE TABLE IF NOT EXISTS {s} (subscription_id TEXT NOT NULL, "
            f"generation INTEGER NOT NULL, key_id TEXT NOT NULL, nonce {blob} NOT NULL, "
            f"secret {blob} NOT NULL, PRIMARY KEY (subscription_id, generation))",
            "CREATE TABLE IF NOT EXISTS {c} (subscription_id TEXT PRIMARY KEY, "
            "position BIGINT NOT NULL, attempts INTEGER NOT NULL, next_at DOUBLE PRECISION "
            "NOT NULL, replayed BIGINT NOT NULL, seq BIGINT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {a} (subscription_id TEXT NOT NULL, seq BIGINT NOT NULL, "
            "position BIGINT NOT NULL, msg_id TEXT NOT NULL, attempt INTEGER NOT NULL, "
            "at TEXT NOT NULL, status INTEGER, latency_ms DOUBLE PRECISION NOT NULL, "
            "error TEXT, excerpt TEXT NOT NULL, outcome TEXT NOT NULL, next_at TEXT, "
            "PRIMARY KEY (subscription_id, seq))",
        )

    # -- secrets --------------------------------------------------------------
    def put_secret(self, subscription_id: str, generation: int, secret: str) -> str:
        """Store a generation's secret unless one is stored; the stored one."""
        ad = f"webhook/{subscription_id}/{generation}"
        if self._keyring is not None:
            key_id, nonce, sealed = self._keyring.seal(ad, secret)
        else:
            key_id, nonce, sealed = "", b"", secret.encode()
        with self._cursor(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {s} (subscription_id, generation, key_id, nonce, secret) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (subscription_id, generation, key_id, nonce, sealed),
            )
        found = self.secrets(subscription_id, (generation,))
        return found[generation]

    def secrets(self, subscription_id: str, generations: Sequence[int]) -> dict[int, str]:
        """The stored secrets of these generations (opened)."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT generation, key_id, nonce, secret FROM {s} WHERE subscription_id = ?"
                ),
                (subscription_id,),
            )
            rows = [_row(r, ("generation", "key_id", "nonce", "secret")) for r in cursor.fetchall()]
        found = {}
        for generation, key_id, nonce, sealed in rows:
            if generation not in generations:
                continue
            if key_id:
                if self._keyring is None:
                    raise LookupError("webhook secrets are sealed: start with --code-keyring")
                ad = f"webhook/{subscription_id}/{generation}"
                found[generation] = self._keyring.refreshed().open(
                    ad, key_id, bytes(nonce), bytes(sealed)
                )
            else:
                found[generation] = bytes(sealed).decode()
        return found

    # -- cursors --------------------------------------------------------------
    def cursors(self) -> dict[str, Cursor]:
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT subscription_id, position, attempts, next_at, replayed, seq FROM {c}"
                )
            )
            names = ("subscription_id", "position", "attempts", "next_at", "replayed", "seq")
            return {r[0]: Cursor(*r) for r in (_row(x, names) for x in cursor.fetchall())}

    def save(self, cursor_row: Cursor, attempts: Sequence[AttemptRow] = ()) -> None:
        """A cursor and the attempts that moved it, in one transaction."""
        c = cursor_row
        with self._cursor(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {c} (subscription_id, position, attempts, next_at, replayed, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subscription_id) DO UPDATE SET "
                    "position = excluded.position, attempts = excluded.attempts, "
                    "next_at = excluded.next_at, replayed = excluded.replayed, seq = excluded.seq"
                ),
                (c.subscription_id, c.position, c.attempts, c.next_at, c.replayed, c.seq),
            )
            for a in attempts:
                cursor.execute(
                    self._sql(
                        f"INSERT INTO {{a}} ({_ATTEMPT_COLUMNS}) VALUES "  # noqa: S608 - ours
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                    ),
                    (
                        a.subscription_id,
                        a.seq,
                        a.position,
                        a.msg_id,
                        a.attempt,
                        a.at,
                        a.status,
                        a.latency_ms,
                        a.error,
                        a.excerpt,
                        a.outcome,
                        a.next_at,
                    ),
                )

    def attempts(
        self, subscription_id: str, *, after: int | None = None, limit: int = 100
    ) -> list[AttemptRow]:
        """The delivery log, newest first, ``limit`` after the cursor ``after``
        (an attempt id: those older than it)."""
        where = "subscription_id = ?" + ("" if after is None else " AND seq < ?")
        params: list[Any] = [subscription_id] + ([] if after is None else [after])
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    f"SELECT {_ATTEMPT_COLUMNS} FROM {{a}} WHERE {where} "  # noqa: S608 - ours
                    f"ORDER BY seq DESC LIMIT {int(limit)}"
                ),
                params,
            )
            names = tuple(n.strip() for n in _ATTEMPT_COLUMNS.split(","))
            return [AttemptRow(*_row(r, names)) for r in cursor.fetchall()]


def _row(row: Any, names: Sequence[str]) -> tuple[Any, ...]:
    """A row as a tuple (SQLite's rows index by position, psycopg's dict rows by name)."""
    if isinstance(row, dict):
        return tuple(row[n] for n in names)
    return tuple(row)
