"""The HTTP API in process: roles and scopes, idempotency, problems, limits.

(The flows through a real server process are in tests/e2e/test_api_flow.py.)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.runtime import Runtime, open_runtime
from ledger.config import Settings
from ledger.domain import limits
from ledger.store.apikeys import Role
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

PROBLEM = "https://ledger.dev/problems/"


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str]

    def headers(self, who: str | None, key: str | None = None) -> dict[str, str]:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return headers

    def post(self, who: str | None, path: str, body: Any, key: str | None = None) -> Any:
        return self.client.post(path, json=body, headers=self.headers(who, key))

    def get(self, who: str | None, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers(who))

    def caught_up(self) -> None:
        assert self.runtime.runner is not None
        assert self.runtime.runner.wait_for(
            self.runtime.ledger.event_store.recorder.max_notification_id() or 0, timeout=10
        )


PRINCIPALS = {
    "admin": (Role.ADMIN, None),
    "alice": (Role.CREATOR, "alice"),
    "mallory": (Role.CREATOR, "mallory"),
    "shop": (Role.CHANNEL, "shop"),
    "other": (Role.CHANNEL, "other"),
    "auditor": (Role.AUDITOR, None),
    "verifier": (Role.VERIFIER, None),
}


@pytest.fixture
def api(store_url: DatabaseURL) -> Iterator[Api]:
    runtime = open_runtime(
        store_url,
        Settings(projection_poll_interval=0.01, webhooks_allow_private=True),
        code_keyring=Keyring.generate(),
    )
    assert runtime.api_keys is not None
    tokens = {
        name: runtime.api_keys.issue(role, subject, label=name)[1]
        for name, (role, subject) in PRINCIPALS.items()
    }
    revoked, token = runtime.api_keys.issue(Role.ADMIN, None, label="revoked")
    runtime.api_keys.revoke(revoked.key_id, grace=0)  # (no other server)
    tokens["revoked"] = token
    tokens["garbage"] = "lk_000000000000_" + "A" * 43
    try:
        with TestClient(create_app(runtime)) as client:
            yield Api(client, runtime, tokens)
    finally:
        runtime.ledger.close()


def spec(**extra: Any) -> dict[str, Any]:
    return good_spec(
        **(
            {
                "creators": [{"id": "alice", "share_bps": 10_000}],
                "variant_rules": {"max_variants": 50, "max_supply_per_variant": 10},
            }
            | extra
        )
    )


@pytest.fixture
def world(api: Api) -> dict[str, str]:
    for channel in ("shop", "other"):
        assert (
            api.post(
                "admin", "/channels", {"channel": channel, "name": channel, "fee_bps": 500}
            ).status_code
            == 201
        )
    good = api.post("alice", "/goods", {"spec": spec()}).json()["good_id"]
    sale = api.post(
        "shop",
        f"/goods/{good}/tiers/own/sales",
        {"buyer": "b1", "channel": "shop", "unit_price": {"amount": 1_000, "currency": "EUR"}},
    )
    assert sale.status_code == 201, sale.text
    hold = api.post(
        "shop",
        f"/goods/{good}/tiers/own/holds",
        {"channel": "shop", "quantity": 1, "ttl_seconds": 600},
    )
    assert hold.status_code == 201, hold.text
    restockable = api.post(
        "alice",
        "/goods",
        {
            "spec": spec(
                title="restockable",
                policy="restockable",
                tiers=[{"name": "own", "quota": 1, "lifetime_cap": 100}],
            )
        },
    ).json()["good_id"]
    assert (
        api.post(
            "shop",
            f"/goods/{restockable}/tiers/own/sales",
            {"buyer": "b1", "channel": "shop", "unit_price": {"amount": 1, "currency": "EUR"}},
        ).status_code
        == 201
    )
    entry = api.post(
        "shop", f"/goods/{restockable}/tiers/own/waitlist", {"buyer": "w0", "channel": "shop"}
    )
    assert entry.status_code == 201, entry.text
    api.caught_up()
    return {
        "good": good,
        "unit": sale.json()["units"][0]["unit_id"],
        "hold": hold.json()["hold_id"],
        "restockable": restockable,
        "entry": entry.json()["entry_id"],
    }


@pytest.fixture
def coded(api: Api, world: dict[str, str]) -> dict[str, str]:
    """Alice's redemption-code good with codes imported, a unit sold through
    shop to b1, and its code delivered (so it can be redeemed)."""
    good = api.post(
        "alice",
        "/goods",
        {"spec": spec(title="keys", kind="redemption-code", tiers=[{"name": "key", "quota": 50}])},
    )
    assert good.status_code == 201, good.text
    good_id = good.json()["good_id"]
    imported = api.post(
        "alice",
        f"/goods/{good_id}/tiers/key/codes",
        {"range": {"prefix": "MATRIX-", "width": 4, "start": 1, "end": 40}},
    )
    assert imported.status_code == 201, imported.text
    sale = api.post(
        "shop",
        f"/goods/{good_id}/tiers/key/sales",
        {"buyer": "b1", "channel": "shop", "unit_price": {"amount": 1_000, "currency": "EUR"}},
    )
    assert sale.status_code == 201, sale.text
    unit = sale.json()["units"][0]["unit_id"]
    delivered = api.post("shop", f"/units/{unit}/code-deliveries", {"holder": "b1"})
    assert delivered.status_code == 200, delivered.text
    return {"coded": good_id, "coded_unit": unit, "code": delivered.json()["code"]}


@pytest.fixture
def holders(api: Api, world: dict[str, str]) -> dict[str, Any]:
    """Units sold through shop to h1 (with h1's key registered and an
    authorization to take it to other) and to h2 (to give away)."""
    from tests.integration.test_api_holders import Holder

    api.runtime.ledger.log_origin = "ledger.test/matrix"
    units = []
    for buyer in ("h1", "h2"):
        sale = api.post(
            "shop",
            f"/goods/{world['good']}/tiers/own/sales",
            {"buyer": buyer, "channel": "shop", "unit_price": {"amount": 1, "currency": "EUR"}},
        )
        assert sale.status_code == 201, sale.text
        units.append(sale.json()["units"][0]["unit_id"])
    h1 = Holder("h1")
    key = api.post("shop", "/accounts/h1/keys", {"public_key": h1.public, "channel": "shop"})
    assert key.status_code == 201, key.text
    key_id = key.json()["key_id"]
    authorization = h1.authorize(units[0], "other", 1, key_id=key_id, log="ledger.test/matrix")
    return {"moved": units[0], "authorization": authorization, "given": units[1], "key": key_id}


@pytest.fixture
def hooks(api: Api) -> dict[str, Any]:
    """A webhook subscription of shop's (to a port where nothing listens)."""
    made = api.post("shop", "/webhooks", {"url": HOOK_URL, "types": ["stock.sold"]})
    assert made.status_code == 201, made.text
    return {"hook": made.json()["subscription_id"]}


