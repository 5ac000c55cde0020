"""API keys: issued once, stored hashed, each with a role and a scope.

A key reads ``lk_<key id>_<secret>``: the key id (12 hex digits) finds the
row, the secret (32 random bytes, base64url) is checked against its stored
SHA-256 in constant time. A fast hash is right here: the secret has 256 bits
of entropy, so there is nothing to brute-force that a slow hash would slow.
The table lives beside the events (``api_keys`` on SQLite,
``"<schema>".ledger_api_keys`` on PostgreSQL), reached through the event
store's own connections, like the log's tables.

Given the ledger (``events``: :class:`KeyEvents`), a key's issue and
revocation are also recorded as events (``apikey.issued``, ``apikey.revoked``;
docs/format.md section 5), so that the log shows every key's life and the
verifier can hold each event ``recorded_by`` a key to it. The order keeps the
two consistent: the issue is recorded *before* the row is written (a failure
between leaves an event for a key that never authenticates: harmless), the
revocation *after* the row is revoked (a failure between leaves a key that
no longer authenticates, its revocation not yet logged: revoking it again
records it; so does :meth:`ApiKeyStore.repair_events`, which ``ledger serve``
runs at start for rows written without events -- by older versions, or by a
key table opened without the ledger).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from eventsourcing.persistence import ApplicationRecorder

from ledger.domain.errors import LedgerError, NotFoundError
from ledger.store.database import DatabaseURL
from ledger.store.dialect import TableStore
from ledger.store.sidetables import open_recorder

_DDL_LOCK_KEY = 0x6B657973  # "keys": advisory lock id for CREATE TABLE on PostgreSQL
_TOKEN = re.compile(r"^lk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
CACHE_SECONDS = 5.0
REVOCATION_GRACE = CACHE_SECONDS + 1.0  # row revoked -> apikey.revoked recorded
MAX_LABEL = 200


class Role(enum.StrEnum):
    ADMIN = "admin"
    CREATOR = "creator"
    CHANNEL = "channel"
    AUDITOR = "auditor"
    VERIFIER = "verifier"


SCOPED = (Role.CREATOR, Role.CHANNEL)  # roles that act for one creator or channel


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    subject: str | None  # the creator or channel id, for scoped roles
    label: str = ""


def check_grant(role: Role | str, subject: str | None, label: str = "") -> tuple[Role, str | None]:
    """The role and subject of a key to issue, or ``ValueError`` saying what is wrong."""
    try:
        chosen = Role(role)
    except ValueError:
        raise ValueError(
            f"unknown role {role!r}: use one of {', '.join(r.value for r in Role)}"
        ) from None
    if chosen in SCOPED:
        if subject is None or not _SUBJECT.fullmatch(subject):
            raise ValueError(
                f"a {chosen.value} key needs --subject: the {chosen.value} id it "
                "acts for (letters, digits and _.:@-, at most 128)"
            )
    elif subject is not None:
        raise ValueError(f"a {chosen.value} key acts for no one in particular: drop --subject")
    if len(label) > MAX_LABEL:
        raise ValueError(f"a key's label is at most {MAX_LABEL} characters")
    if any(ord(ch) < 0x20 for ch in label):
        raise ValueError("a key's label holds no control characters (it is recorded in the log)")
    return chosen, subject


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KeyEvents(Protocol):
    """What records keys' issue and revocation as events (the ledger)."""

    def record_key_issued(
        self, key_id: str, role: str, subject: str | None, label: str = ""
    ) -> object: ...

    def record_key_revoked(self, key_id: str) -> object: ...

    def issued_keys(self, key_ids: list[str]) -> set[str]: ...


