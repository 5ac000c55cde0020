"""C2SP transparency-log text formats: signed notes, checkpoints, cosignatures.

This module is the one import point for code outside the project (the
project's own modules import from where a name is defined); the code lives
in one module per specification: :mod:`ledger.tlog.c2sp` (limits, errors, strict codecs),
:mod:`~ledger.tlog.keys` (signed-note keys, verifier keys, signature lines),
:mod:`~ledger.tlog.signed_note`, :mod:`~ledger.tlog.checkpoint`,
:mod:`~ledger.tlog.cosignature`, :mod:`~ledger.tlog.proof` (tlog-proof) and
:mod:`~ledger.tlog.witness` (tlog-witness add-checkpoint).

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

from ledger.tlog.c2sp import (
    ADD_CHECKPOINT_MAX_PROOF_LINES,
    COSIGNATURE_V1_HEADER,
    EMPTY_TREE_ROOT,
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    MAX_SIGNATURES,
    MAX_TIMESTAMP,
    MAX_TREE_SIZE,
    TLOG_PROOF_HEADER,
    TLOG_PROOF_MAX_INCLUSION_LINES,
    AmbiguousKeyError,
    InvalidSignatureError,
    MalformedCheckpointError,
    MalformedKeyError,
    MalformedNoteError,
    MalformedProofError,
    MalformedRequestError,
    NoteError,
    OldSizeTooLargeError,
    UnprocessableRequestError,
    UnverifiedNoteError,
)
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosignature import (
    cosign,
    cosignature_message,
    cosignature_timestamp,
    verify_cosignature,
)
from ledger.tlog.keys import NoteSignature, Signer, Verifier, key_id, valid_key_name
from ledger.tlog.proof import TlogProof, format_tlog_proof, parse_tlog_proof
from ledger.tlog.signed_note import (
    Note,
    SignatureCheck,
    format_note,
    format_signature_lines,
    open_note,
    parse_note,
    parse_signature_lines,
    sign_note,
    verify_signatures,
)
from ledger.tlog.witness import AddCheckpoint, format_add_checkpoint, parse_add_checkpoint

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
