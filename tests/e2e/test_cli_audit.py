"""``ledger audit`` as an auditor runs it: the trail of a store, read from
its views, what one key did and who touched one unit; bad input is one
line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.domain.actor import Actor, acting
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.test_cli import run
from tests.strategies import open_shop_and_sell

SHOP_KEY = "0123456789ab"
OTHER_KEY = "ba9876543210"


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str]:
    """A store: the operator opens a shop and mints; key SHOP_KEY sells two
    units (requests sale-1, sale-2), OTHER_KEY a third; the views rebuilt."""
    db = tmp_path / "audit.db"
    with Ledger(DatabaseURL.parse(str(db))) as ledger:
        with acting(Actor.operator("setup")):
            good, _ = open_shop_and_sell(ledger, 0)
        for i, (key, request) in enumerate(
            [(SHOP_KEY, "sale-1"), (SHOP_KEY, "sale-2"), (OTHER_KEY, "sale-3")]
        ):
            with acting(Actor.of_key(key, "channel", "shop", request)):
                sold = ledger.sell(
                    good,
                    "own",
                    buyer=f"b{i}",
                    channel="shop",
                    quantity=1,
                    unit_price=Money(100, "EUR"),
                    idempotency_key=f"s{i}",
                )
            if i == 0:
                unit = str(sold["units"][0]["unit_id"])
    rebuilt = run("views", "rebuild", "--db", str(db), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    return db, unit


def test_what_a_key_did_and_who_touched_a_unit(store: tuple[Path, str]) -> None:
    db, unit = store
    done = run("audit", "--db", str(db), "--key-id", SHOP_KEY, cwd=db.parent)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines
    assert all(f"channel:shop key {SHOP_KEY}" in line for line in lines)
    requests = [line.split("  request ")[1].split()[0] for line in lines]
    assert list(dict.fromkeys(requests)) == ["sale-1", "sale-2"]
    positions = [int(line.split()[0]) for line in lines]
    assert positions == sorted(positions)
    assert any(" unit.issued " in line and unit in line for line in lines)
    assert all("unsequenced" in line for line in lines)  # no server has sealed this store

    as_json = run("audit", "--db", str(db), "--unit", unit, "--json", cwd=db.parent)
    assert as_json.returncode == 0, as_json.stderr
    touched = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(t["type"], t["recorded_by"]["request_id"]) for t in touched] == [
        ("unit.issued", "sale-1")
    ]
    assert touched[0]["log"]["index"] is None
    assert len(touched[0]["log"]["leaf_hash"]) == 44  # base64 of 32 bytes

    capped = run("audit", "--db", str(db), "--role", "operator", "--limit", "2", cwd=db.parent)
    assert capped.returncode == 0, capped.stderr
    assert len(capped.stdout.splitlines()) == 2
    assert all("operator:cli" in line for line in capped.stdout.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key-id", "XYZ"], "error: --key-id: "),
        (["--unit", "not-a-uuid"], "error: --unit: must be a UUID"),
        (["--role", "verifier"], "error: --role: "),
        (["--from", "2026-13-01"], "error: --from: "),
        (["--from", "2026-12-02", "--to", "2026-12-01"], "error: --to: must be after from"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    store: tuple[Path, str], args: list[str], message: str
) -> None:
    db, _ = store
    done = run("audit", "--db", str(db), *args, cwd=db.parent)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert done.stdout == ""


def test_a_store_without_views_or_at_all(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    with Ledger(DatabaseURL.parse(str(db))) as ledger:
        open_shop_and_sell(ledger, 1)
    bare = run("audit", "--db", str(db), cwd=tmp_path)
    assert bare.returncode == 2
    assert bare.stderr.startswith("error: this store has no audit view yet")
    missing = run("audit", "--db", str(tmp_path / "nosuch.db"), cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no ledger database at")


def test_the_replay_check_covers_the_audit_view(store: tuple[Path, str]) -> None:
    """An audit line edited in place (another key named) is a difference the
    auditor's replay check names; the store as built has none."""
    import sqlite3

    from ledger.projections import ProjectionStore
    from ledger.projections.replay import compare_with_replay
    from ledger.store.records import RecordReader

    db, _ = store

    def check() -> list[str]:
        with RecordReader(DatabaseURL.parse(str(db))) as reader:
            report = compare_with_replay(ProjectionStore(reader.recorder, create=False))
        assert report.rows["audit"] > 0
        return report.differences

    assert check() == []
    with sqlite3.connect(db) as connection:
        changed = connection.execute(
            "UPDATE proj_audit SET key_id = ? WHERE key_id = ?", (OTHER_KEY, SHOP_KEY)
        ).rowcount
    assert changed > 0
    differences = check()
    assert differences
    assert all(line.startswith("audit ") for line in differences), differences
