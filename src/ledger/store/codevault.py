"""The code vault: redemption codes' text, encrypted, beside the events.

Events name a code only by its *ref*, ``HMAC-SHA256(ref key, code)`` cut to
128 bits (32 hex digits): equal codes give equal refs, so a duplicate is
found without the text, and without the ref key nobody can test a guess.
The text itself is kept here, in a table beside the events
(``code_secrets`` on SQLite, ``"<schema>".ledger_code_secrets`` on
PostgreSQL), sealed with AES-256-GCM under a key id, with the ref and key id
as associated data (a row moved to another ref does not open).

The keys live in a *keyring* file the operator keeps apart from the
database (mode 0600)::

    {"format": "ledger-code-keyring/1", "ref_key": "<base64>",
     "keys": {"<key id>": "<base64>", ...}, "active": "<key id>"}

Rotation adds a key, makes it active and re-encrypts every row under it; a
key is retired from the ring only when no row uses it. The ref key never
rotates: refs are part of the signed history.

A stored row's text is only ever that of its ref, so storing is
``INSERT ... ON CONFLICT DO NOTHING`` and safe to repeat: a row left by an
import that was then refused is harmless (the code is not in the ledger; it
stays sealed until imported).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import ApplicationRecorder

from ledger.store.database import DatabaseURL
from ledger.store.dialect import TableStore
from ledger.store.sidetables import open_recorder

FORMAT = "ledger-code-keyring/1"
REF_BYTES = 16
_DDL_LOCK_KEY = 0x636F6465  # "code": advisory lock id for CREATE TABLE on PostgreSQL
REENCRYPT_BATCH = 500


class VaultError(Exception):
    """The keyring or the vault cannot do what was asked (one-line message)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object, what: str) -> bytes:
    try:
        raw = base64.b64decode(str(text), validate=True)
    except ValueError:
        raise VaultError(f"{what} is not base64") from None
    if len(raw) != 32:
        raise VaultError(f"{what} is not a 256-bit key")
    return raw


