"""``ledger verify`` on stores edited at random: whatever is in the store,
it ends with a documented exit code and located findings, never a
traceback.

A few real stores are built once (events of every kind, sealed and
cosigned checkpoints, the tree's side tables, views, API keys, the code
vault); each example copies one (a file copy on SQLite), edits it with
plain SQL -- any table, any column, any row: other bytes, other types, other
ids, versions and numbers, deleted and duplicated rows -- and runs the
verifier through the CLI's own entry point (and, in two tests, as a real
``ledger verify`` process).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ledger.cli import app
from ledger.domain.money import Money
from ledger.projections import ProjectionStore
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.service.sealer import Sealer
from ledger.store.apikeys import ApiKeyStore
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.store.postgres import create_schema
from ledger.tlog.cosignature import cosign
from ledger.tlog.keys import Signer
from ledger.tlog.signed_note import parse_note
from ledger.verify import verify_store
from ledger.verify.codec import encode as codec_encode
from ledger.verify.fastpath import record_bytes
from tests.audit import APPLIED_AT
from tests.conftest import POSTGRES_SERVER
from tests.strategies import good_spec

ORIGIN = "ledger.test/mutations"
LOG_KEY = Signer.from_seed(ORIGIN, b"\x01" * 32)
WITNESSES = {
    n: Signer.from_seed(n, bytes([i + 2]) * 32, key_type=0x04)
    for i, n in enumerate(("w1", "w2", "w3"))
}
POLICY = (
    f"log {LOG_KEY.verifier_key()}\n"
    + "".join(f"witness {n} {w.verifier_key()}\n" for n, w in WITNESSES.items())
    + "group v 2 w1 w2 w3\nquorum v\n"
)
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EUR = Money(100, "EUR")

# The exit codes docs/verification.md lists for `ledger verify`.
DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 9, 10, 11}  # docs/verification.md, "Exit codes" (8: proofs only)


def build(url: DatabaseURL) -> None:
    """A store with every table a served ledger has: sales, resales,
    refunds, a restock, holds, redemption codes, three checkpoints with
    cosignatures, views followed to the end, API keys."""
    now = [T0]
    with Ledger(url, clock=lambda: now[0], code_keyring=Keyring.generate()) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
        ledger.register_channel("market", "Market", 250, idempotency_key="c2")
        good = ledger.mint(
            good_spec(
                tiers=[
                    {"name": "own", "quota": 10, "transferable": True},
                    {"name": "view", "quota": 20, "transferable": False},
                ]
            ),
            idempotency_key="m1",
        )["good_id"]
        spec = good_spec(title="Keys", tiers=[{"name": "key", "quota": 6}])
        spec["kind"] = "redemption-code"
        coded = ledger.mint(spec, idempotency_key="m2")["good_id"]
        ledger.import_codes(coded, "key", codes=["A-1", "B-2", "C-3", "D-4"], idempotency_key="i1")
        log = LogStore(ledger.event_store.recorder)
        sealer = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[LOG_KEY])

        def seal() -> None:
            sealed = sealer.seal()
            assert sealed is not None
            body = parse_note(sealed.note).text
            for name in ("w1", "w3"):
                log.add_cosignature(
                    sealed.size,
                    name,
                    cosign(body, WITNESSES[name], 1).line(),
                    "2026-11-22T00:00:00.000000Z",
                )

        sale = ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=2,
            unit_price=Money(999, "EUR"),
            idempotency_key="s1",
        )
        unit = sale["units"][0]["unit_id"]
        ledger.move_unit(
            unit, holder="carol", to_channel="market", channel="shop", idempotency_key="mv1"
        )
        ledger.resell(
            unit,
            seller="carol",
            buyer="dave",
            channel="market",
            price=Money(5000, "EUR"),
            idempotency_key="r1",
        )
        seal()
        ledger.move_unit(
            unit, holder="dave", to_channel="shop", channel="market", idempotency_key="mv2"
        )
        ledger.resell(
            unit,
            seller="dave",
            buyer="hana",
            channel="shop",
            price=Money(7777, "EUR"),
            idempotency_key="r2",
        )
        ledger.refund(sale["units"][1]["unit_id"], reason="fraud", idempotency_key="f1")
        ledger.sell(
            good,
            "view",
            buyer="frank",
            channel="shop",
            quantity=2,
            unit_price=Money(100, "EUR"),
            idempotency_key="s2",
        )
        seal()
        hold = ledger.reserve(
            coded, "key", channel="shop", quantity=2, ttl_seconds=60, idempotency_key="h1"
        )["hold_id"]
        keys = ledger.sell(
            coded,
            "key",
            buyer="bob",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="s3",
        )["units"]
        now[0] += timedelta(seconds=2)
        ledger.commit_hold(
            coded, "key", hold, buyer="ann", quantity=1, unit_price=EUR, idempotency_key="p1"
        )
        code = ledger.deliver_code(keys[0]["unit_id"], holder="bob", idempotency_key="d1")["code"]
        ledger.redeem_code(code, redeemer="bob", idempotency_key="x1")
        seal()
        # A last resale left unsealed: the unit's last event.
        ledger.move_unit(
            unit, holder="hana", to_channel="market", channel="shop", idempotency_key="mv3"
        )
        ledger.resell(
            unit,
            seller="hana",
            buyer="ivan",
            channel="market",
            price=Money(8000, "EUR"),
            idempotency_key="r3",
        )
        views = ProjectionStore(ledger.event_store.recorder)
        while views.apply_next(lambda: APPLIED_AT) is not None:
            pass
        keys_table = ApiKeyStore(ledger.event_store.recorder)
        keys_table.issue("auditor")
        keys_table.issue("channel", "shop")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mutations")
    path = directory / "base.db"
    build(DatabaseURL.parse(f"sqlite:///{path}"))
    (directory / "policy.txt").write_text(POLICY)
    return path


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None
    exception: BaseException | None


def verify(db: Path | str, *, policy: Path | None = None, out: Path | None = None) -> Outcome:
    """``ledger verify --db … --json …`` through the CLI's own entry point
    (``db``: a SQLite file, or a URL with ``out`` the report's path)."""
    if isinstance(db, Path):
        out, db = db.with_name(db.name + ".json"), f"sqlite:///{db}"
    assert out is not None
    out.unlink(missing_ok=True)
    args = ["verify", "--db", db, "--json", str(out)]
    if policy is not None:
        args += ["--policy", str(policy)]
    result = CliRunner().invoke(app, args)
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    report = json.loads(out.read_text()) if out.is_file() else None
    return Outcome(result.exit_code, result.stdout, result.stderr, report, exception)


def fresh_copy(base: Path, tmp_path: Path) -> Path:
    """The base store copied into a directory of its own (an example's
    copy must not meet the -wal file an earlier example left)."""
    directory = Path(tempfile.mkdtemp(dir=tmp_path))
    shutil.copy(base, directory / "ledger.db")
    return directory / "ledger.db"


def last_resale(db: Path) -> int:
    """The rowid of a unit.resold that is its unit's last event."""
    with sqlite3.connect(db) as con:
        row = con.execute(
            "SELECT rowid FROM stored_events e WHERE topic = 'unit.resold' AND "
            "originator_version = (SELECT max(originator_version) FROM stored_events f "
            "WHERE f.originator_id = e.originator_id) ORDER BY rowid LIMIT 1"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_base_store_verifies(base: Path) -> None:
    done = verify(base, policy=base.with_name("policy.txt"))
    assert done.exception is None, done.exception
    assert done.code == 0, done.stdout + done.stderr
    assert "views       OK" in done.stdout


def test_a_last_resale_renamed_reissued_is_a_located_finding(base: Path, tmp_path: Path) -> None:
    """The issue's case: only the type column of a unit's last event edited.
    It was a `KeyError: 'holder'` traceback from the views check, exit 1."""
    db = tmp_path / "renamed.db"
    shutil.copy(base, db)
    rowid = last_resale(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE stored_events SET topic = 'unit.reissued' WHERE rowid = ?", (rowid,))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "verify",
            "--db",
            str(db),
            "--json",
            str(tmp_path / "report.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in {3, 4}, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert not report["ok"]
    assert any(f["position"] == rowid for f in report["findings"]), report["findings"]
    assert f"first bad   position {rowid}" in done.stdout
    # The views are not compared with a replay of events that do not verify.
    assert "views       not checked" in done.stdout
    assert report["views"] == {"checked": False, "reason": "the events did not verify"}


# ---------------------------------------------------------------------------
# Random edits, any table, any column
# ---------------------------------------------------------------------------
TOPICS = [
    "unit.issued",
    "unit.reissued",
    "unit.resold",
    "unit.refunded",
    "stock.sold",
    "stock.opened",
    "stock.returned",
    "good.minted",
    "command.recorded",
    "allowance.counted",
    "code.bound",
    "no.such-type",
    "",
    "[/x]",
]


def tables(con: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    ]


def columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]


def flip(data: bytes, draw: st.DataObject) -> bytes:
    if not data:
        return b"\x00"
    at = draw.draw(st.integers(0, len(data) - 1), label="byte")
    changed = bytearray(data)
    changed[at] ^= draw.draw(st.integers(1, 255), label="xor")
    return bytes(changed)


def json_edit(value: Any, draw: st.DataObject) -> Any:
    """A canonical JSON state with one member somewhere replaced."""
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return value
    paths: list[tuple[Any, ...]] = []

    def walk(item: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(item, dict):
            for key, inner in item.items():
                walk(inner, (*path, key))
        elif isinstance(item, list):
            for i, inner in enumerate(item):
                walk(inner, (*path, i))

    walk(data, ())
    path = draw.draw(st.sampled_from(paths[1:] or [()]), label="path")
    new = draw.draw(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**63), 2**63 - 1),
            st.text(max_size=12),
            st.floats(allow_nan=False, allow_infinity=False),
            st.just([]),
            st.just({}),
        ),
        label="json value",
    )
    if not path:
        data = new
    else:
        target = data
        for step in path[:-1]:
            target = target[step]
        if draw.draw(st.booleans(), label="delete member") and isinstance(target, dict):
            del target[path[-1]]
        else:
            target[path[-1]] = new
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return text.encode() if isinstance(value, bytes) else text


def new_value(current: Any, column: str, draw: st.DataObject) -> tuple[str, Any]:
    """An SQL expression with one parameter, and the parameter: a value of
    the column's type or of any other, near the current one or not."""
    kinds = ["null", "integer", "edge", "float", "text", "blob", "no-utf8"]
    if isinstance(current, int) and not isinstance(current, bool):
        kinds += ["near", "as-text", "as-real"]
    if isinstance(current, str):
        kinds += ["as-blob", "upper", "shorter"]
    if isinstance(current, bytes):
        kinds += ["as-text", "shorter", "flip", "flip"]
    if isinstance(current, (str, bytes)) and current[:1] in ("{", b"{"):
        kinds += ["json", "json", "json"]
    if column == "topic":
        kinds += ["topic", "topic"]
    kind = draw.draw(st.sampled_from(kinds), label=f"how to change {column}")
    value: Any
    if kind == "null":
        value = None
    elif kind == "integer":
        value = draw.draw(st.integers(-(2**63), 2**63 - 1))
    elif kind == "edge":
        value = draw.draw(st.sampled_from([0, -1, 1, 2**31, 2**53, 2**63 - 1, -(2**63)]))
    elif kind == "float":
        value = draw.draw(st.floats(allow_nan=False))
    elif kind == "text":
        value = draw.draw(st.text(max_size=40))
    elif kind == "blob":
        value = draw.draw(st.binary(max_size=40))
    elif kind == "no-utf8":
        return "CAST(? AS TEXT)", draw.draw(st.binary(max_size=8)) + b"\xff"
    elif kind == "near":
        value = draw.draw(st.sampled_from([current + 1, current - 1, -current, current * 2]))
    elif kind == "as-text":
        value = str(current) if not isinstance(current, bytes) else current.decode("latin-1")
    elif kind == "as-real":
        value = float(current) + 0.5
    elif kind == "as-blob":
        value = current.encode()
    elif kind == "upper":
        value = current.upper()
    elif kind == "shorter":
        value = current[: len(current) // 2]
    elif kind == "flip":
        value = flip(current, draw)
    elif kind == "json":
        value = json_edit(current, draw)
    else:
        value = draw.draw(st.sampled_from(TOPICS))
    return "?", value


def mutate(con: sqlite3.Connection, draw: st.DataObject) -> str:
    """One edit of the store, described; any SQL constraint that refuses it
    leaves the store as it was."""
    # Text an earlier edit left undecodable is read with replacement characters.
    con.text_factory = lambda data: data.decode("utf-8", "replace")
    names = tables(con)
    if not names:
        return "no tables left"
    table = draw.draw(st.sampled_from(names), label="table")
    if "stored_events" in names and draw.draw(st.booleans(), label="events"):
        table = "stored_events"  # half the edits: the events themselves
    rowids = [r[0] for r in con.execute(f'SELECT rowid FROM "{table}" ORDER BY rowid')]
    action = draw.draw(
        st.sampled_from(
            ["set", "set", "set", "set", "delete", "duplicate", "swap", "move", "drop", "forge"]
        ),
        label="action",
    )
    if action == "forge":
        if table == "stored_events" and rowids:
            return forge(con, rowids, draw)
        action = "set"
    if action == "drop":
        if draw.draw(st.integers(0, 9), label="drop?") != 0:  # rarely: a whole table
            action = "set"
        else:
            con.execute(f'DROP TABLE "{table}"')
            return f"drop {table}"
    if not rowids:
        return f"{table} is empty"
    rowid = draw.draw(st.sampled_from(rowids), label="row")
    cols = columns(con, table)
    column = draw.draw(st.sampled_from(cols), label="column")
    try:
        if action == "set":
            current = con.execute(
                f'SELECT "{column}" FROM "{table}" WHERE rowid = ?', (rowid,)
            ).fetchone()[0]
            expression, value = new_value(current, column, draw)
            con.execute(
                f'UPDATE "{table}" SET "{column}" = {expression} WHERE rowid = ?', (value, rowid)
            )
            return f"{table} row {rowid}: {column} = {expression} {value!r:.60}"
        if action == "delete":
            con.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))
            return f"{table} row {rowid} deleted"
        if action == "duplicate":
            # A copy at the end, one column changed (keys must stay unique).
            listed = ", ".join(f'"{c}"' for c in cols)
            current = con.execute(
                f'SELECT "{column}" FROM "{table}" WHERE rowid = ?', (rowid,)
            ).fetchone()[0]
            expression, value = new_value(current, column, draw)
            chosen = ", ".join(expression if c == column else f'"{c}"' for c in cols)
            con.execute(
                f'INSERT INTO "{table}" ({listed}) SELECT {chosen} FROM "{table}" WHERE rowid = ?',
                (value, rowid),
            )
            return f"{table} row {rowid} duplicated with {column} = {value!r:.60}"
        if action == "swap":
            other = draw.draw(st.sampled_from(rowids), label="other row")
            a, b = (
                con.execute(f'SELECT "{column}" FROM "{table}" WHERE rowid = ?', (r,)).fetchone()[0]
                for r in (rowid, other)
            )
            con.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', (b, rowid))
            con.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', (a, other))
            return f"{table} rows {rowid} and {other}: {column} swapped"
        # move: another rowid, i.e. another position in the log
        target = draw.draw(
            st.one_of(st.integers(-5, max(rowids) + 5), st.sampled_from(rowids)), label="new rowid"
        )
        con.execute(f'UPDATE "{table}" SET rowid = ? WHERE rowid = ?', (target, rowid))
        return f"{table} row {rowid} moved to rowid {target}"
    except sqlite3.IntegrityError as error:
        return f"{table} {action} refused: {error}"


