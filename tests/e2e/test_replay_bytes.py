"""A replayed answer is byte for byte the first one, also after a restart.

Over real HTTP against a real ``ledger serve``, on both backends: every command route of the
router is sent once, replayed with the same key and body, the server is
restarted, and each is replayed again. The status, the body bytes and every
header compare equal, except the few that belong to the request rather than
to the answer: ``date`` (the moment of sending), ``x-request-id`` (each
request's own) and ``idempotent-replayed`` (absent on the first answer,
``true`` on every replay).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.api import command_routes, webhook_routes
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import running_server
from tests.e2e.test_api_flow import issue
from tests.integration.test_api_holders import Holder
from tests.strategies import good_spec

PER_REQUEST = {"date", "idempotent-replayed", "x-request-id"}
CODE = "GIFT-REPLAY-0001"


@dataclass(frozen=True)
class Sent:
    route: str  # the router's path template
    token: str  # whose key
    path: str
    body: dict[str, Any] | None
    key: str


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]  # lower-case names, per-request ones left out
    replayed: str | None

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        raw = response.headers.raw
        kept = tuple(
            sorted(
                (k.decode().lower(), v.decode())
                for k, v in raw
                if k.decode().lower() not in PER_REQUEST
            )
        )
        return cls(
            response.status_code,
            response.content,
            kept,
            response.headers.get("idempotent-replayed"),
        )


def send(base: str, sent: Sent) -> Answer:
    headers = {"Authorization": f"Bearer {sent.token}", "Idempotency-Key": sent.key}
    with httpx.Client(base_url=base, timeout=30) as http:
        if sent.body is None:
            return Answer.of(http.post(sent.path, headers=headers))
        return Answer.of(http.post(sent.path, json=sent.body, headers=headers))


class Script:
    """The commands, sent in order; the answers kept with what was sent."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.sent: list[tuple[Sent, Answer]] = []

    def post(
        self, route: str, token: str, path: str, body: dict[str, Any] | None, *, status: int = 201
    ) -> dict[str, Any]:
        sent = Sent(route, token, path, body, uuid.uuid4().hex)
        answer = send(self.base, sent)
        assert answer.status == status, (path, answer.status, answer.body)
        assert answer.replayed is None, path
        self.sent.append((sent, answer))
        result: dict[str, Any] = httpx.Response(200, content=answer.body).json()
        return result


@pytest.fixture
def log_key(tmp_path: Path) -> Path:
    key = tmp_path / "log.key"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "keys",
            "generate",
            "--name",
            "ledger.test/replay",
            "--out",
            str(key),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return key


