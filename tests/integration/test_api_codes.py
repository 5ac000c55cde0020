"""Redemption codes through the HTTP API, over real HTTP (a uvicorn server in
a thread), on both backends: import by list and by range, counts, delivery
to the unit's holder through the channel that sold it, redemption once.

And the leak check: once codes are delivered and redeemed, every answer a
caller other than the holder's channel can get -- units, provenance, log
entries, views, statements, settlements, counts, the import and redemption
answers, every refusal -- is searched for every code's text, and so is
every line the server logged (all loggers, at the most verbose level) from
start to end. None may hold one: the only body that names a code is the
delivery answered to the selling channel.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eventsourcing.persistence import ConnectionUnavailableError
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.problems import domain_problem
from ledger.api.runtime import Runtime, open_runtime
from ledger.config import Settings
from ledger.domain import errors
from ledger.store.apikeys import Role
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from ledger.tlog.keys import Signer
from tests.e2e.conftest import free_port
from tests.strategies import good_spec

PROBLEM = "https://ledger.dev/problems/"
PRINCIPALS = {
    "admin": (Role.ADMIN, None),
    "alice": (Role.CREATOR, "alice"),
    "mallory": (Role.CREATOR, "mallory"),
    "shop": (Role.CHANNEL, "shop"),
    "other": (Role.CHANNEL, "other"),
    "auditor": (Role.AUDITOR, None),
    "verifier": (Role.VERIFIER, None),
}
PRICE = {"amount": 1_500, "currency": "EUR"}


class LogLines(logging.Handler):
    """Every record any logger emits, formatted with its traceback if any."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._guard:
            self.lines.append(line)

    def text(self) -> str:
        with self._guard:
            return "\n".join(self.lines)


@dataclass
class Server:
    base: str
    runtime: Runtime
    tokens: dict[str, str]
    http: httpx.Client
    logs: LogLines
    answers: list[httpx.Response] = field(default_factory=list)

    def headers(self, who: str | None, key: str | None = None) -> dict[str, str]:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return headers

    def post(self, who: str | None, path: str, body: Any, key: str | None = None) -> httpx.Response:
        response = self.http.post(path, json=body, headers=self.headers(who, key))
        self.answers.append(response)
        return response

    def get(self, who: str | None, path: str, **params: Any) -> httpx.Response:
        response = self.http.get(path, params=params or None, headers=self.headers(who))
        self.answers.append(response)
        return response

    def position(self) -> int:
        return int(self.runtime.ledger.event_store.recorder.max_notification_id() or 0)

    def topics_since(self, position: int) -> list[str]:
        """The types of the events recorded after ``position``."""
        recorder = self.runtime.ledger.event_store.recorder
        return [n.topic for n in recorder.select_notifications(start=position + 1, limit=1_000_000)]

    def caught_up(self) -> None:
        assert self.runtime.runner is not None
        assert self.runtime.runner.wait_for(self.position(), timeout=10)

    def sealed(self) -> int:
        """Seal the log over every event now (the server's sealer thread waits a
        minute between seals); the log's size."""
        sealer = self.runtime.sealer
        assert sealer is not None
        for _ in range(5):
            try:
                sealer.seal()
                break
            except ConnectionUnavailableError:  # SQLite's pool: see the fixture
                continue
        size, last_position, _ = self.runtime.log.state()
        latest = self.runtime.log.latest_checkpoint()
        assert last_position >= self.position()
        assert latest is not None
        assert latest.size == size
        return size