def forge(con: sqlite3.Connection, rowids: list[int], draw: st.DataObject) -> str:
    """A careful forger: one member of an event's payload changed, stored
    canonically, and every later hash of its aggregate recomputed (mostly
    in the unsealed tail, where no checkpoint sees it)."""
    rowid = draw.draw(
        st.one_of(st.sampled_from(rowids[-8:]), st.sampled_from(rowids)), label="forged row"
    )
    originator_id, version, state = con.execute(
        "SELECT originator_id, originator_version, state FROM stored_events WHERE rowid = ?",
        (rowid,),
    ).fetchone()
    try:
        data = orjson.loads(state)
        payload = json.loads(json_edit(codec_encode(data["payload"]), draw))
        data["payload"] = payload
        dashed = str(uuid.UUID(originator_id))
    except (TypeError, ValueError, KeyError, AttributeError):
        return f"stored_events row {rowid}: nothing to forge"
    con.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (codec_encode(data), rowid))
    prev = None
    for at, v, topic, stored in con.execute(
        "SELECT rowid, originator_version, topic, state FROM stored_events WHERE "
        "originator_id = ? AND originator_version >= ? ORDER BY originator_version",
        (originator_id, version),
    ).fetchall():
        try:
            event = orjson.loads(stored)
            if prev is not None:
                event["prev_hash"] = prev
            stored = codec_encode(event)  # noqa: PLW2901
            prev = hashlib.sha256(record_bytes(dashed, v, topic, stored)).hexdigest()
        except (TypeError, ValueError, AttributeError):
            break
        con.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (stored, at))
    return f"stored_events row {rowid} forged and its aggregate re-chained: {payload!r:.60}"