@dataclass
class Keyring:
    ref_key: bytes
    keys: dict[str, bytes]
    active: str
    path: Path | None = None
    _mtime: float = field(default=0.0, repr=False)

    # -- files ---------------------------------------------------------------
    @classmethod
    def generate(cls) -> Keyring:
        key_id = _new_key_id()
        return cls(secrets.token_bytes(32), {key_id: AESGCM.generate_key(256)}, key_id)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keyring:
        where = Path(path)
        try:
            text = where.read_text()
            mtime = where.stat().st_mtime
        except FileNotFoundError:
            raise VaultError(
                f"no code keyring at {where} (`ledger codes keyring` makes one)"
            ) from None
        except OSError as error:
            raise VaultError(f"cannot read the code keyring {where}: {error.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise VaultError(f"{where} is not a code keyring (not JSON)") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise VaultError(f"{where} is not a code keyring ({FORMAT})")
        keys = data.get("keys")
        if not isinstance(keys, dict) or not keys:
            raise VaultError(f"{where}: the keyring holds no keys")
        ring = cls(
            _unb64(data.get("ref_key"), f"{where}: ref_key"),
            {str(k): _unb64(v, f"{where}: key {k}") for k, v in keys.items()},
            str(data.get("active")),
            where,
            mtime,
        )
        if ring.active not in ring.keys:
            raise VaultError(f"{where}: the active key {ring.active!r} is not in the ring")
        return ring

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the ring atomically (a temporary file renamed over it), mode 0600."""
        where = Path(path) if path is not None else self.path
        if where is None:
            raise VaultError("the keyring has no file")
        text = (
            json.dumps(
                {
                    "format": FORMAT,
                    "ref_key": _b64(self.ref_key),
                    "keys": {k: _b64(v) for k, v in self.keys.items()},
                    "active": self.active,
                },
                indent=2,
            )
            + "\n"
        )
        temporary = where.with_name(where.name + ".tmp")
        try:
            # A leftover temporary file (a crash mid-save) may have looser
            # permissions: start afresh, so the new one is made with 0600.
            temporary.unlink(missing_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, where)
        except OSError as error:
            raise VaultError(f"cannot write the code keyring {where}: {error.strerror}") from None
        self.path = where
        self._mtime = where.stat().st_mtime

    def refreshed(self) -> Keyring:
        """This ring, or the file's newer version if it was rotated since."""
        if self.path is None:
            return self
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return self
        return Keyring.load(self.path) if mtime != self._mtime else self

    # -- keys ----------------------------------------------------------------
    def add_key(self) -> str:
        """A new key, made active (older keys stay, to open older rows)."""
        key_id = _new_key_id()
        self.keys[key_id] = AESGCM.generate_key(256)
        self.active = key_id
        return key_id

    @property
    def fingerprint(self) -> str:
        """Names the ref key without revealing it: a vault remembers the
        fingerprint of the ring it was filled with and refuses another."""
        return hmac.new(self.ref_key, b"ledger-code-keyring/1", hashlib.sha256).hexdigest()[:32]

    def ref(self, code: str) -> str:
        """The code's public name: its keyed hash, 32 hex digits."""
        digest = hmac.new(self.ref_key, code.encode(), hashlib.sha256).digest()
        return digest[:REF_BYTES].hex()

    def seal(self, ref: str, code: str) -> tuple[str, bytes, bytes]:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.keys[self.active]).encrypt(
            nonce, code.encode(), _associated(ref, self.active)
        )
        return self.active, nonce, sealed

    def open(self, ref: str, key_id: str, nonce: bytes, sealed: bytes) -> str:
        key = self.keys.get(key_id)
        if key is None:
            raise VaultError(
                f"the code of ref {ref} is sealed under key {key_id!r}, which is not in the keyring"
            )
        try:
            return AESGCM(key).decrypt(nonce, sealed, _associated(ref, key_id)).decode()
        except InvalidTag:
            raise VaultError(
                f"the sealed code of ref {ref} does not open: the row was altered or moved"
            ) from None


def _associated(ref: str, key_id: str) -> bytes:
    return f"ledger-code/{ref}/{key_id}".encode()


def _new_key_id() -> str:
    return datetime.now(UTC).strftime("k%Y%m%d-") + secrets.token_hex(3)


