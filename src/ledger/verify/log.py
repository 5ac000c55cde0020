"""Auditing the global log against the events: every signed checkpoint's
root must be the RFC 9162 root of the events' records up to its size, and
its note must carry a valid signature of a log key the auditor trusts.

The tree is recomputed from the records themselves (a compact range: O(log
n) memory), never read from the server's stored nodes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.store.logstore import StoredCheckpoint
from ledger.tlog import merkle
from ledger.tlog.c2sp import NoteError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Verifier
from ledger.tlog.signed_note import open_note, parse_note
from ledger.verify.report import Finding

# Seconds an event may stay outside every checkpoint, measured against the
# newest event's timestamp, before an auditor who names a log key or a
# policy is told (``unsigned-events``). A server's sealer signs every
# ``seal_interval`` seconds (1 s by default, 60 s at most), so a live log's
# unsigned tail is seconds old; five minutes is five times the longest
# interval a server can be given, with room for a sealing pass under load
# and clocks a little apart between the server's processes.
UNSIGNED_AGE_DEFAULT = 300.0


@dataclass
class LogSummary:
    checkpoints: int = 0
    verified: int = 0
    latest_size: int = 0
    latest_root: str = ""
    signers: list[str] = field(default_factory=list)
    keys_given: bool = False
    unsealed_events: int = 0
    latest_note: str = ""
    origin: str = ""
    cosigners: list[str] = field(default_factory=list)
    quorum: str = ""  # "met" / "not met" / "" (no policy given)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LogAuditor:
    def __init__(
        self,
        checkpoints: Sequence[StoredCheckpoint],
        log_keys: Sequence[Verifier],
        origin: str | None = None,
        *,
        remembered: tuple[int, str] | None = None,
        on_verified: Callable[[], object] | None = None,
    ) -> None:
        """``remembered`` is the (size, base64 root) an earlier run verified
        (``--state``): the log must still contain that tree. ``on_verified``
        is called when a checkpoint over the entries added so far verifies."""
        self._remembered = remembered
        self._on_verified = on_verified
        self._pending = sorted(checkpoints, key=lambda c: c.size)
        self._keys = list(log_keys)
        self._origin = origin
        self._tree = merkle.CompactRange()
        self.findings: list[Finding] = []
        self.summary = LogSummary(checkpoints=len(self._pending), keys_given=bool(self._keys))
        self._check_due(position=None)
        self._watch = self._next_watch()

    def _next_watch(self) -> int:
        """The next tree size at which something is checked (-1: none)."""
        sizes = [self._pending[0].size] if self._pending else []
        if self._remembered is not None:
            sizes.append(self._remembered[0])
        later = [size for size in sizes if size > self._tree.size]
        return min(later) if later else -1

    def add(self, position: int, record: bytes) -> None:
        """The next entry: an event's record bytes."""
        tree = self._tree
        tree.append_data(record)
        if tree.size == self._watch:
            self._reached(position)

    def add_leaf(self, position: int, leaf: bytes) -> None:
        """The next entry, by its leaf hash (``merkle.leaf_hash(record)``)."""
        tree = self._tree
        tree.append_leaf(leaf)
        if tree.size == self._watch:
            self._reached(position)

    def _reached(self, position: int) -> None:
        """The tree has grown to a size with a checkpoint, or the one
        verified before."""
        self._check_due(position)
        if self._remembered is not None and self._tree.size == self._remembered[0]:
            size, root = self._remembered
            self._remembered = None
            if b64(self._tree.root()) != root:
                self._flag(
                    position,
                    "split-view",
                    f"the first {size} entries no longer form the tree verified "
                    f"before: this log shows another history",
                    expected=root,
                    actual=b64(self._tree.root()),
                )
        self._watch = self._next_watch()

    def finish(self) -> list[Finding]:
        if self._remembered is not None:
            self._flag(
                None,
                "rollback",
                f"the log has {self._tree.size} entries, fewer than the "
                f"{self._remembered[0]} verified before: it was rolled back",
            )
        for checkpoint in self._pending:
            self._flag(
                None,
                "checkpoint-beyond-log",
                f"checkpoint of size {checkpoint.size} covers more events than the "
                f"store holds ({self._tree.size}): events were deleted or truncated",
            )
        self._pending = []
        self.summary.unsealed_events = self._tree.size - self.summary.latest_size
        return self.findings

    def _check_due(self, position: int | None) -> None:
        while self._pending and self._pending[0].size == self._tree.size:
            self._check(self._pending.pop(0), position)

    def _check(self, stored: StoredCheckpoint, position: int | None) -> None:
        root = self._tree.root() if stored.size else merkle.EMPTY_ROOT
        try:
            if self._keys:
                note, signed = open_note(stored.note, self._keys)
            else:  # no trusted key given: roots are still checked, signatures are not
                note, signed = parse_note(stored.note), []
            checkpoint = Checkpoint.parse(note.text)
        except NoteError as error:
            self._flag(
                position, "checkpoint-signature", f"checkpoint of size {stored.size}: {error}"
            )
            return
        if self._keys and not signed:
            self._flag(
                position,
                "checkpoint-signature",
                f"checkpoint of size {stored.size} has no valid signature by a trusted log key",
            )
            return
        if self._origin is not None and checkpoint.origin != self._origin:
            self._flag(
                position,
                "checkpoint-origin",
                f"checkpoint origin {checkpoint.origin!r}, expected {self._origin!r}",
            )
        if checkpoint.size != stored.size or checkpoint.root != stored.root:
            self._flag(
                position,
                "checkpoint-mismatch",
                f"stored checkpoint row (size {stored.size}) differs from its signed note",
            )
        if checkpoint.root != root:
            self._flag(
                position,
                "checkpoint-root",
                f"the signed root at size {checkpoint.size} is not the root of the "
                f"events: expected {b64(root)}, signed {b64(checkpoint.root)}",
                expected=b64(root),
                actual=b64(checkpoint.root),
            )
            return
        self.summary.verified += 1
        self.summary.latest_size = checkpoint.size
        self.summary.latest_root = b64(checkpoint.root)
        self.summary.latest_note = stored.note
        self.summary.signers = sorted({v.name for v in signed})
        if self._on_verified is not None:
            self._on_verified()

    def _flag(
        self,
        position: int | None,
        check: str,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        self.findings.append(Finding(position, None, None, None, check, message, expected, actual))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
