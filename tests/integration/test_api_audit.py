"""The audit trail over real HTTP, on both backends (issue 14 item 7).

Two channel keys and an admin key act, each request with its own
X-Request-Id; then ``GET /audit`` answers "what did this key do" (exactly
that key's events, in order, with their request ids) and "who touched this
unit" (the sale, the hand-off, the resale, the gift), and each line's leaf
hash is the log's (``GET /log/entries``) and is proved by an inclusion
proof under a signed checkpoint. Only auditors and admins read it; a bad
filter is a 422 naming its field."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog import merkle
from tests.e2e.conftest import generate_log_key, running_server
from tests.e2e.test_api_flow import issue
from tests.strategies import good_spec

PRICE = {"amount": 1_000, "currency": "EUR"}


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.auth = {"Authorization": f"Bearer {token}"}
        self.key_id: str = self.get("/me")["key_id"]

    def post(self, path: str, body: Any, request_id: str, status: int = 201) -> Any:
        answer = self.http.post(
            path,
            json=body,
            headers=self.auth | {"Idempotency-Key": uuid.uuid4().hex, "X-Request-Id": request_id},
        )
        assert answer.status_code == status, answer.text
        assert answer.headers["X-Request-Id"] == request_id
        return answer.json()

    def get(self, path: str, params: dict[str, Any] | None = None, status: int = 200) -> Any:
        answer = self.http.get(path, params=params, headers=self.auth)
        assert answer.status_code == status, answer.text
        return answer.json()

    def trail(self, **params: Any) -> list[dict[str, Any]]:
        """Every line of ``/audit`` for these filters, page by page (without
        the log's part, which moves on as the log sequences and signs:
        ``_signed`` reads it)."""
        return [{k: v for k, v in line.items() if k != "log"} for line in self.lines(**params)]

    def lines(self, **params: Any) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get("/audit", {**params, "cursor": cursor} if cursor else params)
            lines.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return lines


def _caught_up(api: Api) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if api.get("/views/status")["behind"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the views did not catch up")


def _signed(api: Api, **params: Any) -> list[dict[str, Any]]:
    """The lines, once a signed checkpoint covers every one of them."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = api.lines(**params)
        if lines and all(line["log"]["signed"] for line in lines):
            return lines
        time.sleep(0.1)
    raise AssertionError(f"not signed in time: {lines}")


def _act(admin: Api, alice: Api, shop: Api, market: Api) -> str:
    """Channels, a good, two sales by shop, shop's hand-off of b1's unit to
    market, market's resale and gift of it; the unit."""
    for channel in ("shop", "market"):
        admin.post(
            "/channels", {"channel": channel, "name": channel, "fee_bps": 500}, f"reg-{channel}"
        )
    spec = good_spec(creators=[{"id": "alice", "share_bps": 10_000}])
    good = alice.post("/goods", {"spec": spec}, "mint-1")["good_id"]
    tier = f"/goods/{good}/tiers/own/sales"
    unit: str = shop.post(
        tier, {"buyer": "b1", "channel": "shop", "quantity": 1, "unit_price": PRICE}, "shop-sale-1"
    )["units"][0]["unit_id"]
    shop.post(
        tier, {"buyer": "b2", "channel": "shop", "quantity": 1, "unit_price": PRICE}, "shop-sale-2"
    )
    shop.post(
        f"/units/{unit}/moves",
        {"holder": "b1", "to_channel": "market", "channel": "shop"},
        "shop-move-1",
    )
    market.post(
        f"/units/{unit}/resales",
        {"seller": "b1", "buyer": "zoe", "channel": "market", "price": PRICE},
        "market-resale-1",
    )
    market.post(
        f"/units/{unit}/transfers",
        {"giver": "zoe", "recipient": "nina", "channel": "market", "kind": "gift"},
        "market-gift-1",
    )
    return unit


