"""The SQL dialect's contract, on both real backends (a SQLite file and PostgreSQL).

The same statements, written once with ``?`` and ``{key}`` names, go
through :mod:`ledger.store.dialect` on each backend and must give the same
answers: names land in the store's file or schema, bytes come back as they
went in, an upsert with an alias adds, many keys are found beyond SQLite's
batches, text sorts by code point, and the two ways of serialising writers
(``exclusive``, ``select_for_update``) lose no update under concurrency.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.store.database import DatabaseURL
from ledger.store.dialect import SQLITE_MAX_KEYS, TableStore, plain_cursor, tuples
from ledger.store.sidetables import open_recorder

LOCK_KEY = 0x74657374  # "test"


class Scratch(TableStore):
    """Three tables of our own beside the events."""

    def __init__(self, recorder: Any) -> None:
        super().__init__(recorder, kv="test_kv", pairs="test_pairs", counter="test_counter")
        blob = self.dialect.blob
        self._create(
            LOCK_KEY,
            f"CREATE TABLE IF NOT EXISTS {{kv}} (k TEXT PRIMARY KEY, v {blob} NOT NULL, "
            "n BIGINT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {pairs} (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
            "label TEXT NOT NULL, PRIMARY KEY (level, idx))",
            "CREATE TABLE IF NOT EXISTS {counter} (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)",
            "INSERT INTO {counter} (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
        )

    def run(self, statement: str, *parameters: Any) -> None:
        with self._cursor(commit=True) as cursor:
            cursor.execute(self._sql(statement), parameters)

    def rows(self, statement: str, *parameters: Any) -> list[dict[str, Any]]:
        with self._cursor(commit=False) as cursor:
            cursor.execute(self._sql(statement), parameters)
            return [dict(row) for row in cursor.fetchall()]


@pytest.fixture
def scratch(store_url: DatabaseURL) -> Iterator[Scratch]:
    with open_recorder(store_url, create=True) as recorder:
        yield Scratch(recorder)


def test_the_dialect_is_the_stores(scratch: Scratch, store_url: DatabaseURL) -> None:
    assert scratch.dialect.postgres == (store_url.backend == "postgresql")
    if scratch.dialect.postgres:
        assert scratch.dialect.schema == store_url.schema
        assert scratch.tables.names["kv"] == f'"{store_url.schema}".ledger_test_kv'
    else:
        assert scratch.tables.names["kv"] == "test_kv"


def test_tables_live_beside_the_events(scratch: Scratch, store_url: DatabaseURL) -> None:
    if scratch.dialect.postgres:
        found = scratch.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name LIKE ? ORDER BY table_name",
            store_url.schema,
            "ledger_test_%",
        )
    else:
        found = scratch.rows(
            "SELECT name AS table_name FROM sqlite_master WHERE type = 'table' "
            "AND name LIKE ? ORDER BY name",
            "test_%",
        )
    prefix = "ledger_" if scratch.dialect.postgres else ""
    assert [r["table_name"] for r in found] == [
        f"{prefix}test_counter",
        f"{prefix}test_kv",
        f"{prefix}test_pairs",
    ]


def test_bytes_come_back_as_stored(scratch: Scratch) -> None:
    rng = random.Random(1)
    values = {f"k{i}": rng.randbytes(i) for i in range(64)}
    values["zeros"] = b"\x00" * 32
    values["high"] = bytes(range(256))
    for key, value in values.items():
        scratch.run("INSERT INTO {kv} (k, v, n) VALUES (?, ?, 0)", key, value)
    read = {r["k"]: bytes(r["v"]) for r in scratch.rows("SELECT k, v FROM {kv}")}
    assert read == values


def test_an_upsert_with_an_alias_adds(scratch: Scratch) -> None:
    upsert = (
        "INSERT INTO {kv} AS t (k, v, n) VALUES (?, ?, ?) "
        "ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n, v = excluded.v"
    )
    with scratch._cursor(commit=True) as cursor:
        cursor.executemany(
            scratch._sql(upsert), [("a", b"1", 1), ("b", b"2", 10), ("a", b"3", 100)]
        )
    rows = scratch.rows("SELECT k, v, n FROM {kv} ORDER BY k")
    assert [(r["k"], bytes(r["v"]), r["n"]) for r in rows] == [("a", b"3", 101), ("b", b"2", 10)]


@pytest.fixture
def many(scratch: Scratch) -> Scratch:
    """1,203 rows in each of kv and pairs: beyond two of SQLite's batches."""
    with scratch._cursor(commit=True) as cursor:
        cursor.executemany(
            scratch._sql("INSERT INTO {kv} (k, v, n) VALUES (?, ?, ?)"),
            [(f"key-{i:05d}", b"", i) for i in range(1203)],
        )
        cursor.executemany(
            scratch._sql("INSERT INTO {pairs} (level, idx, label) VALUES (?, ?, ?)"),
            [(i % 7, i, f"{i % 7}/{i}") for i in range(1203)],
        )
    return scratch


