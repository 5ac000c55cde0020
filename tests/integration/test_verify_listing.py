"""The auditor and the listing rule (docs/format.md rule 8.15): a careful
forger deletes, retypes or edits a pause, resume or delisting and re-chains
the stock (so every hash checks out); a sale, hold or restock of a paused or
delisted tier, and a pause or resume out of turn, is still caught -- a
domain-rule finding (exit 4) located at the forged event or after it."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from ledger.verify.classes import exit_code
from tests.integration.test_verify_ledger import Store
from tests.strategies import good_spec

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EUR = Money(100, "EUR")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("listing") / "ledger.db"
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}"), clock=lambda: T0) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        tiers = [{"name": "own", "quota": 10, "lifetime_cap": 20}, {"name": "view", "quota": 10}]
        good = ledger.mint(good_spec(tiers=tiers, policy="restockable"), idempotency_key="m")[
            "good_id"
        ]
        ledger.pause(good, "own", reason="checking", idempotency_key="p1")
        ledger.resume(good, "own", reason="checked", idempotency_key="u1")
        ledger.sell(
            good, "own", buyer="ann", channel="shop", quantity=1, unit_price=EUR,
            idempotency_key="s1",
        )  # fmt: skip
        ledger.reserve(good, "own", channel="shop", quantity=1, ttl_seconds=60, idempotency_key="h")
        ledger.restock(good, "own", 1, idempotency_key="r")
        ledger.pause(good, reason="recall", idempotency_key="p2")
        ledger.resume(good, reason="recall over", idempotency_key="u2")
        ledger.delist(good, "view", reason="retired", idempotency_key="d")
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "ledger.db"
    shutil.copy(template, copy)
    return Store(copy)


def test_the_honest_store_verifies_with_every_listing_event(store: Store) -> None:
    report = verify_store(store.url)
    assert report.ok, report.first
    assert report.by_type["stock.paused"] == 3  # own's; the good's, on each tier
    assert report.by_type["stock.resumed"] == 3
    assert report.by_type["stock.delisted"] == 1


def _retype(store: Store, topic: str, nth: int, new_topic: str) -> int:
    row = store.find(topic, nth)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE stored_events SET topic=? WHERE rowid=?", (new_topic, row.rowid))
    store.rechain(row.aggregate_id)
    return row.rowid


def _delete(store: Store, topic: str, nth: int) -> int:
    row = store.find(topic, nth)
    store.delete(row.rowid)
    store.rechain(row.aggregate_id)
    return row.rowid


def _edit_scope(store: Store, topic: str, nth: int, scope: str) -> int:
    row = store.find(topic, nth)
    store.edit(row, lambda p: p.update(scope=scope))
    store.rechain(row.aggregate_id)
    return row.rowid


Forgery = Callable[[Store], int]
CASES: list[tuple[str, Forgery, str, str | None]] = [
    # (case, forgery, check, the event type of the first finding)
    (
        "sell, hold and restock while paused (the resume deleted)",
        lambda s: _delete(s, "stock.resumed", 0),
        "listing",
        "stock.sold",
    ),
    (
        "sell after delisting (the resume retyped as a delisting)",
        lambda s: _retype(s, "stock.resumed", 0, "stock.delisted"),
        "listing",
        "stock.sold",
    ),
    (
        "resume a pause of another scope",
        lambda s: _edit_scope(s, "stock.resumed", 0, "good"),
        "listing-state",
        "stock.resumed",
    ),
    (
        "pause what is paused already",
        lambda s: _retype(s, "stock.resumed", 0, "stock.paused"),
        "listing-state",
        "stock.paused",
    ),
    (
        "delist twice",
        lambda s: _retype(s, "stock.resumed", 2, "stock.delisted"),
        "listing-state",
        None,
    ),
]


@pytest.mark.parametrize(("case", "forgery", "check", "where"), CASES, ids=[c[0] for c in CASES])
def test_each_forged_listing_is_caught(
    store: Store, case: str, forgery: Forgery, check: str, where: str | None
) -> None:
    rowid = forgery(store)
    report = verify_store(store.url)
    found = [f for f in report.findings if f.check == check]
    assert found, f"{case}: {[str(f) for f in report.findings]}"
    assert exit_code(f.check for f in report.findings) == 4  # a domain rule, not the chain
    assert found[0].position is not None
    assert found[0].position >= rowid
    if where is not None:
        assert found[0].event_type == where, str(found[0])
