"""Request ids (issue 14 item 6) over real HTTP: generated or accepted,
returned on every answer (problems and 500s too), and a bad one is a 400
problem naming the header that changes nothing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ledger.api import problems
from ledger.api.request_ids import REQUEST_ID, RequestIds, check_request_id
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import generate_log_key, running_server
from tests.e2e.test_api_flow import issue

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_request_ids_over_http(store_url: DatabaseURL, tmp_path: Path) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    admin = issue(db, "admin")
    key, _ = generate_log_key(tmp_path, "ledger.test/request-ids")
    with running_server(db, key, log_file=tmp_path / "server.log") as base:
        http = httpx.Client(base_url=base, timeout=30)
        auth = {"Authorization": f"Bearer {admin}"}

        made = http.get("/me", headers=auth)
        assert made.status_code == 200
        assert HEX32.fullmatch(made.headers["X-Request-Id"])
        assert http.get("/me", headers=auth).headers["X-Request-Id"] != made.headers["X-Request-Id"]

        mine = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        echoed = http.get("/me", headers=auth | {"X-Request-Id": mine})
        assert echoed.headers["X-Request-Id"] == mine

        unauthenticated = http.get("/me", headers={"X-Request-Id": "trace:1"})
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["X-Request-Id"] == "trace:1"

        for bad in ["x" * 129, "has space", "semi;colon", "tab\tin"]:
            body = {"channel": "shop", "name": "Shop", "fee_bps": 500}
            refused = http.post(
                "/channels",
                json=body,
                headers=auth | {"Idempotency-Key": uuid.uuid4().hex, "X-Request-Id": bad},
            )
            assert refused.status_code == 400, refused.text
            problem = refused.json()
            assert problem["type"].endswith("/invalid-request-id")
            assert problem["errors"][0]["location"] == ["header", "X-Request-Id"]
            assert HEX32.fullmatch(refused.headers["X-Request-Id"])
        assert http.get("/channels", headers=auth).json()["items"] == []


def test_a_500_carries_the_request_id() -> None:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(RequestIds)
    seen: list[str | None] = []

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/seen")
    async def seen_id() -> dict[str, str | None]:
        seen.append(REQUEST_ID.get())
        return {"id": REQUEST_ID.get()}

    @app.get("/seen-in-a-thread")
    def seen_in_a_thread() -> dict[str, str | None]:  # (run in the thread pool)
        return {"id": REQUEST_ID.get()}

    client = TestClient(app, raise_server_exceptions=False)
    failed = client.get("/boom", headers={"X-Request-Id": "req-500"})
    assert failed.status_code == 500
    assert failed.headers["X-Request-Id"] == "req-500"
    assert failed.json()["type"].endswith("/internal-error")
    assert client.get("/seen", headers={"X-Request-Id": "abc"}).json() == {"id": "abc"}
    assert seen == ["abc"]
    assert client.get("/seen-in-a-thread", headers={"X-Request-Id": "d"}).json() == {"id": "d"}


@pytest.mark.parametrize(
    ("value", "fine"),
    [("a", True), ("A" * 128, True), ("A" * 129, False), ("", False), ("é", False), ("a b", False)],
)
def test_which_request_ids_are_accepted(value: str, fine: bool) -> None:
    assert (check_request_id(value) is None) is fine
