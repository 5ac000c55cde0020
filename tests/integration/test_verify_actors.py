"""Who recorded each event (``recorded_by``, docs/format.md section 2) and
the API keys it names (rule 8.13), forged into a store on both backends.

The forger has the write path: it records correctly chained events whose
``recorded_by`` claims a key the log never issued, a key after its
revocation, or a key under another role. Each is a finding of the
rule-violation class (exit 4). A malformed ``recorded_by`` is a located
envelope finding (exit 3).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from ledger.domain.actor import Actor, acting
from ledger.service import Ledger
from ledger.store.apikeys import ApiKeyStore, Role
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from ledger.verify.classes import exit_code


def _ledger_with_keys(url: DatabaseURL) -> tuple[Ledger, ApiKeyStore, str, str]:
    ledger = Ledger(url)
    keys = ApiKeyStore(ledger.event_store.recorder, events=ledger)
    with acting(Actor.operator()):
        admin, _ = keys.issue(Role.ADMIN, label="ops")
        shop, _ = keys.issue(Role.CHANNEL, "shop", label="till")
    return ledger, keys, admin.key_id, shop.key_id


def _findings(url: DatabaseURL) -> list[tuple[str, str | None, str]]:
    report = verify_store(url)
    return [(f.check, f.event_type, f.message) for f in report.findings]


def test_events_by_live_keys_verify(store_url: DatabaseURL) -> None:
    ledger, keys, admin, shop = _ledger_with_keys(store_url)
    with ledger:
        with acting(Actor.of_key(admin, "admin", None, "req-1")):
            ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
        with acting(Actor.of_key(admin, "admin", None, "req-2")):
            assert keys.revoke(shop, grace=0)  # no other server
    assert _findings(store_url) == []
    report = verify_store(store_url)
    assert report.by_type["apikey.issued"] == 2
    assert report.by_type["apikey.revoked"] == 1


Forgery = Callable[[str, str], Actor]
FORGERIES: dict[str, tuple[Forgery, str]] = {
    "unknown key": (
        lambda admin, shop: Actor.of_key("f" * 12, "admin", None, "r"),
        "actor-unknown-key",
    ),
    "another role": (lambda admin, shop: Actor.of_key(shop, "admin", None, "r"), "actor-mismatch"),
    "another subject": (
        lambda admin, shop: Actor.of_key(shop, "channel", "other", "r"),
        "actor-mismatch",
    ),
    "revoked key": (
        lambda admin, shop: Actor.of_key(admin, "admin", None, "r"),
        "actor-revoked-key",
    ),
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_actors_are_rule_violations(store_url: DatabaseURL, forgery: str) -> None:
    make, check = FORGERIES[forgery]
    ledger, keys, admin, shop = _ledger_with_keys(store_url)
    with ledger:
        if forgery == "revoked key":
            assert keys.revoke(admin, grace=0)
        with acting(make(admin, shop)):  # correctly chained, by a forged actor
            ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
    findings = _findings(store_url)
    # The channel's event and its command record: each a finding, located.
    assert [(c, t) for c, t, _ in findings] == [
        (check, "channel.registered"),
        (check, "command.recorded"),
    ], findings
    assert exit_code(c for c, _, _ in findings) == 4


def test_a_malformed_recorded_by_is_a_located_envelope_finding(sqlite_url: DatabaseURL) -> None:
    ledger, _, admin, _ = _ledger_with_keys(sqlite_url)
    with ledger, acting(Actor.of_key(admin, "admin", None, "req-1")):
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
    path = sqlite_url.path
    with sqlite3.connect(path) as db:
        rowid, state = db.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = 'channel.registered'"
        ).fetchone()
        forged = bytes(state).replace(b'"role":"admin"', b'"role":"root"')
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (forged, rowid))
    findings = _findings(sqlite_url)
    assert findings == [
        (
            "bad-envelope",
            "channel.registered",
            "recorded_by's role 'root' is not one of section 2's roles",
        )
    ]
    assert exit_code(["bad-envelope"]) == 3
