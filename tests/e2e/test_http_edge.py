"""The HTTP edge of a real ``ledger serve`` process: header limits (431
problems), malformed requests (400 problems from the server layer), and
the input checks of tests/integration/test_api_input.py over the wire."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.domain import limits
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import running_server
from tests.strategies import good_spec

PROBLEM = "https://ledger.dev/problems/"
PROBLEM_JSON = "application/problem+json"


class Server:
    def __init__(self, base: str, token: str, db: DatabaseURL) -> None:
        self.base, self.token, self.db = base, token, db
        self.port = int(base.rsplit(":", 1)[1])

    def raw(self, request: bytes, *, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
        """Send ``request`` bytes as they are; the answer's status, headers, body."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            # (The server may answer before it has read everything.)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.sendall(request)
            answer = b""
            while True:
                try:
                    chunk = conn.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answer += chunk
                head, _, body = answer.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    break
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), answer[:200]
        headers = {
            k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])
        }
        return int(lines[0].split()[1]), headers, body

    def stored(self) -> int:
        ledger = Ledger(self.db)
        try:
            return int(ledger.event_store.recorder.max_notification_id() or 0)
        finally:
            ledger.close()


def _issue(db: str, role: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "api-keys",
            "issue",
            "--db",
            db,
            "--role",
            role,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    token: str = json.loads(done.stdout)["token"]
    return token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("edge")
    key = home / "log.key"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "keys",
            "generate",
            "--name",
            "ledger.test/edge",
            "--out",
            str(key),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    url = DatabaseURL.parse(f"sqlite:///{home / 'ledger.db'}")
    Ledger(url).close()
    token = _issue(url.display(), "admin")
    with running_server(url.display(), key, log_file=home / "server.log") as base:
        yield Server(base, token, url)


def _problem(
    status: int, headers: dict[str, str], body: bytes, expected: int, kind: str
) -> dict[str, Any]:
    assert status == expected, body
    assert headers["content-type"] == PROBLEM_JSON, headers
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == expected
    assert problem["type"] == PROBLEM + kind, problem
    return problem


def _get(path: str, *headers: bytes) -> bytes:
    return b"".join(
        [
            f"GET {path} HTTP/1.1\r\nHost: ledger\r\n".encode(),
            *(h + b"\r\n" for h in headers),
            b"Connection: close\r\n\r\n",
        ]
    )


# -- item 7: header limits --------------------------------------------------------------


def test_a_header_within_the_limits_is_served(server: Server) -> None:
    value = "a" * (limits.HEADER_BYTES_MAX - len("X-Big") - 100)
    response = httpx.get(server.base + "/healthz", headers={"X-Big": value})
    assert response.status_code == 200, response.text
    headers = {f"X-H{i}": "1" for i in range(limits.HEADERS_COUNT_MAX - 10)}
    assert httpx.get(server.base + "/healthz", headers=headers).status_code == 200


def test_heads_are_counted_per_request_on_a_kept_alive_connection(server: Server) -> None:
    # Each request's head is within the limits; together they are far over.
    value = "a" * (limits.HEADER_BYTES_MAX - 200)
    with httpx.Client(base_url=server.base) as http:
        for _ in range(3 * limits.HEADERS_BYTES_MAX // len(value)):
            assert http.get("/healthz", headers={"X-Big": value}).status_code == 200


def test_a_head_that_arrives_in_pieces_is_served(server: Server) -> None:
    headers = [f"X-{i}: {'a' * (limits.HEADER_BYTES_MAX - 100)}".encode() for i in range(6)]
    request = _get("/healthz", *headers)
    assert limits.HEADERS_BYTES_MAX // 2 < len(request) < limits.HEADERS_BYTES_MAX
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        for start in range(0, len(request), 4_096):
            conn.sendall(request[start : start + 4_096])
            time.sleep(0.005)
        assert conn.recv(100).startswith(b"HTTP/1.1 200 ")


def test_a_header_over_8_kib_is_a_431_problem(server: Server) -> None:
    value = "a" * limits.HEADER_BYTES_MAX
    response = httpx.get(server.base + "/healthz", headers={"X-Big": value})
    assert response.status_code == 431, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == PROBLEM + "header-too-large"
    assert "x-big" in problem["detail"]


def test_a_megabyte_header_is_a_431_problem(server: Server) -> None:
    status, headers, body = server.raw(_get("/healthz", b"X-Big: " + b"a" * 1_000_000))
    problem = _problem(status, headers, body, 431, "headers-too-large")
    assert str(limits.HEADERS_BYTES_MAX) in problem["detail"]
    assert headers["connection"] == "close"
    # The server goes on serving.
    assert httpx.get(server.base + "/healthz").status_code == 200


def test_ten_thousand_headers_are_a_431_problem(server: Server) -> None:
    many = [f"X-{i}: 1".encode() for i in range(10_000)]
    status, headers, body = server.raw(_get("/healthz", *many))
    assert status == 431, body
    assert headers["content-type"] == PROBLEM_JSON


def test_one_header_too_many_is_a_431_problem(server: Server) -> None:
    many = {f"X-H{i}": "1" for i in range(limits.HEADERS_COUNT_MAX)}  # + Host, Accept...
    response = httpx.get(server.base + "/healthz", headers=many)
    assert response.status_code == 431, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEM + "too-many-headers"


def test_a_post_with_a_431_changes_nothing(server: Server) -> None:
    before = server.stored()
    response = httpx.post(
        server.base + "/channels",
        json={"channel": "edge", "name": "Edge", "fee_bps": 1},
        headers={
            "Authorization": f"Bearer {server.token}",
            "Idempotency-Key": "edge",
            "X-Big": "a" * limits.HEADER_BYTES_MAX,
        },
    )
    assert response.status_code == 431, response.text
    assert server.stored() == before


# -- item 7: what the server layer refuses before the application ---------------------

MALFORMED = {
    "control character in a header value": _get("/healthz", b"X-A: a\x01b"),
    "control character in a header name": _get("/healthz", b"X-\x01A: b"),
    "space before the colon": _get("/healthz", b"X-A : b"),
    "a header without a colon": _get("/healthz", b"X-A"),
    "a bad request line": b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    "an unknown HTTP version": b"GET /healthz HTTP/7.1\r\nHost: x\r\n\r\n",
    "a bad chunk size": (
        b"POST /channels HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
    "content-length and chunked": (
        b"POST /channels HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "a bad content-length": (b"POST /channels HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"),
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_is_a_400_problem(server: Server, request_bytes: bytes) -> None:
    status, headers, body = server.raw(request_bytes)
    problem = _problem(status, headers, body, 400, "malformed-request")
    assert problem["detail"]
    assert headers["connection"] == "close"


def test_a_non_ascii_path_is_a_400_problem(server: Server) -> None:
    status, headers, body = server.raw(_get("/goods/\xff".encode("latin-1")))
    _problem(status, headers, body, 400, "malformed-request")


# -- items 5 and 6 over the wire ---------------------------------------------------------


def test_a_big_number_over_http_is_a_422_problem(server: Server) -> None:
    response = httpx.get(server.base + "/log/entries", params={"start": 2**63, "end": 2**63 + 1})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"][0] == {  # as docs/api.md shows it
        "location": ["query", "start"],
        "message": "Input should be less than or equal to 9007199254740990",
    }


def test_a_sale_with_a_boolean_quantity_or_a_key_twice_over_http_sells_nothing(
    server: Server,
) -> None:
    admin = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.base, headers=admin, timeout=30) as http:
        assert (
            http.post(
                "/channels",
                json={"channel": "shop", "name": "Shop", "fee_bps": 500},
                headers={"Idempotency-Key": "shop"},
            ).status_code
            == 201
        )
        good = http.post(
            "/goods", json={"spec": good_spec()}, headers={"Idempotency-Key": "mint"}
        ).json()["good_id"]
        before = server.stored()
        sale = (
            '{"buyer": "b1", "channel": "shop", "quantity": %s, '
            '"unit_price": {"amount": 100, "currency": "EUR"}}'
        )
        for body, kind in [
            (sale % "true", "invalid-input"),
            (sale % '1, "quantity": 2', "duplicate-key"),
        ]:
            response = http.post(
                f"/goods/{good}/tiers/own/sales",
                content=body,
                headers={"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"},
            )
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["type"] == PROBLEM + kind
        assert server.stored() == before


def test_the_limits_are_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "log.key"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "keys",
            "generate",
            "--name",
            "ledger.test/edge2",
            "--out",
            str(key),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    monkeypatch.setenv("LEDGER_HEADERS_COUNT_MAX", "20")
    with running_server(f"sqlite:///{tmp_path / 'l.db'}", key) as base:
        assert httpx.get(base + "/healthz").status_code == 200
        many = {f"X-H{i}": "1" for i in range(20)}
        response = httpx.get(base + "/healthz", headers=many)
        assert response.status_code == 431, response.text


def test_inconsistent_header_limits_are_a_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "serve",
            "--db",
            f"sqlite:///{tmp_path / 'l.db'}",
            "--log-key",
            str(tmp_path / "k"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, LEDGER_HEADER_BYTES_MAX="70000"),
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: settings (LEDGER_*): settings: Value error, header_bytes_max must not "
        "exceed headers_bytes_max"
    ]
