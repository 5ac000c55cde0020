"""Channels over real HTTP, on both backends (issue 15 item 3): the list and
one channel with the fee in force, and a settlement of a channel that was
never registered is a 404 problem, not an empty 200."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import generate_log_key, running_server
from tests.e2e.test_api_flow import issue

PROBLEM_JSON = "application/problem+json"


def _caught_up(http: httpx.Client, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = http.get("/views/status", headers=headers).json()
        if status["behind"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"the views did not catch up: {status}")


def test_channels_are_listed_with_their_fee(store_url: DatabaseURL, tmp_path: Path) -> None:
    db = store_url.display()
    Ledger(store_url).close()  # the store, so that keys can be issued before serving
    admin, shop, alice = (
        issue(db, "admin"),
        issue(db, "channel", "shop"),
        issue(db, "creator", "alice"),
    )
    key, _ = generate_log_key(tmp_path, "ledger.test/channels")
    with running_server(db, key, log_file=tmp_path / "server.log") as base:
        http = httpx.Client(base_url=base, timeout=30)

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        empty = http.get("/channels", headers=auth(admin))
        assert empty.status_code == 200, empty.text
        assert empty.json() == {"items": [], "next_cursor": None}
        for channel, fee in [("shop", 500), ("market", 250), ("live-room", 0)]:
            made = http.post(
                "/channels",
                json={"channel": channel, "name": channel.title(), "fee_bps": fee},
                headers=auth(admin) | {"Idempotency-Key": uuid.uuid4().hex},
            )
            assert made.status_code == 201, made.text

        one = http.get("/channels/shop", headers=auth(alice))
        assert one.status_code == 200, one.text
        assert int(one.headers["X-Ledger-View-Position"]) > 0
        body = one.json()
        assert (body["channel"], body["name"], body["fee_bps"]) == ("shop", "Shop", 500)
        assert set(body) == {"channel", "channel_id", "name", "fee_bps", "registered_at"}

        _caught_up(http, auth(admin))  # (a list may lag the store, as docs/api.md says)
        first = http.get("/channels", params={"limit": 2}, headers=auth(shop)).json()
        assert [c["channel"] for c in first["items"]] == ["live-room", "market"]
        rest = http.get(
            "/channels", params={"cursor": first["next_cursor"]}, headers=auth(shop)
        ).json()
        assert [(c["channel"], c["fee_bps"]) for c in rest["items"]] == [("shop", 500)]
        assert rest["next_cursor"] is None

        missing = http.get("/channels/nosuch", headers=auth(admin))
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM_JSON
        assert missing.json()["type"] == "https://ledger.dev/problems/channel-not-found"
        assert http.get("/channels", headers={}).status_code == 401


def test_a_settlement_of_an_unknown_channel_is_a_404(
    store_url: DatabaseURL, tmp_path: Path
) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    admin = issue(db, "admin")
    key, _ = generate_log_key(tmp_path, "ledger.test/channels")
    with running_server(db, key, log_file=tmp_path / "server.log") as base:
        http = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {admin}"})
        for fmt in ("json", "csv"):
            missing = http.get("/channels/nosuch/settlement", params={"format": fmt})
            assert missing.status_code == 404, missing.text
            assert missing.headers["content-type"] == PROBLEM_JSON
            problem = missing.json()
            assert problem["type"] == "https://ledger.dev/problems/channel-not-found"
            assert problem["status"] == 404
            assert problem["instance"] == "/channels/nosuch/settlement"
            assert "nosuch" in problem["detail"]
        made = http.post(
            "/channels",
            json={"channel": "shop", "name": "Shop", "fee_bps": 500},
            headers={"Idempotency-Key": "shop"},
        )
        assert made.status_code == 201, made.text
        # Registered, nothing sold yet: an empty report, not a 404.
        empty = http.get("/channels/shop/settlement")
        assert empty.status_code == 200, empty.text
        assert empty.json()["days"] == []
