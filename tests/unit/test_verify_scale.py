"""What makes the verifier fast and small must change nothing it finds: the
fast path against the general one, state spilled to disk against state in
memory, the second process against none, the fast reader against the
library's, and the lean Merkle folds against the plain ones."""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.service.sealer import Sealer
from ledger.store.database import DatabaseURL
from ledger.store.eventstore import EventStore
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.store.records import RecordReader
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Signer
from ledger.tlog.signed_note import sign_note
from ledger.verify import Report, Verifier, fastpath, verify_store
from ledger.verify import verifier as verifier_module
from ledger.verify.codec import ZERO_HASH, splice
from ledger.verify.log import LogAuditor, b64
from ledger.verify.pipeline import CLEAN, ID_OK, LEAF, Prechecker, check_page
from ledger.verify.rows import read_rows as _rows
from ledger.verify.schema import PAYLOAD_OK, PAYLOADS, payload_problem
from ledger.verify.state import StateTable
from tests.integration.test_verify_codes import template  # noqa: F401 - a fixture used here
from tests.integration.test_verify_ledger import build_busy
from tests.strategies import json_values

Row = tuple[int, str, int, str, bytes]


def encode(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@pytest.fixture(scope="module")
def busy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "ledger.db"
    build_busy(f"sqlite:///{path}")
    return path


@pytest.fixture
def busy_copy(busy_path: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    shutil.copy(busy_path, path)
    return path


def stored_rows(path: Path) -> list[Row]:
    with sqlite3.connect(path) as db:
        found = db.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            "FROM stored_events ORDER BY rowid"
        ).fetchall()
    return [(r[0], str(uuid.UUID(r[1])), r[2], r[3], bytes(r[4])) for r in found]


def rechain(rows: list[Row], aggregate_id: str) -> list[Row]:
    """Recompute every prev_hash of one aggregate (a careful forger)."""
    out, head = [], ZERO_HASH
    for row in rows:
        if row[1] == aggregate_id:
            data = orjson.loads(row[4])
            data["prev_hash"] = head
            row = (*row[:4], encode(data))  # noqa: PLW2901
            head = hashlib.sha256(splice(*row[1:])).hexdigest()
        out.append(row)
    return out


def damaged(rows: list[Row], seed: int) -> list[Row]:
    """One random edit of the kinds the verifier must catch."""
    rng = random.Random(seed)
    rows = list(rows)
    i = rng.randrange(len(rows))
    position, aggregate_id, version, event_type, state = rows[i]
    data = orjson.loads(state)
    payload = data["payload"]
    kind = rng.randrange(9)
    if kind == 0 and payload:  # a member changed, the chain rewritten
        key = rng.choice(sorted(payload))
        payload[key] = rng.choice([None, 0, 1, 7, 1.5, "x", "shop", [], {}, True])
        rows[i] = (position, aggregate_id, version, event_type, encode(data))
        return rechain(rows, aggregate_id)
    if kind == 1:  # not canonical
        rows[i] = (position, aggregate_id, version, event_type, state.replace(b":", b": ", 1))
    elif kind == 2:  # a float somewhere
        payload["result" if "result" in payload else "extra"] = {"x": [1, 2.5]}
        rows[i] = (position, aggregate_id, version, event_type, encode(data))
    elif kind == 3:
        del rows[i]
    elif kind == 4:
        rows[i] = (position, aggregate_id, version + rng.choice([-1, 1, 2]), event_type, state)
    elif kind == 5:
        rows[i] = (position, aggregate_id, version, rng.choice(["stock.sold", "nope"]), state)
    elif kind == 6:
        data["prev_hash"] = "f" * 64
        rows[i] = (position, aggregate_id, version, event_type, encode(data))
    elif kind == 7:
        rows[i] = (position, aggregate_id.upper(), version, event_type, state)
    else:
        j = rng.randrange(len(rows))
        rows[i], rows[j] = (position, *rows[j][1:]), (rows[j][0], *rows[i][1:])
    return rows


def seal(url: DatabaseURL) -> Signer:
    """Sign a checkpoint of the whole log, as a server's sealer would."""
    signer = Signer.generate("test.example/log")
    store = EventStore(url)
    try:
        Sealer(store, LogStore(store.recorder), origin="test.example/log", signers=[signer]).seal()
    finally:
        store.close()
    return signer


def key(report: Report) -> Any:
    return (
        report.events,
        report.aggregates,
        report.findings_total,
        report.by_type,
        [f.to_json() for f in report.findings],
    )


def feed(rows: list[Row], **options: Any) -> Report:
    verifier = Verifier(keep=10_000, **options)
    for row in rows:
        verifier.feed(*row)
    return verifier.finish("test")


# -- the fast path and the state table ------------------------------------------
@pytest.mark.parametrize("seed", range(40))
def test_fast_path_memory_and_general_path_agree(
    busy_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = stored_rows(busy_path) if seed == 0 else damaged(stored_rows(busy_path), seed)
    fast = feed(rows)
    spilled = feed(rows, memory=2_000)  # a few entries in memory, the rest on disk
    monkeypatch.setattr(verifier_module, "clean_state", lambda *_: None)
    general = feed(rows)
    assert key(fast) == key(spilled) == key(general)
    if seed == 0:
        assert fast.ok, fast.first


def test_state_table_spills_and_reloads() -> None:
    table = StateTable(budget=20_000)
    keys: list[bytes | str] = [
        uuid.UUID(int=i * 7_919 + 1).bytes if i % 50 else f"odd id {i}" for i in range(2_000)
    ]
    values = {k: bytes([i % 256]) * (i % 40 + 1) for i, k in enumerate(keys)}
    for k, v in values.items():
        assert table.get(k) is None
        table.add(k, v)
    assert table.spilled > 0
    assert len(table) == 2_000
    for i, k in enumerate(values):
        if i % 3 == 0:
            values[k] = b"new" + values[k]
            table.put(k, values[k])
    for _ in range(2):  # read back twice: reloaded entries move again
        for k, v in values.items():
            assert table.get(k) == v
    assert table.get("never") is None
    assert table.get(uuid.UUID(int=3).bytes) is None
    assert table.held <= 20_000
    table.close()


@given(st.sampled_from(sorted(PAYLOADS)), json_values)
def test_payload_check_never_passes_what_the_schema_refuses(event_type: str, payload: Any) -> None:
    if PAYLOAD_OK[event_type](payload):
        assert payload_problem(event_type, payload) is None


def test_payload_check_passes_real_payloads(busy_path: Path) -> None:
    for _, _, _, event_type, state in stored_rows(busy_path):
        payload = orjson.loads(state)["payload"]
        assert PAYLOAD_OK[event_type](payload)
        assert payload_problem(event_type, payload) is None


def test_float_walk_stops_deep() -> None:
    nested: Any = 1
    for _ in range(500):
        nested = [nested]
    assert not fastpath._float_free({"result": nested}, ("result",))
    assert fastpath._float_free({"result": {"a": [1, {"b": "2.5"}]}}, ("result",))
    assert not fastpath._float_free({"result": {"a": [1, {"b": 2.5}]}}, ("result",))


# -- reading the store ------------------------------------------------------------
def read_all(rows: Any) -> list[Any]:
    out: list[Any] = []
    try:
        out.extend(tuple(r) for r in rows)
    except Exception as error:  # the error is what is compared
        out.append((type(error).__name__, str(error)))
    return out


@pytest.mark.parametrize(
    "damage",
    [
        None,
        "UPDATE stored_events SET originator_id = upper(originator_id) WHERE rowid % 7 = 0",
        "UPDATE stored_events SET originator_id = '6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60' "
        "WHERE rowid = 5",
    ],
)
def test_rows_are_read_as_the_library_reads_them(busy_copy: Path, damage: str | None) -> None:
    if damage is not None:
        with sqlite3.connect(busy_copy) as db:
            db.execute(damage)
    url = DatabaseURL.parse(f"sqlite:///{busy_copy}")
    with RecordReader(url) as reader:
        expected = read_all(
            (r.position, r.aggregate_id, r.version, r.event_type, r.state) for r in reader
        )
    with RecordReader(url) as reader:
        assert read_all(_rows(reader)) == expected


@pytest.mark.parametrize(
    ("damage", "column", "stored"),
    [
        ("UPDATE stored_events SET originator_id = 'nothex' WHERE rowid = 9", 1, "nothex"),
        ("UPDATE stored_events SET originator_id = NULL WHERE rowid = 9", 1, None),
        ("UPDATE stored_events SET originator_id = 12 WHERE rowid = 9", 1, "12"),  # TEXT column
        ("UPDATE stored_events SET state = CAST(state AS TEXT) WHERE rowid = 9", 4, str),
        ("UPDATE stored_events SET state = NULL WHERE rowid = 9", 4, None),
        # (the library reads this one as b"\0\0", bytes(2), and reads on)
        ("UPDATE stored_events SET state = 2 WHERE rowid = 9", 4, 2),
        ("UPDATE stored_events SET topic = CAST(x'ff' AS TEXT) WHERE rowid = 9", 3, b"\xff"),
        (
            "UPDATE stored_events SET originator_version = CAST(x'80' AS TEXT) WHERE rowid = 9",
            2,
            b"\x80",
        ),
    ],
)
def test_a_row_the_library_cannot_read_is_read_as_stored(
    busy_path: Path, busy_copy: Path, damage: str, column: int, stored: Any
) -> None:
    """Where the library stops (a page it cannot convert or decode), the
    verifier's reader reads on: every other row as the library would, the
    damaged value as it is stored, for the verifier to report."""
    with sqlite3.connect(busy_copy) as db:
        db.execute(damage)
    url = DatabaseURL.parse(f"sqlite:///{busy_copy}")
    with RecordReader(url) as reader:
        got = read_all(_rows(reader))
    intact = stored_rows(busy_path)
    assert len(got) == len(intact)
    for row, before in zip(got, intact, strict=True):
        if row[0] != 9:
            assert row == before
        else:
            value = row[column]
            assert isinstance(value, str) if stored is str else value == stored
            assert row[:column] + row[column + 1 :] == before[:column] + before[column + 1 :]


# -- the second process -------------------------------------------------------------
def test_check_page_says_what_each_row_is(busy_path: Path) -> None:
    rows = stored_rows(busy_path)[:20]
    bad = (*rows[3][:4], rows[3][4].replace(b":", b": ", 1))
    page = [*rows[:3], bad, (rows[4][0], None, 1, "x", b"{}")]
    result = check_page(page)
    n = len(page)
    assert len(result) == n * 65
    assert [flags & (CLEAN | LEAF) for flags in result[:n]] == [CLEAN | LEAF] * 3 + [LEAF, 0]
    for i, row in enumerate(page[:4]):
        record = splice(*row[1:])
        digest = result[n + 32 * i : n + 32 * (i + 1)]
        leaf = result[33 * n + 32 * i : 33 * n + 32 * (i + 1)]
        assert digest == (hashlib.sha256(record).digest() if i < 3 else bytes(32))
        assert leaf == merkle.leaf_hash(record)


def checked(checker: Prechecker, rows: Any, page_size: int) -> list[Any]:
    """Each row with its flags (0 where the other process did not say)."""
    out = []
    for page, found in checker.pages(rows, (ValueError,), page_size=page_size):
        out += [(*row, found[i] if found else 0) for i, row in enumerate(page)]
    return out


def test_prechecker_answers_in_order_and_falls_back_when_gone(busy_path: Path) -> None:
    rows = stored_rows(busy_path)
    with Prechecker() as checker:
        got = checked(checker, rows, 7)
        assert [g[:5] for g in got] == rows
        assert {g[5] & (CLEAN | LEAF) for g in got} == {CLEAN | LEAF}
        assert any(g[5] & ID_OK for g in got)
        checker._process.kill()
        checker._process.wait()
        after = checked(checker, rows, 7)
        assert [g[:5] for g in after] == rows
        assert {g[5] for g in after} == {0}


def test_prechecker_raises_a_read_error_after_the_rows_before_it(busy_path: Path) -> None:
    rows = stored_rows(busy_path)[:30]

    def source() -> Any:
        yield from rows[:17]
        raise ValueError("cannot read row 18")

    seen: list[Any] = []

    def read(checker: Prechecker) -> None:
        for page, _ in checker.pages(source(), (ValueError,), page_size=5):
            seen.extend(page)

    with Prechecker() as checker, pytest.raises(ValueError, match="row 18"):
        read(checker)
    assert seen == rows[:17]


@pytest.mark.parametrize(
    "damage",
    [
        None,
        "UPDATE stored_events SET state = replace(state, ':', ': ') WHERE rowid = 8",
        "DELETE FROM stored_events WHERE rowid = 11",
        "UPDATE stored_events SET originator_version = originator_version + 1 "
        "WHERE rowid = (SELECT max(rowid) FROM stored_events)",
        "UPDATE stored_events SET state = NULL WHERE rowid = 15",
        "UPDATE tlog_checkpoints SET root = zeroblob(32)",
        """UPDATE stored_events SET state = CAST(replace(state, '"key":"s1"', '"key":"zz"') AS BLOB)
       WHERE topic = 'command.recorded'""",
        """UPDATE stored_events SET state =
       CAST(replace(state, '"buyer":"carol"', '"buyer":"carl"') AS BLOB)
       WHERE topic = 'allowance.started'""",
    ],
)
def test_parallel_verification_reports_the_same(busy_copy: Path, damage: str | None) -> None:
    url = DatabaseURL.parse(f"sqlite:///{busy_copy}")
    signer = seal(url)
    if damage is not None:
        with sqlite3.connect(busy_copy) as db:
            db.execute(damage)
    keys = [signer.verifier()]
    alone = verify_store(url, log_keys=keys, parallel=False)
    both = verify_store(url, log_keys=keys, parallel=True)
    assert key(both) == key(alone)
    assert both.log == alone.log
    assert alone.ok is (damage is None)
    if damage is not None and "key" in damage:
        assert "bad-id" in alone.by_check()


# -- the log ---------------------------------------------------------------------------
def test_lean_merkle_appends_match_append() -> None:
    plain, by_data, by_leaf = merkle.CompactRange(), merkle.CompactRange(), merkle.CompactRange()
    for i in range(300):
        data = f"entry {i}".encode()
        plain.append(merkle.leaf_hash(data))
        by_data.append_data(data)
        by_leaf.append_leaf(merkle.leaf_hash(data))
        assert plain == by_data == by_leaf
    assert plain.root() == by_data.root()


def test_auditor_checks_every_size_it_must() -> None:
    signer = Signer.generate("ledger.example/log")
    records = [f"record {i}".encode() for i in range(9)]
    tree = merkle.CompactRange()
    roots = {}
    for i, record in enumerate(records, 1):
        tree.append(merkle.leaf_hash(record))
        roots[i] = tree.root()

    def checkpoint(size: int, root: bytes) -> StoredCheckpoint:
        note = sign_note(Checkpoint("ledger.example/log", size, root).body(), [signer])
        return StoredCheckpoint(size, root, note, "")

    stored = [checkpoint(3, roots[3]), checkpoint(5, b"\x01" * 32), checkpoint(9, roots[9])]
    for remembered in (None, (0, "x"), (4, "y"), (5, b64(roots[5]))):
        auditor = LogAuditor(stored, [signer.verifier()], remembered=remembered)
        for i, record in enumerate(records, 1):
            if i % 2:
                auditor.add(i, record)
            else:
                auditor.add_leaf(i, merkle.leaf_hash(record))
        checks = [(f.position, f.check) for f in auditor.finish()]
        assert (5, "checkpoint-root") in checks
        assert auditor.summary.verified == 2
        assert auditor.summary.latest_size == 9
        assert ((4, "split-view") in checks) is (remembered == (4, "y"))
        assert ((None, "rollback") in checks) is (remembered == (0, "x"))
        assert len(checks) == 1 + (remembered in ((4, "y"), (0, "x")))


@pytest.mark.parametrize("offset", [2**32 - 5, 2**40, -(2**35)])
def test_positions_beyond_32_bits_are_kept_whole(busy_path: Path, offset: int) -> None:
    rows = damaged(stored_rows(busy_path), 21)  # a prev_hash broken: its finding names a position
    moved = [(position + offset, *rest) for position, *rest in rows]
    plain, far = feed(rows), feed(moved, memory=2_000)
    assert [(f.position, f.message) for f in far.findings] == [
        (
            None if f.position is None else f.position + offset,
            f.message.replace(f"at position {p}", f"at position {p + offset}")
            if (p := _position_named(f.message)) is not None
            else f.message,
        )
        for f in plain.findings
    ]
    assert plain.findings_total == far.findings_total > 0
    assert any(_position_named(f.message) for f in far.findings)


def _position_named(message: str) -> int | None:
    import re

    found = re.search(r"at position (-?\d+)", message)
    return int(found.group(1)) if found else None


# -- the same on a store with redemption codes, holds and their whole lives ------------
@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_paths_agree_on_codes_and_holds(
    request: pytest.FixtureRequest, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes: Path = request.getfixturevalue("template")  # test_verify_codes's store
    rows = stored_rows(codes) if seed == 0 else damaged(stored_rows(codes), seed)
    fast, spilled = feed(rows), feed(rows, memory=2_000)
    monkeypatch.setattr(verifier_module, "clean_state", lambda *_: None)
    assert key(fast) == key(spilled) == key(feed(rows))
    if seed == 0:
        assert fast.ok, fast.first


def test_parallel_verification_on_codes_and_holds(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path = tmp_path / "codes.db"
    shutil.copy(request.getfixturevalue("template"), path)
    url = DatabaseURL.parse(f"sqlite:///{path}")
    keys = [seal(url).verifier()]
    assert key(verify_store(url, log_keys=keys, parallel=True)) == key(
        verify_store(url, log_keys=keys, parallel=False)
    )