@pytest.fixture
def logs() -> Iterator[LogLines]:
    """Capture every log record (level 1 and up: uvicorn's trace included)."""
    handler = LogLines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(1)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def server(store_url: DatabaseURL, tmp_path: Path, logs: LogLines) -> Iterator[Server]:
    ring_file = tmp_path / "codes.keyring"
    Keyring.generate().save(ring_file)
    # The sealer thread seals once at start, then waits a minute: the tests seal
    # when they need to. (On SQLite, a seal racing a write can stall both for
    # the connection pool's 5 s timeout and fail one of them, a 500 if it is a
    # request's; see Server.sealed.)
    runtime = open_runtime(
        store_url,
        Settings(projection_poll_interval=0.01, seal_interval=60),
        signers=[Signer.generate("ledger.test/codes")],
        code_keyring=Keyring.load(ring_file),
    )
    assert runtime.api_keys is not None
    tokens = {
        name: runtime.api_keys.issue(role, subject, label=name)[1]
        for name, (role, subject) in PRINCIPALS.items()
    }
    port = free_port()
    # No log_config: uvicorn's loggers propagate to the root, where the
    # capture sits; "trace" is its most verbose level (ASGI messages too).
    served = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host="127.0.0.1",
            port=port,
            log_config=None,
            log_level="trace",
            access_log=True,
        )
    )
    thread = threading.Thread(target=served.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not served.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            yield Server(base, runtime, tokens, http, logs)
    finally:
        served.should_exit = True
        thread.join(timeout=30)
        runtime.ledger.close()


def coded_spec(creator: str, title: str, quota: int = 20) -> dict[str, Any]:
    return good_spec(
        title=title,
        creators=[{"id": creator, "share_bps": 10_000}],
        kind="redemption-code",
        tiers=[{"name": "key", "quota": quota}],
    )


def fresh_codes(n: int) -> list[str]:
    """Codes nobody could guess or find by accident in any other text."""
    return [f"ZQ{secrets.token_hex(8).upper()}" for _ in range(n)]


def fresh_range(start: int, end: int) -> tuple[dict[str, Any], list[str]]:
    prefix = f"R{secrets.token_hex(5).upper()}-"
    return (
        {"prefix": prefix, "width": 6, "start": start, "end": end},
        [f"{prefix}{n:06d}" for n in range(start, end + 1)],
    )


@pytest.fixture
def goods(server: Server) -> dict[str, str]:
    for channel in ("shop", "other"):
        assert (
            server.post(
                "admin", "/channels", {"channel": channel, "name": channel, "fee_bps": 500}
            ).status_code
            == 201
        )
    minted = {}
    for creator, title in (("alice", "Alice's keys"), ("mallory", "Mallory's keys")):
        answer = server.post(creator, "/goods", {"spec": coded_spec(creator, title)})
        assert answer.status_code == 201, answer.text
        minted[creator] = answer.json()["good_id"]
    plain = server.post(
        "alice",
        "/goods",
        {"spec": good_spec(title="Plain", creators=[{"id": "alice", "share_bps": 10_000}])},
    )
    assert plain.status_code == 201, plain.text
    return {
        "good": minted["alice"],
        "mallorys": minted["mallory"],
        "plain": plain.json()["good_id"],
    }


def codes_path(good: str, tier: str = "key") -> str:
    return f"/goods/{good}/tiers/{tier}/codes"


def sell(
    server: Server, good: str, buyer: str, channel: str = "shop", quantity: int = 1
) -> list[str]:
    sale = server.post(
        channel,
        f"/goods/{good}/tiers/key/sales",
        {"buyer": buyer, "channel": channel, "quantity": quantity, "unit_price": PRICE},
    )
    assert sale.status_code == 201, sale.text
    return [u["unit_id"] for u in sale.json()["units"]]


def deliver(
    server: Server, who: str | None, unit: str, holder: str, key: str | None = None
) -> httpx.Response:
    return server.post(who, f"/units/{unit}/code-deliveries", {"holder": holder}, key=key)


def problem_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + code, body
    assert body["status"] == status
    return body


# -- import and counts -------------------------------------------------------------
def test_a_batch_is_imported_by_list_or_by_range_and_counted(
    server: Server, goods: dict[str, str]
) -> None:
    path = codes_path(goods["good"])
    listed = fresh_codes(3)
    first = server.post("alice", path, {"codes": listed}, key="import-1")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["imported"], body["codes_imported"], body["codes_available"]) == (3, 3, 3)
    assert (body["good_id"], body["tier"]) == (goods["good"], "key")
    assert "Idempotent-Replayed" not in first.headers
    again = server.post("alice", path, {"codes": listed}, key="import-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == body
    reused = server.post("alice", path, {"codes": fresh_codes(3)}, key="import-1")
    problem_of(reused, 409, "idempotency-key-reused")

    span, ranged_codes = fresh_range(41, 47)
    ranged = server.post("admin", path, {"range": span})
    assert ranged.status_code == 201, ranged.text
    assert (ranged.json()["imported"], ranged.json()["codes_imported"]) == (7, 10)
    unprefixed = server.post(
        "alice", codes_path(goods["mallorys"]), {"range": {"width": 2, "start": 0, "end": 0}}
    )
    assert unprefixed.status_code == 403  # alice is not mallory's good's creator
    assert (
        server.post(
            "mallory", codes_path(goods["mallorys"]), {"range": {"width": 20, "start": 0, "end": 1}}
        ).status_code
        == 201
    )  # "000...0" and "000...1"

    expected = {
        "good_id": goods["good"],
        "tier": "key",
        "coded": True,
        "imported": 10,
        "available": 10,
        "held": 0,
        "bound": 0,
    }
    for who in ("admin", "alice", "auditor"):
        counts = server.get(who, path)
        assert counts.status_code == 200, counts.text
        assert counts.json() == expected
    for who in ("mallory", "shop", "other", "verifier"):
        problem_of(server.get(who, path), 403, "forbidden")
        problem_of(server.post(who, path, {"codes": fresh_codes(1)}), 403, "forbidden")
    assert server.get(None, path).status_code == 401
    assert server.post(None, path, {"codes": fresh_codes(1)}).status_code == 401
    # Sold codes are counted as bound; a sale beyond the free codes is refused.
    sell(server, goods["good"], "carol", quantity=4)
    assert server.get("auditor", path).json() == expected | {"available": 6, "bound": 4}
    exhausted = server.post(
        "shop",
        f"/goods/{goods['good']}/tiers/key/sales",
        {"buyer": "dave", "channel": "shop", "quantity": 7, "unit_price": PRICE},
    )
    problem_of(exhausted, 409, "codes-exhausted")
    # The answers name no code: only counts (and, at sale, refs).
    for response in server.answers:
        assert not [c for c in listed + ranged_codes if c in response.text]


def test_a_malformed_batch_is_refused_at_the_edge_or_by_the_domain(
    server: Server, goods: dict[str, str]
) -> None:
    path = codes_path(goods["good"])
    bad: dict[str, Any]
    for bad in (
        {},
        {"codes": []},
        {"codes": ["has space"]},
        {"codes": ["x" * 129]},
        {"codes": ["A1"], "range": {"width": 2, "start": 0, "end": 1}},
        {"codes": None, "range": None},
        {"range": {"width": 0, "start": 0, "end": 1}},
        {"range": {"width": 21, "start": 0, "end": 1}},
        {"range": {"prefix": "has space", "width": 2, "start": 0, "end": 1}},
        {"range": {"width": 2, "start": 5, "end": 100}},  # end does not fit
        {"range": {"width": 2, "start": 9, "end": 1}},
        {"range": {"width": 6, "start": 0, "end": 10_000}},  # 10,001 codes
        {"range": {"width": 2, "start": 0}},
        {"codes": ["A1"], "extra": 1},
    ):
        refused = server.post("alice", path, bad)
        problem_of(refused, 422, "invalid-input")
    problem_of(
        server.post("alice", codes_path(goods["plain"], "own"), {"codes": ["A1"]}),
        409,
        "code-state",
    )  # not a redemption-code good
    problem_of(
        server.post("alice", codes_path(goods["good"], "nope"), {"codes": ["A1"]}),
        404,
        "tier-not-found",
    )
    problem_of(
        server.post("admin", codes_path(str(uuid.uuid4())), {"codes": ["A1"]}),
        404,
        "good-not-found",
    )
    problem_of(server.get("admin", codes_path(goods["good"], "nope")), 404, "tier-not-found")
    missing = server.http.post(
        path, json={"codes": ["A1"]}, headers={"Authorization": f"Bearer {server.tokens['alice']}"}
    )
    problem_of(missing, 400, "idempotency-key-required")
    assert server.get("alice", path).json()["imported"] == 0


def test_a_batch_with_a_code_seen_before_is_refused_whole_and_changes_nothing(
    server: Server, goods: dict[str, str]
) -> None:
    path = codes_path(goods["good"])
    known = fresh_codes(3)
    assert server.post("alice", path, {"codes": known}).status_code == 201
    position = server.position()
    counts = server.get("alice", path).json()
    fresh = fresh_codes(2)
    for batch, where in (
        ([fresh[0], known[1], fresh[1]], "#2"),  # imported before
        ([fresh[0], fresh[1], fresh[0]], "#3"),  # twice in the batch
        ([known[2]], "#1"),
    ):
        refused = server.post("alice", path, {"codes": batch})
        problem = problem_of(refused, 409, "duplicate-code")
        assert where in problem["detail"]
        assert not [c for c in known + fresh if c in refused.text]  # named by place only
    # Anywhere in the ledger: another creator's good too.
    problem_of(
        server.post("mallory", codes_path(goods["mallorys"]), {"codes": [known[0]]}),
        409,
        "duplicate-code",
    )
    assert server.position() == position  # nothing recorded
    assert server.get("alice", path).json() == counts
    assert server.get("mallory", codes_path(goods["mallorys"])).json()["imported"] == 0
    # The fresh codes were not taken by the refused batches: they import now.
    assert server.post("alice", path, {"codes": fresh}).json()["codes_imported"] == 5


# -- delivery ----------------------------------------------------------------------
def test_the_selling_channel_delivers_the_code_to_the_holder_once(
    server: Server, goods: dict[str, str]
) -> None:
    codes = fresh_codes(3)
    assert server.post("alice", codes_path(goods["good"]), {"codes": codes}).status_code == 201
    unit, second = sell(server, goods["good"], "carol", quantity=2)
    first = deliver(server, "shop", unit, "carol", key="deliver-1")
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    assert "Idempotent-Replayed" not in first.headers
    body = first.json()
    assert body["code"] == codes[0]  # first in, first out
    assert (body["unit_id"], body["holder"], body["first_delivery"]) == (unit, "carol", True)
    assert (body["state"], len(body["code_ref"])) == ("delivered", 32)
    position = server.position()
    replay = deliver(server, "shop", unit, "carol", key="deliver-1")
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["cache-control"] == "no-store"
    assert replay.json() == body
    asked_again = deliver(server, "shop", unit, "carol")
    assert asked_again.status_code == 200
    assert asked_again.json()["code"] == codes[0]
    assert asked_again.json()["first_delivery"] is False
    assert asked_again.json()["delivered_at"] == body["delivered_at"]
    # Asking again records no delivery (only the command's idempotency record).
    assert server.topics_since(position) == ["command.recorded"]
    problem_of(
        deliver(server, "shop", unit, "dave", key="deliver-1"), 409, "idempotency-key-reused"
    )
    assert deliver(server, "shop", second, "carol").json()["code"] == codes[1]


def test_nobody_but_the_selling_channel_gets_the_code(
    server: Server, goods: dict[str, str]
) -> None:
    codes = fresh_codes(2)
    assert server.post("alice", codes_path(goods["good"]), {"codes": codes}).status_code == 201
    (unit,) = sell(server, goods["good"], "carol")
    position = server.position()
    refusals = []
    for who in ("admin", "alice", "mallory", "auditor", "verifier"):
        refusals.append(problem_of(deliver(server, who, unit, "carol"), 403, "forbidden"))
    refusals.append(problem_of(deliver(server, "other", unit, "carol"), 403, "unit-not-in-custody"))
    for anonymous in (None,):
        assert deliver(server, anonymous, unit, "carol").status_code == 401
    refusals.append(problem_of(deliver(server, "shop", unit, "dave"), 409, "not-holder"))
    refusals.append(
        problem_of(deliver(server, "shop", str(uuid.uuid4()), "carol"), 404, "unit-not-found")
    )
    assert server.position() == position  # no refusal recorded a delivery
    assert all(c not in str(r) for r in refusals for c in codes)
    # A unit without a code has none to deliver.
    plain = server.post(
        "shop",
        f"/goods/{goods['plain']}/tiers/own/sales",
        {"buyer": "carol", "channel": "shop", "unit_price": PRICE},
    )
    problem_of(
        deliver(server, "shop", plain.json()["units"][0]["unit_id"], "carol"), 409, "code-state"
    )
    # Taken to another channel (the shop hands it off) and resold there with its
    # code still sealed, the unit's code goes to its new holder, through the
    # channel holding it; the first buyer and channel lose it.
    hand_off = {"holder": "carol", "to_channel": "other", "channel": "shop"}
    assert server.post("shop", f"/units/{unit}/moves", hand_off).status_code == 201
    assert (
        server.post(
            "other",
            f"/units/{unit}/resales",
            {"seller": "carol", "buyer": "dave", "channel": "other", "price": PRICE},
        ).status_code
        == 201
    )
    problem_of(deliver(server, "shop", unit, "dave"), 403, "unit-not-in-custody")
    problem_of(deliver(server, "other", unit, "carol"), 409, "not-holder")
    delivered = deliver(server, "other", unit, "dave")
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["code"] == codes[0]
    # Revealed means final: no resale any more.
    problem_of(
        server.post(
            "other",
            f"/units/{unit}/resales",
            {"seller": "dave", "buyer": "erin", "channel": "other", "price": PRICE},
        ),
        409,
        "code-state",
    )


# -- redemption --------------------------------------------------------------------
def test_a_code_is_redeemed_once_by_its_goods_creator(
    server: Server, goods: dict[str, str]
) -> None:
    codes = fresh_codes(3)
    assert server.post("alice", codes_path(goods["good"]), {"codes": codes}).status_code == 201
    unit, undelivered = sell(server, goods["good"], "carol", quantity=2)
    code = deliver(server, "shop", unit, "carol").json()["code"]
    body = {"code": code, "redeemer": "game-account-7"}
    for who in ("shop", "other", "auditor", "verifier"):
        problem_of(server.post(who, "/code-redemptions", body), 403, "forbidden")
    assert server.post(None, "/code-redemptions", body).status_code == 401
    # Another creator's code is as unknown as a code never imported.
    problem_of(server.post("mallory", "/code-redemptions", body), 404, "code-not-found")
    problem_of(
        server.post("alice", "/code-redemptions", body | {"code": fresh_codes(1)[0]}),
        404,
        "code-not-found",
    )
    # A code bound but never delivered, or still free, is known to nobody else.
    problem_of(
        server.post("alice", "/code-redemptions", body | {"code": codes[1]}), 409, "code-state"
    )
    problem_of(
        server.post("alice", "/code-redemptions", body | {"code": codes[2]}), 409, "code-state"
    )
    redeemed = server.post("alice", "/code-redemptions", body, key="redeem-1")
    assert redeemed.status_code == 201, redeemed.text
    answer = redeemed.json()
    assert (answer["unit_id"], answer["holder"], answer["redeemer"]) == (
        unit,
        "carol",
        "game-account-7",
    )
    assert answer["good_id"] == goods["good"]
    assert "code" not in answer
    replay = server.post("alice", "/code-redemptions", body, key="redeem-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == answer
    problem_of(server.post("alice", "/code-redemptions", body), 409, "code-state")
    problem_of(server.post("admin", "/code-redemptions", body), 409, "code-state")
    # A redeemed code is used up: not shown again, and its sale is final.
    again = deliver(server, "shop", unit, "carol")
    problem_of(again, 409, "code-state")
    problem_of(
        server.post("shop", f"/units/{unit}/refunds", {"reason": "too late"}), 409, "code-state"
    )
    assert undelivered


# -- the leak check ----------------------------------------------------------------
def haystack(response: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return f"{response.status_code}\n{headers}\n{response.text}"


def test_no_answer_but_the_delivery_and_no_log_line_holds_a_code(
    server: Server, goods: dict[str, str]
) -> None:
    good, path = goods["good"], codes_path(goods["good"])
    listed = fresh_codes(4)
    span, ranged = fresh_range(1, 4)
    every_code = listed + ranged
    assert server.post("alice", path, {"codes": listed}).status_code == 201
    assert server.post("admin", path, {"range": span}).status_code == 201
    refused = server.post("alice", path, {"codes": [fresh_codes(1)[0], listed[2]]})
    problem_of(refused, 409, "duplicate-code")
    (unit,) = sell(server, good, "carol")
    hold = server.post(
        "shop",
        f"/goods/{good}/tiers/key/holds",
        {"channel": "shop", "quantity": 2, "ttl_seconds": 600},
    )
    assert hold.status_code == 201, hold.text
    committed = server.post(
        "shop",
        f"/goods/{good}/tiers/key/holds/{hold.json()['hold_id']}/commit",
        {"buyer": "dave", "quantity": 1, "unit_price": PRICE},
    )
    assert committed.status_code == 201, committed.text
    held_unit = committed.json()["units"][0]["unit_id"]
    (resold,) = sell(server, good, "erin")
    assert (
        server.post(
            "shop",
            f"/units/{resold}/resales",
            {"seller": "erin", "buyer": "fay", "channel": "shop", "price": PRICE},
        ).status_code
        == 201
    )
    (refunded,) = sell(server, good, "gus")
    assert (
        server.post("shop", f"/units/{refunded}/refunds", {"reason": "changed mind"}).status_code
        == 201
    )  # its code returns

    deliveries = [
        deliver(server, "shop", unit, "carol"),
        deliver(server, "shop", unit, "carol"),
        deliver(server, "shop", held_unit, "dave"),
    ]
    assert all(d.status_code == 200 for d in deliveries), [d.text for d in deliveries]
    shown = {d.json()["code"] for d in deliveries}
    assert shown <= set(every_code)
    assert len(shown) == 2
    # Refusals around the secret: none may echo it.
    for who in ("admin", "alice", "other", "auditor"):
        assert deliver(server, who, unit, "carol").status_code == 403
    assert deliver(server, "shop", unit, "dave").status_code == 409
    code = deliveries[0].json()["code"]
    redemption = server.post("alice", "/code-redemptions", {"code": code, "redeemer": "r1"})
    assert redemption.status_code == 201, redemption.text
    for body, status in (
        ({"code": code, "redeemer": "r1"}, 409),
        ({"code": code + " ", "redeemer": "r1"}, 422),  # malformed code
        ({"code": code, "redeemer": "not an id!"}, 422),
        ({"code": code * 9, "redeemer": "r1"}, 422),  # too long
        ({"code": code, "redeemer": "r1", "extra": code}, 422),
        ({"code": listed[3], "redeemer": "r1"}, 409),
    ):  # never delivered
        assert server.post("alice", "/code-redemptions", body).status_code == status, body
        assert server.post("mallory", "/code-redemptions", body).status_code in (404, 422)
    malformed = server.post("alice", path, {"codes": [code, code + " x"]})
    problem_of(malformed, 422, "invalid-input")

    # Every read a non-holder can make, by every role and by nobody.
    server.caught_up()
    size = server.sealed()
    hold_id = hold.json()["hold_id"]
    reads = [
        "/goods",
        f"/goods/{good}",
        f"/goods/{good}/stock",
        f"/goods/{good}/lineage",
        f"/goods/{good}/velocity",
        f"/goods/{good}/units",
        f"/goods/{good}/units?tier=key",
        f"/goods/{good}/units?holder=carol",
        f"/goods/{good}/holds",
        f"/goods/{good}/pools",
        f"/goods/{good}/waitlist",
        f"/holds/{hold_id}",
        "/creators/alice/statement",
        "/channels/shop/settlement",
        "/channels/shop/settlement?format=csv",
        "/views/status",
        path,
        "/me",
        "/healthz",
        "/log/checkpoint",
        "/openapi.json",
    ]
    reads += [f"/units/{u}" for u in (unit, held_unit, resold, refunded)]
    reads += [f"/units/{u}/provenance" for u in (unit, held_unit, resold, refunded)]
    reads += [f"/log/proof/inclusion?aggregate_id={unit}&version=1"]
    reads += [
        f"/log/entries?start={start}&end={min(start + 1_000, size)}"
        for start in range(0, size, 1_000)
    ]
    answered: Counter[str | None] = Counter()
    callers: list[str | None] = [None, *PRINCIPALS]
    for caller in callers:
        for read in reads:
            response = server.http.get(read, headers=server.headers(caller))
            server.answers.append(response)
            answered[caller] += response.status_code == 200
        with server.http.stream(
            "GET", f"/goods/{good}/stock/stream", headers=server.headers(caller)
        ) as stream:
            if stream.status_code == 200:
                first = next(stream.iter_lines())
                assert first.startswith("id: ")
                assert not [c for c in every_code if c in first]
            else:
                assert not [c for c in every_code if c in stream.read().decode()]
    # Every reader got nearly every read answered (all but another's statement,
    # settlement (two) or code counts, the views' status, another channel's hold);
    # the verifier and nobody, the public ones (log, provenance, health, schema).
    for reader in ("admin", "alice", "mallory", "shop", "other", "auditor"):
        assert answered[reader] >= len(reads) - 6, (reader, answered)
    assert answered["verifier"] >= 10, answered
    assert answered[None] >= 9, answered

    # Positive controls: the search does find what is there.
    entries = server.get(None, f"/log/entries?start=0&end={min(size, 1_000)}").text
    assert deliveries[0].json()["code_ref"] in entries  # refs are public, texts are not
    provenance = server.get(None, f"/units/{unit}/provenance")
    assert provenance.status_code == 200
    assert deliveries[0].json()["code_ref"] in provenance.text
    assert code in haystack(deliveries[0])

    exempt = {id(d) for d in deliveries}
    leaked = [
        (r.request.method, str(r.request.url), c)
        for r in server.answers
        if id(r) not in exempt
        for c in every_code
        if c in haystack(r)
    ]
    assert leaked == []
    assert len(server.answers) > 8 * len(reads)

    lines = server.logs.text()
    assert "uvicorn.access" in lines
    assert "POST /code-redemptions" in lines
    assert "/code-deliveries" in lines
    assert [c for c in every_code if c in lines] == []


# -- no keyring, and the problem mapping -------------------------------------------
def test_a_server_without_a_keyring_answers_503_and_changes_nothing(store_url: DatabaseURL) -> None:
    runtime = open_runtime(store_url, Settings(projection_poll_interval=0.01))
    assert runtime.api_keys is not None
    admin = {"Authorization": f"Bearer {runtime.api_keys.issue(Role.ADMIN, None)[1]}"}
    shop = {"Authorization": f"Bearer {runtime.api_keys.issue(Role.CHANNEL, 'shop')[1]}"}
    try:
        with TestClient(create_app(runtime)) as client:

            def post(headers: dict[str, str], path: str, body: Any) -> Any:
                return client.post(
                    path, json=body, headers=headers | {"Idempotency-Key": uuid.uuid4().hex}
                )

            assert (
                post(
                    admin, "/channels", {"channel": "shop", "name": "shop", "fee_bps": 0}
                ).status_code
                == 201
            )
            good = post(admin, "/goods", {"spec": coded_spec("alice", "Keys")}).json()["good_id"]
            position = runtime.ledger.event_store.recorder.max_notification_id()
            for headers, path, body in (
                (admin, codes_path(good), {"codes": ["A1"]}),
                (admin, "/code-redemptions", {"code": "A1", "redeemer": "r"}),
            ):
                answer = post(headers, path, body)
                assert answer.status_code == 503, answer.text
                assert answer.json()["type"] == PROBLEM + "codes-unavailable"
                assert answer.headers["content-type"] == "application/problem+json"
            sale = post(
                shop,
                f"/goods/{good}/tiers/key/sales",
                {"buyer": "b", "channel": "shop", "unit_price": PRICE},
            )
            assert sale.status_code == 409  # a coded tier never sells without codes
            assert sale.json()["type"] == PROBLEM + "codes-exhausted"
            assert client.get(codes_path(good), headers=admin).json()["imported"] == 0
            assert runtime.ledger.event_store.recorder.max_notification_id() == position
    finally:
        runtime.ledger.close()


def test_each_code_error_has_its_status() -> None:
    for error, status in (
        (errors.CodesExhaustedError("key", 2, 1), 409),
        (errors.CodeStateError("redeemed already"), 409),
        (errors.DuplicateCodeError(0, "imported before"), 409),
        (errors.CodeNotFoundError(), 404),
        (errors.CodesUnavailableError("no keyring"), 503),
    ):
        problem = domain_problem(error, "/x")
        assert (problem["status"], problem["type"]) == (status, PROBLEM + error.code)
