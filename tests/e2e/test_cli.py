"""The ``ledger`` command, run as a user runs it: a real process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

LEDGER = [sys.executable, "-m", "ledger.cli"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEDGER, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    done = run(
        "demo",
        "--db",
        "sqlite:///demo.db",
        "--attempts",
        "1500",
        "--threads",
        "16",
        "--resales",
        "40",
        cwd=directory,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return directory / "demo.db"


@pytest.mark.slow
def test_the_full_demo_sells_out_every_tier_exactly_and_verifies(tmp_path: Path) -> None:
    done = run("demo", "--db", f"sqlite:///{tmp_path / 'd.db'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "flash sale: 15,342 purchase attempts from 64 concurrent buyers" in out
    assert "DUPLICATES" not in out
    assert "GAPS" not in out
    assert "parts sum to the prices paid: yes" in out
    assert "resales: 300 through 'market'" in out
    assert "chain verification  OK" in out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.strip().startswith(("Aurora/", "Crimson/")) and "│" in line
    ]
    assert len(rows) == 3
    assert "views check         OK" in out
    shown = [
        line.split()
        for line in out.splitlines()
        if line.strip().startswith(("Aurora/", "Crimson/")) and "issued" in line
    ]
    # (the band is shown only where it says more than the count: never "N left: N left")
    assert [(r[0], " ".join(r[-6:])) for r in shown] == [
        ("Aurora/own", "0 left (buyers see: sold out)"),
        ("Aurora/view", "0 left (buyers see: sold out)"),
        ("Crimson/own", "0 left (buyers see: sold out)"),
    ]
    for row in rows:
        cells = [cell for cell in row if cell != "│"]
        _tier, supply, attempts, sold, sold_out, limited, oversold, serials = cells[:8]
        number = {
            name: int(value.replace(",", ""))
            for name, value in [
                ("supply", supply),
                ("attempts", attempts),
                ("sold", sold),
                ("sold_out", sold_out),
                ("limited", limited),
            ]
        }
        # Every tier is oversubscribed: it sells out exactly, never beyond.
        assert number["sold"] == number["supply"]
        assert number["sold_out"] > 0
        assert oversold == "0"
        assert number["attempts"] == number["sold"] + number["sold_out"] + number["limited"]
        assert serials == f"1..{number['supply']}"
        assert cells[8] == "dense"


def test_the_demo_refuses_to_overwrite_a_store(demo_store: Path) -> None:
    done = run("demo", "--db", f"sqlite:///{demo_store}", cwd=demo_store.parent)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {demo_store} exists; pass --replace to start the demo afresh"
    ]


def test_verify_passes_on_an_untouched_store_and_writes_a_report(demo_store: Path) -> None:
    report = demo_store.parent / "report.json"
    done = run("verify", "--db", str(demo_store), "--json", str(report), cwd=demo_store.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
    data = json.loads(report.read_text())
    assert data["events"] > 1_500


def test_export_then_verify_the_export(demo_store: Path) -> None:
    export = demo_store.parent / "events.jsonl"
    assert (
        run(
            "export", "--db", str(demo_store), "--out", str(export), cwd=demo_store.parent
        ).returncode
        == 0
    )
    done = run("verify", "--export", str(export), cwd=demo_store.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_verify_names_the_first_bad_event_after_tampering(demo_store: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.db"
    with sqlite3.connect(demo_store) as source, sqlite3.connect(tampered) as target:
        source.backup(target)
    with sqlite3.connect(tampered) as db:
        rowid, state = db.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = 'stock.sold' "
            "ORDER BY rowid LIMIT 1 OFFSET 5"
        ).fetchone()
        forged = bytes(state).replace(b'"buyer":"', b'"buyer":"mallory-', 1)
        assert forged != bytes(state)
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (forged, rowid))
    done = run("verify", "--db", str(tampered), cwd=tmp_path)
    assert done.returncode == 3  # a chain (or encoding) failure
    assert "FAILED" in done.stdout
    first_bad = next(line for line in done.stdout.splitlines() if "first bad" in line)
    assert "position" in first_bad
    assert "stock.sold" in done.stdout + first_bad


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "--db", "nowhere.db"], "no ledger database at"),
        (["verify", "--db", "mysql://x/y"], "unsupported scheme"),
        (["verify", "--export", "missing.jsonl"], "no export file at"),
        (["demo", "--db", "postgresql://postgres@127.0.0.1/x"], "fresh SQLite file"),
    ],
)
def test_bad_input_gets_one_line_and_a_non_zero_exit(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert not any(tmp_path.iterdir())  # nothing was created


def test_help_is_everywhere(tmp_path: Path) -> None:
    for command in ([], ["demo"], ["verify"], ["export"]):
        done = run(*command, "--help", cwd=tmp_path)
        assert done.returncode == 0
        assert "Usage" in done.stdout


def test_verify_says_when_the_log_was_not_checked(demo_store: Path) -> None:
    export = demo_store.parent / "for-the-log-line.jsonl"
    run("export", "--db", str(demo_store), "--out", str(export), cwd=demo_store.parent)
    done = run("verify", "--export", str(export), cwd=demo_store.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("log "))
    assert lines[at : at + 2] == [
        "log         not checked: this source holds no checkpoint and no log",
        "            (a store no server has sealed, or an export file)",
    ]


def test_a_bundle_verified_without_a_policy_says_whose_policy_judged_it(
    demo_store: Path, tmp_path: Path
) -> None:
    made = run("keys", "generate", "--name", "example.org/log", "--out", "log.key", cwd=tmp_path)
    (tmp_path / "policy.txt").write_text(f"log {made.stdout.strip()}\nquorum none\n")
    for name, extra in (("own", ["--policy", str(tmp_path / "policy.txt")]), ("bare", [])):
        out = tmp_path / name
        exported = run(
            "export", "--db", str(demo_store), "--bundle", "--out", str(out), *extra, cwd=tmp_path
        )
        assert exported.returncode == 0, exported.stderr
    own = run("verify", "--bundle", str(tmp_path / "own"), cwd=tmp_path)
    assert own.stderr.startswith(
        "note: no --policy: the checkpoints are judged by the bundle's own policy.txt, "
        "which the ledger's operator wrote; an auditor brings their own (--policy FILE)"
    )
    assert own.returncode in {0, 10}  # (the demo's store was never sealed by a server)
    bare = run("verify", "--bundle", str(tmp_path / "bare"), cwd=tmp_path)
    assert bare.stderr.startswith("note: no --policy, no --log-key and no policy.txt")
    assert bare.returncode == 0, bare.stdout + bare.stderr
    audited = run(
        "verify", "--bundle", str(tmp_path / "bare"), "--policy", "policy.txt", cwd=tmp_path
    )
    assert "note:" not in audited.stderr
