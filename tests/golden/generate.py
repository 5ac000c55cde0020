"""Produce ``vectors.json``: fixed inputs and the hashes format v1 gives them.

Run once, by hand, when format v1 was defined (``python tests/golden/generate.py``).
Never regenerate it to make a test pass: a change here is a format change.
The test ``tests/unit/test_golden.py`` recomputes everything from the inputs.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.domain import canonical, ids
from ledger.domain.actor import Actor, acting
from ledger.domain.apikey import ApiKey
from ledger.domain.channel import Channel
from ledger.domain.good import Good, GoodSpec
from ledger.domain.model import format_timestamp
from ledger.domain.money import Share, split
from ledger.domain.stock import TierStock
from ledger.domain.unit import Unit

T0 = datetime(2026, 11, 22, 7, 9, 2, 123456, tzinfo=UTC)
SPEC = {
    "title": 'Golden \u00e9dition \u2014 "quoted" \\ slash',
    "creators": [{"id": "alice", "share_bps": 6667}, {"id": "bob", "share_bps": 3333}],
    "content_digest": "sha256:" + "0f" * 32,
    "kind": "collectible",
    "currency": "EUR",
    "edition": {
        "policy": "restockable",
        "sale_opens_at": "2026-11-22T00:00:00Z",
        "sale_closes_at": None,
    },
    "tiers": [
        {
            "name": "own",
            "quota": 100,
            "transferable": True,
            "per_buyer_limit": None,
            "lifetime_cap": 150,
        },
        {"name": "view", "quota": 1000, "transferable": False},
    ],
    "royalty": {"resale_bps": 1000},
    "variant_rules": None,
    "metadata": {
        "series": "golden",
        "note": "tab\there\nnewline\u0007bell",
        "n": 1,
        "tags": ["a", "b"],
        "nested": {"ok": True},
    },
}


def build() -> dict[str, Any]:
    spec = GoodSpec.from_json(SPEC)
    good = Good.mint(spec, T0)
    stock = TierStock.open(good, "own", T0)
    sale_at = T0 + timedelta(seconds=1)
    parts = split(999, good.primary_shares("shop", 500))
    stock.sell(
        sale_id="11111111-1111-5111-8111-111111111111",
        buyer="carol",
        channel="shop",
        quantity=1,
        unit_price={"amount": 999, "currency": "EUR"},
        split=parts,
        now=sale_at,
    )
    unit = Unit.issue(
        good_id=good.id,
        tier="own",
        serial=1,
        transferable=True,
        buyer="carol",
        sale_id="11111111-1111-5111-8111-111111111111",
        channel="shop",
        price={"amount": 999, "currency": "EUR"},
        split=parts,
        now=sale_at,
    )
    resale = split(5000, good.resale_shares("market", 250, "carol"))
    unit.resell(
        resale_id="22222222-2222-5222-8222-222222222222",
        seller="carol",
        buyer="dave",
        channel="market",
        price={"amount": 5000, "currency": "EUR"},
        split=resale,
        now=sale_at + timedelta(seconds=1),
    )
    events = [*good.collect_events(), *stock.collect_events(), *unit.collect_events()]
    return {
        "format": 1,
        "namespace": str(ids.LEDGER_NAMESPACE),
        "events": [
            {
                "aggregate_id": str(e.originator_id),
                "version": e.originator_version,
                "type": e.TYPE,
                "timestamp": format_timestamp(e.timestamp),
                "payload": e.payload(),
                "prev_hash": e.prev_hash,
                "state": e.state.decode(),
                "record": e.record.decode(),
                "hash": e.hash,
            }
            for e in events
        ],
        "fingerprint": {"definition": good.definition, "fingerprint": good.fingerprint},
        "ids": {
            "good": [good.fingerprint, str(ids.good_id_for(good.fingerprint))],
            "stock": [str(good.id), "own", str(ids.stock_id_for(good.id, "own"))],
            "unit": [str(good.id), "own", 1, str(ids.unit_id_for(good.id, "own", 1))],
            "channel": ["shop", str(ids.channel_id_for("shop"))],
            "command": ["", "key-1", str(ids.command_id_for("", "key-1"))],
        },
        "splits": [
            {
                "amount": amount,
                "weights": [[s.recipient, s.role, s.weight] for s in shares],
                "parts": split(amount, shares),
            }
            for amount, shares in [
                (999, good.primary_shares("shop", 500)),
                (5000, good.resale_shares("market", 250, "carol")),
                (1, [Share("a", "creator", 1), Share("b", "creator", 1)]),
                (2, [Share("a", "creator", 1), Share("b", "creator", 1), Share("c", "channel", 1)]),
                (
                    100,
                    [
                        Share("a", "creator", 3333),
                        Share("b", "creator", 3333),
                        Share("c", "creator", 3334),
                    ],
                ),
                (
                    10**12,
                    [Share("x", "seller", 1), Share("y", "seller", 0), Share("z", "channel", 2)],
                ),
            ]
        ],
        "canonical": [
            {"value": v, "bytes": canonical.encode(v).decode()}
            for v in [
                {"b": 1, "a": [True, False, None], "c": {"y": "\u0001\u001f\u007f", "x": ""}},
                {"emoji": "\U0001f600", "escapes": '"\\/\b\f\n\r\t', "n": -(2**53 - 1)},
                [],
                {},
                "\u2028\u2029",
                0,
            ]
        ],
    }


OPERATOR = Actor.operator("cli-0001")
ADMIN_KEY, SHOP_KEY = "0123456789ab", "a1b2c3d4e5f6"
ADMIN = Actor.of_key(ADMIN_KEY, "admin", None, "req-admin-1")
SHOP = Actor.of_key(SHOP_KEY, "channel", "shop", "0f8fad5b-d9cb-469f-a165-70867728950e")
SERVER = Actor.server("ledger", "5f1e2d3c4b5a69788796a5b4c3d2e1f0")


def build_recorded_by() -> dict[str, Any]:
    """Events with ``recorded_by`` (docs/format.md section 2): keys issued
    and revoked by an operator and an admin key, a hold by a channel's key
    expired by the server, a sale by the channel's key."""
    with acting(OPERATOR):
        admin = ApiKey.issue(ADMIN_KEY, "admin", None, "ops", T0)
        shop_key = ApiKey.issue(SHOP_KEY, "channel", "shop", 'till "1"', T0)
    with acting(ADMIN):
        channel = Channel.register("shop", "Shop", 500, T0)
        good = Good.mint(GoodSpec.from_json(SPEC), T0)
        stock = TierStock.open(good, "own", T0)
    at = T0 + timedelta(seconds=1)
    with acting(SHOP):
        stock.reserve(
            hold_id="33333333-3333-5333-8333-333333333333",
            channel="shop",
            quantity=2,
            ttl_seconds=60,
            now=at,
        )
    with acting(SERVER):
        stock.expire_due(at + timedelta(seconds=61))
    parts = split(999, good.primary_shares("shop", 500))
    with acting(SHOP):
        stock.sell(
            sale_id="11111111-1111-5111-8111-111111111111",
            buyer="carol",
            channel="shop",
            quantity=1,
            unit_price={"amount": 999, "currency": "EUR"},
            split=parts,
            now=at + timedelta(seconds=62),
        )
    with acting(Actor.of_key(ADMIN_KEY, "admin", None, "req-admin-2")):
        shop_key.revoke(at + timedelta(seconds=63))
    events = [
        *admin.collect_events(),
        *channel.collect_events(),
        *good.collect_events(),
        *stock.collect_events(),
        *shop_key.collect_events(),
    ]
    return {
        "format": 1,
        "note": "events whose record holds recorded_by; tests/golden/vectors.json is unchanged",
        "events": [
            {
                "aggregate_id": str(e.originator_id),
                "version": e.originator_version,
                "type": e.TYPE,
                "timestamp": format_timestamp(e.timestamp),
                "payload": e.payload(),
                "prev_hash": e.prev_hash,
                "recorded_by": e.recorded_by.member if e.recorded_by else None,
                "state": e.state.decode(),
                "record": e.record.decode(),
                "hash": e.hash,
            }
            for e in sorted(events, key=lambda e: e.timestamp)
        ],
        "ids": {
            "apikey": [SHOP_KEY, str(ids.apikey_id_for(SHOP_KEY))],
        },
    }


if __name__ == "__main__":
    if "--recorded-by" in sys.argv:  # the second set: frozen once written, like the first
        target, built = Path(__file__).with_name("vectors_recorded_by.json"), build_recorded_by()
    else:
        target, built = Path(__file__).with_name("vectors.json"), build()
    if target.exists() and "--force" not in sys.argv:
        sys.exit(f"{target} exists: format v1 vectors are frozen (--force is for a new format)")
    target.write_text(json.dumps(built, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {target}")