LOCATED = re.compile(
    r"position -?\d+|size -?\d+|tlog_\w+ row|row of size|\w+ \[|"
    r"\[id=1\]|^\w+: the view|after position|after the start"
)


def located(finding: dict[str, Any]) -> bool:
    return (
        finding["position"] is not None
        or finding["aggregate_id"] is not None
        or LOCATED.search(finding["message"]) is not None
    )


def check_outcome(done: Outcome, what: list[str]) -> None:
    """Documented code, no traceback, every finding located."""
    context = "\n".join([*what, done.stdout, done.stderr])
    assert done.exception is None, (repr(done.exception), context)
    assert "Traceback" not in done.stdout + done.stderr, context
    assert done.code in DOCUMENTED, context
    if done.code == 2:
        # Could not run: only a store with no events table to read at all.
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, context
        assert lines[0].startswith(
            ("error: cannot read a ledger store at", "error: no ledger database at")
        ), context  # (the second: a PostgreSQL schema left without its events table)
        assert any(w.startswith(("drop stored_events", "drop ledger_events")) for w in what), (
            context
        )
        return
    report = done.report
    assert report is not None, context
    findings = report["findings"]
    if done.code == 0:
        assert report["ok"], context
        assert report.get("views", {"ok": True}).get("ok", True), context
        return
    if done.code == 9:
        assert report["ok"], context
        views = report["views"]
        assert not views["ok"], context
        assert views["differences"] or views["problems"], context
        for line in views["differences"] + views["problems"]:
            assert re.match(
                r"(\w+ \[|\w+: the view|event at position \d+|events after "
                r"position \d+|the views cannot be read)",
                line,
            ), (line, context)
        return
    assert not report["ok"], context
    assert findings, context
    from ledger.verify.classes import exit_code

    assert done.code == exit_code(f["check"] for f in findings), context
    for finding in findings:
        assert located(finding), (finding, context)
    # The views are replayed only from events that verified.
    assert report.get("views", {}).get("checked", False) is False, context


