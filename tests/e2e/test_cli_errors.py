"""Every ``ledger`` command that takes a store, on a store it cannot use: one
line on stderr naming the cause, exit 2, within seconds, nothing created.

The table below must name every command with a ``--db`` option (a test
checks it against the command tree), so a new command is walked too.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import typer

from ledger.cli import app
from ledger.store.database import DatabaseURL
from tests.conftest import POSTGRES_SERVER
from tests.e2e.conftest import free_port

LEDGER = [sys.executable, "-m", "ledger.cli"]
SOME_ID = "0b7c3f2e-5d1a-4c6e-9f00-000000000001"
WITHIN = 6.0  # seconds: the database timeout (3 s) and a process start, on a loaded machine

# command -> its other required arguments ({ring}, {key} and {port} filled in)
COMMANDS: dict[str, list[str]] = {
    "verify": [],
    "export": ["--out", "out.jsonl"],
    "proof export": ["--unit", SOME_ID, "--out", "proof.json"],
    "api-keys issue": ["--role", "auditor"],
    "api-keys list": [],
    "api-keys revoke": ["0123456789ab"],
    "views status": [],
    "views rebuild": [],
    "codes rotate": ["--keyring", "{ring}"],
    "codes import": [
        "--good",
        SOME_ID,
        "--tier",
        "t",
        "--range",
        "C-:3:1-5",
        "--keyring",
        "{ring}",
    ],
    "codes status": ["--good", SOME_ID, "--tier", "t"],
    "serve": ["--log-key", "{key}", "--port", "{port}"],
    "demo": [],
    "channels add": ["shop", "--fee-bps", "500"],
    "channels list": [],
    "audit": [],
}
CREATE_A_STORE = {"api-keys issue", "channels add", "serve", "demo"}  # those that may make one
DEMO_REFUSAL = "the demo runs on a fresh SQLite file"


def run(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [*LEDGER, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A code keyring and a log key, so that every command gets as far as its store."""
    directory = tmp_path_factory.mktemp("files")
    ring, key = directory / "ring", directory / "log.key"
    for args in (
        ["codes", "keyring", "--out", str(ring)],
        ["keys", "generate", "--name", "example.org/log", "--out", str(key)],
    ):
        made, _ = run(args, directory)
        assert made.returncode == 0, made.stderr
    return {"ring": str(ring), "key": str(key)}


def command_line(command: str, db: str, files: dict[str, str]) -> list[str]:
    values = {**files, "port": str(free_port())}
    return [*command.split(), *(arg.format(**values) for arg in COMMANDS[command]), "--db", db]


def assert_one_line(
    done: subprocess.CompletedProcess[str], seconds: float, cause: str, command: str
) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (command, done.returncode, done.stderr[-2000:])
    assert len(lines) == 1, (command, done.stderr[-2000:])
    assert lines[0].startswith("error: "), (command, lines[0])
    assert cause in lines[0], (command, lines[0])
    assert "Traceback" not in done.stdout + done.stderr
    assert seconds < WITHIN, (command, seconds)


def test_the_table_names_every_command_that_takes_a_store() -> None:
    def walk(group: object, prefix: str) -> set[str]:
        found: set[str] = set()
        for name, command in getattr(group, "commands", {}).items():
            full = f"{prefix}{name}"
            if hasattr(command, "commands"):
                found |= walk(command, full + " ")
            elif any("--db" in getattr(p, "opts", ()) for p in command.params):
                found.add(full)
        return found

    assert walk(typer.main.get_command(app), "") == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"serve"}))
def test_a_server_that_refuses_connections_is_one_line(
    command: str, files: dict[str, str], tmp_path: Path
) -> None:
    # (ledger serve waits for a database that is down: tests/e2e/test_outage.py)
    db = f"postgresql://nobody@127.0.0.1:{free_port()}/ledger"
    done, seconds = run(command_line(command, db, files), tmp_path)
    cause = DEMO_REFUSAL if command == "demo" else "Connection refused"
    assert_one_line(done, seconds, cause, command)
    assert not any(tmp_path.iterdir())


