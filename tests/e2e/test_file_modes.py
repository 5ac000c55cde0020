"""SQLite files are created mode 0600 by every path that creates them,
whatever the umask: the database, its ``-wal`` and its ``-shm`` hold API key
hashes and sealed codes. Real files, real processes; the umask is set in
this process (children inherit it) and restored after each test.

A process that exits removes its ``-wal`` and ``-shm`` (SQLite does, on the
last close), so for the CLI paths a thread watches the three files while
the command runs and keeps every mode it sees: the database must have been
0600 throughout, and so must every side file seen. On a loaded machine the
watcher may miss a short-lived side file; that their mode is the database
file's, whatever the umask, is shown deterministically by the tests that
hold the store open (the Python API, ``ledger serve``, and the one on a
kept 0640 file).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from ledger.projections import ProjectionStore
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.store.records import RecordReader
from tests.e2e.conftest import running_server
from tests.strategies import good_spec, open_shop_and_sell

SUFFIXES = ("", "-wal", "-shm")


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    value: int = request.param
    before = os.umask(value)
    try:
        yield value
    finally:
        os.umask(before)


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def modes(db: Path) -> dict[str, int]:
    return {suffix: mode(f"{db}{suffix}") for suffix in SUFFIXES if os.path.exists(f"{db}{suffix}")}


@contextmanager
def watching(db: Path) -> Iterator[dict[str, set[int]]]:
    """Every mode the database and its side files had while the block ran."""
    seen: dict[str, set[int]] = {suffix: set() for suffix in SUFFIXES}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            for suffix in SUFFIXES:
                with suppress(OSError):
                    seen[suffix].add(mode(f"{db}{suffix}"))

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()
        for suffix, found in modes(db).items():  # whatever is left behind too
            seen[suffix].add(found)


def ledger_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "LEDGER_CODE_KEYRING_FILE"}
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_private(seen: dict[str, set[int]], what: object = "") -> None:
    shown = (what, {suffix: sorted(f"{m:04o}" for m in found) for suffix, found in seen.items()})
    assert seen[""] == {0o600}, shown
    assert all(found <= {0o600} for found in seen.values()), shown


def test_the_python_api_creates_private_files(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "api.db"
    with Ledger(f"sqlite:///{db}") as ledger:
        open_shop_and_sell(ledger, 3)
        assert modes(db) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_side_files_take_the_database_files_mode_not_the_umask(tmp_path: Path, umask: int) -> None:
    """What the 0600 of -wal and -shm rests on: SQLite gives them the
    database file's mode (an existing file, here 0640, is kept as it is)."""
    db = tmp_path / "kept.db"
    db.touch()
    os.chmod(db, 0o640)
    with Ledger(f"sqlite:///{db}") as ledger:
        open_shop_and_sell(ledger, 1)
        assert modes(db) == {"": 0o640, "-wal": 0o640, "-shm": 0o640}


def test_ledger_serve_creates_private_files(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "served.db"
    key = tmp_path / "log.key"
    made = ledger_cli(
        "keys", "generate", "--name", "ledger.test/modes", "--out", str(key), cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    with running_server(f"sqlite:///{db}", key) as base:
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        assert modes(db) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_api_keys_issue_creates_private_files(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "keys.db"
    with watching(db) as seen:
        done = ledger_cli(
            "api-keys", "issue", "--db", str(db), "--role", "admin", "--json", cwd=tmp_path
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["token"]
    assert_private(seen)


def test_ledger_demo_creates_private_files(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "demo.db"
    with watching(db) as seen:
        done = ledger_cli(
            "demo",
            "--db",
            str(db),
            "--attempts",
            "40",
            "--threads",
            "2",
            "--resales",
            "2",
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert_private(seen)
    # What it leaves for the web pages: the log's signing key and API keys.
    for secret in (tmp_path / "demo.log.key", tmp_path / "demo.keys.json"):
        assert secret.stat().st_mode & 0o777 == 0o600, secret


def test_codes_verify_and_views_rebuild_keep_the_files_private(tmp_path: Path, umask: int) -> None:
    """These open an existing store: the -wal and -shm they create are private."""
    db = tmp_path / "codes.db"
    with Ledger(f"sqlite:///{db}") as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = str(
            ledger.mint(
                good_spec(kind="redemption-code", tiers=[{"name": "key", "quota": 10}]),
                idempotency_key="mint",
            )["good_id"]
        )
    ring = tmp_path / "codes.keyring"
    assert ledger_cli("codes", "keyring", "--out", str(ring), cwd=tmp_path).returncode == 0
    (tmp_path / "codes.txt").write_text("GIFT-1\nGIFT-2\n")
    commands = [
        (
            "codes",
            "import",
            "--good",
            good,
            "--tier",
            "key",
            "--file",
            str(tmp_path / "codes.txt"),
            "--keyring",
            str(ring),
            "--db",
            str(db),
        ),
        ("codes", "status", "--good", good, "--tier", "key", "--db", str(db)),
        ("views", "rebuild", "--db", str(db)),
        ("verify", "--db", str(db)),
    ]
    for command in commands:
        with watching(db) as seen:
            done = ledger_cli(*command, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stdout + done.stderr)
        assert_private(seen, command)


def test_the_views_replay_scratch_file_is_private(
    tmp_path: Path, umask: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ledger verify`` replays the views into a scratch SQLite file."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'views.db'}")
    with Ledger(url) as ledger:
        open_shop_and_sell(ledger, 3)
    seen: list[int] = []
    with RecordReader(url) as reader:
        views = ProjectionStore(reader.recorder)
        while views.apply_next(lambda: "2026-01-01T00:00:00.000000Z") is not None:
            pass

        def look(_: int) -> None:
            seen.extend(mode(path) for path in scratch.glob("ledger-replay-*/views.db*"))

        assert compare_with_replay(views, progress=look).ok
    assert seen
    assert set(seen) == {0o600}


def test_an_existing_file_open_to_others_is_kept_and_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "shared.db"
    with Ledger(f"sqlite:///{db}") as ledger:
        open_shop_and_sell(ledger, 1)
    os.chmod(db, 0o644)
    with caplog.at_level(logging.WARNING, logger="ledger.store"):
        with Ledger(f"sqlite:///{db}") as ledger:
            open_shop_and_sell(ledger, 0)  # replays: the store is opened and read
        with Ledger(f"sqlite:///{db}"):
            pass
    assert modes(db) == {"": 0o644}
    warnings = [r.getMessage() for r in caplog.records if r.name == "ledger.store"]
    assert len(warnings) == 1, warnings
    assert f"{db} (mode 0644)" in warnings[0]
    assert f"chmod 600 {db}*" in warnings[0]
    done = ledger_cli("api-keys", "issue", "--role", "admin", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{db} (mode 0644) open to other users" in done.stderr
    # The read-only paths change nothing and say nothing (an auditor's copy).
    for command in (("verify", "--db", str(db)), ("api-keys", "list", "--db", str(db))):
        done = ledger_cli(*command, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "open to other users" not in done.stderr
    assert modes(db) == {"": 0o644}