@settings(
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    deadline=None,
)
@given(st.data())
def test_any_edit_of_any_table_ends_in_a_documented_code_and_located_findings(
    base: Path, tmp_path: Path, data: st.DataObject
) -> None:
    db = fresh_copy(base, tmp_path)
    with sqlite3.connect(db) as con:
        what = [mutate(con, data) for _ in range(data.draw(st.integers(1, 3), label="edits"))]
    con.close()
    policy = base.with_name("policy.txt") if data.draw(st.booleans(), label="policy") else None
    done = verify(db, policy=policy)
    event(f"exit {done.code}")
    check_outcome(done, what)


# ---------------------------------------------------------------------------
# Each crash path the random edits found, as a plain example
# ---------------------------------------------------------------------------
EDITS = {
    # A checkpoint's size that is no UTF-8 text: the log's rows could not be
    # read, the store looked as if it had no log, and with a policy the
    # no-checkpoint finding was located nowhere (found by a random seed).
    "checkpoint size not UTF-8": (
        "UPDATE tlog_checkpoints SET size = CAST(x'ff' AS TEXT) WHERE size = (SELECT min(size) "
        "FROM tlog_checkpoints)",
        5,
        "tlog_checkpoints row of size b'\\xff': its size is no tree size",
    ),
    # A checkpoint row whose root is text hid the whole log (exit 0).
    "checkpoint root as text": (
        "UPDATE tlog_checkpoints SET root = 'abc' WHERE size = (SELECT min(size) FROM "
        "tlog_checkpoints)",
        5,
        "tlog_checkpoints row of size",
    ),
    # A type that is no UTF-8: a traceback from the database driver.
    "type not UTF-8": (
        "UPDATE stored_events SET topic = CAST(x'ff' AS TEXT) WHERE rowid = 5",
        3,
        "position 5",
    ),
    # An id that is no UUID stopped the reading of every later event.
    "id not a UUID": (
        "UPDATE stored_events SET originator_id = 'zz' WHERE rowid = 5",
        3,
        "position 5",
    ),
    # A type that reads as markup: a traceback from the printer.
    "type as markup": ("UPDATE stored_events SET topic = '[/x]' WHERE rowid = 5", 7, "position 5"),
    # A view's key of another type: a TypeError comparing it.
    "view key as a number": (
        "UPDATE proj_units SET unit_id = 5 WHERE rowid = 1",
        9,
        "units [unit_id=5]",
    ),
    # The views' position that is no number hid the views (exit 0).
    "view position as text": ("UPDATE proj_position SET position = 'abc'", 9, "position [id=1]"),
    # The views' version that is no number: a ValueError traceback.
    "view version as text": ("UPDATE proj_meta SET version = 'x'", 9, "meta [id=1]"),
    # A view table dropped: a traceback from the database.
    "view dropped": ("DROP TABLE proj_units", 9, "units: the view cannot be compared"),
    # The cosignatures' table dropped, given a policy: a traceback.
    "cosignatures dropped": ("DROP TABLE tlog_cosignatures", 6, "its cosignatures cannot be read"),
    # An id stored as bytes: the proof store's finding carried it into the
    # JSON report (TypeError, exit 1).
    "id as bytes": (
        "UPDATE stored_events SET originator_id = CAST(originator_id AS BLOB) WHERE rowid = 1",
        3,
        "position 1",
    ),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_each_damage_found_is_a_located_finding(base: Path, tmp_path: Path, name: str) -> None:
    statement, code, where = EDITS[name]
    db = fresh_copy(base, tmp_path)
    with sqlite3.connect(db) as con:
        con.execute(statement)
    con.close()
    done = verify(db, policy=base.with_name("policy.txt"))
    check_outcome(done, [statement])
    assert done.code == code, done.stdout + done.stderr
    assert done.report is not None
    lines = [f["message"] for f in done.report["findings"]] + [
        f"position {f['position']}" for f in done.report["findings"]
    ]
    lines += done.report.get("views", {}).get("problems", [])
    lines += done.report.get("views", {}).get("differences", [])
    assert any(where in line for line in lines), lines


def test_a_file_that_is_no_database_cannot_be_verified_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    db.write_bytes(bytes(range(256)) * 20)
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot read a ledger store at sqlite:///{db}: DatabaseError: file is not a "
        "database"
    ]


