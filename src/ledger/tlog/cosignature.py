"""``c2sp.org/tlog-cosignature`` (v1.0.1 and HEAD, Ed25519 part): timestamped cosignatures."""

from __future__ import annotations

from ledger.tlog.c2sp import (
    _ED25519_SIG_SIZE,
    COSIGNATURE_V1_HEADER,
    KEY_TYPE_COSIGNATURE_V1,
    MAX_TIMESTAMP,
    InvalidSignatureError,
    NoteError,
    _check_int,
)
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import NoteSignature, Signer, Verifier, _key_label

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
