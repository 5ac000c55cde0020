"""The global log's persistent Merkle tree, checkpoints and cosignatures.

Tables live beside the events, in the same database (same SQLite file, same
PostgreSQL schema), reached through the event store's own connection pool:

* ``tlog_leaves(leaf_index, position, aggregate_id, version)`` -- leaf i is
  the event at store position ``position`` (commit order, gaps skipped);
* ``tlog_nodes(level, idx, hash)`` -- every *perfect, aligned* subtree the
  tree has completed (level 0: leaf hashes). Nodes never change once
  written, so any root or proof is O(log n) of them, never a rebuild: read
  in one query (the ones not in the in-memory cache already);
* ``tlog_state`` -- one row: the size and the compact range (frontier) from
  which the next append continues;
* ``tlog_checkpoints(size, root, note, signed_at)`` and
  ``tlog_cosignatures(size, cosigner, line, received_at)``.

Appending is done by one sequencer at a time: PostgreSQL takes a
transaction-scoped advisory lock; SQLite's single writer lock does the same.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from ledger.store.dialect import TableStore, tuples
from ledger.tlog import merkle
from ledger.tlog.merkle import CompactRange

_SEQUENCER_LOCK_KEY = 0x6C6564676572  # "ledger": the advisory lock id on PostgreSQL
_ROOTS_REMEMBERED = 64
_NODES_PER_QUERY = 250  # (level, idx) pairs per SQLite SELECT: 500 parameters, under 999


@dataclass(frozen=True, slots=True)
class Leaf:
    index: int
    position: int
    aggregate_id: str
    version: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str  # the signed note (checkpoint body + log signatures)
    signed_at: str


class LogStore(TableStore):
    """Reads and appends the tree; also a ``SubtreeSource`` for proofs."""

    def __init__(
        self, recorder: ApplicationRecorder, *, node_cache: int = 200_000, create: bool = True
    ) -> None:
        super().__init__(
            recorder,
            **{
                name: f"tlog_{name}"
                for name in ("leaves", "nodes", "state", "checkpoints", "cosignatures")
            },
        )
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._cache_max = node_cache
        self._roots: OrderedDict[int, bytes] = OrderedDict()  # size -> root: never changes
        self._cache_lock = threading.Lock()
        if create:
            self.create_tables()

    def create_tables(self) -> None:
        blob = self.dialect.blob
        self._create(
            _SEQUENCER_LOCK_KEY,
            "CREATE TABLE IF NOT EXISTS {leaves} (leaf_index BIGINT PRIMARY KEY, "
            "position BIGINT NOT NULL UNIQUE, aggregate_id TEXT NOT NULL, "
            "version BIGINT NOT NULL, UNIQUE (aggregate_id, version))",
            "CREATE TABLE IF NOT EXISTS {nodes} (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
            f"hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
            "CREATE TABLE IF NOT EXISTS {state} (id INTEGER PRIMARY KEY, size BIGINT NOT NULL, "
            "last_position BIGINT NOT NULL, frontier TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {{checkpoints}} (size BIGINT PRIMARY KEY, root {blob} "
            "NOT NULL, note TEXT NOT NULL, signed_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {cosignatures} (size BIGINT NOT NULL, cosigner TEXT "
            "NOT NULL, line TEXT NOT NULL, received_at TEXT NOT NULL, "
            "PRIMARY KEY (size, cosigner))",
        )

    # -- reading --------------------------------------------------------------
    def state(self) -> tuple[int, int, CompactRange]:
        """(size, last sequenced store position, frontier)."""
        with self._cursor(commit=False) as cursor:
            return self._read_state(cursor)

    def _read_state(self, cursor: Any) -> tuple[int, int, CompactRange]:
        cursor.execute(self._sql("SELECT size, last_position, frontier FROM {state} WHERE id = 1"))
        row = cursor.fetchone()
        if row is None:
            return 0, 0, CompactRange()
        return (
            int(row["size"]),
            int(row["last_position"]),
            CompactRange.from_json(json.loads(row["frontier"])),
        )

    def size(self) -> int:
        return self.state()[0]

    def subtree(self, level: int, index: int) -> bytes:
        key = (level, index)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql("SELECT hash FROM {nodes} WHERE level = ? AND idx = ?"), (level, index)
            )
            row = cursor.fetchone()
        if row is None:
            raise LookupError(f"no subtree at level {level} index {index}")
        found = bytes(row["hash"])
        with self._cache_lock:
            self._cache[key] = found
            while len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return found

    def subtrees(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The hash of each ``(level, index)`` subtree of ``keys``: those not
        cached, in one query (a ``merkle.BulkSubtreeSource``).

        ``LookupError`` if one is not in the tree.
        """
        found: dict[tuple[int, int], bytes] = {}
        missing: list[tuple[int, int]] = []
        with self._cache_lock:
            for key in dict.fromkeys(keys):
                cached = self._cache.get(key)
                if cached is None:
                    missing.append(key)
                else:
                    self._cache.move_to_end(key)
                    found[key] = cached
        if not missing:
            return found
        read: dict[tuple[int, int], bytes] = {}
        with self._cursor(commit=False) as cursor:
            for select, parameters in self._node_queries(missing):
                cursor.execute(select, parameters)
                for row in cursor.fetchall():
                    read[(int(row["level"]), int(row["idx"]))] = bytes(row["hash"])
        for level, index in missing:
            if (level, index) not in read:
                raise LookupError(f"no subtree at level {level} index {index}")
        with self._cache_lock:
            self._cache.update(read)
            while len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        found.update(read)
        return found

    def _node_queries(self, keys: list[tuple[int, int]]) -> Iterator[tuple[str, Any]]:
        """SELECTs of the nodes ``keys`` name: one index search per key."""
        for select, parameters in self.dialect.pairs_of(
            ("level", "idx", "hash"),
            "{nodes}",
            (("level", "int"), ("idx", "bigint")),
            keys,
            per_query=_NODES_PER_QUERY,
        ):
            yield self._sql(select), parameters

    def root(self, size: int) -> bytes:
        """The root of the first ``size`` leaves (remembered for the last
        few sizes asked: a tree's root never changes). ``LookupError`` if the
        tree is smaller."""
        with self._cache_lock:
            found = self._roots.get(size)
        if found is None:
            found = merkle.root(size, self)
            with self._cache_lock:
                self._roots[size] = found
                while len(self._roots) > _ROOTS_REMEMBERED:
                    self._roots.popitem(last=False)
        return found

    def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes], bytes]:
        """Leaf ``index``'s hash, its inclusion proof in the tree of ``size``
        leaves, and that tree's root: the nodes not cached in one query.

        ``ValueError`` unless ``0 <= index < size``; ``LookupError`` if the
        tree is smaller than ``size``.
        """
        root = self.root(size)
        leaf, proof = merkle.leaf_and_inclusion_proof(index, size, self)
        return leaf, proof, root

    def leaves(self, start: int, end: int) -> list[Leaf]:
        """Leaves ``start <= index < end``."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT l.leaf_index, l.position, l.aggregate_id, l.version, n.hash "
                    "FROM {leaves} l JOIN {nodes} n ON n.level = 0 AND n.idx = l.leaf_index "
                    "WHERE l.leaf_index >= ? AND l.leaf_index < ? ORDER BY l.leaf_index"
                ),
                (start, end),
            )
            return [
                Leaf(
                    int(r["leaf_index"]),
                    int(r["position"]),
                    str(r["aggregate_id"]),
                    int(r["version"]),
                    bytes(r["hash"]),
                )
                for r in cursor.fetchall()
            ]

    def indexes_of(self, positions: Sequence[int]) -> dict[int, int]:
        """The leaf index of each event at a store position among
        ``positions`` that the log has sequenced (the others are not yet)."""
        found: dict[int, int] = {}
        with self._cursor(commit=False) as cursor:
            for start in range(0, len(positions), _NODES_PER_QUERY * 2):
                chunk = tuple(positions[start : start + _NODES_PER_QUERY * 2])
                marks = ", ".join("?" * len(chunk))
                cursor.execute(
                    self._sql(
                        "SELECT leaf_index, position FROM {leaves} "  # noqa: S608 - marks only
                        f"WHERE position IN ({marks})"
                    ),
                    chunk,
                )
                found.update((int(r["position"]), int(r["leaf_index"])) for r in cursor.fetchall())
        return found

    def leaf_of(self, aggregate_id: str, version: int) -> Leaf | None:
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT l.leaf_index, l.position, n.hash FROM {leaves} l JOIN {nodes} n "
                    "ON n.level = 0 AND n.idx = l.leaf_index "
                    "WHERE l.aggregate_id = ? AND l.version = ?"
                ),
                (aggregate_id, version),
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return Leaf(
            int(row["leaf_index"]), int(row["position"]), aggregate_id, version, bytes(row["hash"])
        )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT size, root, note, signed_at FROM {checkpoints}"
                    " ORDER BY size DESC LIMIT 1"
                )
            )
            row = cursor.fetchone()
        return _checkpoint(row)

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql("SELECT size, root, note, signed_at FROM {checkpoints} WHERE size = ?"),
                (size,),
            )
            return _checkpoint(cursor.fetchone())

    def exists(self) -> bool:
        """Whether the log's tables are there (a store may predate the log)."""
        try:
            self.checkpoints()
        except Exception:
            return False
        return True

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql("SELECT size, root, note, signed_at FROM {checkpoints} ORDER BY size")
            )
            return [c for c in (_checkpoint(r) for r in cursor.fetchall()) if c is not None]

    def checkpoint_rows(self) -> list[tuple[Any, Any, Any, Any]]:
        """Every checkpoint row as stored, unconverted: (size, root, note,
        signed_at), for an auditor who judges each value itself."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql("SELECT size, root, note, signed_at FROM {checkpoints} ORDER BY size")
            )
            return [(r["size"], r["root"], r["note"], r["signed_at"]) for r in cursor.fetchall()]

    def checkpoint_rows_as_stored(self) -> list[tuple[Any, Any, Any, Any]] | None:
        """As :meth:`checkpoint_rows`, for rows the driver cannot decode (text
        that is no UTF-8, which only SQLite stores): each value as its type
        says, text as bytes when it is no UTF-8; None without the table (or on
        PostgreSQL, whose text is always UTF-8)."""
        if self.dialect.postgres:
            return None
        columns = ("size", "root", "note", "signed_at")
        select = ", ".join(f"typeof({c}), CAST({c} AS BLOB)" for c in columns)
        try:
            rows = self._tuples(f"SELECT {select} FROM {{checkpoints}} ORDER BY rowid", ())  # noqa: S608 - fixed column names
        except Exception:  # no such table: the store predates the log
            return None
        return [
            tuple(_as_stored(kind, raw) for kind, raw in zip(row[::2], row[1::2], strict=True))
            for row in rows
        ]

    def cosignatures(self, size: int) -> dict[str, str]:
        """Cosigner name -> the signature line it returned, for one checkpoint."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT cosigner, line FROM {cosignatures} WHERE size = ? ORDER BY cosigner"
                ),
                (size,),
            )
            return {str(r["cosigner"]): str(r["line"]) for r in cursor.fetchall()}

    def last_cosigned(self) -> dict[str, tuple[int, str]]:
        """Cosigner name -> (the largest size it cosigned, when that came)."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT c.cosigner, c.size, c.received_at FROM {cosignatures} c JOIN "
                    "(SELECT cosigner, MAX(size) AS size FROM {cosignatures} GROUP BY cosigner) m"
                    " ON m.cosigner = c.cosigner AND m.size = c.size ORDER BY c.cosigner"
                )
            )
            return {
                str(r["cosigner"]): (int(r["size"]), str(r["received_at"]))
                for r in cursor.fetchall()
            }

    def first_checkpoint_after(self, size: int) -> StoredCheckpoint | None:
        """The smallest checkpoint larger than ``size`` (one a verifier that
        cosigned ``size`` has yet to cosign)."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT size, root, note, signed_at FROM {checkpoints} WHERE size > ?"
                    " ORDER BY size LIMIT 1"
                ),
                (size,),
            )
            return _checkpoint(cursor.fetchone())

    # -- the rows as stored, for the auditor ------------------------------------
    # Unconverted (a damaged row may hold a text where a hash belongs): the
    # auditor (ledger.verify.prooftree) compares them with the tree it
    # recomputes from the events, page by page, in index order.
    def stored_state(self) -> tuple[Any, Any, Any] | None:
        """The ``tlog_state`` row: (size, last_position, frontier text)."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql("SELECT size, last_position, frontier FROM {state} WHERE id = 1")
            )
            row = cursor.fetchone()
        return None if row is None else (row["size"], row["last_position"], row["frontier"])

    def stored_leaves(self, after: Any, limit: int) -> list[tuple[Any, Any, Any, Any]]:
        """Up to ``limit`` ``tlog_leaves`` rows (leaf_index, position,
        aggregate_id, version) after index ``after`` (None: from the first)."""
        where = "" if after is None else "WHERE leaf_index > ? "
        return self._tuples(
            "SELECT leaf_index, position, aggregate_id, version FROM {leaves} "  # noqa: S608
            + where
            + "ORDER BY leaf_index LIMIT ?",
            (limit,) if after is None else (after, limit),
        )

    def stored_nodes(self, level: Any, after: Any, limit: int) -> list[tuple[Any, Any]]:
        """Up to ``limit`` ``tlog_nodes`` rows (idx, hash) of ``level`` after
        index ``after`` (None: from the first), in index order."""
        where = "WHERE level = ? " + ("" if after is None else "AND idx > ? ")
        return self._tuples(
            "SELECT idx, hash FROM {nodes} " + where + "ORDER BY idx LIMIT ?",  # noqa: S608
            (level, limit) if after is None else (level, after, limit),
        )

    def _tuples(self, statement: str, parameters: Sequence[Any]) -> list[Any]:
        """The rows of a SELECT as plain tuples (this reads the whole tree)."""
        with self._cursor(commit=False) as cursor:
            return tuples(cursor, self._sql(statement), parameters)

    def stored_levels(self) -> list[Any]:
        """Every level ``tlog_nodes`` has a row at (an index seek per level)."""
        levels: list[Any] = []
        with self._cursor(commit=False) as cursor:
            while True:
                if levels:
                    cursor.execute(
                        self._sql("SELECT MIN(level) AS level FROM {nodes} WHERE level > ?"),
                        (levels[-1],),
                    )
                else:
                    cursor.execute(self._sql("SELECT MIN(level) AS level FROM {nodes}"))
                row = cursor.fetchone()
                if row is None or row["level"] is None:
                    return levels
                levels.append(row["level"])

    # -- writing --------------------------------------------------------------
    def append(self, read_new: Any, limit: int) -> int:
        """Append the next events as leaves, in one transaction.

        ``read_new(last_position, limit)`` returns up to ``limit`` events
        after ``last_position`` as ``(position, aggregate_id, version,
        leaf_hash)`` in position order. Returns how many were appended.
        """
        early: Sequence[tuple[int, str, int, bytes]] | None = None
        if not self.dialect.reads_while_writing:
            # Read the events *before* taking the writer lock (SQLite: see
            # Dialect.reads_while_writing), and append them only if no other
            # sealer moved the state meanwhile.
            with self._cursor(commit=False) as cursor:
                expected = self._read_state(cursor)[1]
            early = read_new(expected, limit)
            if not early:
                return 0
        with self._cursor(commit=True) as cursor:
            self.dialect.exclusive(
                cursor,
                _SEQUENCER_LOCK_KEY,
                touch=self._sql("UPDATE {state} SET id = 1 WHERE id = 1"),
            )
            size, last_position, frontier = self._read_state(cursor)
            if early is not None and last_position != expected:
                return 0  # another sealer got there first: read again next time
            batch: Sequence[tuple[int, str, int, bytes]] = (
                early if early is not None else read_new(last_position, limit)
            )
            if not batch:
                return 0
            leaves, nodes = [], []
            for position, aggregate_id, version, leaf_hash in batch:
                if position <= last_position:
                    raise AssertionError("events must be sequenced in position order")
                leaves.append((size, position, aggregate_id, version))
                nodes.extend(frontier.append(leaf_hash))
                size += 1
                last_position = position
            cursor.executemany(
                self._sql(
                    "INSERT INTO {leaves} (leaf_index, position, aggregate_id, version) "
                    "VALUES (?, ?, ?, ?)"
                ),
                leaves,
            )
            cursor.executemany(
                self._sql("INSERT INTO {nodes} (level, idx, hash) VALUES (?, ?, ?)"), nodes
            )
            cursor.execute(self._sql("DELETE FROM {state} WHERE id = 1"))
            cursor.execute(
                self._sql(
                    "INSERT INTO {state} (id, size, last_position, frontier) VALUES (1, ?, ?, ?)"
                ),
                (size, last_position, json.dumps(frontier.to_json())),
            )
            return len(batch)

    def add_checkpoint(self, size: int, root: bytes, note: str, signed_at: str) -> None:
        with self._cursor(commit=True) as cursor:
            # A size another sealer signed first keeps its note (same root).
            cursor.execute(
                self._sql(
                    "INSERT INTO {checkpoints} (size, root, note, signed_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (size) DO NOTHING"
                ),
                (size, root, note, signed_at),
            )

    def add_cosignature(self, size: int, cosigner: str, line: str, received_at: str) -> None:
        with self._cursor(commit=True) as cursor:
            cursor.execute(
                self._sql("DELETE FROM {cosignatures} WHERE size = ? AND cosigner = ?"),
                (size, cosigner),
            )
            cursor.execute(
                self._sql(
                    "INSERT INTO {cosignatures} (size, cosigner, line, received_at) "
                    "VALUES (?, ?, ?, ?)"
                ),
                (size, cosigner, line, received_at),
            )


def _checkpoint(row: Any) -> StoredCheckpoint | None:
    if row is None:
        return None
    return StoredCheckpoint(
        int(row["size"]), bytes(row["root"]), str(row["note"]), str(row["signed_at"])
    )


def _as_stored(kind: str, raw: bytes | None) -> Any:
    """A SQLite value rebuilt from ``typeof`` and its bytes."""
    if raw is None or kind == "null":
        return None
    if kind == "integer":
        return int(raw)
    if kind == "real":
        return float(raw)
    if kind == "text":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return bytes(raw)
    return bytes(raw)