# ---------------------------------------------------------------------------
# The same on PostgreSQL: typed columns, so fewer kinds of damage, and fewer
# examples (each copies the store into a schema of its own)
# ---------------------------------------------------------------------------
_schemas = itertools.count(1)


def pg_connect(url: DatabaseURL) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=url.host, port=url.port, user=url.user, dbname=url.dbname, autocommit=True
    )


@pytest.fixture(scope="module")
def pg_base(
    postgres_database: DatabaseURL, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DatabaseURL, Path]:
    url = DatabaseURL.parse(
        f"{POSTGRES_SERVER.rstrip('/')}/{postgres_database.dbname}?schema=mutations_base"
    )
    create_schema(url)
    build(url)
    policy = tmp_path_factory.mktemp("pg-mutations") / "policy.txt"
    policy.write_text(POLICY)
    return url, policy


def pg_copy(base: DatabaseURL) -> DatabaseURL:
    """The base store's tables copied into a schema of their own."""
    schema = f"mutations_{next(_schemas)}"
    with pg_connect(base) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
        for (table,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE "
            "table_schema = %s ORDER BY table_name",
            (base.schema,),
        ).fetchall():
            con.execute(
                f'CREATE TABLE "{schema}"."{table}" (LIKE "{base.schema}"."{table}" INCLUDING ALL)'
            )
            con.execute(f'INSERT INTO "{schema}"."{table}" SELECT * FROM "{base.schema}"."{table}"')
    return DatabaseURL.parse(f"{POSTGRES_SERVER.rstrip('/')}/{base.dbname}?schema={schema}")


