"""``ledger api-keys``, as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.store.database import DatabaseURL
from ledger.verify import export_store, verify_store
from tests.e2e.test_cli import run


def test_issue_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    issued = run(
        "api-keys",
        "issue",
        "--role",
        "creator",
        "--subject",
        "alice",
        "--label",
        "studio",
        "--db",
        db,
        "--json",
        cwd=tmp_path,
    )
    assert issued.returncode == 0, issued.stderr
    key = json.loads(issued.stdout)
    assert (key["role"], key["subject"]) == ("creator", "alice")
    assert key["token"].startswith(f"lk_{key['key_id']}_")
    assert "shown only this once" in issued.stderr
    plain = run("api-keys", "issue", "--role", "auditor", "--db", db, cwd=tmp_path)
    assert plain.stdout.startswith("lk_")
    assert len(plain.stdout.strip().splitlines()) == 1
    listed = json.loads(run("api-keys", "list", "--db", db, "--json", cwd=tmp_path).stdout)
    assert [k["role"] for k in listed] == ["creator", "auditor"]
    assert key["token"] not in json.dumps(listed)
    table = run("api-keys", "list", "--db", db, cwd=tmp_path)
    assert key["key_id"] in table.stdout
    revoked = run("api-keys", "revoke", key["key_id"], "--db", db, cwd=tmp_path)
    assert revoked.returncode == 0
    again = run("api-keys", "revoke", key["key_id"], "--db", db, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.startswith("error: no live API key")
    # The keys' life is in the log, by the operator, never with a secret.
    export = tmp_path / "export.jsonl"
    url = DatabaseURL.parse(db)
    export_store(url, export)
    records = [json.loads(line) for line in export.read_text().splitlines()]
    life = [(r["type"], r["payload"]["key_id"]) for r in records if r["type"].startswith("apikey.")]
    assert life == [
        ("apikey.issued", key["key_id"]),
        ("apikey.issued", plain.stdout[3:15]),
        ("apikey.revoked", key["key_id"]),
    ]
    assert {r["recorded_by"]["role"] for r in records} == {"operator"}
    assert key["token"][16:] not in export.read_text()
    assert verify_store(url).ok


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    for args, message in [
        (["issue", "--role", "root"], "unknown role"),
        (["issue", "--role", "channel"], "needs --subject"),
        (["issue", "--role", "admin", "--subject", "x"], "drop --subject"),
        (["issue", "--role", "channel", "--subject", "a shop"], "needs --subject"),
        (["issue", "--role", "auditor", "--label", "x" * 201], "at most 200"),
    ]:
        done = run("api-keys", *args, "--db", db, cwd=tmp_path)
        assert done.returncode == 2, done.stdout
        assert done.stderr.startswith("error: ")
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "keys.db").exists()  # refused before touching the store
    missing = run("api-keys", "list", "--db", db, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no ledger database at")


def test_store_failures_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    first = run("api-keys", "issue", "--role", "admin", "--db", db, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = run("api-keys", "list", "--db", db, "--json", cwd=tmp_path).stdout
    for args, message in [
        (["revoke", "0123456789ab"], "no live API key '0123456789ab'"),
        (["revoke", "not-a-key-id"], "no live API key 'not-a-key-id'"),
    ]:
        done = run("api-keys", *args, "--db", db, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [f"error: {message} (unknown or already revoked)"]
    assert run("api-keys", "list", "--db", db, "--json", cwd=tmp_path).stdout == before
    nowhere = str(tmp_path / "no" / "such" / "dir" / "keys.db")
    done = run("api-keys", "issue", "--role", "admin", "--db", nowhere, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"error: cannot write API keys at sqlite:///{nowhere}: ")
    plain = tmp_path / "not-a-ledger.db"
    plain.write_bytes(b"")  # an empty SQLite file: no key table
    done = run("api-keys", "list", "--db", str(plain), cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("error: cannot read API keys at ")