class ApiKeyStore(TableStore):
    def __init__(
        self,
        recorder: ApplicationRecorder,
        *,
        create: bool = True,
        clock: Callable[[], float] = time.monotonic,
        events: KeyEvents | None = None,
    ) -> None:
        super().__init__(recorder, t="api_keys")
        self._events = events
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        if create:
            self.create_table()

    def create_table(self) -> None:
        self._create(
            _DDL_LOCK_KEY,
            "CREATE TABLE IF NOT EXISTS {t} (key_id TEXT PRIMARY KEY, secret_hash TEXT "
            "NOT NULL, role TEXT NOT NULL, subject TEXT, label TEXT NOT NULL, "
            "created_at TEXT NOT NULL, revoked_at TEXT)",
        )

    def issue(
        self, role: Role | str, subject: str | None = None, label: str = ""
    ) -> tuple[Principal, str]:
        """A new key; the token is returned once and never stored."""
        chosen, subject = check_grant(role, subject, label)
        key_id = secrets.token_hex(6)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        if self._events is not None:  # the event first: no row without it
            self._events.record_key_issued(key_id, chosen.value, subject, label)
        with self._cursor(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {t} (key_id, secret_hash, role, subject, label, created_at, "
                    "revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)"
                ),
                (key_id, _hash(secret), chosen.value, subject, label, _now()),
            )
        return Principal(key_id, chosen, subject, label), f"lk_{key_id}_{secret}"

    def authenticate(self, token: str) -> Principal | None:
        """The key's principal, or None (malformed, unknown, wrong, revoked)."""
        found = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if found is None:
            return None
        key_id, secret = found.groups()
        digest = _hash(secret)
        now = self._clock()
        cached = self._cached(key_id, digest, now)
        if cached is not None:
            return cached
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT secret_hash, role, subject, label, revoked_at FROM {t} WHERE key_id = ?"
                ),
                (key_id,),
            )
            row = cursor.fetchone()
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(str(row["secret_hash"]), digest):
            return None
        principal = Principal(key_id, Role(row["role"]), row["subject"], str(row["label"]))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_SECONDS, principal)
        return principal

    def remembered(self, token: str) -> Principal | None:
        """The key's principal if it was authenticated less than
        :data:`CACHE_SECONDS` ago, without reading the database (None: not
        known now; :meth:`authenticate` decides)."""
        found = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if found is None:
            return None
        key_id, secret = found.groups()
        return self._cached(key_id, _hash(secret), self._clock())

    def _cached(self, key_id: str, digest: str, now: float) -> Principal | None:
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > now and cached[1].key_id == key_id:
            return cached[1]
        return None

    def revoke(self, key_id: str, *, grace: float | None = None) -> bool:
        """Revoke a key at once; False if there is no such live key.

        Of concurrent revocations of one key (any processes), exactly one
        returns True: the row is locked before it is read.

        With events, ``apikey.revoked`` is recorded ``grace`` seconds after
        the row is revoked (default: :data:`REVOCATION_GRACE`, the cache's
        lifetime and a second): by then no server accepts the key any more,
        so every event the key records precedes its revocation in the log
        (rule 8.12). ``grace=0`` for a store only this process serves.
        """
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            return False
        with self._cursor(commit=True) as cursor:
            row = self.dialect.select_for_update(
                cursor,
                self._sql("SELECT revoked_at FROM {t} WHERE key_id = ?"),
                (key_id,),
                touch=self._sql("UPDATE {t} SET revoked_at = revoked_at WHERE key_id = ?"),
            )
            if row is None:
                return False
            revoked = row["revoked_at"] is None
            if revoked:
                cursor.execute(
                    self._sql(
                        "UPDATE {t} SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"
                    ),
                    (_now(), key_id),
                )
        if revoked:
            with self._lock:
                self._cache.clear()
        if revoked and self._events is not None:
            time.sleep(REVOCATION_GRACE if grace is None else grace)
        self._log_revocation(key_id)  # after the row: also repairs one whose event was lost
        return revoked

    def _log_revocation(self, key_id: str) -> None:
        if self._events is None:
            return
        try:
            self._events.record_key_revoked(key_id)  # a retry replays
        except LedgerError as refused:
            if not isinstance(refused, NotFoundError):
                raise  # (not found: a key issued before keys were events)

    def repair_events(self) -> int:
        """Record the issue (and revocation) of every key whose row has no
        ``apikey.issued`` yet; returns how many keys were repaired."""
        if self._events is None:
            return 0
        rows = self.list()
        logged = self._events.issued_keys([row["key_id"] for row in rows])
        repaired = 0
        for row in rows:
            if row["key_id"] in logged:
                continue
            self._events.record_key_issued(row["key_id"], row["role"], row["subject"], row["label"])
            if row["revoked_at"] is not None:
                self._events.record_key_revoked(row["key_id"])
            repaired += 1
        return repaired

    def list(self) -> list[dict[str, Any]]:
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT key_id, role, subject, label, created_at, revoked_at FROM {t} "
                    "ORDER BY created_at, key_id"
                )
            )
            return [dict(row) for row in cursor.fetchall()]


@contextmanager
def open_api_keys(url: DatabaseURL, *, create: bool) -> Iterator[ApiKeyStore]:
    """The key table of the store at ``url``, for the CLI."""
    with open_recorder(url, create=create) as recorder:
        yield ApiKeyStore(recorder, create=create)
