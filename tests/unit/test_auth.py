"""``ledger.api.auth`` on a tiny app: 401 vs 403, both headers, the scope checks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from ledger.api import problems
from ledger.api.auth import check_channel, check_creator, principal, require
from ledger.api.problems import ApiProblem
from ledger.api.request_ids import RequestIds
from ledger.domain.actor import current_actor
from ledger.store.apikeys import Principal, Role

KEYS = {
    "lk-admin": Principal("a00000000000", Role.ADMIN, None, "ops"),
    "lk-alice": Principal("c00000000000", Role.CREATOR, "alice"),
    "lk-shop": Principal("500000000000", Role.CHANNEL, "shop"),
    "lk-audit": Principal("d00000000000", Role.AUDITOR, None),
    "lk-verifier": Principal("e00000000000", Role.VERIFIER, None),
}


class FakeKeys:
    """The admin's key is remembered (no database read); the others are
    looked up (in the thread pool), so both paths are taken."""

    def remembered(self, token: str) -> Principal | None:
        return KEYS["lk-admin"] if token == "lk-admin" else None

    def authenticate(self, token: str) -> Principal | None:
        return KEYS.get(token)


def app_with(keys: FakeKeys | None) -> TestClient:
    app = FastAPI()
    app.state.runtime = SimpleNamespace(api_keys=keys)
    problems.install(app)

    @app.get("/anyone")
    def anyone(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
        return {"key_id": who.key_id}

    @app.get("/channels/{channel}")
    def for_channel(
        channel: str, who: Annotated[Principal, require(Role.CHANNEL)]
    ) -> dict[str, Any]:
        check_channel(who, channel)
        return {"role": who.role.value}

    @app.get("/actor/sync")
    def actor_in_threadpool(who: Annotated[Principal, require(Role.CHANNEL)]) -> Any:
        actor = current_actor()
        return actor.member if actor is not None else None

    @app.get("/actor/async")
    async def actor_in_loop(who: Annotated[Principal, require(Role.CHANNEL)]) -> Any:
        actor = current_actor()
        return actor.member if actor is not None else None

    @app.get("/actor/none")
    def no_actor() -> Any:
        return current_actor()

    app.add_middleware(RequestIds)
    return TestClient(app, raise_server_exceptions=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_missing_and_invalid_keys_are_401_with_a_challenge() -> None:
    client = app_with(FakeKeys())
    for headers, code in [
        ({}, "unauthenticated"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "unauthenticated"),
        ({"X-API-Key": ""}, "unauthenticated"),
        (bearer("lk-nobody"), "invalid-api-key"),
        ({"X-API-Key": "lk-nobody"}, "invalid-api-key"),
    ]:
        response = client.get("/anyone", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == f"https://ledger.dev/problems/{code}"


def test_no_key_store_refuses_every_key() -> None:
    response = app_with(None).get("/anyone", headers=bearer("lk-admin"))
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-api-key")


def test_either_header_carries_the_key() -> None:
    client = app_with(FakeKeys())
    assert client.get("/anyone", headers=bearer("lk-shop")).json() == {"key_id": "500000000000"}
    assert client.get("/anyone", headers={"X-API-Key": "lk-shop"}).json() == {
        "key_id": "500000000000"
    }


@pytest.mark.parametrize(
    ("token", "channel", "status"),
    [
        ("lk-shop", "shop", 200),
        ("lk-shop", "other", 403),
        ("lk-admin", "other", 200),
        ("lk-alice", "shop", 403),
        ("lk-verifier", "shop", 403),
        ("lk-audit", "shop", 403),
    ],
)
def test_roles_then_scope(token: str, channel: str, status: int) -> None:
    response = app_with(FakeKeys()).get(f"/channels/{channel}", headers=bearer(token))
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["type"].endswith("/forbidden")
        assert "www-authenticate" not in response.headers


def test_scope_checks() -> None:
    admin, alice, shop, audit, verifier = KEYS.values()
    check_creator(admin, [])
    check_creator(alice, ["bob", "alice"])
    check_creator(audit, ["bob"])  # auditors read every creator's statements
    check_channel(admin, "shop")
    check_channel(shop, "shop")
    refused = [
        (check_creator, alice, ["bob"]),
        (check_creator, shop, ["shop"]),
        (check_creator, verifier, ["alice"]),
        (check_channel, shop, "Shop"),
        (check_channel, alice, "alice"),
        (check_channel, verifier, "shop"),
    ]
    for check, who, scope in refused:
        with pytest.raises(ApiProblem) as raised:
            check(who, scope)  # type: ignore[operator]
        assert (raised.value.status, raised.value.code) == (403, "forbidden")


def test_openapi_declares_both_schemes() -> None:
    schema = app_with(FakeKeys()).get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["HTTPBearer"]["description"],
    }
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    assert schemes["APIKeyHeader"]["in"] == "header"
    security = schema["paths"]["/channels/{channel}"]["get"]["security"]
    assert {name for entry in security for name in entry} == {"HTTPBearer", "APIKeyHeader"}


@pytest.mark.parametrize("route", ["/actor/sync", "/actor/async"])
def test_the_key_and_request_id_act_in_the_route(route: str) -> None:
    """The actor set by the async role check reaches a route run in the
    thread pool (the context is copied there) as well as an async one, and
    no later request without a key: each request's context is its own."""
    client = app_with(FakeKeys())
    for token, key_id, role, subject in [
        ("lk-shop", "500000000000", "channel", "shop"),
        ("lk-admin", "a00000000000", "admin", None),
    ]:
        headers = bearer(token) | {"X-Request-Id": f"req-{key_id}"}
        assert client.get(route, headers=headers).json() == {
            "key_id": key_id,
            "request_id": f"req-{key_id}",
            "role": role,
            "subject": subject,
        }
    made = client.get(route, headers=bearer("lk-shop"))
    assert made.json()["request_id"] == made.headers["x-request-id"]
    assert client.get("/actor/none").json() is None
