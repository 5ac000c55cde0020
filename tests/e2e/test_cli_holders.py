"""``ledger holders``: a holder's key and the authorization it signs, as a
wallet would, checked by the ledger's own rule; bad input is one line and
exit 2, and a key file is never overwritten."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.domain.consent import Authorization, check_public_key
from ledger.domain.errors import AuthorizationReplayedError
from ledger.service.cases.accounts import ed25519_verify

LEDGER = [sys.executable, "-m", "ledger.cli", "holders"]
UNIT = "0b7c3f2e-5d1a-4c6e-9f00-000000000001"
AUTHORIZE = ["--account", "b", "--unit", UNIT, "--to", "o", "--nonce", "1", "--log", "l"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LEDGER, *args], capture_output=True, text=True, check=False)


def test_keygen_then_authorize_makes_what_the_ledger_accepts(tmp_path: Path) -> None:
    made = run("keygen", "--out", str(tmp_path / "h.key"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "h.key").stat().st_mode & 0o777 == 0o600
    key_id, public = check_public_key(made.stdout.strip())
    signed = run(
        "authorize",
        *("--key", str(tmp_path / "h.key"), "--account", "b1", "--unit", UNIT),
        *("--to", "other", "--nonce", "3", "--log", "ledger.test/x", "--expires-in", "60"),
    )
    assert signed.returncode == 0, signed.stderr
    authorization = Authorization.parse(json.loads(signed.stdout))
    assert authorization.key_id == key_id
    facts = {
        "unit_id": UNIT,
        "holder": "b1",
        "to_channel": "other",
        "log": "ledger.test/x",
        "public_key": public,
        "now": datetime.now(UTC),
        "verify": ed25519_verify,
    }
    authorization.check(unit_version=3, **facts)  # type: ignore[arg-type]
    with pytest.raises(AuthorizationReplayedError):
        authorization.check(unit_version=4, **facts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keygen", "--out", "{exists}"], "exists: a key is never overwritten"),
        (["keygen", "--out", "/nonexistent/dir/h.key"], "cannot write"),
        (
            ["authorize", "--key", "{garbage}", *AUTHORIZE],
            "is not a private key file",
        ),
        (
            ["authorize", "--key", "{missing}", *AUTHORIZE],
            "cannot read",
        ),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "exists.key").write_text("x")
    (tmp_path / "garbage.key").write_text("not a key")
    names = {
        "{exists}": tmp_path / "exists.key",
        "{garbage}": tmp_path / "garbage.key",
        "{missing}": tmp_path / "missing.key",
    }
    done = run(*[str(names.get(a, a)) for a in args])
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert (tmp_path / "exists.key").read_text() == "x"