HOOK_URL = "http://127.0.0.1:9/hooks"
READERS = {"admin", "alice", "mallory", "shop", "other", "auditor"}
# Webhooks: channels' and creators' keys (and admin); a subscription of
# another is 404 to them (not theirs to know of), never 403.
SUBSCRIBERS = {"admin", "alice", "mallory", "shop", "other"}
EVERYONE = set(PRINCIPALS)


def endpoints(w: dict[str, Any]) -> list[tuple[str, str, Any, set[str]]]:
    g, u, h = w["good"], w["unit"], w["hold"]
    moved, given = w["moved"], w["given"]
    r, e = w["restockable"], w["entry"]
    c, cu, code = w["coded"], w["coded_unit"], w["code"]
    hook = w["hook"]
    price = {"amount": 2_000, "currency": "EUR"}
    return [
        (
            "POST",
            "/webhooks",
            lambda: {"url": HOOK_URL, "types": ["stock.sold"]},
            SUBSCRIBERS,
        ),
        ("GET", "/webhooks", None, SUBSCRIBERS),
        ("GET", f"/webhooks/{hook}", None, SUBSCRIBERS),
        ("GET", f"/webhooks/{hook}/deliveries", None, SUBSCRIBERS),
        ("POST", f"/webhooks/{hook}/rotation", lambda: {"grace_seconds": 60}, SUBSCRIBERS),
        ("POST", f"/webhooks/{hook}/pause", lambda: {}, SUBSCRIBERS),
        ("POST", f"/webhooks/{hook}/resume", lambda: {}, SUBSCRIBERS),
        ("POST", f"/webhooks/{hook}/replays", lambda: {"from_position": 0}, SUBSCRIBERS),
        ("POST", f"/webhooks/{hook}/pings", lambda: {}, SUBSCRIBERS),
        ("POST", f"/webhooks/{hook}/deletion", lambda: {}, SUBSCRIBERS),
        (
            "POST",
            "/channels",
            lambda: {"channel": f"c{uuid.uuid4().hex[:8]}", "name": "x", "fee_bps": 0},
            {"admin"},
        ),
        ("POST", "/goods", lambda: {"spec": spec(title=uuid.uuid4().hex)}, {"admin", "alice"}),
        (
            "POST",
            f"/goods/{g}/variants",
            lambda: {
                "spec": spec(
                    title=uuid.uuid4().hex, tiers=[{"name": "own", "quota": 5}], variant_rules=None
                )
            },
            {"admin", "alice"},
        ),
        (
            "POST",
            f"/goods/{g}/tiers/own/sales",
            lambda: {"buyer": f"b{uuid.uuid4().hex[:6]}", "channel": "shop", "unit_price": price},
            {"admin", "shop"},
        ),
        (
            "POST",
            f"/units/{u}/resales",
            lambda: {"seller": "b1", "buyer": "b2", "channel": "shop", "price": price},
            {"admin", "shop"},
        ),
        ("POST", f"/goods/{g}/tiers/own/restocks", lambda: {"quantity": 1}, {"admin", "alice"}),
        ("POST", f"/units/{u}/refunds", lambda: {"reason": "matrix"}, {"admin", "shop"}),
        (
            "POST",
            f"/goods/{g}/tiers/own/holds",
            lambda: {"channel": "shop", "quantity": 1, "ttl_seconds": 60},
            {"admin", "shop"},
        ),
        (
            "POST",
            f"/goods/{g}/tiers/own/holds/{h}/commit",
            lambda: {"buyer": "b9", "quantity": 1, "unit_price": price},
            {"admin", "shop"},
        ),
        ("POST", f"/goods/{g}/tiers/own/holds/{h}/release", lambda: {}, {"admin", "shop"}),
        ("GET", f"/goods/{g}/holds", None, READERS),
        (
            "POST",
            f"/goods/{g}/tiers/own/pools/shop/allot",
            lambda: {"quantity": 1},
            {"admin", "alice"},
        ),
        (
            "POST",
            f"/goods/{g}/tiers/own/pools/shop/return",
            lambda: {"quantity": 1},
            {"admin", "alice", "shop"},
        ),
        (
            "POST",
            f"/goods/{g}/tiers/own/pools/move",
            lambda: {"from": "shop", "to": "other", "quantity": 1},
            {"admin", "alice"},
        ),
        ("GET", f"/goods/{g}/pools", None, READERS),
        (
            "POST",
            f"/goods/{r}/tiers/own/waitlist",
            lambda: {"buyer": f"w{uuid.uuid4().hex[:6]}", "channel": "shop"},
            {"admin", "shop"},
        ),
        ("POST", f"/goods/{r}/tiers/own/waitlist/{e}/leave", lambda: {}, {"admin", "shop"}),
        ("GET", f"/goods/{r}/waitlist", None, READERS),
        (
            "POST",
            f"/goods/{g}/tiers/view/rates/other",
            lambda: {"per_minute": 1_000},
            {"admin", "alice"},
        ),
        (
            "POST",
            f"/goods/{g}/tiers/view/prices",
            lambda: {"steps": [{"price": price}]},
            {"admin", "alice"},
        ),
        ("GET", f"/holds/{h}", None, READERS - {"other"}),
        ("GET", "/goods", None, READERS),
        ("GET", f"/goods/{g}", None, READERS),
        ("GET", f"/goods/{g}/stock", None, READERS),
        ("GET", f"/goods/{g}/lineage", None, READERS),
        ("GET", f"/goods/{g}/velocity", None, READERS),
        ("GET", f"/goods/{g}/units", None, READERS),
        ("GET", f"/units/{u}", None, READERS),
        ("GET", "/creators/alice/statement", None, {"admin", "alice", "auditor"}),
        ("GET", "/channels/shop/settlement", None, {"admin", "shop", "auditor"}),
        ("GET", "/views/status", None, {"admin", "auditor", "verifier"}),
        ("GET", "/audit", None, {"admin", "auditor"}),
        ("GET", f"/audit?unit={u}&role=channel", None, {"admin", "auditor"}),
        ("GET", "/audit?after=3", None, {"admin", "auditor"}),
        ("GET", "/witnesses", None, {"admin", "auditor"}),
        ("GET", "/alarms", None, {"admin", "auditor"}),
        ("GET", "/me", None, EVERYONE),
        ("GET", f"/goods/{g}/stock/stream", None, READERS),
        (
            "POST",
            f"/goods/{c}/tiers/key/codes",
            lambda: {"codes": [f"M-{uuid.uuid4().hex}"]},
            {"admin", "alice"},
        ),
        ("GET", f"/goods/{c}/tiers/key/codes", None, {"admin", "alice", "auditor"}),
        # Only the channel that sold the unit: not another, not even admin.
        ("POST", f"/units/{cu}/code-deliveries", lambda: {"holder": "b1"}, {"shop"}),
        # Any creator may redeem, but another creator's code is 404
        # code-not-found to mallory (tests/integration/test_api_codes.py).
        (
            "POST",
            "/code-redemptions",
            lambda: {"code": code, "redeemer": "r1"},
            {"admin", "alice", "mallory"},
        ),
        # Holders: a channel speaks for itself and the accounts it serves.
        (
            "POST",
            "/accounts",
            lambda: {"account": f"a{uuid.uuid4().hex[:8]}", "channel": "shop"},
            {"admin", "shop"},
        ),
        ("GET", "/accounts/h1", None, {"admin", "shop", "auditor"}),
        (
            "POST",
            "/accounts/h1/keys",
            lambda: {"public_key": _public_key(), "channel": "shop"},
            {"admin", "shop"},
        ),
        (
            "POST",
            f"/accounts/h1/keys/{'0' * 16}/revocation",
            lambda: {"channel": "shop"},
            {"admin", "shop"},
        ),
        # Presented by the channel the holder authorized (a replay: 409).
        (
            "POST",
            f"/units/{moved}/moves",
            lambda: {
                "holder": "h1",
                "to_channel": "other",
                "channel": "other",
                "authorization": w["authorization"],
            },
            {"admin", "other"},
        ),
        # By the channel holding it (then h2 holds it no more: 409).
        (
            "POST",
            f"/units/{given}/transfers",
            lambda: {"giver": "h2", "recipient": f"r{uuid.uuid4().hex[:6]}", "channel": "shop"},
            {"admin", "shop"},
        ),
        # Listing (last: the restockable good ends delisted). The good's
        # creator or an admin; a second pause or a resume of what is not
        # paused is 409 listing-state.
        *(
            (
                "POST",
                f"/goods/{r}{where}/{action}",
                lambda: {"reason": "matrix"},
                {"admin", "alice"},
            )
            for where in ("/tiers/own", "")
            for action in ("pause", "resume")
        ),
        ("POST", f"/goods/{r}/tiers/own/delist", lambda: {"reason": "matrix"}, {"admin", "alice"}),
        ("POST", f"/goods/{r}/delist", lambda: {"reason": "matrix"}, {"admin", "alice"}),
    ]


