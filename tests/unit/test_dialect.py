"""The SQL dialect without a database: the statements each backend is given."""

from __future__ import annotations

from typing import Any

from ledger.store.dialect import SQLITE, Dialect, Tables

PG = Dialect(postgres=True, schema="s1")


class Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def execute(self, statement: str, parameters: Any = ()) -> None:
        self.calls.append((statement, parameters))

    def fetchone(self) -> Any:
        return {"n": 1}


def test_names() -> None:
    assert SQLITE.table("api_keys") == "api_keys"
    assert PG.table("api_keys") == '"s1".ledger_api_keys'
    assert SQLITE.library_table("stored_events") == "stored_events"
    assert PG.library_table("ledger_events") == '"s1"."ledger_events"'
    assert SQLITE.index("proj_units_by_holder") == "proj_units_by_holder"
    assert PG.index("proj_units_by_holder") == "ledger_proj_units_by_holder"


def test_statements() -> None:
    for dialect, marker in ((SQLITE, "?"), (PG, "%s")):
        tables = Tables.named(dialect, t="api_keys", m="code_keyring")
        assert tables.sql("SELECT a FROM {t} JOIN {m} ON x = ? WHERE b = ?") == (
            f"SELECT a FROM {dialect.table('api_keys')} JOIN {dialect.table('code_keyring')} "
            f"ON x = {marker} WHERE b = {marker}"
        )
    assert (SQLITE.blob, PG.blob) == ("BLOB", "BYTEA")


def test_code_point_order() -> None:
    assert SQLITE.code_point_order(["a", "v"], numeric=["v"]) == "a, v"
    assert PG.code_point_order(["a", "v"], numeric=["v"]) == 'a COLLATE "C", v'


def test_exclusive() -> None:
    sqlite, pg = Recording(), Recording()
    SQLITE.exclusive(sqlite, 7, touch="UPDATE t SET id = 1 WHERE id = 1")
    PG.exclusive(pg, 7, touch="UPDATE t SET id = 1 WHERE id = 1")
    assert sqlite.calls == [("UPDATE t SET id = 1 WHERE id = 1", ())]
    assert pg.calls == [("SELECT pg_advisory_xact_lock(%s)", (7,))]
    ddl = Recording()
    SQLITE.exclusive(ddl, 7)  # DDL takes SQLite's writer lock itself
    assert ddl.calls == []
    assert (SQLITE.reads_while_writing, PG.reads_while_writing) == (False, True)


def test_select_for_update() -> None:
    sqlite, pg = Recording(), Recording()
    for dialect, cursor in ((SQLITE, sqlite), (PG, pg)):
        row = dialect.select_for_update(
            cursor, "SELECT n FROM t WHERE id = ?", (1,), touch="UPDATE t SET n = n WHERE id = ?"
        )
        assert row == {"n": 1}
    assert sqlite.calls == [
        ("UPDATE t SET n = n WHERE id = ?", (1,)),
        ("SELECT n FROM t WHERE id = ?", (1,)),
    ]
    assert pg.calls == [("SELECT n FROM t WHERE id = ? FOR UPDATE", (1,))]


def test_any_of() -> None:
    keys = [f"k{i}" for i in range(1001)]
    assert list(PG.any_of("SELECT k FROM t WHERE", "k", keys)) == [
        ("SELECT k FROM t WHERE k = ANY(?)", (keys,))
    ]
    chunks = list(SQLITE.any_of("SELECT k FROM t WHERE", "k", keys))
    assert [len(p) for _, p in chunks] == [500, 500, 1]
    assert chunks[2] == ("SELECT k FROM t WHERE k IN (?)", ["k1000"])
    assert [p for _, p in chunks] == [keys[:500], keys[500:1000], keys[1000:]]
    assert list(SQLITE.any_of("SELECT k FROM t WHERE", "k", [])) == []


def test_pairs_of() -> None:
    keys = [(i % 3, i) for i in range(251)]
    key = (("level", "int"), ("idx", "bigint"))
    assert list(PG.pairs_of(("level", "idx", "hash"), "{nodes}", key, keys)) == [
        (
            "SELECT n.level, n.idx, n.hash FROM unnest(?::int[], ?::bigint[]) AS k(level, idx) "
            "JOIN {nodes} n ON n.level = k.level AND n.idx = k.idx",
            ([a for a, _ in keys], [b for _, b in keys]),
        )
    ]
    chunks = list(SQLITE.pairs_of(("level", "idx", "hash"), "{nodes}", key, keys))
    assert [len(p) for _, p in chunks] == [500, 2]
    assert chunks[1] == (
        "SELECT level, idx, hash FROM {nodes} WHERE (level = ? AND idx = ?)",
        [250 % 3, 250],
    )
