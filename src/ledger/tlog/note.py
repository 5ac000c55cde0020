"""C2SP transparency-log text formats: signed notes, checkpoints, cosignatures.

Pure functions and values; no I/O, no clock. Implements, byte for byte:

* ``c2sp.org/signed-note@v1.0.0`` -- signed notes, key IDs, verifier keys
  ("vkeys"), Ed25519 note signatures (signature type ``0x01``);
* ``c2sp.org/tlog-checkpoint@v1.0.0`` -- the checkpoint note body;
* ``c2sp.org/tlog-cosignature`` (v1.0.1 and HEAD, Ed25519 part) --
  timestamped Ed25519 cosignatures (signature type ``0x04``);
* ``c2sp.org/tlog-proof@v1`` -- the ``.tlog-proof`` offline proof file;
* ``c2sp.org/tlog-witness`` (v1.0.0 and HEAD) -- the ``add-checkpoint``
  request body and the signature-lines response body.

A signed note is::

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(4-byte key ID || signature)>
    ...

Verification follows the signed-note rules: signatures from unknown keys
(unknown *(name, key ID)* pair) are ignored; a known key's signature is always
verified and, if it fails, the whole note is rejected; a note with no valid
signature from a known key is rejected.

The private key text of Go's ``golang.org/x/mod/sumdb/note`` package
(``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || 32-byte seed)>``) is read
and written by :class:`Signer`; type ``0x04`` uses the same layout.

Strictness beyond the specs' letter, chosen for a verifier:

* base64 must be canonical (padding present, unused bits zero), so every
  value has exactly one accepted spelling;
* hex key IDs must be lowercase (as signed-note defines the hex encoding);
* tree sizes, indexes and cosignature timestamps are at most ``2**63 - 1``
  (the Go implementations' int64; the cosignature spec's own timestamp bound);
* a note has at most :data:`MAX_SIGNATURES` signature lines (signed-note:
  verifiers SHOULD limit, MUST accept at least 16);
* a signature is at least 5 bytes (key ID plus something), as in Go.

Errors are all :class:`NoteError` (a ``ValueError``); the subclasses say which
rule failed, so a witness server can map them to HTTP status codes:
:class:`MalformedRequestError` is tlog-witness's 400, :class:`UnprocessableRequestError`
its 422, :class:`InvalidSignatureError` / :class:`UnverifiedNoteError` its 403.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ADD_CHECKPOINT_MAX_PROOF_LINES",
    "COSIGNATURE_V1_HEADER",
    "EMPTY_TREE_ROOT",
    "KEY_TYPE_COSIGNATURE_V1",
    "KEY_TYPE_ED25519",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "MAX_TREE_SIZE",
    "TLOG_PROOF_HEADER",
    "TLOG_PROOF_MAX_INCLUSION_LINES",
    "AddCheckpoint",
    "AmbiguousKeyError",
    "Checkpoint",
    "InvalidSignatureError",
    "MalformedCheckpointError",
    "MalformedKeyError",
    "MalformedNoteError",
    "MalformedProofError",
    "MalformedRequestError",
    "Note",
    "NoteError",
    "NoteSignature",
    "OldSizeTooLargeError",
    "SignatureCheck",
    "Signer",
    "TlogProof",
    "UnprocessableRequestError",
    "UnverifiedNoteError",
    "Verifier",
    "cosign",
    "cosignature_message",
    "cosignature_timestamp",
    "format_add_checkpoint",
    "format_note",
    "format_signature_lines",
    "format_tlog_proof",
    "key_id",
    "open_note",
    "parse_add_checkpoint",
    "parse_note",
    "parse_signature_lines",
    "parse_tlog_proof",
    "sign_note",
    "valid_key_name",
    "verify_cosignature",
    "verify_signatures",
]

KEY_TYPE_ED25519 = 0x01
"""Signature type of Ed25519 note signatures (signed-note)."""
KEY_TYPE_COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 checkpoint cosignatures (tlog-cosignature)."""
_SUPPORTED_KEY_TYPES = (KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1)

MAX_SIGNATURES = 100
"""Signature lines accepted in one note (signed-note: at least 16 MUST be)."""
MAX_TREE_SIZE = 2**63 - 1
"""Largest tree size or leaf index accepted (Go's int64)."""
MAX_TIMESTAMP = 2**63 - 1
"""Largest cosignature timestamp (tlog-cosignature: MUST NOT exceed 2^63 - 1)."""
COSIGNATURE_V1_HEADER = "cosignature/v1"
"""Header line of the Ed25519 cosignature signed message."""
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
"""First line of a ``.tlog-proof`` file."""
TLOG_PROOF_MAX_INCLUSION_LINES = 64
"""Inclusion proof hashes accepted in a tlog-proof (depth of a 2**64-leaf tree)."""
ADD_CHECKPOINT_MAX_PROOF_LINES = 63
"""tlog-witness: a client MUST NOT send more than 63 consistency proof lines."""
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()
"""RFC 6962 root of the empty tree: SHA-256 of the empty string."""

