"""``c2sp.org/tlog-proof@v1``: the ``.tlog-proof`` offline proof file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from ledger.tlog.c2sp import (
    _HASH_SIZE,
    MAX_TREE_SIZE,
    TLOG_PROOF_HEADER,
    TLOG_PROOF_MAX_INCLUSION_LINES,
    MalformedNoteError,
    MalformedProofError,
    NoteError,
    _as_text,
    _b64decode,
    _b64encode,
    _check_hash,
    _check_int,
    _parse_decimal,
)
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.signed_note import Note, parse_note


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