def pg_value(current: Any, data_type: str, column: str, draw: st.DataObject) -> Any:
    """Another value of the column's type, near the current one or not."""
    kinds = ["null"]
    if data_type in ("bigint", "integer"):
        kinds += ["integer", "near", "near"]
    elif data_type == "uuid":
        kinds += ["uuid"]
    elif data_type == "bytea":
        kinds += ["blob", "flip", "flip", "shorter"]
        if current[:1] == b"{":
            kinds += ["json", "json", "json"]
    else:
        kinds += ["text"] if current is None else ["text", "upper", "shorter"]  # (a NULL text)
        if column in ("topic", "type"):
            kinds += ["topic", "topic"]
    kind = draw.draw(st.sampled_from(kinds), label=f"how to change {column}")
    bound = 2**31 - 1 if data_type == "integer" else 2**63 - 1
    if kind == "null":
        return None
    if kind == "integer":
        return draw.draw(st.integers(-bound - 1, bound))
    if kind == "near":
        return max(
            -bound - 1,
            min(
                bound,
                draw.draw(st.sampled_from([current + 1, current - 1, -current, current * 2, 0])),
            ),
        )
    if kind == "uuid":
        return draw.draw(st.uuids())
    if kind == "blob":
        return draw.draw(st.binary(max_size=40))
    if kind == "flip":
        return flip(current, draw)
    if kind == "shorter":
        return current[: len(current) // 2]
    if kind == "json":
        return json_edit(current, draw)
    if kind == "text":
        return draw.draw(st.text(st.characters(exclude_characters="\x00"), max_size=40))
    if kind == "upper":
        return current.upper()
    return draw.draw(st.sampled_from(TOPICS))


def pg_mutate(con: psycopg.Connection[tuple[Any, ...]], schema: str, draw: st.DataObject) -> str:
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name",
            (schema,),
        ).fetchall()
    ]
    table = draw.draw(st.sampled_from(names), label="table")
    if "ledger_events" in names and draw.draw(st.booleans(), label="events"):
        table = "ledger_events"
    qualified = f'"{schema}"."{table}"'
    rows = [r[0] for r in con.execute(f"SELECT ctid::text FROM {qualified} ORDER BY ctid")]
    if not rows:
        return f"{table} is empty"
    row = draw.draw(st.sampled_from(rows), label="row")
    typed = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE "
        "table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    column, data_type = draw.draw(st.sampled_from(typed), label="column")
    action = draw.draw(
        st.sampled_from(["set", "set", "set", "delete", "duplicate", "swap"]), label="action"
    )
    try:
        if action == "delete":
            con.execute(f"DELETE FROM {qualified} WHERE ctid = %s::tid", (row,))
            return f"{table} row {row} deleted"
        if action == "swap":
            other = draw.draw(st.sampled_from(rows), label="other row")
            con.execute(
                f'UPDATE {qualified} a SET "{column}" = b."{column}" FROM {qualified} b '
                "WHERE (a.ctid, b.ctid) IN ((%s::tid, %s::tid), (%s::tid, %s::tid))",
                (row, other, other, row),
            )
            return f"{table} rows {row} and {other}: {column} swapped"
        current = con.execute(
            f'SELECT "{column}" FROM {qualified} WHERE ctid = %s::tid', (row,)
        ).fetchone()
        assert current is not None
        value = pg_value(current[0], data_type, column, draw)
        if action == "set":
            con.execute(
                f'UPDATE {qualified} SET "{column}" = %s WHERE ctid = %s::tid', (value, row)
            )
            return f"{table} row {row}: {column} = {value!r:.60}"
        listed = ", ".join(f'"{c}"' for c, _ in typed)
        chosen = ", ".join("%s" if c == column else f'"{c}"' for c, _ in typed)
        con.execute(
            f"INSERT INTO {qualified} ({listed}) SELECT {chosen} FROM {qualified} "
            "WHERE ctid = %s::tid",
            (value, row),
        )
        return f"{table} row {row} duplicated with {column} = {value!r:.60}"
    except psycopg.Error as error:  # a constraint or the column's type refused it
        return f"{table} {action} refused: {type(error).__name__}"


