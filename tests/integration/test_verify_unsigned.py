"""An auditor who names a log key or a policy asks "was this signed?".

A store whose checkpoints were removed, or whose events were left outside
every checkpoint for longer than the bound (measured against the newest
event's timestamp), fails with ``no-checkpoint`` or ``unsigned-events``
(exit code 10). Without a key or a policy nothing changes: the summary only
counts the events not yet under a checkpoint. (SQLite: the store file is
edited directly, as an attacker with disk access would.)
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.sealer import Sealer
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog.cosignature import cosign
from ledger.tlog.keys import Signer
from ledger.tlog.policy import Policy, parse_policy
from ledger.tlog.signed_note import parse_note
from ledger.verify import export_bundle, export_store, verify_bundle, verify_export, verify_store
from ledger.verify.classes import exit_code
from ledger.verify.log import UNSIGNED_AGE_DEFAULT
from tests.clock import Clock
from tests.integration.test_verify_ledger import Store
from tests.strategies import good_spec

ORIGIN = "ledger.test/unsigned"
SIGNER = Signer.generate(ORIGIN)
WITNESS = Signer.generate("w1", key_type=0x04)
POLICY_TEXT = f"log {SIGNER.verifier_key()}\nwitness w1 {WITNESS.verifier_key()}\nquorum w1\n"
# Sales every 10 s for 12 minutes; the sealer signs after the 6th and the 72nd.
SALES, SEALED_AFTER = 72, (5, 71)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("unsigned") / "ledger.db"
    clock = Clock()
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}"), clock=clock) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 100}]), idempotency_key="m")[
            "good_id"
        ]
        log = LogStore(ledger.event_store.recorder)
        sealer = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[SIGNER], clock=clock)
        for i in range(SALES):
            clock.advance(10)
            ledger.sell(
                good,
                "own",
                buyer=f"b{i}",
                channel="shop",
                quantity=1,
                unit_price=Money(500, "EUR"),
                idempotency_key=f"s{i}",
            )
            if i in SEALED_AFTER:
                sealed = sealer.seal()
                assert sealed is not None
                body = parse_note(sealed.note).text
                log.add_cosignature(
                    sealed.size,
                    "w1",
                    cosign(body, WITNESS, 1_800_000_000).line(),
                    "2026-11-22T12:00:00.000000Z",
                )
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    path = tmp_path / "ledger.db"
    shutil.copy(template, path)
    return Store(path)


def policy() -> Policy:
    return parse_policy(POLICY_TEXT)


def sql(store: Store, *statements: str) -> None:
    with sqlite3.connect(store.path) as db:
        for statement in statements:
            db.execute(statement)


def checks(report: object) -> set[str]:
    return {f.check for f in report.findings}  # type: ignore[attr-defined]


def test_the_untouched_store_verifies_with_a_key_and_a_policy(store: Store) -> None:
    for report in (
        verify_store(store.url, log_keys=[SIGNER.verifier()]),
        verify_store(store.url, policy=policy()),
    ):
        assert report.ok, report.first
        assert report.log is not None
        assert (report.log["verified"], report.log["unsealed_events"]) == (2, 0)


def test_deleted_checkpoints_fail_with_a_key_or_a_policy(store: Store) -> None:
    sql(store, "DELETE FROM tlog_cosignatures", "DELETE FROM tlog_checkpoints")
    for report in (
        verify_store(store.url, log_keys=[SIGNER.verifier()]),
        verify_store(store.url, policy=policy()),
    ):
        assert checks(report) == {"no-checkpoint"}, [str(f) for f in report.findings]
        assert exit_code(checks(report)) == 10
        assert report.log is not None
        assert report.log["unsealed_events"] == report.events
        finding = report.findings[0]
        assert f"{report.events} events" in finding.message
    # Asked nothing of signatures, the auditor sees the same summary as before.
    unasked = verify_store(store.url)
    assert unasked.ok, unasked.first
    assert unasked.log is not None
    assert unasked.log["unsealed_events"] == unasked.events


def test_a_dropped_log_fails_with_a_key(store: Store) -> None:
    sql(
        store,
        *(
            f"DROP TABLE tlog_{name}"
            for name in ("cosignatures", "checkpoints", "nodes", "leaves", "state")
        ),
    )
    report = verify_store(store.url, log_keys=[SIGNER.verifier()])
    assert checks(report) == {"no-checkpoint"}
    assert verify_store(store.url).ok


def later_checkpoints_removed(store: Store) -> int:
    """Keep only the first checkpoint: the events of the last 11 minutes
    are then outside every checkpoint. Returns the first of them's position."""
    with sqlite3.connect(store.path) as db:
        first = db.execute("SELECT MIN(size) FROM tlog_checkpoints").fetchone()[0]
        db.execute("DELETE FROM tlog_cosignatures WHERE size > ?", (first,))
        db.execute("DELETE FROM tlog_checkpoints WHERE size > ?", (first,))
        position = db.execute(
            "SELECT rowid FROM stored_events ORDER BY rowid LIMIT 1 OFFSET ?", (first,)
        ).fetchone()[0]
    return int(position)