_HASH_SIZE = 32
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_KEY_ID_SIZE = 4
_SIG_PREFIX = "\u2014 "  # EM DASH, SPACE
_PRIVATE_PREFIX = "PRIVATE+KEY+"

_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX8_RE = re.compile(r"[0-9a-f]{8}")
_DECIMAL_RE = re.compile(r"0|[1-9][0-9]*")


# -- errors ------------------------------------------------------------------


class NoteError(ValueError):
    """Any failure to parse, format, sign or verify a C2SP text format."""


class MalformedKeyError(NoteError):
    """A key name, verifier key or private key text is not well-formed."""


class AmbiguousKeyError(NoteError):
    """Two different known keys share a key name and key ID."""


class MalformedNoteError(NoteError):
    """A signed note breaks the signed-note syntax."""


class InvalidSignatureError(NoteError):
    """A signature from a known key does not verify (the note MUST be rejected)."""


class UnverifiedNoteError(NoteError):
    """No signature from a known key is present (the note MUST be rejected)."""


class MalformedCheckpointError(NoteError):
    """A checkpoint body breaks the tlog-checkpoint syntax."""


class MalformedProofError(NoteError):
    """A tlog-proof file breaks the tlog-proof syntax."""


class MalformedRequestError(NoteError):
    """An add-checkpoint request body is malformed (tlog-witness: 400 Bad Request)."""


class OldSizeTooLargeError(MalformedRequestError):
    """The old size exceeds the checkpoint size (tlog-witness: 400 Bad Request)."""


class UnprocessableRequestError(NoteError):
    """An add-checkpoint request fails a consistency rule (tlog-witness: 422)."""


# -- small strict codecs -----------------------------------------------------


def _b64decode(text: str, what: str, error: type[NoteError]) -> bytes:
    """Decode canonical standard base64 (RFC 4648 section 4), or raise ``error``."""
    if len(text) % 4 or not _B64_RE.fullmatch(text):
        raise error(f"{what} is not valid base64: {text[:80]!r}")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:  # pragma: no cover - excluded by the regex above
        raise error(f"{what} is not valid base64: {text[:80]!r}") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise error(f"{what} is not canonical base64: {text[:80]!r}")
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse_decimal(text: str, what: str, error: type[NoteError], maximum: int) -> int:
    """ASCII decimal with no leading zeros, at most ``maximum``."""
    if not _DECIMAL_RE.fullmatch(text):
        raise error(f"{what} must be a decimal number without leading zeros, got {text[:40]!r}")
    if len(text) > len(str(maximum)):
        raise error(f"{what} {text[:40]}... exceeds the maximum {maximum}")
    value = int(text)
    if value > maximum:
        raise error(f"{what} {value} exceeds the maximum {maximum}")
    return value


