"""Every 503 carries Retry-After.

The 503 problem types are enumerated from the application itself -- the
domain errors mapped to 503 (and their subclasses), every ``ApiProblem`` /
``problem`` raised with 503 in the API's source, the outage's
``database-unavailable`` -- and each is then provoked over real HTTP (a
uvicorn server in a thread) and its answer checked for a ``Retry-After``
header in whole seconds:

* ``contention``: a server allowed one attempt per command, whose cached
  stock another writer has moved on;
* ``codes-unavailable``: a code import on a server without a code keyring;
* ``views-unavailable``: a server without live views asked for their status;
* ``not-ready``: a server still waiting for its database (``/readyz`` and a route);
* ``database-unavailable``: a server whose PostgreSQL connection is cut
  (the real shared server, reached through a TCP relay this test breaks).
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ledger.api import problems
from ledger.api.app import create_app
from ledger.api.runtime import Runtime, RuntimeOpener, open_runtime
from ledger.config import Settings
from ledger.domain import errors
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.apikeys import ApiKeyStore, Role
from ledger.store.availability import DatabaseUnavailableError
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog.keys import Signer
from tests.e2e.conftest import free_port
from tests.strategies import good_spec

API_SOURCE = Path(__file__).parents[2] / "src" / "ledger" / "api"
PROBLEM = "https://ledger.dev/problems/"
PROVOKED = {
    "contention",
    "codes-unavailable",
    "views-unavailable",
    "not-ready",
    "database-unavailable",
    "webhooks-unavailable",
}
# 503 types whose Retry-After another test asserts over HTTP (when the type exists).
PROVOKED_ELSEWHERE = {"views-behind": Path(__file__).parent / "test_read_your_writes.py"}


def _codes_of(kind: type[errors.LedgerError]) -> set[str]:
    found = {kind.code}
    for sub in kind.__subclasses__():
        found |= _codes_of(sub)
    return found


def service_unavailable_codes() -> set[str]:
    """Every problem type the API can answer with 503."""
    codes = {DatabaseUnavailableError.code}
    for kind, status in problems.STATUS_BY_ERROR:
        if status == 503:
            codes |= _codes_of(kind)
    pattern = re.compile(r"(?:ApiProblem|problem)\(\s*503,\s*\"([a-z-]+)\"")
    for source in API_SOURCE.glob("*.py"):
        codes |= set(pattern.findall(source.read_text()))
    return codes


def test_every_503_problem_type_has_a_retry_after_and_is_provoked_below() -> None:
    codes = service_unavailable_codes()
    elsewhere = codes & set(PROVOKED_ELSEWHERE)
    assert codes - elsewhere == PROVOKED, "a 503 problem type without an HTTP test (or gone)"
    for code in elsewhere:
        assert "Retry-After" in PROVOKED_ELSEWHERE[code].read_text(), code
    for code in codes:
        assert problems.retry_after(503, code)["Retry-After"].isdigit()


def assert_retry_after(answer: httpx.Response, code: str) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == PROBLEM + code, answer.text
    assert answer.json()["status"] == 503
    assert answer.headers["retry-after"].isdigit(), answer.headers
    assert int(answer.headers["retry-after"]) >= 1


@contextmanager
def served(app: FastAPI) -> Iterator[httpx.Client]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _runtime(url: DatabaseURL, **settings: Any) -> Runtime:
    return open_runtime(
        url,
        Settings(projection_process="no", seal_interval=60, **settings),
        signers=[Signer.generate("ledger.test/retry-after")],
    )


def _bearer(runtime: Runtime, role: Role, subject: str | None = None) -> dict[str, str]:
    assert runtime.api_keys is not None
    return {"Authorization": f"Bearer {runtime.api_keys.issue(role, subject)[1]}"}


SALE = {"buyer": "ann", "channel": "shop", "unit_price": {"amount": 100, "currency": "EUR"}}


def _shop_and_good(http: httpx.Client, admin: dict[str, str], **spec: Any) -> str:
    made = http.post(
        "/channels",
        json={"channel": "shop", "name": "Shop", "fee_bps": 0},
        headers=admin | {"Idempotency-Key": "channel"},
    )
    assert made.status_code == 201, made.text
    minted = http.post(
        "/goods", json={"spec": good_spec(**spec)}, headers=admin | {"Idempotency-Key": "good"}
    )
    assert minted.status_code == 201, minted.text
    good: str = minted.json()["good_id"]
    return good


def test_contention_says_when_to_retry(sqlite_url: DatabaseURL) -> None:
    runtime = _runtime(sqlite_url, command_retries=1)
    with served(create_app(runtime)) as http:
        admin = _bearer(runtime, Role.ADMIN)
        good = _shop_and_good(http, admin)
        first = http.post(
            f"/goods/{good}/tiers/own/sales", json=SALE, headers=admin | {"Idempotency-Key": "s1"}
        )
        assert first.status_code == 201, first.text
        # Another writer sells meanwhile: this server's cached stock is stale,
        # and with one attempt allowed its commit conflict is final.
        with Ledger(sqlite_url) as other:
            other.sell(
                good,
                "own",
                buyer="bo",
                channel="shop",
                quantity=1,
                unit_price=Money(100, "EUR"),
                idempotency_key="elsewhere",
            )
        answer = http.post(
            f"/goods/{good}/tiers/own/sales",
            json=SALE | {"buyer": "cy"},
            headers=admin | {"Idempotency-Key": "s2"},
        )
        assert_retry_after(answer, "contention")
    runtime.ledger.close()


def test_codes_unavailable_says_when_to_retry(sqlite_url: DatabaseURL) -> None:
    runtime = _runtime(sqlite_url)  # no code keyring
    with served(create_app(runtime)) as http:
        admin = _bearer(runtime, Role.ADMIN)
        good = _shop_and_good(
            http, admin, kind="redemption-code", tiers=[{"name": "key", "quota": 5}]
        )
        answer = http.post(
            f"/goods/{good}/tiers/key/codes",
            json={"codes": ["ABCD-1234"]},
            headers=admin | {"Idempotency-Key": "codes"},
        )
        assert_retry_after(answer, "codes-unavailable")
    runtime.ledger.close()


def test_views_unavailable_says_when_to_retry(sqlite_url: DatabaseURL) -> None:
    ledger = Ledger(sqlite_url)
    recorder = ledger.event_store.recorder
    runtime = Runtime(ledger, LogStore(recorder), api_keys=ApiKeyStore(recorder))  # no views
    with served(create_app(runtime)) as http:
        answer = http.get("/views/status", headers=_bearer(runtime, Role.ADMIN))
        assert_retry_after(answer, "views-unavailable")
    ledger.close()


def test_webhooks_unavailable_says_when_to_retry(sqlite_url: DatabaseURL) -> None:
    ledger = Ledger(sqlite_url)
    recorder = ledger.event_store.recorder
    runtime = Runtime(ledger, LogStore(recorder), api_keys=ApiKeyStore(recorder))  # no webhooks
    with served(create_app(runtime)) as http:
        answer = http.get("/webhooks", headers=_bearer(runtime, Role.CHANNEL, "shop"))
        assert_retry_after(answer, "webhooks-unavailable")
    ledger.close()


def test_not_ready_says_when_to_retry() -> None:
    nowhere = DatabaseURL.parse(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")

    def never() -> Runtime:
        raise AssertionError("there is no database to open")

    app = create_app(opener=lambda on_open: RuntimeOpener(nowhere, never, on_open))
    with served(app) as http:
        assert http.get("/healthz").status_code == 200
        assert_retry_after(http.get("/readyz"), "not-ready")
        assert_retry_after(http.get("/me"), "not-ready")
        assert_retry_after(http.post("/channels", json={}), "not-ready")


class Relay:
    """A TCP relay to the PostgreSQL server that can be cut: then every
    connection through it is dropped and new ones are refused."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:  # accepted as the relay was being cut
                    client.close()
                    return
                server = socket.create_connection(self.upstream)
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65_536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        # close() alone would leave a blocked accept() listening on Linux (the
        # call holds the socket): the next probe was accepted and relayed, and
        # the database looked up again at once. shutdown() wakes it and stops
        # the listening.
        with self._lock:
            self._cut = True
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@pytest.mark.postgres
def test_database_unavailable_says_when_to_retry(postgres_url: DatabaseURL) -> None:
    relay = Relay(postgres_url.host, postgres_url.port)
    url = dataclasses.replace(postgres_url, port=relay.port)
    runtime = _runtime(url)
    try:
        with served(create_app(runtime)) as http:
            admin = _bearer(runtime, Role.ADMIN)
            good = _shop_and_good(http, admin)
            assert http.get(f"/goods/{good}/stock", headers=admin).status_code == 200
            relay.cut()
            started = time.monotonic()
            sale = http.post(
                f"/goods/{good}/tiers/own/sales",
                json=SALE,
                headers=admin | {"Idempotency-Key": "cut"},
            )
            assert_retry_after(sale, "database-unavailable")
            read = http.get(f"/goods/{good}/units", headers=admin)
            if read.status_code != 200:  # (a definition may be served from memory)
                assert_retry_after(read, "database-unavailable")
            # Readiness is what the process last found out: a background
            # probe marks the database down (on a loaded machine, a moment
            # after the sale's own failure), so poll it, within the bound.
            deadline = time.monotonic() + Settings().database_timeout
            ready = http.get("/readyz")
            while ready.status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)
                ready = http.get("/readyz")
            assert_retry_after(ready, "not-ready")
            assert time.monotonic() - started <= Settings().database_timeout * 2 + 1.5
    finally:
        relay.cut()
        runtime.stop()
        runtime.ledger.close()
