"""``c2sp.org/signed-note@v1.0.0``: signed notes, their signatures and verification.

Verification follows the signed-note rules: signatures from unknown keys
(unknown *(name, key ID)* pair) are ignored; a known key's signature is always
verified and, if it fails, the whole note is rejected; a note with no valid
signature from a known key is rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.tlog.c2sp import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    MAX_SIGNATURES,
    AmbiguousKeyError,
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    UnverifiedNoteError,
    _as_text,
    _check_note_chars,
)
from ledger.tlog.cosignature import verify_cosignature
from ledger.tlog.keys import (
    NoteSignature,
    Signer,
    Verifier,
    _key_label,
)

# -- signed notes ------------------------------------------------------------


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
