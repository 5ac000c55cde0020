"""``ledger channels add|list``, as an operator runs it (issue 15 item 3)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import run


def test_add_then_list(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    added = run(
        "channels", "add", "shop", "--fee-bps", "500", "--name", "Shop", "--db", db, cwd=tmp_path
    )
    assert added.returncode == 0, added.stderr
    assert "registered channel shop (Shop), fee 500 bps (5 %)" in added.stdout
    assert (
        run("channels", "add", "market", "--fee-bps", "250", "--db", db, cwd=tmp_path).returncode
        == 0
    )
    listed = run("channels", "list", "--db", db, "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["channel"], r["name"], r["fee_bps"]) for r in rows] == [
        ("market", "market", 250),
        ("shop", "Shop", 500),
    ]
    assert all(r["registered_at"].endswith("Z") for r in rows)
    table = run("channels", "list", "--db", db, cwd=tmp_path)
    assert "Shop" in table.stdout
    assert "250" in table.stdout


def test_refusals_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    assert (
        run("channels", "add", "shop", "--fee-bps", "500", "--db", db, cwd=tmp_path).returncode == 0
    )
    for args, message in [
        (["add", "shop", "--fee-bps", "100", "--db", db], "already registered"),
        (["add", "a shop", "--fee-bps", "100", "--db", db], "channel"),
        (["list", "--db", str(tmp_path / "nope.db")], "no ledger database"),
    ]:
        done = run("channels", *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stderr.startswith("error: "), done.stderr
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    too_high = run("channels", "add", "x", "--fee-bps", "10001", "--db", db, cwd=tmp_path)
    assert too_high.returncode == 2
    assert "Traceback" not in too_high.stderr
    listed = json.loads(run("channels", "list", "--db", db, "--json", cwd=tmp_path).stdout)
    assert [r["channel"] for r in listed] == ["shop"]  # the refusals stored nothing
