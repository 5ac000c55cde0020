"""The tamper suite: each way of rewriting history, and the error that
catches it, located. (SQLite: the store file is edited directly, as an
attacker with disk access would.)

| mutation                                   | caught as                    |
|--------------------------------------------|------------------------------|
| flip a byte in a stored event              | not-canonical / bad-json     |
| edit a payload, re-encoded canonically     | prev-hash-mismatch           |
| delete an event                            | version-gap                  |
| reorder two events of an aggregate         | version-order / prev-hash    |
| truncate the log                           | checkpoint-beyond-log        |
| rewrite an aggregate with re-chained hashes| checkpoint-root              |
| replace the log key's signature            | checkpoint-signature         |
| roll back past what the auditor verified   | rollback                     |
| show the auditor another history           | split-view                   |
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.sealer import Sealer
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog.keys import Signer
from ledger.tlog.signed_note import sign_note
from ledger.verify import Report, verify_store
from ledger.verify.classes import exit_code
from tests.integration.test_verify_ledger import Store, encode
from tests.strategies import good_spec

ORIGIN = "ledger.test/tamper"
SIGNER = Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "ledger.db"
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}")) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 30}]), idempotency_key="m")[
            "good_id"
        ]
        sealer = Sealer(
            ledger.event_store,
            LogStore(ledger.event_store.recorder),
            origin=ORIGIN,
            signers=[SIGNER],
        )
        for i in range(12):
            ledger.sell(
                good,
                "own",
                buyer=f"b{i}",
                channel="shop",
                quantity=1,
                unit_price=Money(500, "EUR"),
                idempotency_key=f"s{i}",
            )
            if i in (5, 11):
                sealer.seal()
    return path


@pytest.fixture
def store(sealed_template: Path, tmp_path: Path) -> Store:
    path = tmp_path / "ledger.db"
    shutil.copy(sealed_template, path)
    return Store(path)


def audit(store: Store, remembered: tuple[int, str] | None = None) -> Report:
    return verify_store(store.url, log_keys=[SIGNER.verifier()], remembered=remembered)


def flip_byte(store: Store) -> int:
    row = store.find("stock.sold", 3)
    state = bytearray(row.state)
    state[len(state) // 2] ^= 0x01
    store.write_state(row.rowid, bytes(state))
    return row.rowid


def edit_payload(store: Store) -> int:
    row = store.find("stock.sold", 3)
    store.edit(row, lambda p: p.update(buyer="mallory"))
    return row.rowid


def delete_event(store: Store) -> int:
    row = store.find("stock.sold", 3)
    store.delete(row.rowid)
    return row.rowid


def reorder(store: Store) -> int:
    first, second = store.find("stock.sold", 2), store.find("stock.sold", 3)
    store.set_version(first.rowid, -1)
    store.set_version(second.rowid, first.version)
    store.set_version(first.rowid, second.version)
    return first.rowid


def truncate(store: Store) -> int:
    rows = store.rows()
    for row in rows[-6:]:
        store.delete(row.rowid)
    return rows[-6].rowid


def rechain(store: Store) -> int:
    """A careful forger: move a sale's timestamp by a microsecond (no rule
    can see it) and recompute every later hash of that stock."""
    row = store.find("stock.sold", 2)
    data = row.data
    data["timestamp"] = data["timestamp"][:-2] + ("1Z" if data["timestamp"][-2] != "1" else "2Z")
    store.write_state(row.rowid, encode(data))
    store.rechain(row.aggregate_id)
    return row.rowid


def resign(store: Store) -> int:
    with sqlite3.connect(store.path) as db:
        size, note = db.execute(
            "SELECT size, note FROM tlog_checkpoints ORDER BY size LIMIT 1"
        ).fetchone()
        text = note.split("\n\n")[0] + "\n"
        db.execute(
            "UPDATE tlog_checkpoints SET note = ? WHERE size = ?",
            (sign_note(text, [Signer.generate(ORIGIN)]), size),
        )
    return 0


CASES: list[tuple[str, Callable[[Store], int], set[str], int]] = [
    ("flip a byte", flip_byte, {"not-canonical", "bad-json"}, 3),
    ("edit a payload", edit_payload, {"prev-hash-mismatch"}, 3),
    ("delete an event", delete_event, {"version-gap"}, 3),
    ("reorder events", reorder, {"version-order", "prev-hash-mismatch"}, 3),
    ("truncate the log", truncate, {"checkpoint-beyond-log"}, 7),
    ("rewrite and re-chain", rechain, {"checkpoint-root"}, 7),
    ("replace the log signature", resign, {"checkpoint-signature"}, 5),
]


def test_the_untouched_store_verifies(store: Store) -> None:
    report = audit(store)
    assert report.ok, report.first
    assert report.log is not None
    assert report.log["verified"] == 2


@pytest.mark.parametrize(("case", "mutate", "checks", "code"), CASES, ids=[c[0] for c in CASES])
def test_each_mutation_is_caught_with_its_own_error(
    store: Store, case: str, mutate: Callable[[Store], int], checks: set[str], code: int
) -> None:
    mutate(store)
    report = audit(store)
    found = {f.check for f in report.findings}
    assert found & checks, f"{case}: {[str(f) for f in report.findings]}"
    assert exit_code(found) == code
    first: Any = report.first
    assert first is not None
    assert first.message


def test_a_rewritten_event_is_located(store: Store) -> None:
    rowid = edit_payload(store)
    report = audit(store)
    chain = next(f for f in report.findings if f.check == "prev-hash-mismatch")
    assert f"position {rowid}" in chain.message  # names the altered event
    assert chain.expected != chain.actual


def remember(store: Store) -> tuple[int, str]:
    """What an auditor's --state file holds after a clean audit."""
    clean = audit(store)
    assert clean.log is not None
    return clean.log["latest_size"], clean.log["latest_root"]


def test_a_rollback_past_what_the_auditor_verified_is_caught(store: Store) -> None:
    remembered = remember(store)
    truncate(store)
    report = audit(store, remembered)
    assert "rollback" in {f.check for f in report.findings}
    assert exit_code(f.check for f in report.findings) == 7


def test_another_history_of_the_same_size_is_a_split_view(store: Store) -> None:
    remembered = remember(store)
    rechain(store)
    report = audit(store, remembered)
    assert "split-view" in {f.check for f in report.findings}
    assert exit_code(f.check for f in report.findings) == 7
