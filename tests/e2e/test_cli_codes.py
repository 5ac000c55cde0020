"""``ledger codes``, as an operator runs it: real processes, real files, a
real SQLite database (and one run on PostgreSQL)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.code import code_range
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.codevault import Keyring, VaultError, open_vault
from ledger.store.database import DatabaseURL
from tests.e2e.test_cli import LEDGER
from tests.strategies import good_spec

RANGE = ("ZQ9R-", 6, 41, 1_540)  # 1,500 codes: two chunks


def run(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "LEDGER_CODE_KEYRING_FILE"}
    return subprocess.run(
        [*LEDGER, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environment | (env or {}),
    )


def one_line_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0], lines[0]


def unique_codes(count: int, tag: str) -> list[str]:
    salt = secrets.token_hex(4).upper()
    return [f"{tag}-{salt}-{n:06d}" for n in range(count)]


def write_codes(path: Path, codes: list[str]) -> Path:
    """One code a line, with the clutter a real export has: spaces, blank
    lines, Windows line ends."""
    lines = [f"  {code}\t" if n % 7 == 0 else code for n, code in enumerate(codes)]
    path.write_text("\r\n".join(lines[:3]) + "\n\n   \n" + "\n".join(lines[3:]) + "\n\n")
    return path


class Store:
    """A SQLite ledger with a coded good (tier ``key``) and a plain one."""

    def __init__(self, directory: Path, url: DatabaseURL | None = None) -> None:
        self.dir = directory
        self.url = url or DatabaseURL.parse(f"sqlite:///{directory / 'ledger.db'}")
        self.db = self.url.display()
        self.ring = directory / "secrets" / "codes.keyring"
        self.ring.parent.mkdir()
        with Ledger(self.url) as ledger:
            ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
            spec = good_spec(tiers=[{"name": "key", "quota": 50_000}])
            self.good = str(
                ledger.mint(spec | {"kind": "redemption-code"}, idempotency_key="mint")["good_id"]
            )
            self.plain = str(
                ledger.mint(good_spec(title="Plain"), idempotency_key="mint-2")["good_id"]
            )

    def codes(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("codes", *args, "--db", self.db, cwd=self.dir)

    def import_(
        self, *source: str, good: str | None = None, tier: str = "key"
    ) -> subprocess.CompletedProcess[str]:
        return self.codes(
            "import",
            "--good",
            good or self.good,
            "--tier",
            tier,
            *source,
            "--keyring",
            str(self.ring),
        )

    def counts(self) -> dict[str, Any]:
        done = self.codes("status", "--good", self.good, "--tier", "key", "--json")
        assert done.returncode == 0, done.stderr
        counts: dict[str, Any] = json.loads(done.stdout)
        return counts

    def stored_bytes(self) -> bytes:
        assert self.url.backend == "sqlite"
        files = [Path(self.url.path + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
        return b"".join(f.read_bytes() for f in files if f.exists())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path)
    made = run("codes", "keyring", "--out", str(store.ring), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return store


# -- the keyring ------------------------------------------------------------------------
def test_a_keyring_is_made_private_and_never_overwritten(tmp_path: Path) -> None:
    ring_file = tmp_path / "codes.keyring"
    made = run("codes", "keyring", "--out", str(ring_file), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    ring = Keyring.load(ring_file)
    assert made.stdout.strip() == ring.active
    assert list(ring.keys) == [ring.active]
    before = ring_file.read_bytes()
    again = run("codes", "keyring", "--out", str(ring_file), cwd=tmp_path)
    one_line_error(again, "exists; keyrings are never overwritten")
    assert again.stdout == ""
    assert ring_file.read_bytes() == before
    nowhere = run("codes", "keyring", "--out", str(tmp_path / "no" / "dir" / "k"), cwd=tmp_path)
    one_line_error(nowhere, "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.keyring"]


# -- import -----------------------------------------------------------------------------
def test_import_from_a_file_and_a_range_each_only_once(store: Store) -> None:
    codes = unique_codes(2_345, "ZQ9F")
    listing = write_codes(store.dir / "batch-1.txt", codes)
    outputs: list[str] = []

    first = store.import_("--file", str(listing))
    outputs += [first.stdout, first.stderr]
    assert first.returncode == 0, first.stderr
    assert "imported 2,345 code(s) in 3 chunk(s)" in first.stdout
    assert "2,345 imported, 2,345 available, 0 held, 0 bound" in first.stdout
    again = store.import_("--file", str(listing))
    outputs += [again.stdout, again.stderr]
    assert again.returncode == 0, again.stderr
    assert "imported 0 code(s)" in again.stdout
    assert "2,345 were imported already" in again.stdout
    # The same codes, laid out differently, are the same import.
    listing.write_text("\n".join(codes) + "\n")
    tidy = store.import_("--file", str(listing))
    assert "imported 0 code(s)" in tidy.stdout, tidy.stdout + tidy.stderr

    prefix, width, start, end = RANGE
    ranged = store.import_("--range", f"{prefix}:{width}:{start}-{end}")
    outputs += [ranged.stdout, ranged.stderr]
    assert ranged.returncode == 0, ranged.stderr
    assert "imported 1,500 code(s) in 2 chunk(s)" in ranged.stdout
    padded = store.import_("--range", f"{prefix}:{width}:{start:06d}-{end}")
    outputs += [padded.stdout, padded.stderr]
    assert "imported 0 code(s)" in padded.stdout, padded.stdout + padded.stderr
    assert store.counts() == {
        "good_id": store.good,
        "tier": "key",
        "imported": 3_845,
        "available": 3_845,
        "held": 0,
        "bound": 0,
    }
    status = store.codes("status", "--good", store.good, "--tier", "key")
    assert status.stdout.strip() == (
        f"good {store.good} tier key: 3,845 imported, 3,845 available, 0 held, 0 bound"
    )

    # No code's text is in the database's files or in anything the CLI said.
    stored = store.stored_bytes()
    assert len(stored) > 100_000
    said = "".join(outputs).encode()
    texts = codes + code_range(prefix, width, start, end)
    for text in texts:
        assert text.encode() not in stored, f"{text} is stored in the clear"
        assert text.encode() not in said, f"{text} was printed"
    assert b"ZQ9" not in said


@pytest.mark.slow
def test_an_import_interrupted_is_finished_by_running_it_again(store: Store) -> None:
    codes = unique_codes(40_000, "ZQ9I")
    listing = write_codes(store.dir / "big.txt", codes)
    process = subprocess.Popen(
        [
            *LEDGER,
            "codes",
            "import",
            "--good",
            store.good,
            "--tier",
            "key",
            "--file",
            str(listing),
            "--keyring",
            str(store.ring),
            "--db",
            store.db,
        ],
        cwd=store.dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        with Ledger(store.url) as ledger:
            while ledger.code_counts(store.good, "key")["imported"] < 2_000:
                assert process.poll() is None, "the import ended before it was interrupted"
                assert time.monotonic() < deadline
                time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    part = store.counts()["imported"]
    assert 2_000 <= part < 40_000
    assert part % 1_000 == 0  # whole chunks: each is one transaction

    finished = store.import_("--file", str(listing))
    assert finished.returncode == 0, finished.stderr
    assert f"imported {40_000 - part:,} code(s) in 40 chunk(s)" in finished.stdout
    assert f"{part:,} were imported already" in finished.stdout
    assert store.counts()["imported"] == store.counts()["available"] == 40_000


def test_a_code_imported_before_refuses_the_whole_file(store: Store) -> None:
    first = unique_codes(1_500, "ZQ9A")
    done = store.import_("--file", str(write_codes(store.dir / "a.txt", first)))
    assert done.returncode == 0, done.stderr
    counts = store.counts()
    # 1,200 new codes, and on line 1,102 one of the first file's: the first
    # chunk holds only new codes, yet nothing at all is imported.
    second = unique_codes(1_200, "ZQ9B")
    second.insert(1_101, first[700])
    other = store.dir / "b.txt"
    other.write_text("\n".join(second) + "\n")
    refused = store.import_("--file", str(other))
    one_line_error(refused, "1 code(s) were imported before, the first at line 1102 of")
    assert "nothing imported" in refused.stderr
    assert "ZQ9" not in refused.stdout + refused.stderr
    assert store.counts() == counts
    # Twice in one file: refused too, naming lines, never the code.
    twice = store.dir / "c.txt"
    twice.write_text("ZQ9C-ONE\nZQ9C-TWO\n\nZQ9C-ONE\n")
    refused = store.import_("--file", str(twice))
    one_line_error(refused, f"line 4 of {twice} repeats line 1 of {twice}")
    assert "ZQ9" not in refused.stderr
    # A range overlapping codes imported before.
    store.import_("--range", "ZQ9R-:4:1-10")
    counts = store.counts()
    overlapping = store.import_("--range", "ZQ9R-:4:5-2000")
    one_line_error(overlapping, "6 code(s) were imported before, the first at code #1 of the range")
    assert store.counts() == counts


BAD_IMPORTS = [
    (["--good", "GOOD", "--tier", "nope", "--range", "A:3:1-5"], "has no tier 'nope'"),
    (
        ["--good", "6f0c4f1e-0000-4000-8000-000000000000", "--tier", "key", "--range", "A:3:1-5"],
        "does not exist",
    ),
    (["--good", "not-a-uuid", "--tier", "key", "--range", "A:3:1-5"], "is not a UUID"),
    (
        ["--good", "PLAIN", "--tier", "own", "--range", "A:3:1-5"],
        "is a collectible, not a redemption-code",
    ),
    (["--good", "GOOD", "--tier", "key", "--range", "A-3:1-5"], "is not PREFIX:WIDTH:START-END"),
    (["--good", "GOOD", "--tier", "key", "--range", "A:3:1_5"], "is not PREFIX:WIDTH:START-END"),
    (["--good", "GOOD", "--tier", "key", "--range", "A:3:9-1"], "END must not be below"),
    (["--good", "GOOD", "--tier", "key", "--range", "A:2:1-100"], "does not fit in 2"),
    (
        ["--good", "GOOD", "--tier", "key", "--range", "A:20:0-99999999999999999999"],
        "at most 10,000,000 codes at once",
    ),
    (["--good", "GOOD", "--tier", "key", "--range", "A B:2:1-5"], "prefix: must be printable"),
    (["--good", "GOOD", "--tier", "key", "--file", "missing.txt"], "no codes file at"),
    (
        ["--good", "GOOD", "--tier", "key", "--file", "spaced.txt"],
        "spaced.txt line 3: must be printable ASCII without spaces",
    ),
    (["--good", "GOOD", "--tier", "key", "--file", "empty.txt"], "holds no codes"),
    (["--good", "GOOD", "--tier", "key"], "give either --file PATH or --range"),
    (
        ["--good", "GOOD", "--tier", "key", "--file", "spaced.txt", "--range", "A:3:1-5"],
        "give either --file PATH or --range",
    ),
]


def test_bad_input_is_one_line_and_imports_nothing(store: Store) -> None:
    (store.dir / "spaced.txt").write_text("ZQ9S-1\n\nZQ9S 2\n")
    (store.dir / "empty.txt").write_text("\n  \n")
    for given, message in BAD_IMPORTS:
        args = [{"GOOD": store.good, "PLAIN": store.plain}.get(a, a) for a in given]
        done = store.codes("import", *args, "--keyring", str(store.ring))
        one_line_error(done, message)
        assert done.stdout == ""
        assert "ZQ9S" not in done.stderr
    assert store.counts()["imported"] == 0


def test_without_a_keyring_or_a_store_nothing_happens(store: Store) -> None:
    source = ["--good", store.good, "--tier", "key", "--range", "A:3:1-5"]
    for command in (["import", *source], ["rotate"]):
        done = store.codes(*command)
        one_line_error(done, "no code keyring: give --keyring FILE or set LEDGER_CODE_KEYRING_FILE")
        done = store.codes(*command, "--keyring", str(store.dir / "missing.keyring"))
        one_line_error(done, "no code keyring at")
        done = run(
            "codes",
            *command,
            "--keyring",
            str(store.ring),
            "--db",
            str(store.dir / "nowhere.db"),
            cwd=store.dir,
        )
        one_line_error(done, "no ledger database at")
    assert not (store.dir / "nowhere.db").exists()
    # The setting names the keyring when --keyring does not.
    done = run(
        "codes",
        "import",
        *source,
        "--db",
        store.db,
        cwd=store.dir,
        env={"LEDGER_CODE_KEYRING_FILE": str(store.ring)},
    )
    assert done.returncode == 0, done.stderr
    assert store.counts()["imported"] == 5
    done = store.codes("status", "--good", store.plain, "--tier", "own")
    one_line_error(done, "carries no redemption codes")


# -- rotation ---------------------------------------------------------------------------
def test_rotation_reseals_every_code_and_retires_the_old_key(store: Store) -> None:
    codes = unique_codes(1_234, "ZQ9K")
    done = store.import_("--file", str(write_codes(store.dir / "codes.txt", codes)))
    assert done.returncode == 0, done.stderr
    old_copy = store.dir / "old.keyring"
    shutil.copy(store.ring, old_copy)
    old = Keyring.load(old_copy)

    rotated = store.codes("rotate", "--keyring", str(store.ring))
    assert rotated.returncode == 0, rotated.stderr
    middle = Keyring.load(store.ring)
    assert set(middle.keys) == {old.active, middle.active}
    assert f"added key {middle.active}" in rotated.stdout
    assert "re-sealed 1,234 code(s)" in rotated.stdout
    assert f"{middle.active}  1,234 code(s)  (active)" in rotated.stdout
    assert f"no code uses {old.active} any more" in rotated.stdout

    retired = store.codes("rotate", "--keyring", str(store.ring), "--retire")
    assert retired.returncode == 0, retired.stderr
    ring = Keyring.load(store.ring)
    assert list(ring.keys) == [ring.active]
    assert ring.active not in (old.active, middle.active)
    assert ring.ref_key == old.ref_key  # refs are history: the ref key never rotates
    assert "re-sealed 1,234 code(s)" in retired.stdout
    assert f"retired {', '.join(sorted([old.active, middle.active]))}" in retired.stdout
    text = store.ring.read_text()
    assert old.active not in text
    assert middle.active not in text
    assert stat.S_IMODE(store.ring.stat().st_mode) == 0o600
    assert not list(store.ring.parent.glob("*.tmp"))
    with open_vault(store.url, ring, create=False) as vault:
        assert vault.key_usage() == {ring.active: 1_234}
        assert vault.reveal(ring.ref(codes[77])) == codes[77]
    # The copy of the old ring opens nothing any more.
    with open_vault(store.url, Keyring.load(old_copy), create=False) as stale:
        for code in (codes[0], codes[-1]):
            with pytest.raises(VaultError, match="not in the keyring"):
                stale.reveal(old.ref(code))
    # A unit sold now is delivered its code, opened with the new ring.
    with Ledger(store.url, code_keyring=Keyring.load(store.ring)) as ledger:
        sold = ledger.sell(
            store.good,
            "key",
            buyer="ann",
            channel="shop",
            quantity=1,
            unit_price=Money(1_000, "EUR"),
            idempotency_key="sale",
        )
        unit = sold["units"][0]["unit_id"]
        delivered = ledger.deliver_code(unit, holder="ann", idempotency_key="deliver")
    assert delivered["code"] == codes[0]  # first in, first out
    assert store.counts()["bound"] == 1
    said = (rotated.stdout + rotated.stderr + retired.stdout + retired.stderr).encode()
    stored = store.stored_bytes()
    for code in codes:
        assert code.encode() not in stored
        assert code.encode() not in said
    # A rotation or an import with a ring from before, or another store's, is
    # refused before the ring or the store is touched.
    before = old_copy.read_bytes()
    wrong = store.codes("rotate", "--keyring", str(old_copy))
    one_line_error(wrong, f"sealed under key(s) {ring.active}, which {old_copy} does not hold")
    assert old_copy.read_bytes() == before
    foreign = store.dir / "foreign.keyring"
    assert run("codes", "keyring", "--out", str(foreign), cwd=store.dir).returncode == 0
    counts = store.counts()
    for other in (old_copy, foreign):
        refused = store.codes(
            "import",
            "--good",
            store.good,
            "--tier",
            "key",
            "--range",
            "ZQ9N-:3:1-5",
            "--keyring",
            str(other),
        )
        one_line_error(refused, f"which {other} does not hold: is it this store's current keyring?")
    assert store.counts() == counts


# -- PostgreSQL -------------------------------------------------------------------------
@pytest.mark.postgres
def test_import_rotate_and_status_on_postgresql(
    tmp_path: Path,
    postgres_url: DatabaseURL,
) -> None:
    store = Store(tmp_path, postgres_url)
    assert run("codes", "keyring", "--out", str(store.ring), cwd=tmp_path).returncode == 0
    codes = unique_codes(1_100, "ZQ9P")
    listing = write_codes(tmp_path / "codes.txt", codes)
    for expected in ("imported 1,100 code(s) in 2 chunk(s)", "imported 0 code(s)"):
        done = store.import_("--file", str(listing))
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
    ranged = store.import_("--range", "ZQ9P-:2:1-3")
    assert ranged.returncode == 0, ranged.stderr  # new codes: ZQ9P-01..03
    clash = tmp_path / "clash.txt"
    clash.write_text(f"ZQ9P-NEW\n{codes[5]}\n")
    one_line_error(store.import_("--file", str(clash)), "were imported before")
    old = Keyring.load(store.ring)
    rotated = store.codes("rotate", "--keyring", str(store.ring), "--retire")
    assert rotated.returncode == 0, rotated.stderr
    ring = Keyring.load(store.ring)
    assert f"retired {old.active}" in rotated.stdout
    with open_vault(store.url, ring, create=False) as vault:
        assert vault.key_usage() == {ring.active: 1_103}
        assert vault.reveal(ring.ref(codes[3])) == codes[3]
    assert store.counts() == {
        "good_id": store.good,
        "tier": "key",
        "imported": 1_103,
        "available": 1_103,
        "held": 0,
        "bound": 0,
    }


def test_help_is_everywhere(tmp_path: Path) -> None:
    for command in (
        ["codes"],
        ["codes", "keyring"],
        ["codes", "rotate"],
        ["codes", "import"],
        ["codes", "status"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ledger.cli", *command, "--help"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Usage" in done.stdout
