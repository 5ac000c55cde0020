"""Webhook subscriptions (rule 8.14) re-checked by the verifier from the
events alone: an honest store verifies on both backends; each forgery -- a
correctly re-chained event breaking a rule -- is a located domain-rule
finding (exit 4)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.actor import Actor, acting
from ledger.service import Ledger
from ledger.store.apikeys import ApiKeyStore, Role
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from ledger.verify.classes import exit_code
from tests.integration.test_verify_ledger import Store, encode, only

SHOP = ("channel", "shop")


def _build(url: DatabaseURL) -> dict[str, Any]:
    """Two subscriptions through their whole life: registered, rotated,
    paused, resumed, replayed, failing (by the server), resumed, deleted."""
    ledger = Ledger(url)
    keys = ApiKeyStore(ledger.event_store.recorder, events=ledger)
    with acting(Actor.operator()):
        admin, _ = keys.issue(Role.ADMIN, label="ops")
        shop, _ = keys.issue(Role.CHANNEL, "shop", label="till")
    as_shop = Actor.of_key(shop.key_id, "channel", "shop", "req-1")
    scope = "channel:shop"
    with ledger:
        with acting(as_shop):
            sub = ledger.register_webhook(
                "a" * 32,
                SHOP,
                "https://example.com/hooks",
                ["stock.sold", "unit.refunded"],
                idempotency_key="r1",
                scope=scope,
            )["subscription_id"]
            ledger.rotate_webhook_secret(
                sub, SHOP, 2, timedelta(hours=1), idempotency_key="k1", scope=scope
            )
            ledger.pause_webhook(sub, SHOP, idempotency_key="k2", scope=scope)
            ledger.resume_webhook(sub, SHOP, idempotency_key="k3", scope=scope)
            ledger.replay_webhook(sub, SHOP, 0, idempotency_key="k4", scope=scope)
        ledger.webhook_failing(sub, 7, 8, "exhausted")
        with acting(Actor.of_key(admin.key_id, "admin", None, "req-2")):
            ledger.resume_webhook(sub, ("admin", None), idempotency_key="k5", scope="admin")
            ledger.delete_webhook(sub, ("admin", None), idempotency_key="k6", scope="admin")
            ledger.register_webhook(
                "b" * 32,
                ("admin", None),
                "http://127.0.0.1:9/x",
                ["stock.sold", "stock.reserved"],
                idempotency_key="r2",
                scope="admin",
            )
    return {"sub": sub}


def test_an_honest_life_verifies(store_url: DatabaseURL) -> None:
    _build(store_url)
    report = verify_store(store_url)
    assert [str(f) for f in report.findings] == []
    assert report.by_type["webhook.registered"] == 2
    assert report.by_type["webhook.resumed"] == 2
    assert report.by_type["webhook.failing"] == 1


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("webhooks") / "ledger.db"
    _build(DatabaseURL.parse(f"sqlite:///{path}"))
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copy(source, tmp_path / ("ledger.db" + suffix))
    return Store(tmp_path / "ledger.db")


def _recorded_by(store: Store, topic: str, change: dict[str, Any], nth: int = 0) -> int:
    row = store.find(topic, nth)
    data = row.data
    data["recorded_by"].update(change)
    store.write_state(row.rowid, encode(data))
    store.rechain(row.aggregate_id)
    return row.rowid


def _located(store: Store, check: str, rowid: int) -> None:
    report = verify_store(store.url)
    finding = only(report, check)
    assert finding.position == rowid, [str(f) for f in report.findings]
    assert exit_code(report.by_check()) == 4


def test_forged_a_subscription_for_another_channel(store: Store) -> None:
    row = store.find("webhook.registered", owner="shop")
    store.edit(row, lambda p: p.update(owner="market"))
    store.rechain(row.aggregate_id)
    # (the later events, recorded by shop's key, are then not the owner's either)
    report = verify_store(store.url)
    assert only(report, "webhook-owner").position == row.rowid
    assert exit_code(report.by_check()) == 4


def test_forged_types_a_creator_may_not_read(store: Store) -> None:
    row = store.find("webhook.registered", owner="shop")
    store.edit(row, lambda p: p.update(owner_role="creator"))
    store.rechain(row.aggregate_id)
    report = verify_store(store.url)
    owner = [f for f in report.findings if f.check == "webhook-owner"]
    assert {f.position for f in owner} == {row.rowid}
    assert any("may not read unit.refunded" not in f.message for f in owner)


def test_forged_a_pause_by_another_channel(store: Store) -> None:
    rowid = _recorded_by(store, "webhook.paused", {"subject": "market"})
    report = verify_store(store.url)
    assert only(report, "webhook-actor").position == rowid
    # (and the key acted under another subject: rule 8.12)
    assert "actor-mismatch" in report.by_check()


def test_forged_failing_not_by_the_server(store: Store) -> None:
    row = store.find("webhook.failing")
    data = row.data
    data["recorded_by"] = {"role": "operator", "subject": "cli", "request_id": "x"}
    store.write_state(row.rowid, encode(data))
    store.rechain(row.aggregate_id)
    _located(store, "webhook-actor", row.rowid)


def test_forged_an_event_after_the_deletion(store: Store) -> None:
    # The admin's resume and deletion swapped, re-chained: a resume follows
    # the deletion.
    resumed, deleted = store.find("webhook.resumed", 1), store.find("webhook.deleted")
    assert resumed.rowid < deleted.rowid
    with store._connect() as db:
        for row, other in ((resumed, deleted), (deleted, resumed)):
            db.execute(
                "UPDATE stored_events SET topic=?, state=? WHERE rowid=?",
                (other.topic, other.state, row.rowid),
            )
    store.rechain(deleted.aggregate_id)
    _located(store, "webhook-state", deleted.rowid)


def test_forged_a_skipped_secret_generation(store: Store) -> None:
    row = store.find("webhook.secret-rotated")
    store.edit(row, lambda p: p.update(generation=3))
    store.rechain(row.aggregate_id)
    _located(store, "webhook-state", row.rowid)


def test_forged_a_grace_past_seven_days(store: Store) -> None:
    row = store.find("webhook.secret-rotated")
    store.edit(row, lambda p: p.update(grace_until="2099-01-01T00:00:00.000000Z"))
    store.rechain(row.aggregate_id)
    _located(store, "webhook-state", row.rowid)