class CodeVault(TableStore):
    """The sealed codes' table (``{t}``) and the keyring's fingerprint (``{m}``)."""

    def __init__(
        self, recorder: ApplicationRecorder, keyring: Keyring | None, *, create: bool = True
    ) -> None:
        super().__init__(recorder, t="code_secrets", m="code_keyring")
        self._keyring = keyring
        self._lock = threading.Lock()
        self._ring_checked: str | None = None  # the fingerprint found to match
        if create:
            self.create_table()

    @property
    def keyring(self) -> Keyring:
        """The keyring (re-read if its file changed), checked to be this
        store's: refs made with another ring's key would miss every code
        imported before, so duplicates would go unseen."""
        if self._keyring is None:
            raise VaultError(
                "this server has no code keyring: set LEDGER_CODE_KEYRING_FILE "
                "(`ledger codes keyring` makes one)"
            )
        with self._lock:
            self._keyring = ring = self._keyring.refreshed()
        if self._ring_checked != ring.fingerprint:
            self._check_ring(ring)
        return ring

    def _check_ring(self, ring: Keyring) -> None:
        """Remember the first ring's fingerprint; refuse any other."""
        with self._cursor(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {m} (id, fingerprint) VALUES (1, ?) ON CONFLICT (id) DO NOTHING"
                ),
                (ring.fingerprint,),
            )
            cursor.execute(self._sql("SELECT fingerprint FROM {m} WHERE id = 1"))
            row = cursor.fetchone()
        if row is None or str(row["fingerprint"]) != ring.fingerprint:
            raise VaultError(
                "this code keyring is not the one this store's codes were "
                "imported with (its ref key differs): use that keyring"
            )
        self._ring_checked = ring.fingerprint

    @property
    def configured(self) -> bool:
        return self._keyring is not None

    def create_table(self) -> None:
        blob = self.dialect.blob
        self._create(
            _DDL_LOCK_KEY,
            "CREATE TABLE IF NOT EXISTS {t} (ref TEXT PRIMARY KEY, key_id TEXT NOT NULL, "
            f"nonce {blob} NOT NULL, sealed {blob} NOT NULL, stored_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {m} (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "fingerprint TEXT NOT NULL)",
        )

    def refs(self, codes: Iterable[str]) -> list[str]:
        ring = self.keyring
        return [ring.ref(code) for code in codes]

    def stash(self, pairs: list[tuple[str, str]]) -> None:
        """Seal and store (ref, code) pairs; rows already there stay as they are."""
        ring = self.keyring
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = []
        for ref, code in pairs:
            key_id, nonce, sealed = ring.seal(ref, code)
            rows.append((ref, key_id, nonce, sealed, now))
        with self._cursor(commit=True) as cursor:
            cursor.executemany(
                self._sql(
                    "INSERT INTO {t} (ref, key_id, nonce, sealed, stored_at)"
                    " VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (ref) DO NOTHING"
                ),
                rows,
            )

    def reveal(self, ref: str) -> str:
        """The text of the code named ``ref``."""
        ring = self.keyring
        with self._cursor(commit=False) as cursor:
            cursor.execute(self._sql("SELECT key_id, nonce, sealed FROM {t} WHERE ref = ?"), (ref,))
            row = cursor.fetchone()
        if row is None:
            raise VaultError(f"the vault holds no sealed code for ref {ref}")
        return ring.open(ref, str(row["key_id"]), bytes(row["nonce"]), bytes(row["sealed"]))

    def key_usage(self) -> dict[str, int]:
        with self._cursor(commit=False) as cursor:
            cursor.execute(self._sql("SELECT key_id, COUNT(*) AS n FROM {t} GROUP BY key_id"))
            return {str(row["key_id"]): int(row["n"]) for row in cursor.fetchall()}

    def reencrypt(self, ring: Keyring) -> int:
        """Re-seal every row not under ``ring``'s active key; returns how many.

        Batches of rows, each in its own transaction; a row is rewritten
        only if it still holds what was read (a concurrent writer wins)."""
        self._check_ring(ring)
        self._keyring = ring
        done = 0
        while True:
            with self._cursor(commit=True) as cursor:
                cursor.execute(
                    self._sql(
                        "SELECT ref, key_id, nonce, sealed FROM {t} WHERE key_id <> ? LIMIT ?"
                    ),
                    (ring.active, REENCRYPT_BATCH),
                )
                rows = cursor.fetchall()
                if not rows:
                    return done
                updates = []
                for row in rows:
                    ref, key_id = str(row["ref"]), str(row["key_id"])
                    code = ring.open(ref, key_id, bytes(row["nonce"]), bytes(row["sealed"]))
                    new_id, nonce, sealed = ring.seal(ref, code)
                    updates.append((new_id, nonce, sealed, ref, key_id))
                cursor.executemany(
                    self._sql(
                        "UPDATE {t} SET key_id = ?, nonce = ?, sealed = ? WHERE ref = ? "
                        "AND key_id = ?"
                    ),
                    updates,
                )
                done += len(updates)


@contextmanager
def open_vault(url: DatabaseURL, keyring: Keyring | None, *, create: bool) -> Iterator[CodeVault]:
    """The vault of the store at ``url``, for the CLI."""
    with open_recorder(url, create=create) as recorder:
        yield CodeVault(recorder, keyring, create=create)