def test_the_audit_trail_over_http(store_url: DatabaseURL, tmp_path: Path) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    tokens = {
        role: issue(db, *spec)
        for role, spec in {
            "admin": ("admin",),
            "alice": ("creator", "alice"),
            "shop": ("channel", "shop"),
            "market": ("channel", "market"),
            "auditor": ("auditor",),
        }.items()
    }
    key, _ = generate_log_key(tmp_path, "ledger.test/audit")
    with running_server(db, key, log_file=tmp_path / "server.log") as base:
        admin, alice, shop, market, auditor = (Api(base, tokens[n]) for n in tokens)
        unit = _act(admin, alice, shop, market)
        _caught_up(auditor)
        everything = auditor.trail(limit=7)
        positions = [line["position"] for line in everything]
        assert positions == sorted(set(positions))
        # Operators at the command line issued the keys: role operator, no key.
        assert {line["recorded_by"]["role"] for line in everything} >= {"operator", "admin"}

        # What did shop's key do: exactly its events, in order, with the request ids sent.
        by_shop = auditor.trail(key_id=shop.key_id, limit=3)
        assert by_shop == [
            line
            for line in everything
            if line["recorded_by"] and line["recorded_by"].get("key_id") == shop.key_id
        ]
        assert list(dict.fromkeys(line["recorded_by"]["request_id"] for line in by_shop)) == [
            "shop-sale-1",
            "shop-sale-2",
            "shop-move-1",
        ]
        assert {
            (line["recorded_by"]["role"], line["recorded_by"]["subject"]) for line in by_shop
        } == {("channel", "shop")}
        assert "unit.moved" in {line["type"] for line in by_shop}
        assert auditor.trail(actor="market") == [
            line
            for line in everything
            if line["recorded_by"] and line["recorded_by"]["subject"] == "market"
        ]
        assert {line["type"] for line in auditor.trail(role="admin")} == {
            "channel.registered",
            "command.recorded",
        }
        moved = auditor.trail(request_id="shop-move-1")
        assert "unit.moved" in {line["type"] for line in moved}
        assert {line["recorded_by"]["request_id"] for line in moved} == {"shop-move-1"}

        # Who touched the unit: sale, hand-off, resale, gift, each with its actor.
        touched = auditor.trail(unit=unit)
        assert all(line["unit_id"] == unit for line in touched)
        of_unit = [line for line in touched if line["aggregate_id"] == unit]
        assert [
            (line["type"], line["recorded_by"]["subject"], line["recorded_by"]["request_id"])
            for line in of_unit
        ] == [
            ("unit.issued", "shop", "shop-sale-1"),
            ("unit.moved", "shop", "shop-move-1"),
            ("unit.resold", "market", "market-resale-1"),
            ("unit.transferred", "market", "market-gift-1"),
        ]
        good = of_unit[0]["good_id"]
        assert good
        assert all(line["good_id"] == good for line in of_unit)
        assert {line["type"] for line in auditor.trail(good=good)} >= {
            "good.minted",
            "stock.opened",
            "stock.sold",
            "unit.issued",
        }

        # A time range [from, to): from the second sale up to the move.
        sale_2 = next(
            line for line in by_shop if line["recorded_by"]["request_id"] == "shop-sale-2"
        )
        move = next(line for line in by_shop if line["type"] == "unit.moved")
        ranged = auditor.trail(**{"from": sale_2["timestamp"], "to": move["timestamp"]})
        assert ranged == [
            line
            for line in everything
            if sale_2["timestamp"] <= line["timestamp"] < move["timestamp"]
        ]
        assert "shop-sale-2" in {line["recorded_by"]["request_id"] for line in ranged}
        assert "unit.moved" not in {line["type"] for line in ranged}

        # The newest lines: those after a store position (the auditor console's).
        after = positions[-4]
        assert auditor.trail(after=after) == [x for x in everything if x["position"] > after]
        assert auditor.trail(after=positions[-1]) == []

        # Each line is its log entry: same leaf hash, proved under the signed root.
        for line in _signed(auditor, unit=unit):
            index = line["log"]["index"]
            entry = auditor.get("/log/entries", {"start": index, "end": index + 1})["entries"][0]
            assert (entry["aggregate_id"], entry["version"]) == (
                line["aggregate_id"],
                line["version"],
            )
            assert entry["leaf_hash"] == line["log"]["leaf_hash"]
            leaf = base64.b64decode(line["log"]["leaf_hash"])
            assert leaf == hashlib.sha256(b"\x00" + entry["record"].encode()).digest()
            proof = auditor.get("/log/proof/inclusion", {"index": index})
            assert proof["leaf_hash"] == line["log"]["leaf_hash"]
            merkle.verify_inclusion(
                leaf,
                index,
                proof["size"],
                [base64.b64decode(h) for h in proof["proof"]],
                base64.b64decode(proof["root"]),
            )

        # Auditors and admins only.
        # (the log part of a line may have moved on since: sequenced, signed)
        as_admin = admin.get("/audit", {"key_id": shop.key_id})["items"]
        assert [(x["position"], x["recorded_by"]) for x in as_admin] == [
            (x["position"], x["recorded_by"]) for x in by_shop
        ]
        for who in (shop, market, alice):
            refused = who.http.get("/audit", headers=who.auth)
            assert refused.status_code == 403, refused.text
            assert refused.json()["type"].endswith("/forbidden")
        assert auditor.http.get("/audit").status_code == 401

        # Bad filters: 422 naming the field, in the query.
        for params, field in [
            ({"key_id": "XYZ"}, "key_id"),
            ({"unit": "not-a-uuid"}, "unit"),
            ({"good": "1234"}, "good"),
            ({"role": "verifier"}, "role"),
            ({"actor": "-dash"}, "actor"),
            ({"request_id": "a b"}, "request_id"),
            ({"from": "2026-13-01"}, "from"),
            ({"to": "2026-12-01T10:00:00"}, "to"),
            ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
            ({"to": "0999-01-01"}, "to"),
            ({"from": "2026-12-02", "to": "2026-12-01"}, "to"),
            ({"cursor": "garbage!"}, "cursor"),
            ({"after": "-1"}, "after"),
            ({"limit": 0}, "limit"),
        ]:
            bad = auditor.http.get("/audit", params=params, headers=auditor.auth)
            assert bad.status_code == 422, (params, bad.text)
            problem = bad.json()
            assert ["query", field] in [e["location"] for e in problem["errors"]], (params, problem)
