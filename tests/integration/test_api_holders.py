"""Holders and authority over real HTTP, on both backends (issue 14): a
channel cannot move another channel's unit nor sell to its accounts; a
holder takes a unit to a second channel with a signed authorization (once:
a replay, an expired, a wrongly signed or a malformed one is refused and
records nothing), the provenance bundle shows both channels, a gift moves
a unit without a price, and the store verifies."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.domain.consent import b64url, pae, payload_bytes
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import generate_log_key, running_server
from tests.e2e.test_api_flow import issue
from tests.strategies import good_spec

ORIGIN = "ledger.test/holders"


class Holder:
    """A wallet: an Ed25519 key, and authorizations signed with it."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.key = Ed25519PrivateKey.generate()
        self.public = b64url(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def authorize(
        self,
        unit_id: str,
        to_channel: str,
        nonce: int,
        *,
        key_id: str,
        expires_in: timedelta = timedelta(minutes=10),
        log: str = ORIGIN,
        signer: Ed25519PrivateKey | None = None,
    ) -> dict[str, str]:
        body = payload_bytes(
            account=self.account,
            unit_id=unit_id,
            to_channel=to_channel,
            log=log,
            nonce=nonce,
            expires_at=datetime.now(UTC) + expires_in,
        )
        signature = (signer or self.key).sign(pae(body))
        return {"key_id": key_id, "payload": b64url(body), "signature": b64url(signature)}


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.auth = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: Any, status: int = 201) -> Any:
        answer = self.http.post(
            path, json=body, headers=self.auth | {"Idempotency-Key": uuid.uuid4().hex}
        )
        assert answer.status_code == status, answer.text
        return answer.json()

    def get(self, path: str, status: int = 200) -> Any:
        answer = self.http.get(path, headers=self.auth)
        assert answer.status_code == status, answer.text
        return answer.json()