@pytest.mark.postgres
@settings(
    max_examples=10,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    deadline=None,
)
@given(st.data())
def test_any_edit_of_a_postgresql_store_ends_in_a_documented_code_and_located_findings(
    pg_base: tuple[DatabaseURL, Path], tmp_path: Path, data: st.DataObject
) -> None:
    base, policy = pg_base
    url = pg_copy(base)
    with pg_connect(url) as con:
        what = [
            pg_mutate(con, url.schema, data)
            for _ in range(data.draw(st.integers(1, 3), label="edits"))
        ]
    uses_policy = data.draw(st.booleans(), label="policy")
    done = verify(
        url.display(), policy=policy if uses_policy else None, out=tmp_path / f"{url.schema}.json"
    )
    event(f"exit {done.code}")
    check_outcome(done, what)


@settings(
    max_examples=8,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    deadline=None,
)
@given(st.data())
def test_the_second_process_finds_the_same_in_an_edited_store(
    base: Path, tmp_path: Path, data: st.DataObject
) -> None:
    """A large store is read with a second process checking rows ahead
    (ledger.verify.pipeline): on any edit, the same findings, no exception."""
    db = fresh_copy(base, tmp_path)
    with sqlite3.connect(db) as con:
        what = [mutate(con, data) for _ in range(data.draw(st.integers(1, 3), label="edits"))]
    con.close()
    if not any(w.startswith("drop stored_events") for w in what):
        url = DatabaseURL.parse(f"sqlite:///{db}")
        one = verify_store(url, parallel=False)
        two = verify_store(url, parallel=True)
        assert [f.to_json() for f in two.findings] == [f.to_json() for f in one.findings], what