def _check_int(value: int, what: str, maximum: int, error: type[NoteError] = NoteError) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what} must be an int, got {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise error(f"{what} must be between 0 and {maximum}, got {value}")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != _HASH_SIZE:
        raise NoteError(f"{what} must be {_HASH_SIZE} bytes")


def _as_text(data: str | bytes, error: type[NoteError], what: str) -> str:
    """``data`` as a str, requiring valid UTF-8 either way (no lone surrogates)."""
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not valid UTF-8: {exc}") from None
    try:
        data.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{what} is not valid UTF-8: {exc}") from None
    return data


def _control_character(text: str) -> int | None:
    """Index of the first ASCII control character other than newline, if any."""
    for i, ch in enumerate(text):
        if ch < " " and ch != "\n":
            return i
    return None


def _check_note_chars(text: str, what: str, error: type[NoteError]) -> None:
    i = _control_character(text)
    if i is not None:
        raise error(f"{what} contains control character {ord(text[i]):#04x} at offset {i}")


# -- keys --------------------------------------------------------------------


def valid_key_name(name: str) -> bool:
    """Signed-note key name rule: non-empty, no Unicode spaces, no ``+``.

    Also refused: ASCII control characters (they can never appear in a signed
    note) and text that is not valid UTF-8.
    """
    if not isinstance(name, str) or not name or "+" in name:
        return False
    if any(ch.isspace() or ch < " " for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_name(name: str) -> None:
    if not valid_key_name(name):
        raise MalformedKeyError(
            f"invalid key name {name!r}: must be non-empty, without spaces or '+'"
        )


def _check_key_type(key_type: int) -> None:
    if key_type not in _SUPPORTED_KEY_TYPES:
        raise MalformedKeyError(
            f"unsupported signature type {key_type:#04x} "
            "(supported: 0x01 Ed25519, 0x04 Ed25519 cosignature/v1)"
        )


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || 0x0A || type || public key)[:4]``."""
    _check_name(name)
    if not 0 <= key_type <= 0xFF:
        raise MalformedKeyError(f"signature type {key_type} is not a byte")
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([key_type]) + bytes(public_key)
    ).digest()
    return digest[:_KEY_ID_SIZE]


def _split_key_text(text: str, what: str) -> tuple[str, bytes, int, bytes]:
    """Split ``name+hexid+base64(type||material)``; check syntax only."""
    name, sep1, rest = text.partition("+")
    hex_id, sep2, b64 = rest.partition("+")
    if not (sep1 and sep2):
        raise MalformedKeyError(f"{what} must be <name>+<hex key ID>+<base64 key>")
    _check_name(name)
    if not _HEX8_RE.fullmatch(hex_id):
        raise MalformedKeyError(f"{what} key ID must be 8 lowercase hex digits, got {hex_id!r}")
    material = _b64decode(b64, f"{what} key", MalformedKeyError)
    if not material:
        raise MalformedKeyError(f"{what} key is empty")
    return name, bytes.fromhex(hex_id), material[0], material[1:]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Verifier:
    """A public key that verifies note signatures: name, key ID, type, key.

    :meth:`verify` is raw Ed25519 over ``message`` for both supported types;
    the note-level meaning of a type ``0x04`` signature (a timestamp and the
    ``cosignature/v1`` message) is applied by :func:`verify_cosignature`,
    :func:`verify_signatures` and :func:`open_note`.
    """

    __slots__ = ("_key", "key_id", "key_type", "name", "public_key")

    def __init__(self, name: str, key_type: int, public_key: bytes) -> None:
        _check_name(name)
        _check_key_type(key_type)
        if not isinstance(public_key, bytes) or len(public_key) != _ED25519_KEY_SIZE:
            raise MalformedKeyError(f"an Ed25519 public key is {_ED25519_KEY_SIZE} bytes")
        self.name: str = name
        self.key_type: int = key_type
        self.public_key: bytes = public_key
        self.key_id: bytes = key_id(name, key_type, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        """Parse a verifier key ``<name>+<hex key ID>+<base64(type || public key)>``."""
        name, claimed_id, key_type, material = _split_key_text(text, "verifier key")
        _check_key_type(key_type)
        verifier = cls(name, key_type, material)
        if verifier.key_id != claimed_id:
            raise MalformedKeyError(
                f"verifier key {name!r}: key ID {claimed_id.hex()} does not match "
                f"the key (expected {verifier.key_id.hex()})"
            )
        return verifier

    def vkey(self) -> str:
        """The verifier key text."""
        return (
            f"{self.name}+{self.key_id.hex()}+"
            f"{_b64encode(bytes([self.key_type]) + self.public_key)}"
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Raw Ed25519 verification of ``signature`` over ``message``."""
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except _CryptoInvalidSignature:
            return False
        return True

    def _ident(self) -> tuple[str, int, bytes]:
        return (self.name, self.key_type, self.public_key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verifier):
            return NotImplemented
        return self._ident() == other._ident()

    def __hash__(self) -> int:
        return hash(self._ident())

    def __str__(self) -> str:
        return self.vkey()

    def __repr__(self) -> str:
        return f"Verifier.from_vkey({self.vkey()!r})"


class Signer:
    """An Ed25519 private key with its note identity (name, type, key ID).

    :meth:`sign` is raw Ed25519. Use :func:`sign_note` for note signatures
    (type ``0x01``) and :func:`cosign` for cosignatures (type ``0x04``).
    """

    __slots__ = ("_private", "key_id", "key_type", "name", "public_key")

    def __init__(
        self, name: str, private_key: Ed25519PrivateKey, key_type: int = KEY_TYPE_ED25519
    ) -> None:
        _check_name(name)
        _check_key_type(key_type)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise MalformedKeyError("a Signer needs an Ed25519PrivateKey")
        self.name: str = name
        self.key_type: int = key_type
        self._private = private_key
        self.public_key: bytes = _raw_public(private_key.public_key())
        self.key_id: bytes = key_id(name, key_type, self.public_key)

    @classmethod
    def generate(cls, name: str, key_type: int = KEY_TYPE_ED25519) -> Signer:
        """A new random key."""
        return cls(name, Ed25519PrivateKey.generate(), key_type)

    @classmethod
    def from_seed(cls, name: str, seed: bytes, key_type: int = KEY_TYPE_ED25519) -> Signer:
        """The key with this 32-byte RFC 8032 seed."""
        if not isinstance(seed, bytes) or len(seed) != _ED25519_KEY_SIZE:
            raise MalformedKeyError(f"an Ed25519 seed is {_ED25519_KEY_SIZE} bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed), key_type)

    @classmethod
    def from_private_text(cls, text: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>``."""
        if not text.startswith(_PRIVATE_PREFIX):
            raise MalformedKeyError("private key text must start with 'PRIVATE+KEY+'")
        name, claimed_id, key_type, seed = _split_key_text(
            text[len(_PRIVATE_PREFIX) :], "private key"
        )
        _check_key_type(key_type)
        signer = cls.from_seed(name, seed, key_type)
        if signer.key_id != claimed_id:
            raise MalformedKeyError(
                f"private key {name!r}: key ID {claimed_id.hex()} does not match the key"
            )
        return signer

    def _seed(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def to_private_text(self) -> str:
        """The private key text (a secret: keep it out of logs)."""
        material = _b64encode(bytes([self.key_type]) + self._seed())
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{material}"

    def sign(self, message: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature over ``message``."""
        return self._private.sign(message)

    def verifier(self) -> Verifier:
        """The matching :class:`Verifier`."""
        return Verifier(self.name, self.key_type, self.public_key)

    def verifier_key(self) -> str:
        """The matching verifier key text."""
        return self.verifier().vkey()

    def __repr__(self) -> str:  # never the secret
        return f"<Signer {self.name}+{self.key_id.hex()} type {self.key_type:#04x}>"


# -- signed notes ------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: ``— <name> <base64(key ID || signature)>``."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.key_id, bytes) or len(self.key_id) != _KEY_ID_SIZE:
            raise NoteError(f"a key ID is {_KEY_ID_SIZE} bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise NoteError("a signature must be non-empty bytes")

    def line(self) -> str:
        """The signature line, without its newline."""
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        """Parse one signature line (without its newline)."""
        if not line.startswith(_SIG_PREFIX):
            raise MalformedNoteError(
                f"signature line must start with EM DASH (U+2014) and a space: {line[:80]!r}"
            )
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not b64:
            raise MalformedNoteError(f"signature line must be '— <name> <base64>': {line[:80]!r}")
        if not valid_key_name(name):
            raise MalformedNoteError(f"signature line has an invalid key name: {name[:80]!r}")
        raw = _b64decode(b64, f"signature of {name!r}", MalformedNoteError)
        if len(raw) <= _KEY_ID_SIZE:
            raise MalformedNoteError(f"signature of {name!r} is too short ({len(raw)} bytes)")
        return cls(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


@dataclass(frozen=True)
class Note:
    """A signed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: list[NoteSignature]

    def format(self) -> str:
        """The note, as :func:`format_note` writes it."""
        return format_note(self.text, self.signatures)


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise MalformedNoteError("note text must be a str")
    _as_text(text, MalformedNoteError, "note text")
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end in a newline")
    _check_note_chars(text, "note text", MalformedNoteError)


def format_note(text: str, signatures: Sequence[NoteSignature]) -> str:
    """``text``, a blank line, then one line per signature."""
    _check_text(text)
    if not signatures:
        raise MalformedNoteError("a signed note needs at least one signature")
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    return text + "\n" + "".join(sig.line() + "\n" for sig in signatures)


def parse_note(data: str | bytes, *, max_signatures: int = MAX_SIGNATURES) -> Note:
    """Parse a signed note strictly; verify nothing.

    The text is everything up to and including the newline before the last
    blank line; after it come one or more signature lines, each ending in a
    newline.
    """
    data = _as_text(data, MalformedNoteError, "note")
    _check_note_chars(data, "note", MalformedNoteError)
    split = data.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line separates the text from the signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block:
        raise MalformedNoteError("a signed note needs at least one signature line")
    if not block.endswith("\n"):
        raise MalformedNoteError("the last signature line must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > max_signatures:
        raise MalformedNoteError(f"more than {max_signatures} signature lines")
    return Note(text, [NoteSignature.parse_line(line) for line in lines])


@dataclass(frozen=True)
class SignatureCheck:
    """What one signature line amounts to against a set of known keys.

    ``verifier`` is ``None`` for an unknown key (ignored per signed-note);
    ``timestamp`` is set for valid cosignatures; ``error`` says why an invalid
    one failed.
    """

    signature: NoteSignature
    verifier: Verifier | None
    valid: bool
    timestamp: int | None = None
    error: str | None = None


def _index_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        if not isinstance(v, Verifier):
            raise NoteError(f"expected a Verifier, got {type(v).__name__}")
        other = known.setdefault((v.name, v.key_id), v)
        if other != v:
            raise AmbiguousKeyError(f"ambiguous key {v.name}+{v.key_id.hex()}")
    return known


def verify_signatures(note: Note, verifiers: Iterable[Verifier]) -> list[SignatureCheck]:
    """Check every signature of ``note`` against the known ``verifiers``; never raises
    for a bad signature (see :func:`open_note` for the rejecting form).

    A type ``0x01`` key signs the note text; a type ``0x04`` key cosigns it
    (``cosignature/v1`` message, 8-byte timestamp prefix).
    """
    known = _index_verifiers(verifiers)
    text = note.text.encode("utf-8")
    checks: list[SignatureCheck] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            checks.append(SignatureCheck(sig, None, valid=False))
        elif v.key_type == KEY_TYPE_COSIGNATURE_V1:
            try:
                ts = verify_cosignature(note.text, sig, v)
            except NoteError as exc:
                checks.append(SignatureCheck(sig, v, valid=False, error=str(exc)))
            else:
                checks.append(SignatureCheck(sig, v, valid=True, timestamp=ts))
        elif v.verify(text, sig.signature):
            checks.append(SignatureCheck(sig, v, valid=True))
        else:
            checks.append(
                SignatureCheck(
                    sig, v, valid=False, error=f"invalid signature for key {_key_label(v)}"
                )
            )
    return checks


def _key_label(v: Verifier | Signer | NoteSignature) -> str:
    return f"{v.name}+{v.key_id.hex()}"


def open_note(data: str | bytes, verifiers: Iterable[Verifier]) -> tuple[Note, list[Verifier]]:
    """Parse and verify a signed note against the known ``verifiers``.

    Returns the note and the known verifiers that signed it validly (each once,
    in order of their first signature). Unknown keys are ignored. Raises
    :class:`InvalidSignatureError` if any known key's signature fails, and
    :class:`UnverifiedNoteError` if no known key signed.
    """
    note = parse_note(data)
    signed: list[Verifier] = []
    for check in verify_signatures(note, verifiers):
        if check.verifier is None:
            continue
        if not check.valid:
            raise InvalidSignatureError(check.error or "invalid signature")
        if check.verifier not in signed:
            signed.append(check.verifier)
    if not signed:
        raise UnverifiedNoteError("note has no verifiable signatures from known keys")
    return note, signed


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """Sign ``text`` with each Ed25519 (type ``0x01``) signer; return the note."""
    _check_text(text)
    message = text.encode("utf-8")
    sigs: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for signer in signers:
        if signer.key_type != KEY_TYPE_ED25519:
            raise NoteError(
                f"key {_key_label(signer)} is type {signer.key_type:#04x}; "
                "cosigner keys sign checkpoints with cosign()"
            )
        if (signer.name, signer.key_id) in seen:
            raise NoteError(f"key {_key_label(signer)} given twice")
        seen.add((signer.name, signer.key_id))
        sigs.append(NoteSignature(signer.name, signer.key_id, signer.sign(message)))
    return format_note(text, sigs)


def format_signature_lines(signatures: Iterable[NoteSignature]) -> str:
    """Signature lines, each ending in a newline (a tlog-witness response body)."""
    return "".join(sig.line() + "\n" for sig in signatures)


def parse_signature_lines(data: str | bytes) -> list[NoteSignature]:
    """Parse one or more signature lines, each ending in a newline."""
    data = _as_text(data, MalformedNoteError, "signature lines")
    _check_note_chars(data, "signature lines", MalformedNoteError)
    if not data or not data.endswith("\n"):
        raise MalformedNoteError("signature lines must be non-empty and end in a newline")
    lines = data[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signature lines")
    return [NoteSignature.parse_line(line) for line in lines]


# -- checkpoints -------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise MalformedCheckpointError("the origin must be a non-empty string")
        _check_int(self.size, "tree size", MAX_TREE_SIZE, MalformedCheckpointError)
        if not isinstance(self.root, bytes) or len(self.root) != _HASH_SIZE:
            raise MalformedCheckpointError(f"the root hash must be {_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise MalformedCheckpointError("extensions must be a tuple of lines")
        for line in (self.origin, *self.extensions):
            if not isinstance(line, str) or not line:
                raise MalformedCheckpointError("origin and extension lines must be non-empty")
            _as_text(line, MalformedCheckpointError, "checkpoint line")
            if "\n" in line:
                raise MalformedCheckpointError(f"a checkpoint line contains a newline: {line!r}")
            _check_note_chars(line, "checkpoint line", MalformedCheckpointError)

    def body(self) -> str:
        """``origin\\nsize\\nbase64(root)\\n[extension lines\\n]``."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str | bytes) -> Checkpoint:
        """Parse a checkpoint note body strictly."""
        body = _as_text(body, MalformedCheckpointError, "checkpoint")
        if not body.endswith("\n"):
            raise MalformedCheckpointError("a checkpoint body must end in a newline")
        _check_note_chars(body, "checkpoint", MalformedCheckpointError)
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError("a checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise MalformedCheckpointError("the origin line is empty")
        size = _parse_decimal(size_text, "tree size", MalformedCheckpointError, MAX_TREE_SIZE)
        root = _b64decode(root_text, "root hash", MalformedCheckpointError)
        if len(root) != _HASH_SIZE:
            raise MalformedCheckpointError(f"the root hash is {len(root)} bytes, not {_HASH_SIZE}")
        if any(not line for line in extensions):
            raise MalformedCheckpointError("extension lines must be non-empty")
        return cls(origin, size, root, tuple(extensions))


def _checkpoint_of(signed_checkpoint: str | bytes, error: type[NoteError]) -> tuple[str, Note]:
    """Parse a signed checkpoint note, mapping any failure to ``error``."""
    try:
        text = _as_text(signed_checkpoint, MalformedNoteError, "signed checkpoint")
        note = parse_note(text)
        Checkpoint.parse(note.text)
    except NoteError as exc:
        if isinstance(exc, error):
            raise
        raise error(f"signed checkpoint: {exc}") from exc
    return text, note


# -- cosignatures ------------------------------------------------------------


def cosignature_message(checkpoint_body: str, timestamp: int) -> bytes:
    """``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint body."""
    _check_int(timestamp, "timestamp", MAX_TIMESTAMP)
    header = f"{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n"
    return header.encode("ascii") + checkpoint_body.encode("utf-8")


def cosign(checkpoint_body: str, signer: Signer, timestamp: int) -> NoteSignature:
    """An Ed25519 tlog-cosignature/v1 over a checkpoint body.

    The signature bytes are the 8-byte big-endian timestamp followed by the
    Ed25519 signature of :func:`cosignature_message`.
    """
    if signer.key_type != KEY_TYPE_COSIGNATURE_V1:
        raise NoteError(
            f"key {_key_label(signer)} is type {signer.key_type:#04x}; "
            f"cosignatures need a type {KEY_TYPE_COSIGNATURE_V1:#04x} key"
        )
    Checkpoint.parse(checkpoint_body)
    message = cosignature_message(checkpoint_body, timestamp)
    return NoteSignature(
        signer.name, signer.key_id, timestamp.to_bytes(8, "big") + signer.sign(message)
    )


def cosignature_timestamp(sig: NoteSignature) -> int:
    """The timestamp of an Ed25519 cosignature/v1, unverified (for display and monitoring).

    Raises :class:`InvalidSignatureError` unless the signature is the 72-byte
    ``timestamped_signature`` with a timestamp of at most ``2^63 - 1``.
    """
    if len(sig.signature) != 8 + _ED25519_SIG_SIZE:
        raise InvalidSignatureError(
            f"cosignature from {_key_label(sig)} is {len(sig.signature)} bytes, "
            f"not {8 + _ED25519_SIG_SIZE}"
        )
    timestamp = int.from_bytes(sig.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise InvalidSignatureError(f"cosignature from {_key_label(sig)} has timestamp > 2^63-1")
    return timestamp


def verify_cosignature(checkpoint_body: str, sig: NoteSignature, verifier: Verifier) -> int:
    """Verify an Ed25519 cosignature/v1; return its timestamp.

    Raises :class:`NoteError` if ``verifier`` is not a type ``0x04`` key or
    is not the key named by ``sig``, and :class:`InvalidSignatureError` if the
    signature is malformed or does not verify.
    """
    if verifier.key_type != KEY_TYPE_COSIGNATURE_V1:
        raise NoteError(f"key {_key_label(verifier)} is not a cosignature/v1 key")
    if (sig.name, sig.key_id) != (verifier.name, verifier.key_id):
        raise NoteError(f"signature by {_key_label(sig)} is not from key {_key_label(verifier)}")
    timestamp = cosignature_timestamp(sig)
    if not verifier.verify(cosignature_message(checkpoint_body, timestamp), sig.signature[8:]):
        raise InvalidSignatureError(f"invalid cosignature for key {_key_label(verifier)}")
    return timestamp


# -- tlog-proof --------------------------------------------------------------


def _cut_line(rest: str, error: type[NoteError], what: str) -> tuple[str, str]:
    line, sep, after = rest.partition("\n")
    if not sep:
        raise error(f"{what}: missing newline")
    return line, after


def _parse_hash_lines(
    lines: Sequence[str], what: str, error: type[NoteError], limit: int
) -> list[bytes]:
    if len(lines) > limit:
        raise error(f"more than {limit} {what} lines")
    hashes = []
    for i, line in enumerate(lines, 1):
        h = _b64decode(line, f"{what} hash {i}", error)
        if len(h) != _HASH_SIZE:
            raise error(f"{what} hash {i} is {len(h)} bytes, not {_HASH_SIZE}")
        hashes.append(h)
    return hashes


@dataclass(frozen=True)
class TlogProof:
    """A parsed ``c2sp.org/tlog-proof@v1`` file.

    ``extra`` is unauthenticated; ``checkpoint_note_text`` is the signed
    checkpoint, verbatim (verify it with a policy before trusting anything).
    """

    index: int
    extra: bytes | None
    inclusion: list[bytes]
    checkpoint_note_text: str

    @cached_property
    def note(self) -> Note:
        """The signed checkpoint note (unverified)."""
        return parse_note(self.checkpoint_note_text)

    @cached_property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint body (unverified)."""
        return Checkpoint.parse(self.note.text)

    def format(self) -> str:
        """The proof file text."""
        return format_tlog_proof(self.index, self.inclusion, self.checkpoint_note_text, self.extra)


def format_tlog_proof(
    index: int, inclusion: Sequence[bytes], signed_checkpoint: str, extra: bytes | None = None
) -> str:
    """Write a tlog-proof file (header, optional extra, index, hashes, blank, checkpoint)."""
    _check_int(index, "index", MAX_TREE_SIZE)
    if len(inclusion) > TLOG_PROOF_MAX_INCLUSION_LINES:
        raise NoteError(f"more than {TLOG_PROOF_MAX_INCLUSION_LINES} inclusion hashes")
    for i, h in enumerate(inclusion, 1):
        _check_hash(h, f"inclusion hash {i}")
    if extra is not None and not isinstance(extra, bytes):
        raise NoteError("extra must be bytes or None")
    text, note = _checkpoint_of(signed_checkpoint, NoteError)
    if index >= Checkpoint.parse(note.text).size:
        raise NoteError("the index must be below the checkpoint's tree size")
    out = [TLOG_PROOF_HEADER + "\n"]
    if extra is not None:
        out.append(f"extra {_b64encode(extra)}\n")
    out.append(f"index {index}\n")
    out.extend(_b64encode(h) + "\n" for h in inclusion)
    out.append("\n")
    out.append(text)
    return "".join(out)


def parse_tlog_proof(data: str | bytes) -> TlogProof:
    """Parse a tlog-proof file strictly (signatures are not verified)."""
    text = _as_text(data, MalformedProofError, "tlog-proof")
    header, rest = _cut_line(text, MalformedProofError, "tlog-proof header")
    if header != TLOG_PROOF_HEADER:
        raise MalformedProofError(f"first line must be {TLOG_PROOF_HEADER!r}, got {header[:80]!r}")
    line, rest = _cut_line(rest, MalformedProofError, "tlog-proof index line")
    extra: bytes | None = None
    if line.startswith("extra "):
        extra = _b64decode(line[len("extra ") :], "extra data", MalformedProofError)
        line, rest = _cut_line(rest, MalformedProofError, "tlog-proof index line")
    if not line.startswith("index "):
        raise MalformedProofError(f"expected 'index <n>', got {line[:80]!r}")
    index = _parse_decimal(line[len("index ") :], "index", MalformedProofError, MAX_TREE_SIZE)
    hash_lines: list[str] = []
    while True:
        line, rest = _cut_line(rest, MalformedProofError, "inclusion proof (no blank line)")
        if not line:
            break
        hash_lines.append(line)
        if len(hash_lines) > TLOG_PROOF_MAX_INCLUSION_LINES:
            break
    inclusion = _parse_hash_lines(
        hash_lines, "inclusion proof", MalformedProofError, TLOG_PROOF_MAX_INCLUSION_LINES
    )
    _, note = _checkpoint_of(rest, MalformedProofError)
    size = Checkpoint.parse(note.text).size
    if index >= size:
        raise MalformedProofError(f"index {index} is not below the checkpoint's tree size {size}")
    return TlogProof(index, extra, inclusion, rest)


# -- tlog-witness add-checkpoint ---------------------------------------------


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed tlog-witness ``add-checkpoint`` request body.

    ``checkpoint`` is the signed checkpoint note, verbatim. Parsing checks
    syntax only (:class:`MalformedRequestError`, 400); a witness then verifies the
    log signature (404 unknown origin / 403 bad or missing signature), calls
    :meth:`check` (400 / 422 rules that need no state), compares ``old_size``
    with its own record (409), and verifies the consistency proof (422).
    """

    old_size: int
    consistency: list[bytes]
    checkpoint: str

    @cached_property
    def note(self) -> Note:
        """The signed checkpoint note (unverified)."""
        return parse_note(self.checkpoint)

    @cached_property
    def body(self) -> Checkpoint:
        """The checkpoint body (unverified)."""
        return Checkpoint.parse(self.note.text)

    def check(self) -> None:
        """The stateless tlog-witness rules.

        Raises :class:`OldSizeTooLargeError` (400) if the old size exceeds the
        checkpoint size, and :class:`UnprocessableRequestError` (422) for a
        non-empty proof from old size 0 or a size-0 checkpoint whose root is
        not the empty tree's.
        """
        size = self.body.size
        if self.old_size > size:
            raise OldSizeTooLargeError(f"old size {self.old_size} exceeds checkpoint size {size}")
        if size == 0 and self.body.root != EMPTY_TREE_ROOT:
            raise UnprocessableRequestError("a size-0 checkpoint must have the empty tree's root")
        if self.old_size == 0 and self.consistency:
            raise UnprocessableRequestError(
                "the consistency proof must be empty when old size is 0"
            )

    def format(self) -> str:
        """The request body."""
        return format_add_checkpoint(self.old_size, self.consistency, self.checkpoint)


def format_add_checkpoint(
    old_size: int, consistency: Sequence[bytes], signed_checkpoint: str
) -> str:
    """Write an add-checkpoint request body: ``old <n>``, proof lines, blank, checkpoint."""
    _check_int(old_size, "old size", MAX_TREE_SIZE)
    if len(consistency) > ADD_CHECKPOINT_MAX_PROOF_LINES:
        raise NoteError(f"more than {ADD_CHECKPOINT_MAX_PROOF_LINES} consistency proof lines")
    for i, h in enumerate(consistency, 1):
        _check_hash(h, f"consistency hash {i}")
    text, note = _checkpoint_of(signed_checkpoint, NoteError)
    if old_size > Checkpoint.parse(note.text).size:
        raise NoteError("the old size must not exceed the checkpoint size")
    lines = [f"old {old_size}", *(_b64encode(h) for h in consistency)]
    return "".join(line + "\n" for line in lines) + "\n" + text


def parse_add_checkpoint(data: str | bytes) -> AddCheckpoint:
    """Parse an add-checkpoint request body strictly (syntax only; see :class:`AddCheckpoint`).

    Raises :class:`MalformedRequestError` on any syntax error.
    """
    text = _as_text(data, MalformedRequestError, "request body")
    split = text.find("\n\n")
    if split < 0:
        raise MalformedRequestError("no empty line before the checkpoint")
    head, signed_checkpoint = text[:split].split("\n"), text[split + 2 :]
    old_line, proof_lines = head[0], head[1:]
    if not old_line.startswith("old "):
        raise MalformedRequestError(f"first line must be 'old <size>', got {old_line[:80]!r}")
    old_size = _parse_decimal(
        old_line[len("old ") :], "old size", MalformedRequestError, MAX_TREE_SIZE
    )
    consistency = _parse_hash_lines(
        proof_lines, "consistency proof", MalformedRequestError, ADD_CHECKPOINT_MAX_PROOF_LINES
    )
    _checkpoint_of(signed_checkpoint, MalformedRequestError)
    return AddCheckpoint(old_size, consistency, signed_checkpoint)
