"""``c2sp.org/tlog-witness`` (v1.0.0 and HEAD): the ``add-checkpoint`` request body.

The signature-lines response body is :func:`ledger.tlog.signed_note.format_signature_lines`
/ :func:`~ledger.tlog.signed_note.parse_signature_lines`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from ledger.tlog.c2sp import (
    ADD_CHECKPOINT_MAX_PROOF_LINES,
    EMPTY_TREE_ROOT,
    MAX_TREE_SIZE,
    MalformedRequestError,
    NoteError,
    OldSizeTooLargeError,
    UnprocessableRequestError,
    _as_text,
    _b64encode,
    _check_hash,
    _check_int,
    _parse_decimal,
)
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.proof import _checkpoint_of, _parse_hash_lines
from ledger.tlog.signed_note import Note, parse_note

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