@pytest.mark.postgres
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_database_that_does_not_exist_is_one_line(
    command: str, files: dict[str, str], tmp_path: Path, postgres_database: DatabaseURL
) -> None:
    name = f"ledger_missing_{secrets.token_hex(4)}"
    db = f"{POSTGRES_SERVER.rstrip('/')}/{name}"
    done, seconds = run(command_line(command, db, files), tmp_path)
    cause = DEMO_REFUSAL if command == "demo" else f'database "{name}" does not exist'
    assert_one_line(done, seconds, cause, command)


@pytest.mark.postgres
@pytest.mark.parametrize("command", sorted(set(COMMANDS) - CREATE_A_STORE))
def test_a_database_without_a_store_is_one_line_and_stays_empty(
    command: str, files: dict[str, str], tmp_path: Path, postgres_url: DatabaseURL
) -> None:
    db = f"{POSTGRES_SERVER.rstrip('/')}/{postgres_url.dbname}?schema={postgres_url.schema}"
    done, seconds = run(command_line(command, db, files), tmp_path)
    assert_one_line(done, seconds, "no ledger database at", command)
    with psycopg.connect(
        host=postgres_url.host,
        port=postgres_url.port,
        user=postgres_url.user,
        dbname=postgres_url.dbname,
    ) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (postgres_url.schema,),
        ).fetchall()
    assert tables == []


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - CREATE_A_STORE))
def test_a_missing_sqlite_file_is_one_line_and_is_not_created(
    command: str, files: dict[str, str], tmp_path: Path
) -> None:
    done, seconds = run(command_line(command, "missing.db", files), tmp_path)
    assert_one_line(done, seconds, "no ledger database at", command)
    assert not any(tmp_path.iterdir())


def test_serve_refuses_a_cosigning_key_as_the_log_key(tmp_path: Path) -> None:
    made, _ = run(["keys", "generate", "--cosigner", "--name", "v1", "--out", "v1.key"], tmp_path)
    assert made.returncode == 0, made.stderr
    done, seconds = run(["serve", "--log-key", "v1.key", "--db", "ledger.db"], tmp_path)
    assert_one_line(done, seconds, "v1.key is a verifier's cosigning key (type 0x04)", "serve")
    assert not (tmp_path / "ledger.db").exists()


def test_a_verifier_node_refuses_a_log_key_and_a_url_that_is_none(tmp_path: Path) -> None:
    made, _ = run(["keys", "generate", "--name", "example.org/log", "--out", "l.key"], tmp_path)
    assert made.returncode == 0, made.stderr
    vkey = made.stdout.strip()
    base = ["verifier", "run", "--log-key", vkey, "--state", "state"]
    done, seconds = run([*base, "--ledger", "http://127.0.0.1:1", "--key", "l.key"], tmp_path)
    assert_one_line(done, seconds, "l.key is a log key (type 0x01)", "verifier run --key")
    made, _ = run(["keys", "generate", "--cosigner", "--name", "v1", "--out", "v.key"], tmp_path)
    done, seconds = run([*base, "--ledger", "ledger.example", "--key", "v.key"], tmp_path)
    assert_one_line(done, seconds, "--ledger 'ledger.example' is not an http://", "verifier run")


