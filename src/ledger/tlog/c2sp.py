"""Shared parts of the C2SP text formats: limits, errors and strict codecs.

The errors are all :class:`NoteError` (a ``ValueError``); the subclasses say
which rule failed, so a witness server can map them to HTTP status codes:
:class:`MalformedRequestError` is tlog-witness's 400,
:class:`UnprocessableRequestError` its 422, :class:`InvalidSignatureError` /
:class:`UnverifiedNoteError` its 403. The strictness the codecs apply beyond
the specs' letter is listed in :mod:`ledger.tlog.note`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

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
