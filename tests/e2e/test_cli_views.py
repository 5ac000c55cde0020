"""``ledger views`` and the auditor's view check, as a user runs them."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.test_cli import demo_store, run
from tests.strategies import open_shop_and_sell

__all__ = ["demo_store"]


@pytest.fixture
def store(demo_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copy(demo_store, copy)
    return copy


def test_a_store_never_served_has_no_views_and_verify_says_nothing_of_them(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    with Ledger(DatabaseURL.parse(str(db))) as ledger:
        open_shop_and_sell(ledger, 3)
    before = run("views", "status", "--db", str(db), cwd=tmp_path)
    assert before.returncode == 2
    assert before.stderr.startswith("error: this store has no views yet")
    verified = run("verify", "--db", str(db), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout
    assert "views " not in verified.stdout


def test_rebuilt_views_pass_the_auditors_replay_check(store: Path) -> None:
    before = run("views", "status", "--db", str(store), cwd=store.parent)
    assert before.returncode == 0, before.stderr  # the demo's views, followed live
    assert "(0 behind)" in before.stdout
    rebuilt = run("views", "rebuild", "--db", str(store), cwd=store.parent)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "views rebuilt:" in rebuilt.stdout
    status = run("views", "status", "--db", str(store), cwd=store.parent)
    assert "(0 behind)" in status.stdout
    verified = run("verify", "--db", str(store), cwd=store.parent)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "views       OK" in verified.stdout


def test_a_tampered_view_fails_verification_with_its_own_exit_code(store: Path) -> None:
    assert run("views", "rebuild", "--db", str(store), cwd=store.parent).returncode == 0
    with sqlite3.connect(store) as db:
        db.execute(
            "UPDATE proj_stock SET issued = issued - 1, available = available + 1 "
            "WHERE tier = 'own'"
        )
    verified = run("verify", "--db", str(store), "--json", "-", cwd=store.parent)
    assert verified.returncode == 9, verified.stdout + verified.stderr
    assert "views       DIFFER" in verified.stdout
    assert "stock [" in verified.stdout
    skipped = run("verify", "--db", str(store), "--no-views", cwd=store.parent)
    assert skipped.returncode == 0


def test_views_commands_refuse_a_missing_store(tmp_path: Path) -> None:
    done = run("views", "rebuild", "--db", str(tmp_path / "nope.db"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: no ledger database at")
    assert len(done.stderr.strip().splitlines()) == 1
