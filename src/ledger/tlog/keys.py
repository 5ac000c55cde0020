"""``c2sp.org/signed-note@v1.0.0`` keys: key names, key IDs, verifier keys and signers.

The private key text of Go's ``golang.org/x/mod/sumdb/note`` package
(``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || 32-byte seed)>``) is read
and written by :class:`Signer`; type ``0x04`` (tlog-cosignature) uses the same layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.tlog.c2sp import (
    _ED25519_KEY_SIZE,
    _ED25519_SIG_SIZE,
    _HEX8_RE,
    _KEY_ID_SIZE,
    _PRIVATE_PREFIX,
    _SIG_PREFIX,
    _SUPPORTED_KEY_TYPES,
    KEY_TYPE_ED25519,
    MalformedKeyError,
    MalformedNoteError,
    NoteError,
    _b64decode,
    _b64encode,
)

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


def _key_label(v: Verifier | Signer | NoteSignature) -> str:
    return f"{v.name}+{v.key_id.hex()}"