def _public_key() -> str:
    from tests.integration.test_api_holders import Holder

    return Holder("x").public


def call(api: Api, method: str, path: str, body: Any, who: str | None) -> int:
    if path.endswith("/stream"):
        with api.client.stream("GET", path, headers=api.headers(who)) as response:
            if response.status_code == 200:
                first = next(response.iter_lines())
                assert first.startswith("id: ")
            return int(response.status_code)
    if method == "POST":
        return int(api.post(who, path, body()).status_code)
    return int(api.get(who, path).status_code)


def test_every_endpoint_for_every_role(
    api: Api,
    world: dict[str, str],
    coded: dict[str, str],
    holders: dict[str, Any],
    hooks: dict[str, Any],
) -> None:
    world = world | coded | holders | hooks
    checked = 0
    for method, path, body, allowed in endpoints(world):
        # Denied callers first: an allowed refund would change what is refundable.
        for who in sorted(set(PRINCIPALS) - allowed) + sorted(allowed):
            status = call(api, method, path, body, who)
            if who in allowed:
                assert status not in (401, 403), (method, path, who, status)
                assert status < 500, (method, path, who, status)
            else:
                assert status == 403, (method, path, who, status)
            checked += 1
        for anonymous in (None, "revoked", "garbage"):
            assert call(api, method, path, body, anonymous) == 401, (method, path, anonymous)
            checked += 1
    assert checked == len(endpoints(world)) * (len(PRINCIPALS) + 3)
    print(
        f"role matrix: {len(endpoints(world))} endpoints x {len(PRINCIPALS) + 3} callers "
        f"= {checked} checks"
    )


