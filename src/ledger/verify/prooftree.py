"""Auditing the stored tree the server proves from against the events.

The server answers inclusion and consistency proofs from its stored tree
(``tlog_leaves``: which event each leaf is; ``tlog_nodes``: the hash of every
perfect subtree; ``tlog_state``: the frontier the next append continues
from). A damaged row there does not change a single event or checkpoint, so
the other checks cannot see it -- but the proofs built on it fail.

:class:`ProofStoreAuditor` is the :class:`~ledger.verify.log.LogAuditor`
that also recomputes, leaf by leaf, every row those tables must hold for the
first *size* events (the size ``tlog_state`` gave when the audit started)
and compares it with the stored row, streaming each table in index order
(one page per level at a time: memory stays bounded whatever the size).
Rows a running server appends meanwhile are beyond that size and left alone;
rows beyond the tree it has at the end are extra.

Findings (class ``proof-store``, exit code 11):

``stored-leaf``   a ``tlog_leaves`` row that names another event than the
                  one at its index, is missing, or has no event
``stored-node``   a ``tlog_nodes`` hash that differs from the recomputed
                  one, is missing, or is extra (level and index named;
                  expected and actual hashes in hex)
``stored-state``  the ``tlog_state`` row does not hold the tree of the
                  events it claims (size, last position, frontier)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.tlog import merkle
from ledger.tlog.keys import Verifier
from ledger.verify.log import LogAuditor
from ledger.verify.report import Finding

PAGE = 2_048  # rows per table read, per level
KEPT = 200  # proof-store findings kept in the report (all are counted)

_Fetch = Callable[[Any], list[Any]]


class _Rows:
    """One table (or one level of ``tlog_nodes``) read in index order."""

    __slots__ = ("_fetch", "at", "done", "rows")

    def __init__(self, fetch: _Fetch) -> None:
        self._fetch = fetch
        self.rows: list[Any] = fetch(None)
        self.at = 0
        self.done = len(self.rows) < PAGE

    def peek(self) -> Any:
        if self.at == len(self.rows):
            if self.done:
                return None
            after = self.rows[-1][0]
            if after is None:  # a page of NULL indexes (sorted first): no paging past it
                self.done = True
                return None
            self.rows = self._fetch(after)
            self.at = 0
            self.done = len(self.rows) < PAGE
            if not self.rows:
                return None
        return self.rows[self.at]


def _is_index(value: Any) -> bool:
    return type(value) is int


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return f"{type(value).__name__} {value!r}"[:120]


def _span(level: int, index: int) -> str:
    first = index << level
    return f"leaves {first}..{first + (1 << level) - 1}" if level else f"leaf {first}"


class ProofStoreAuditor(LogAuditor):
    """A :class:`LogAuditor` that also checks the stored leaves, nodes and
    state; feed it with :meth:`add_event` / :meth:`add_event_leaf`."""

    def __init__(
        self,
        checkpoints: Sequence[StoredCheckpoint],
        log_keys: Sequence[Verifier],
        origin: str | None = None,
        *,
        stored: LogStore,
        **options: Any,
    ) -> None:
        """``stored``: the log store whose tables are checked; ``options``
        go to :class:`LogAuditor` (``remembered``, ...)."""
        super().__init__(checkpoints, log_keys, origin, **options)
        self._stored = stored
        self.proof_findings: list[Finding] = []
        self.proof_total = 0
        self._size = 0  # the stored tree checked: its size when the audit started
        self._levels: list[_Rows] = []
        self._unreadable = False
        try:
            self._state = stored.stored_state()
            size = 0 if self._state is None else self._state[0]
            if not _is_index(size) or size < 0:
                self._proof(
                    None, "stored-state", f"tlog_state row: size {size!r} is not a tree size"
                )
                size = 0
            self._size = size
            self._leaves = _Rows(lambda after: stored.stored_leaves(after, PAGE))
            if self._size == 0:
                self._check_state(None)
        except Exception as error:  # a finding, never a crash
            self._cannot_read(None, error)

    def _cannot_read(self, position: int | None, error: Exception) -> None:
        """A table that cannot be read (dropped, a column of another type...)
        ends the check of the proof store with a finding."""
        self._proof(
            position,
            "stored-state",
            f"a tlog_leaves, tlog_nodes or tlog_state row cannot be read: "
            f"{type(error).__name__}: {error}"[:300],
        )
        self._size = min(self._size, self._tree.size)
        self._unreadable = True

    # -- feeding --------------------------------------------------------------
    def add_event(self, position: int, aggregate_id: str, version: int, record: bytes) -> None:
        """The next entry: an event and its record bytes."""
        self.add_event_leaf(position, aggregate_id, version, merkle.leaf_hash(record))

    def add_event_leaf(self, position: int, aggregate_id: str, version: int, leaf: bytes) -> None:
        """The next entry: an event and its leaf hash."""
        tree = self._tree
        index = tree.size
        if index < self._size:
            completed = tree.append_leaf_completing(leaf)
            try:
                self._compare(index, position, aggregate_id, version, completed)
            except Exception as error:  # a finding, never a crash
                self._cannot_read(position, error)
        else:
            tree.append_leaf(leaf)
        if tree.size == self._watch:
            self._reached(position)

    def _compare(
        self, index: int, position: int, aggregate_id: str, version: int, completed: list[bytes]
    ) -> None:
        """Leaf ``index`` (the event at ``position``) and the hashes of the
        subtrees its append completed (level 0 first), against the stored
        rows."""
        leaves = self._leaves
        at = leaves.at
        rows = leaves.rows
        if at < len(rows) and rows[at] == (index, position, aggregate_id, version):
            leaves.at = at + 1
        else:
            self._leaf_differs(index, position, aggregate_id, version)
        levels = self._levels
        for level, hash_ in enumerate(completed):
            if level == len(levels):
                levels.append(self._open(level))
            stream = levels[level]
            at = stream.at
            rows = stream.rows
            if at < len(rows) and rows[at] == (index >> level, hash_):
                stream.at = at + 1
            else:
                self._node_differs(level, index >> level, hash_, position)
        if index + 1 == self._size:
            self._check_state(position)

    def _open(self, level: Any) -> _Rows:
        stored = self._stored
        return _Rows(lambda after: stored.stored_nodes(level, after, PAGE))

    # -- comparing ------------------------------------------------------------
    def _leaf_differs(self, index: int, position: int, aggregate_id: str, version: int) -> None:
        expected = f"position {position}, {aggregate_id} v{version}"
        while True:
            row = self._leaves.peek()
            if row is not None and not _is_index(row[0]):
                self._leaves.at += 1
                self._extra_leaf(row, position)
                continue
            if row is None or row[0] > index:
                self._proof(
                    position,
                    "stored-leaf",
                    f"tlog_leaves row of leaf {index} is missing",
                    aggregate_id,
                    version,
                    expected=expected,
                    actual="no row",
                )
                return
            self._leaves.at += 1
            if row[0] < index:
                self._extra_leaf(row, position)
                continue
            if row[1:] != (position, aggregate_id, version):
                self._proof(
                    position,
                    "stored-leaf",
                    f"tlog_leaves row of leaf {index} names another event than the one "
                    f"at its index",
                    aggregate_id,
                    version,
                    expected=expected,
                    actual=f"position {row[1]!r}, {row[2]!r} v{row[3]!r}",
                )
            return

    def _node_differs(self, level: int, index: int, hash_: bytes, position: int | None) -> None:
        rows = self._levels[level]
        where = f"tlog_nodes row level {level} index {index} ({_span(level, index)})"
        while True:
            row = rows.peek()
            if row is not None and not _is_index(row[0]):
                rows.at += 1
                self._extra_node(level, row, position)
                continue
            if row is None or row[0] > index:
                self._proof(
                    position,
                    "stored-node",
                    f"{where} is missing (recomputed {hash_.hex()})",
                    expected=hash_.hex(),
                    actual="no row",
                )
                return
            rows.at += 1
            if row[0] < index:
                self._extra_node(level, row, position)
                continue
            if row[1] != hash_:
                self._proof(
                    position,
                    "stored-node",
                    f"{where} differs from the hash recomputed from the events: "
                    f"stored {_hex(row[1])}, recomputed {hash_.hex()}",
                    expected=hash_.hex(),
                    actual=_hex(row[1]),
                )
            return

    def _extra_leaf(self, row: Any, position: int | None, why: str = "") -> None:
        self._proof(
            position,
            "stored-leaf",
            f"tlog_leaves row of leaf {row[0]!r} is extra{why}",
            expected="no row",
            actual=f"position {row[1]!r}, {row[2]!r} v{row[3]!r}",
        )

    def _extra_node(self, level: Any, row: Any, position: int | None, why: str = "") -> None:
        self._proof(
            position,
            "stored-node",
            f"tlog_nodes row level {level!r} index {row[0]!r} is extra{why}",
            expected="no row",
            actual=_hex(row[1]),
        )

    def _check_state(self, position: int | None) -> None:
        """The tree has reached the stored size: ``tlog_state`` must hold it."""
        if self._state is None:
            return  # no state row and no tree: nothing appended yet
        _, last_position, text = self._state
        expected_last = 0 if self._size == 0 else position
        if self._size and last_position != expected_last:
            self._proof(
                position,
                "stored-state",
                f"tlog_state row: last position {last_position!r} is not the position of "
                f"leaf {self._size - 1}",
                expected=str(expected_last),
                actual=repr(last_position),
            )
        try:
            frontier = merkle.CompactRange.from_json(json.loads(text))
        except (TypeError, ValueError) as error:
            self._proof(
                position, "stored-state", f"tlog_state row: the frontier cannot be read: {error}"
            )
            return
        if frontier == self._tree:
            return
        if frontier.size != self._tree.size:
            self._proof(
                position,
                "stored-state",
                f"tlog_state row: the frontier is of {frontier.size} leaves, the row's "
                f"size {self._size}",
                expected=str(self._size),
                actual=str(frontier.size),
            )
            return
        for (level, index, want), (_, _, got) in zip(
            self._tree.subtrees(), frontier.subtrees(), strict=True
        ):
            if want != got:
                self._proof(
                    position,
                    "stored-state",
                    f"tlog_state row: the frontier's subtree level {level} index {index} "
                    f"({_span(level, index)}) differs from the hash recomputed from "
                    f"the events: stored {got.hex()}, recomputed {want.hex()}",
                    expected=want.hex(),
                    actual=got.hex(),
                )
                return

    # -- the end --------------------------------------------------------------
    def finish(self) -> list[Finding]:
        return super().finish() + self.proof_findings

    def read_the_rest(self) -> None:
        """After the last event (and before the store closes): the stored
        rows no event reached are extra, unless a running server appended
        them since the audit started."""
        if self._unreadable:
            return
        try:
            self._read_the_rest()
        except Exception as error:  # a finding, never a crash
            self._cannot_read(None, error)

    def _read_the_rest(self) -> None:
        events = self._tree.size
        if events < self._size:
            self._proof(
                None,
                "stored-state",
                f"tlog_state row: the stored tree has {self._size} leaves, the store "
                f"{events} events",
                expected=str(events),
                actual=str(self._size),
            )
        # What a running server appended while this audit ran is beyond the
        # size checked, but not beyond the tree it has now.
        state = self._stored.stored_state()
        now = state[0] if state is not None and _is_index(state[0]) else 0
        grown = max(now, self._size)
        no_event = f" (the store has {events} events)"
        beyond = f" (beyond the stored tree of {grown} leaves)"
        leaves = self._leaves
        while (row := leaves.peek()) is not None:
            leaves.at += 1
            index = row[0]
            if _is_index(index) and events <= index < self._size:
                self._extra_leaf(row, None, no_event)
            elif not _is_index(index) or index < 0 or index >= grown:
                self._extra_leaf(row, None, beyond)
        levels = dict(enumerate(self._levels))
        for level in self._stored.stored_levels():
            rows = levels.get(level) if _is_index(level) else None
            if rows is None:
                rows = self._open(level)
            while (row := rows.peek()) is not None:
                rows.at += 1
                index = row[0]
                if not _is_index(level) or level < 0 or not _is_index(index) or index < 0:
                    self._extra_node(level, row, None)
                    continue
                last = ((index + 1) << level) - 1  # the leaf that completes it
                if events <= last < self._size:
                    self._extra_node(level, row, None, no_event)
                elif last >= grown:
                    self._extra_node(level, row, None, beyond)

    def _proof(
        self,
        position: int | None,
        check: str,
        message: str,
        aggregate_id: str | None = None,
        version: int | None = None,
        *,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        self.proof_total += 1
        # (a damaged events row may hand in an id or a version of another kind:
        # the message says what it was; the finding's fields stay JSON)
        aggregate_id = aggregate_id if isinstance(aggregate_id, str) else None
        version = version if type(version) is int else None
        if len(self.proof_findings) < KEPT:
            self.proof_findings.append(
                Finding(position, aggregate_id, version, None, check, message, expected, actual)
            )

    @property
    def dropped(self) -> int:
        """Proof-store findings counted but not kept."""
        return self.proof_total - len(self.proof_findings)