def price(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def test_every_command_replays_the_same_bytes_also_after_a_restart(
    store_url: DatabaseURL, tmp_path: Path, log_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    admin, alice = issue(db, "admin"), issue(db, "creator", "alice")
    shop, market = issue(db, "channel", "shop"), issue(db, "channel", "market")
    ring = tmp_path / "codes.keyring"
    subprocess.run(
        [sys.executable, "-m", "ledger.cli", "codes", "keyring", "--out", str(ring)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    monkeypatch.setenv("LEDGER_CODE_KEYRING_FILE", str(ring))
    monkeypatch.setenv("LEDGER_WEBHOOKS_ALLOW_PRIVATE", "true")

    with running_server(db, log_key, log_file=tmp_path / "server.log") as base:
        s = Script(base)
        s.post("/channels", admin, "/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
        s.post(
            "/channels", admin, "/channels", {"channel": "market", "name": "Market", "fee_bps": 250}
        )
        spec = good_spec(
            policy="restockable",
            tiers=[
                {"name": "own", "quota": 10, "lifetime_cap": 20},
                {"name": "few", "quota": 1, "lifetime_cap": 5},
            ],
            variant_rules={"max_variants": 2, "max_supply_per_variant": 10},
            metadata={"zeta": 1, "alpha": "a"},
        )
        good = s.post("/goods", alice, "/goods", {"spec": spec})["good_id"]
        s.post(
            "/goods/{good_id}/variants",
            alice,
            f"/goods/{good}/variants",
            {
                "spec": good_spec(
                    title="Dusk", tiers=[{"name": "own", "quota": 5}], creators=[{"id": "carmen"}]
                )
            },
        )
        g = f"/goods/{good}/tiers"
        unit = s.post(
            "/goods/{good_id}/tiers/{tier}/sales",
            shop,
            f"{g}/own/sales",
            {"buyer": "b1", "channel": "shop", "quantity": 1, "unit_price": price(1_000)},
        )["units"][0]["unit_id"]
        # The holders' commands: a key registered and revoked, an account
        # opened ahead, the unit handed off to the market, resold, given.
        key_id = s.post(
            "/accounts/{account}/keys",
            shop,
            "/accounts/b1/keys",
            {"public_key": Holder("b1").public, "channel": "shop"},
        )["key_id"]
        s.post(
            "/accounts/{account}/keys/{key_id}/revocation",
            shop,
            f"/accounts/b1/keys/{key_id}/revocation",
            {"channel": "shop"},
        )
        s.post("/accounts", market, "/accounts", {"account": "m1", "channel": "market"})
        s.post(
            "/units/{unit_id}/moves",
            shop,
            f"/units/{unit}/moves",
            {"holder": "b1", "to_channel": "market", "channel": "shop"},
        )
        s.post(
            "/units/{unit_id}/resales",
            market,
            f"/units/{unit}/resales",
            {"seller": "b1", "buyer": "b2", "channel": "market", "price": price(3_000)},
        )
        s.post(
            "/units/{unit_id}/refunds",
            market,
            f"/units/{unit}/refunds",
            {"reason": "changed their mind"},
        )
        s.post(
            "/units/{unit_id}/transfers",
            market,
            f"/units/{unit}/transfers",
            {"giver": "b1", "recipient": "m1", "channel": "market", "kind": "gift"},
        )
        hold = s.post(
            "/goods/{good_id}/tiers/{tier}/holds",
            shop,
            f"{g}/own/holds",
            {"channel": "shop", "quantity": 2, "ttl_seconds": 600},
        )["hold_id"]
        s.post(
            "/goods/{good_id}/tiers/{tier}/holds/{hold_id}/commit",
            shop,
            f"{g}/own/holds/{hold}/commit",
            {"buyer": "b3", "quantity": 1, "unit_price": price(1_000)},
        )
        other = s.post(
            "/goods/{good_id}/tiers/{tier}/holds",
            shop,
            f"{g}/own/holds",
            {"channel": "shop", "quantity": 1, "ttl_seconds": 600},
        )["hold_id"]
        s.post(
            "/goods/{good_id}/tiers/{tier}/holds/{hold_id}/release",
            shop,
            f"{g}/own/holds/{other}/release",
            None,
        )
        s.post(
            "/goods/{good_id}/tiers/{tier}/pools/{channel}/allot",
            alice,
            f"{g}/own/pools/shop/allot",
            {"quantity": 2},
        )
        s.post(
            "/goods/{good_id}/tiers/{tier}/pools/move",
            alice,
            f"{g}/own/pools/move",
            {"from": "shop", "to": "market", "quantity": 1},
        )
        s.post(
            "/goods/{good_id}/tiers/{tier}/pools/{channel}/return",
            market,
            f"{g}/own/pools/market/return",
            {"quantity": 1},
        )
        s.post(
            "/goods/{good_id}/tiers/{tier}/prices",
            alice,
            f"{g}/few/prices",
            {"steps": [{"price": price(1_000)}, {"after_sold": 5, "price": price(1_500)}]},
        )
        s.post(
            "/goods/{good_id}/tiers/{tier}/rates/{channel}",
            alice,
            f"{g}/own/rates/shop",
            {"per_minute": 1_000},
        )
        s.post(
            "/goods/{good_id}/tiers/{tier}/sales",
            shop,
            f"{g}/few/sales",
            {"buyer": "b4", "channel": "shop", "quantity": 1, "unit_price": price(1_000)},
        )
        entry = s.post(
            "/goods/{good_id}/tiers/{tier}/waitlist",
            shop,
            f"{g}/few/waitlist",
            {"buyer": "b5", "channel": "shop"},
        )["entry_id"]
        s.post(
            "/goods/{good_id}/tiers/{tier}/waitlist/{entry_id}/leave",
            shop,
            f"{g}/few/waitlist/{entry}/leave",
            None,
        )
        s.post(
            "/goods/{good_id}/tiers/{tier}/restocks", alice, f"{g}/few/restocks", {"quantity": 1}
        )
        tier_route = "/goods/{good_id}/tiers/{tier}/"
        s.post(tier_route + "pause", alice, f"{g}/few/pause", {"reason": "checking"})
        s.post(tier_route + "resume", alice, f"{g}/few/resume", {"reason": "checked"})
        s.post("/goods/{good_id}/pause", alice, f"/goods/{good}/pause", {"reason": "recall"})
        s.post("/goods/{good_id}/resume", alice, f"/goods/{good}/resume", {"reason": "recall over"})
        s.post(tier_route + "delist", alice, f"{g}/few/delist", {"reason": "retired"})
        retired = s.post("/goods", alice, "/goods", {"spec": good_spec(title="Retired")})
        s.post(
            "/goods/{good_id}/delist",
            alice,
            f"/goods/{retired['good_id']}/delist",
            {"reason": "withdrawn"},
        )

        coded = s.post(
            "/goods",
            alice,
            "/goods",
            {
                "spec": good_spec(
                    title="Keys", kind="redemption-code", tiers=[{"name": "key", "quota": 1}]
                )
            },
        )["good_id"]
        k = f"/goods/{coded}/tiers/key"
        s.post("/goods/{good_id}/tiers/{tier}/codes", alice, f"{k}/codes", {"codes": [CODE]})
        keyed = s.post(
            "/goods/{good_id}/tiers/{tier}/sales",
            shop,
            f"{k}/sales",
            {"buyer": "b6", "channel": "shop", "quantity": 1, "unit_price": price(500)},
        )["units"][0]["unit_id"]
        delivered = s.post(
            "/units/{unit_id}/code-deliveries",
            shop,
            f"/units/{keyed}/code-deliveries",
            {"holder": "b6"},
            status=200,
        )
        assert delivered["code"] == CODE
        s.post(
            "/code-redemptions",
            alice,
            "/code-redemptions",
            {"code": CODE, "redeemer": "platform-1"},
        )
        # Webhook subscriptions (the registration's and the rotation's answers
        # hold a secret, read back beside the events for a replay).
        hooks = s.post(
            "/webhooks",
            shop,
            "/webhooks",
            {"url": "http://127.0.0.1:9/hooks", "types": ["stock.sold", "unit.refunded"]},
        )
        assert hooks["secret"].startswith("whsec_")
        sid = hooks["subscription_id"]
        rotated = s.post(
            "/webhooks/{subscription_id}/rotation",
            shop,
            f"/webhooks/{sid}/rotation",
            {"grace_seconds": 60},
        )
        assert rotated["secret"] != hooks["secret"]
        for action in ("pause", "resume"):
            s.post(f"/webhooks/{{subscription_id}}/{action}", shop, f"/webhooks/{sid}/{action}", {})
        s.post(
            "/webhooks/{subscription_id}/replays",
            shop,
            f"/webhooks/{sid}/replays",
            {"from_position": 1},
        )
        s.post("/webhooks/{subscription_id}/deletion", shop, f"/webhooks/{sid}/deletion", {})
        # Refused answers: sold out for good (an absolute edition), and a key
        # used again with another body. Neither records anything; each is
        # decided again, to the same bytes.
        s.post(
            "/goods/{good_id}/tiers/{tier}/sales",
            shop,
            f"{k}/sales",
            {"buyer": "b7", "channel": "shop", "quantity": 1, "unit_price": price(500)},
            status=409,
        )
        first_sale = next(sent for sent, _ in s.sent if sent.path == f"{g}/own/sales")
        reused = Sent(
            first_sale.route,
            shop,
            first_sale.path,
            {**(first_sale.body or {}), "buyer": "b9"},
            first_sale.key,
        )
        refused = send(base, reused)
        assert refused.status == 409, refused.body
        s.sent.append((reused, refused))

        for sent, answer in s.sent:  # the code's text is in its delivery only
            assert (CODE.encode() in answer.body) == sent.path.endswith("/code-deliveries")
        covered = {sent.route for sent, _ in s.sent}
        routes = {
            route.path
            for router in (command_routes.router, webhook_routes.router)
            for route in router.routes  # type: ignore[attr-defined]
            if "POST" in getattr(route, "methods", ()) and not route.path.endswith("/pings")  # type: ignore[attr-defined]
        }  # (a ping records nothing: it is sent again, never replayed)
        assert routes == covered, routes ^ covered

        for sent, first in s.sent:
            again = send(base, sent)
            assert again == _as_replay(first), (sent.path, first, again)

    with running_server(db, log_key, log_file=tmp_path / "restarted.log") as base:
        for sent, first in s.sent:
            again = send(base, sent)
            assert again == _as_replay(first), (sent.path, first, again)


def _as_replay(first: Answer) -> Answer:
    """What a replay of ``first`` must be: the same, marked as a replay
    (a refusal recorded nothing, so it is decided again, unmarked)."""
    if first.status >= 400:
        return first
    return Answer(first.status, first.body, first.headers, "true")