def test_a_creator_mints_only_as_one_of_the_goods_creators(api: Api) -> None:
    refused = api.post("mallory", "/goods", {"spec": spec()})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == PROBLEM + "forbidden"


def test_same_key_same_body_replays_the_first_response(api: Api, world: dict[str, str]) -> None:
    path = f"/goods/{world['good']}/tiers/own/sales"
    body = {"buyer": "zed", "channel": "shop", "unit_price": {"amount": 10, "currency": "EUR"}}
    first = api.post("shop", path, body, key="k-1")
    again = api.post("shop", path, body, key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.post("shop", path, body | {"buyer": "someone-else"}, key="k-1")
    assert other.status_code == 409
    assert other.json()["type"] == PROBLEM + "idempotency-key-reused"
    # Another caller's same key is another command.
    admin = api.post("admin", path, body, key="k-1")
    assert admin.status_code == 201
    assert admin.json()["sale_id"] != first.json()["sale_id"]


def test_concurrent_duplicates_have_one_effect(api: Api, world: dict[str, str]) -> None:
    path = f"/goods/{world['good']}/tiers/own/sales"
    body = {"buyer": "twin", "channel": "shop", "unit_price": {"amount": 10, "currency": "EUR"}}
    answers: list[Any] = []

    def send() -> None:
        answers.append(api.post("shop", path, body, key="same-key"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    api.caught_up()
    own = next(
        t
        for t in api.get("auditor", f"/goods/{world['good']}/stock").json()["tiers"]
        if t["tier"] == "own"
    )
    assert own["issued"] == 2  # the world's sale and this one, once


def test_a_post_without_idempotency_key_is_refused(api: Api, world: dict[str, str]) -> None:
    response = api.client.post(
        "/channels",
        json={"channel": "x", "name": "x", "fee_bps": 0},
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == PROBLEM + "idempotency-key-required"


def test_domain_refusals_are_problems_with_stable_types(api: Api, world: dict[str, str]) -> None:
    good = api.post(
        "alice", "/goods", {"spec": spec(title="tiny", tiers=[{"name": "own", "quota": 1}])}
    ).json()["good_id"]
    body = {"buyer": "b", "channel": "shop", "unit_price": {"amount": 1, "currency": "EUR"}}
    assert api.post("shop", f"/goods/{good}/tiers/own/sales", body).status_code == 201
    sold_out = api.post("shop", f"/goods/{good}/tiers/own/sales", body)
    assert sold_out.status_code == 409
    problem = sold_out.json()
    assert problem["type"] == PROBLEM + "sold-out"
    assert {"title", "status", "detail", "instance"} <= set(problem)
    missing = api.get("auditor", f"/goods/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["type"].startswith(PROBLEM)
    wrong_currency = api.post(
        "shop",
        f"/goods/{world['good']}/tiers/own/sales",
        body | {"unit_price": {"amount": 1, "currency": "USD"}},
    )
    assert wrong_currency.status_code == 409
    assert wrong_currency.json()["type"] == PROBLEM + "currency-mismatch"


def test_a_channel_refunds_only_its_own_sales(api: Api, world: dict[str, str]) -> None:
    refused = api.post("other", f"/units/{world['unit']}/refunds", {"reason": "not mine"})
    assert refused.status_code == 403
    assert refused.json()["type"] == PROBLEM + "unit-not-in-custody"
    assert (
        api.post("shop", f"/units/{world['unit']}/refunds", {"reason": "mine"}).status_code == 201
    )


def test_limits_are_enforced_at_the_edge(api: Api, world: dict[str, str]) -> None:
    huge = {"spec": spec(metadata={"blob": "x" * (limits.REQUEST_BODY_BYTES_MAX + 1)})}
    too_big = api.post("alice", "/goods", huge)
    assert too_big.status_code == 413
    assert too_big.json()["type"] == PROBLEM + "body-too-large"

    def chunks() -> Iterator[bytes]:
        yield b'{"spec": {"title": "'
        for _ in range(limits.REQUEST_BODY_BYTES_MAX // 1_000 + 1):
            yield b"y" * 1_000
        yield b'"}}'

    streamed = api.client.post("/goods", content=chunks(), headers=api.headers("alice"))
    assert streamed.status_code == 413
    long_title = api.post("alice", "/goods", {"spec": spec(title="t" * 201)})
    assert long_title.status_code == 422
    assert long_title.json()["type"] == PROBLEM + "invalid-input"
    big_page = api.get("auditor", "/goods", limit=limits.PAGE_SIZE_MAX + 1)
    assert big_page.status_code == 422
    bad_cursor = api.get("auditor", "/goods", cursor="not-a-cursor")
    assert bad_cursor.status_code == 422
    not_json = api.client.post(
        "/goods", content=b"{", headers=api.headers("alice") | {"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.headers["content-type"] == "application/problem+json"


def test_statement_and_settlement_read_the_views(api: Api, world: dict[str, str]) -> None:
    assert (
        api.post(
            "shop",
            f"/units/{world['unit']}/resales",
            {
                "seller": "b1",
                "buyer": "b2",
                "channel": "shop",
                "price": {"amount": 10_000, "currency": "EUR"},
            },
        ).status_code
        == 201
    )
    api.caught_up()
    statement = api.get("alice", "/creators/alice/statement", kind="resale").json()
    assert [line["amount"]["amount"] for line in statement["items"]] == [1_000]
    csv_text = api.get("shop", "/channels/shop/settlement", format="csv")
    assert csv_text.headers["content-type"].startswith("text/csv")
    header, row = csv_text.text.splitlines()
    assert header.startswith("channel,day,currency,units,gross")
    assert row.split(",")[3:5] == ["3", "11001"]  # the world's two sales and this resale


def test_pages_cover_every_good_once(api: Api, world: dict[str, str]) -> None:
    for i in range(7):
        api.post("alice", "/goods", {"spec": spec(title=f"page {i}")})
    api.caught_up()
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get("alice", "/goods", **params).json()
        seen.extend(g["good_id"] for g in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 9  # the world's two goods and these seven


def test_openapi_documents_every_route(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/goods",
        "/goods/{good_id}/tiers/{tier}/sales",
        "/units/{unit_id}/resales",
        "/creators/{creator}/statement",
        "/channels/{channel}/settlement",
        "/goods/{good_id}/stock/stream",
        "/log/checkpoint",
        "/log/policy",
        "/goods/{good_id}/tiers/{tier}/codes",
        "/units/{unit_id}/code-deliveries",
        "/code-redemptions",
    ):
        assert path in paths, path
    sale = paths["/goods/{good_id}/tiers/{tier}/sales"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in sale["parameters"])


def test_the_log_and_provenance_are_public(api: Api, world: dict[str, str]) -> None:
    """A transparency log is readable by anyone: no key, any key, even a bad one."""
    public = [
        "/healthz",
        "/metrics",  # open by default (LEDGER_METRICS_ACCESS=auditor keeps it for auditors)
        "/log/entries?start=0&end=1",
        f"/units/{world['unit']}/provenance",
        "/log/checkpoint",
        "/log/policy",
        "/log/proof/consistency?old=1",
    ]
    for path in public:
        for who in [None, *PRINCIPALS, "revoked"]:
            status = api.get(who, path).status_code
            assert status not in (401, 403), (path, who, status)


def test_a_hold_through_the_api(api: Api, world: dict[str, str]) -> None:
    path = f"/goods/{world['good']}/tiers/own/holds"
    hold = api.post("shop", path, {"channel": "shop", "quantity": 3, "ttl_seconds": 120})
    assert hold.status_code == 201
    body = hold.json()
    assert (body["quantity"], body["channel"]) == (3, "shop")
    api.caught_up()
    own = next(
        t
        for t in api.get("shop", f"/goods/{world['good']}/stock").json()["tiers"]
        if t["tier"] == "own"
    )
    assert own["reserved"] == 4  # this hold and the world's
    assert own["available"] == own["quota"] - own["issued"] - 4
    other = api.post("other", path, {"channel": "shop", "quantity": 1, "ttl_seconds": 60})
    assert other.status_code == 403
    commit = api.post(
        "shop",
        f"{path}/{body['hold_id']}/commit",
        {"buyer": "zoe", "quantity": 2, "unit_price": {"amount": 500, "currency": "EUR"}},
        key="pay-1",
    )
    assert commit.status_code == 201
    assert commit.json()["outcome"] == "sold"
    assert len(commit.json()["units"]) == 2
    again = api.post(
        "shop",
        f"{path}/{body['hold_id']}/commit",
        {"buyer": "zoe", "quantity": 2, "unit_price": {"amount": 500, "currency": "EUR"}},
        key="pay-1",
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == commit.json()
    twice = api.post("shop", f"{path}/{body['hold_id']}/release", {})
    assert twice.status_code == 409
    assert twice.json()["type"] == PROBLEM + "hold-resolved"
    api.caught_up()
    seen = api.get("shop", f"/holds/{body['hold_id']}").json()
    assert (seen["state"], seen["committed"]) == ("committed", 2)
    assert api.get("other", f"/holds/{body['hold_id']}").status_code == 403
    mine = api.get("other", f"/goods/{world['good']}/holds").json()["items"]
    assert mine == []  # a channel lists only its own holds


def test_a_pool_through_the_api(api: Api, world: dict[str, str]) -> None:
    base = f"/goods/{world['good']}/tiers/own/pools"
    allot = api.post("alice", f"{base}/other/allot", {"quantity": 3})
    assert allot.status_code == 201, allot.text
    assert allot.json()["free"] == 3
    sale = api.post(
        "other",
        f"/goods/{world['good']}/tiers/own/sales",
        {
            "buyer": "p1",
            "channel": "other",
            "quantity": 3,
            "unit_price": {"amount": 10, "currency": "EUR"},
        },
    )
    assert sale.status_code == 201
    more = api.post(
        "other",
        f"/goods/{world['good']}/tiers/own/sales",
        {"buyer": "p2", "channel": "other", "unit_price": {"amount": 10, "currency": "EUR"}},
    )
    assert more.status_code == 409  # its pool is empty and does not overflow
    assert more.json()["type"] == PROBLEM + "sold-out"
    api.caught_up()
    seen = api.get("other", f"/goods/{world['good']}/pools").json()["pools"]
    assert [(p["channel"], p["sold"], p["free"]) for p in seen] == [("other", 3, 0)]
    assert api.get("shop", f"/goods/{world['good']}/pools").json()["pools"] == []


def test_a_queued_sale_tells_its_place_then_its_outcome(api: Api, world: dict[str, str]) -> None:
    good = api.post(
        "alice", "/goods", {"spec": spec(title="hot", tiers=[{"name": "own", "quota": 5}])}
    ).json()["good_id"]
    path = f"/goods/{good}/tiers/own/sales"

    def queued(buyer: str, key: str) -> list[dict[str, Any]]:
        headers = api.headers("shop", key) | {"Accept": "application/x-ndjson"}
        response = api.client.post(
            path,
            headers=headers,
            json={
                "buyer": buyer,
                "channel": "shop",
                "unit_price": {"amount": 10, "currency": "EUR"},
            },
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.text.splitlines()]

    answers: list[list[dict[str, Any]]] = []
    threads = [
        threading.Thread(target=lambda i=i: answers.append(queued(f"q{i}", f"k{i}")))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for lines in answers:
        # A place in the queue, then the outcome -- or, for a buyer who came
        # when every unit left was promised to those ahead, no place at
        # all: the refusal at once.
        assert len(lines) in (1, 2)
        if len(lines) == 2:
            assert set(lines[0]) == {"queued"}
            assert lines[0]["queued"]["position"] >= 0
        else:
            assert lines[0]["status"] == 409
    outcomes = sorted(lines[-1]["status"] for lines in answers)
    assert outcomes == [201] * 5 + [409] * 3  # 5 units: exactly 5 sold
    assert all(len(lines) == 2 for lines in answers if lines[-1]["status"] == 201)
    refused = next(lines[-1] for lines in answers if lines[-1]["status"] == 409)
    assert refused["problem"]["type"] == PROBLEM + "sold-out"
    sold = next(lines for lines in answers if lines[1:] and lines[1]["status"] == 201)
    buyer = sold[1]["result"]["buyer"]
    again = queued(buyer, f"k{buyer[1:]}")
    assert again[1]["replayed"] is True
    assert again[1]["result"] == sold[1]["result"]


def test_a_rate_rule_answers_429(api: Api, world: dict[str, str]) -> None:
    assert (
        api.post(
            "alice", f"/goods/{world['good']}/tiers/view/rates/other", {"per_minute": 1}
        ).status_code
        == 201
    )
    path = f"/goods/{world['good']}/tiers/view/sales"
    body = {"buyer": "r1", "channel": "other", "unit_price": {"amount": 1, "currency": "EUR"}}
    assert api.post("other", path, body).status_code == 201
    limited = api.post("other", path, body | {"buyer": "r2"})
    assert limited.status_code == 429
    assert limited.json()["type"] == PROBLEM + "rate-limited"