def test_events_outside_every_checkpoint_beyond_the_bound_fail(store: Store) -> None:
    position = later_checkpoints_removed(store)
    for report in (
        verify_store(store.url, log_keys=[SIGNER.verifier()]),
        verify_store(store.url, policy=policy()),
    ):
        assert checks(report) == {"unsigned-events"}, [str(f) for f in report.findings]
        assert exit_code(checks(report)) == 10
        finding = report.findings[0]
        assert finding.position == position  # the oldest event left unsigned, located
        assert finding.event_type == "stock.sold"
        assert "650 s older than the newest event" in finding.message
        assert finding.expected == f"<= {UNSIGNED_AGE_DEFAULT:g} s"
    # The bound is the auditor's: a wider one accepts the same store.
    wide = verify_store(store.url, log_keys=[SIGNER.verifier()], max_unsigned_age=3_600)
    assert wide.ok, wide.first
    assert verify_store(store.url).ok


def test_a_fresh_unsealed_tail_is_not_a_finding(store: Store) -> None:
    """What a running sealer has not signed yet -- the last seconds -- is fine."""
    clock = Clock()
    clock.advance(10 * SALES + 2)
    with Ledger(store.url, clock=clock) as ledger:
        good = ledger.mint(
            good_spec(title="Fresh", tiers=[{"name": "own", "quota": 5}]), idempotency_key="m2"
        )["good_id"]
        clock.advance(1)
        ledger.sell(
            good,
            "own",
            buyer="late",
            channel="shop",
            quantity=1,
            unit_price=Money(500, "EUR"),
            idempotency_key="late",
        )
    report = verify_store(store.url, log_keys=[SIGNER.verifier()])
    assert report.ok, report.first
    assert report.log is not None
    assert report.log["unsealed_events"] > 0
    # An auditor may ask that every event be signed.
    strict = verify_store(store.url, log_keys=[SIGNER.verifier()], max_unsigned_age=0)
    assert checks(strict) == {"unsigned-events"}


def test_a_bundle_without_checkpoints_fails_with_its_policy(store: Store, tmp_path: Path) -> None:
    sql(store, "DELETE FROM tlog_cosignatures", "DELETE FROM tlog_checkpoints")
    export_bundle(store.url, tmp_path / "bundle", POLICY_TEXT)
    report = verify_bundle(tmp_path / "bundle")  # the bundle's own policy.txt
    assert checks(report) == {"no-checkpoint"}
    assert exit_code(checks(report)) == 10


def test_a_bundle_with_old_unsigned_events_fails(store: Store, tmp_path: Path) -> None:
    later_checkpoints_removed(store)
    export_bundle(store.url, tmp_path / "bundle")
    report = verify_bundle(tmp_path / "bundle", log_keys=[SIGNER.verifier()])
    assert checks(report) == {"unsigned-events"}
    assert verify_bundle(tmp_path / "bundle").ok


def test_an_export_holds_no_checkpoint(store: Store, tmp_path: Path) -> None:
    """An export file carries no signatures: asked for one, it has none."""
    export_store(store.url, tmp_path / "e.jsonl")
    report = verify_export(tmp_path / "e.jsonl", log_keys=[SIGNER.verifier()])
    assert checks(report) == {"no-checkpoint"}
    assert "--bundle" in report.findings[0].message
    assert verify_export(tmp_path / "e.jsonl").ok


def test_the_settings_default_is_the_verifiers() -> None:
    assert Settings.model_fields["verify_max_unsigned_age"].default == UNSIGNED_AGE_DEFAULT