@pytest.mark.parametrize("count", [0, 1, SQLITE_MAX_KEYS, SQLITE_MAX_KEYS + 1, 1500])
def test_any_of_finds_every_key(many: Scratch, count: int) -> None:
    rng = random.Random(count)
    known = rng.sample([f"key-{i:05d}" for i in range(1203)], min(count, 1203))
    asked = known + [f"missing-{i}" for i in range(count - len(known))]
    rng.shuffle(asked)
    found: set[str] = set()
    statements = 0
    with many._cursor(commit=False) as cursor:
        for select, parameters in many.dialect.any_of(
            many._sql("SELECT k FROM {kv} WHERE"), "k", asked
        ):
            statements += 1
            cursor.execute(many.dialect.params(select), parameters)
            found.update(str(r["k"]) for r in cursor.fetchall())
    assert found == set(known)
    if many.dialect.postgres:
        assert statements == 1
    else:
        assert statements == -(-count // SQLITE_MAX_KEYS)


@pytest.mark.parametrize("count", [1, SQLITE_MAX_KEYS // 2, SQLITE_MAX_KEYS // 2 + 1, 1300])
def test_pairs_of_finds_every_pair(many: Scratch, count: int) -> None:
    rng = random.Random(count)
    stored = [(i % 7, i) for i in range(1203)]
    known = rng.sample(stored, min(count, len(stored)))
    asked = known + [(8, i) for i in range(count - len(known))]  # no level 8
    rng.shuffle(asked)
    found: dict[tuple[int, int], str] = {}
    with many._cursor(commit=False) as cursor:
        for select, parameters in many.dialect.pairs_of(
            ("level", "idx", "label"), "{pairs}", (("level", "int"), ("idx", "bigint")), asked
        ):
            cursor.execute(many._sql(select), parameters)
            for row in cursor.fetchall():
                found[(int(row["level"]), int(row["idx"]))] = str(row["label"])
    assert found == {(level, idx): f"{level}/{idx}" for level, idx in known}


def test_text_sorts_by_code_point(scratch: Scratch) -> None:
    texts = ["b", "B", "a", "A", "_", "é", "e", "Z", "z", "10", "9", "ä", "Ω", "😀", "a b", "ab"]
    for n, text in enumerate(texts):
        scratch.run("INSERT INTO {kv} (k, v, n) VALUES (?, ?, ?)", text, b"", n % 3)
    order = scratch.dialect.code_point_order(["n", "k"], numeric=["n"])
    rows = scratch.rows(f"SELECT n, k FROM {{kv}} ORDER BY {order}")
    assert [(r["n"], r["k"]) for r in rows] == sorted((n % 3, t) for n, t in enumerate(texts))


def test_tuples_and_the_plain_cursor(many: Scratch) -> None:
    with many._cursor(commit=False) as cursor:
        rows = tuples(
            cursor, many._sql("SELECT level, idx FROM {pairs} WHERE idx < ? ORDER BY idx"), (3,)
        )
    assert rows == [(0, 0), (1, 1), (2, 2)]
    assert all(type(r) is tuple for r in rows)
    with many._cursor(commit=False) as cursor:
        cursor.execute(many._sql("SELECT idx FROM {pairs} ORDER BY idx"))
        plain = plain_cursor(cursor)
        first = plain.fetchmany(500)
        rest = plain.fetchall()
    assert [r["idx"] for r in [*first, *rest]] == list(range(1203))


def _race(scratch: Scratch, increment: Any, threads: int = 4, rounds: int = 15) -> None:
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(rounds):
                with scratch._cursor(commit=True) as cursor:
                    increment(cursor)
        except BaseException as error:  # reported below
            failures.append(error)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, failures
    assert scratch.rows("SELECT n FROM {counter} WHERE id = 1") == [{"n": threads * rounds}]


def test_select_for_update_loses_no_update(scratch: Scratch) -> None:
    def increment(cursor: Any) -> None:
        row = scratch.dialect.select_for_update(
            cursor,
            scratch._sql("SELECT n FROM {counter} WHERE id = ?"),
            (1,),
            touch=scratch._sql("UPDATE {counter} SET n = n WHERE id = ?"),
        )
        cursor.execute(scratch._sql("UPDATE {counter} SET n = ? WHERE id = 1"), (row["n"] + 1,))

    _race(scratch, increment)


def test_exclusive_loses_no_update(scratch: Scratch) -> None:
    def increment(cursor: Any) -> None:
        scratch.dialect.exclusive(
            cursor, LOCK_KEY, touch=scratch._sql("UPDATE {counter} SET id = 1 WHERE id = 1")
        )
        cursor.execute(scratch._sql("SELECT n FROM {counter} WHERE id = 1"))
        n = cursor.fetchone()["n"]
        cursor.execute(scratch._sql("UPDATE {counter} SET n = ? WHERE id = 1"), (n + 1,))

    _race(scratch, increment)


def test_select_for_update_of_no_row_is_none(scratch: Scratch) -> None:
    with scratch._cursor(commit=True) as cursor:
        row = scratch.dialect.select_for_update(
            cursor,
            scratch._sql("SELECT n FROM {counter} WHERE id = ?"),
            (2,),
            touch=scratch._sql("UPDATE {counter} SET n = n WHERE id = ?"),
        )
    assert row is None


def test_creating_twice_changes_nothing(scratch: Scratch) -> None:
    scratch.run("UPDATE {counter} SET n = 7 WHERE id = 1")
    Scratch(scratch.recorder)
    assert scratch.rows("SELECT n FROM {counter}") == [{"n": 7}]