def test_a_verifier_node_says_once_that_the_ledger_is_unreachable(tmp_path: Path) -> None:
    """One line at start, one when following fails -- not a traceback per poll."""
    made, _ = run(["keys", "generate", "--name", "example.org/log", "--out", "l.key"], tmp_path)
    vkey = made.stdout.strip()
    run(["keys", "generate", "--cosigner", "--name", "v1", "--out", "v.key"], tmp_path)
    unreachable = f"http://127.0.0.1:{free_port()}"
    node = subprocess.Popen(
        [
            *LEDGER,
            "verifier",
            "run",
            "--ledger",
            unreachable,
            "--key",
            "v.key",
            "--log-key",
            vkey,
            "--state",
            "state",
            "--port",
            str(free_port()),
            "--poll",
            "0.05",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(3)  # dozens of polls
    node.terminate()
    output, _ = node.communicate(timeout=20)
    lines = output.strip().splitlines()
    assert "Traceback" not in output
    assert "listening on" in lines[0], output
    assert "following example.org/log" in lines[0], output
    unreachable_lines = [line for line in lines if "cannot reach the ledger" in line]
    assert len(unreachable_lines) == 1, output
    assert "Connection refused" in unreachable_lines[0]
    assert "HTTP Request" not in output


def test_help_shows_no_bool_metavar_and_fits_80_columns() -> None:
    def walk(group: object, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for name, command in getattr(group, "commands", {}).items():
            found += walk(command, [*prefix, name])
        return found

    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    for path in walk(typer.main.get_command(app), []):
        done = subprocess.run(
            [*LEDGER, *path, "--help"], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, (path, done.stderr)
        assert "<bool>" not in done.stdout, path
        too_wide = [line for line in done.stdout.splitlines() if len(line) > 80]
        assert not too_wide, (path, too_wide)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_url_that_is_no_database_url_is_one_line(
    command: str, files: dict[str, str], tmp_path: Path
) -> None:
    done, seconds = run(command_line(command, "mysql://db.example/ledger", files), tmp_path)
    assert_one_line(done, seconds, "unsupported scheme (use sqlite:/// or postgresql://)", command)
    assert not any(tmp_path.iterdir())


MISSING_FILES = [
    (["verify", "--export", "missing.jsonl"], "no export file at missing.jsonl"),
    (["verify", "--bundle", "missing"], "no audit bundle at missing"),
    (["verify", "--db", "{db}", "--policy", "missing.txt"], "no policy file at missing.txt"),
    (["verify", "--db", "{db}", "--log-key", "missing.vkey"], "no such file, and not a verifier"),
    (["export", "--db", "{db}", "--bundle", "--out", "b", "--policy", "x.txt"], "no policy file"),
    (["proof", "verify", "missing.json", "--policy", "missing.txt"], "no bundle at missing.json"),
    (["codes", "rotate", "--keyring", "missing", "--db", "{db}"], "no code keyring at missing"),
    (
        [
            *("codes", "import", "--good", SOME_ID, "--tier", "t", "--file", "missing.txt"),
            *("--keyring", "{ring}", "--db", "{db}"),
        ],
        "no codes file at missing.txt",
    ),
    (["serve", "--log-key", "missing.key", "--db", "{db}"], "no key file at missing.key"),
    (["keys", "show", "missing.key"], "no key file at missing.key"),
    (
        [
            *("verifier", "run", "--ledger", "http://127.0.0.1:1", "--key", "missing.key"),
            *("--log-key", "{vkey}", "--state", "state"),
        ],
        "no key file at missing.key",
    ),
    (
        [
            *("verifier", "run", "--ledger", "http://127.0.0.1:1", "--key", "{cosigner}"),
            *("--log-key", "missing.vkey", "--state", "state"),
        ],
        "no such file, and not a verifier key",
    ),
]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory, files: dict[str, str]) -> dict[str, str]:
    """A store, a verifier key and a cosigning key beside the keyring."""
    directory = tmp_path_factory.mktemp("store")
    db = directory / "ledger.db"
    made, _ = run(["demo", "--db", str(db), "--attempts", "40", "--threads", "2"], directory)
    assert made.returncode == 0, made.stderr
    shown, _ = run(["keys", "show", files["key"]], directory)
    cosigner = directory / "v.key"
    run(["keys", "generate", "--cosigner", "--name", "v1", "--out", str(cosigner)], directory)
    return {**files, "db": str(db), "vkey": shown.stdout.strip(), "cosigner": str(cosigner)}


@pytest.mark.parametrize(("args", "cause"), MISSING_FILES, ids=lambda v: str(v)[:40])
def test_a_missing_file_is_one_line(
    args: list[str], cause: str, small_store: dict[str, str], tmp_path: Path
) -> None:
    line = [arg.format(**small_store) for arg in args]
    done, seconds = run(line, tmp_path)
    assert_one_line(done, seconds, cause, " ".join(args[:2]))


def test_the_traceback_is_there_on_request() -> None:
    code = (
        "import sys; from ledger import cli\n"
        "def boom(): raise RuntimeError('boom')\n"
        "cli.app = boom\n"
        "sys.argv = ['ledger']; cli.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LEDGER_TRACEBACK"}
    quiet = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert quiet.returncode == 1
    assert quiet.stderr.startswith("error: internal error (RuntimeError: boom)")
    assert "Traceback" not in quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env | {"LEDGER_TRACEBACK": "1"},
        check=False,
    )
    assert loud.returncode == 1
    assert "Traceback" in loud.stderr