def test_holders_and_authority_over_http(store_url: DatabaseURL, tmp_path: Path) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    tokens = {
        "admin": issue(db, "admin"),
        "alice": issue(db, "creator", "alice"),
        "shop": issue(db, "channel", "shop"),
        "other": issue(db, "channel", "other"),
        "auditor": issue(db, "auditor"),
    }
    key, _ = generate_log_key(tmp_path, ORIGIN)
    with running_server(db, key, log_file=tmp_path / "server.log") as base:
        admin, alice, shop, other, auditor = (Api(base, tokens[n]) for n in tokens)
        for channel in ("shop", "other"):
            admin.post("/channels", {"channel": channel, "name": channel.title(), "fee_bps": 500})
        good = alice.post(
            "/goods", {"spec": good_spec(creators=[{"id": "alice", "share_bps": 10_000}])}
        )["good_id"]
        tier = f"/goods/{good}/tiers/own/sales"
        price = {"amount": 1000, "currency": "EUR"}
        sale = shop.post(
            tier, {"buyer": "b1", "channel": "shop", "quantity": 1, "unit_price": price}
        )
        unit = sale["units"][0]["unit_id"]

        # The hole issue 14 names: another channel resells shop's unit.
        resale = {"seller": "b1", "buyer": "mallory", "channel": "other", "price": price}
        refused = other.post(f"/units/{unit}/resales", resale, status=403)
        assert refused["type"].endswith("/unit-not-in-custody"), refused
        # Nor may it sell to shop's account, or speak for shop.
        sell_b1 = {"buyer": "b1", "channel": "other", "quantity": 1, "unit_price": price}
        assert other.post(tier, sell_b1, status=403)["type"].endswith("/account-not-served")
        as_shop = {**resale, "channel": "shop"}
        assert other.post(f"/units/{unit}/resales", as_shop, status=403)["type"].endswith(
            "/forbidden"
        )
        assert other.get("/accounts/b1", status=403)["type"].endswith("/account-not-served")
        unknown = shop.post(
            "/accounts/nobody/keys", {"public_key": Holder("x").public, "channel": "shop"}, 404
        )
        assert (unknown["type"].endswith("/account-not-found"), unknown["field"]) == (
            True,
            "account",
        )
        ghost = {"holder": "nobody", "to_channel": "other", "channel": "shop"}
        unknown = shop.post(f"/units/{unit}/moves", ghost, 404)
        assert unknown["field"] == "holder"

        # b1 registers a key through shop, and takes the unit to other.
        b1 = Holder("b1")
        key_id = shop.post("/accounts/b1/keys", {"public_key": b1.public, "channel": "shop"})[
            "key_id"
        ]
        assert shop.get("/accounts/b1")["keys"] == [{"key_id": key_id, "public_key": b1.public}]
        version = 1  # the unit's version: its issue
        move = {"holder": "b1", "to_channel": "other", "channel": "other"}

        def refused_move(authorization: dict[str, str], status: int, code: str) -> None:
            problem = other.post(
                f"/units/{unit}/moves", {**move, "authorization": authorization}, status=status
            )
            assert problem["type"].endswith("/" + code), problem

        refused_move(
            b1.authorize(unit, "other", version, key_id=key_id, expires_in=timedelta(seconds=-1)),
            403,
            "authorization-expired",
        )
        refused_move(
            b1.authorize(
                unit, "other", version, key_id=key_id, signer=Ed25519PrivateKey.generate()
            ),
            403,
            "authorization-refused",
        )
        refused_move(
            b1.authorize(unit, "other", version, key_id=key_id, log="another.example/log"),
            403,
            "authorization-refused",
        )
        malformed = b1.authorize(unit, "other", version, key_id=key_id)
        malformed["payload"] = b64url(b'{"not":"it"}')
        problem = other.post(
            f"/units/{unit}/moves", {**move, "authorization": malformed}, status=422
        )
        assert problem["errors"][0]["location"] == ["body", "authorization", "payload"], problem

        good_one = b1.authorize(unit, "other", version, key_id=key_id)
        moved = other.post(f"/units/{unit}/moves", {**move, "authorization": good_one})
        assert (moved["from_channel"], moved["to_channel"]) == ("shop", "other")
        assert moved["consent"] == "holder-signature"
        # Replayed under a new idempotency key: the nonce is spent.
        refused_move(good_one, 409, "authorization-replayed")
        assert other.get("/accounts/b1")["channels"] == ["shop", "other"]

        # Now other may resell it; shop may not.
        shop_resale = {**resale, "channel": "shop", "buyer": "carol"}
        assert shop.post(f"/units/{unit}/resales", shop_resale, status=403)["type"].endswith(
            "/unit-not-in-custody"
        )
        sold_on = other.post(f"/units/{unit}/resales", resale)
        assert sold_on["buyer"] == "mallory"

        # A gift: no price, no royalty; the recipient holds it.
        gift = {"giver": "mallory", "recipient": "nina", "channel": "other", "kind": "gift"}
        given = other.post(f"/units/{unit}/transfers", gift)
        assert (given["giver"], given["recipient"], given["kind"]) == ("mallory", "nina", "gift")
        refund = other.post(f"/units/{unit}/refunds", {"reason": "x"}, status=409)
        assert "transfer" in refund["detail"], refund

        # The provenance bundle shows both channels.
        bundle = _provenance(other, unit)
        records = "".join(e["record"] for e in bundle["events"])
        assert '"channel":"shop"' in records
        assert '"to_channel":"other"' in records
        assert '"type":"unit.transferred"' in records
        view = _settled(auditor, f"/units/{unit}", lambda v: len(v["history"]) == 4)
        assert [h["type"] for h in view["history"]] == [
            "unit.issued",
            "unit.moved",
            "unit.resold",
            "unit.transferred",
        ]
        assert view["holder"] == "nina"
        assert view["held_through"] == "other"
        assert view["history"][3]["price"] is None

    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _provenance(api: Api, unit: str) -> Any:
    deadline = time.monotonic() + 15
    while True:
        answer = api.http.get(f"/units/{unit}/provenance", headers=api.auth)
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return answer.json()
        time.sleep(0.1)  # 409 not-yet-sealed


def _settled(api: Api, path: str, ready: Any) -> Any:
    deadline = time.monotonic() + 15
    while True:
        answer = api.http.get(path, headers=api.auth)
        if answer.status_code == 200 and ready(answer.json()):
            return answer.json()
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.05)