# ---------------------------------------------------------------------------
# What the auditor hands verify besides the store: one line and exit 2
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [
        "note not UTF-8",
        "note a directory",
        "policy garbage",
        "policy not UTF-8",
        "--policy not UTF-8",
        "--log-key not UTF-8",
        "--state not a number",
    ],
)
def test_unreadable_inputs_are_one_line_and_exit_2(base: Path, tmp_path: Path, damage: str) -> None:
    bundle = tmp_path / "bundle"
    runner = CliRunner()
    exported = runner.invoke(
        app, ["export", "--db", f"sqlite:///{base}", "--bundle", "--out", str(bundle)]
    )
    assert exported.exit_code == 0, exported.output
    args = ["verify", "--bundle", str(bundle)]
    notes = sorted((bundle / "checkpoints").glob("*.note"))
    if damage == "note not UTF-8":
        notes[0].write_bytes(b"\xff\xfe")
    elif damage == "note a directory":
        (bundle / "checkpoints" / "9.note").mkdir()
    elif damage == "policy garbage":
        (bundle / "policy.txt").write_text("garbage\n")
    elif damage == "policy not UTF-8":
        (bundle / "policy.txt").write_bytes(b"log \xff\n")
    elif damage == "--policy not UTF-8":
        (tmp_path / "policy.txt").write_bytes(b"log \xff\n")
        args += ["--policy", str(tmp_path / "policy.txt")]
    elif damage == "--log-key not UTF-8":
        (tmp_path / "log.vkey").write_bytes(b"\xff\xfe")
        args += ["--log-key", str(tmp_path / "log.vkey")]
    else:
        (tmp_path / "state.json").write_text('{"size": 1e400, "root": "x"}')
        args += ["--state", str(tmp_path / "state.json")]
    done = runner.invoke(app, args)
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines


def test_the_replay_tolerates_events_the_projector_cannot_apply(base: Path, tmp_path: Path) -> None:
    """ledger verify replays only verified events; the replay itself,
    given the issue's damaged event anyway, names it and goes on."""
    db = fresh_copy(base, tmp_path)
    rowid = last_resale(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE stored_events SET topic = 'unit.reissued' WHERE rowid = ?", (rowid,))
    con.close()
    with Ledger(DatabaseURL.parse(f"sqlite:///{db}")) as ledger:
        views = ProjectionStore(ledger.event_store.recorder, create=False)
        replay = compare_with_replay(views)
    assert not replay.ok
    assert len(replay.problems) == 1, replay.problems
    assert replay.problems[0].startswith(f"event at position {rowid} (unit.reissued v"), (
        replay.problems
    )
    assert "cannot be replayed (KeyError: 'holder')" in replay.problems[0]
    assert replay.events == replay.position  # every other event was replayed


@pytest.mark.postgres
def test_a_postgresql_schema_without_a_store_is_one_line_and_exit_2(
    postgres_url: DatabaseURL,
) -> None:
    done = CliRunner().invoke(app, ["verify", "--db", postgres_url.display()])
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == f"error: no ledger database at {postgres_url.display()}"
