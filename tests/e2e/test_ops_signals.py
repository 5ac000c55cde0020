"""Operations signals over a real ``ledger serve`` (issue 14 item 8), on both
backends: ``/metrics`` scraped before and after sales and refusals, its
counters moving by exactly what was sent; and ``--log-format json``: every
line a JSON object, each request's line carrying the id the client sent,
its route template and its caller, and no API key anywhere in the log."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ledger.service import Ledger
from ledger.store.apikeys import Role, open_api_keys
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import generate_log_key, running_server
from tests.strategies import good_spec

SALES = "/goods/{good_id}/tiers/{tier}/sales"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client, **headers: str) -> Samples:
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def parses(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def tokens(url: DatabaseURL) -> dict[str, str]:
    Ledger(url).close()  # the store, so that keys can be issued before serving
    with open_api_keys(url, create=True) as keys:
        return {
            "admin": keys.issue(Role.ADMIN, label="ops admin")[1],
            "shop": keys.issue(Role.CHANNEL, "shop", label="ops shop")[1],
            "other": keys.issue(Role.CHANNEL, "other", label="ops other")[1],
            "auditor": keys.issue(Role.AUDITOR, label="ops auditor")[1],
        }


class Caller:
    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http, self.token = http, token

    def post(self, path: str, body: Any, *, key: str | None = None, rid: str | None = None) -> Any:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": key or uuid.uuid4().hex,
        }
        if rid is not None:
            headers["X-Request-Id"] = rid
        return self.http.post(path, json=body, headers=headers)


def sale(buyer: str, channel: str = "shop") -> dict[str, Any]:
    return {"buyer": buyer, "channel": channel, "unit_price": {"amount": 100, "currency": "EUR"}}


def sell_and_refuse(http: httpx.Client, keys: dict[str, str]) -> str:
    """3 sales of 3 units, a replay, a sold-out, a forbidden; the good's id."""
    admin, shop, other = (Caller(http, keys[n]) for n in ("admin", "shop", "other"))
    for channel in ("shop", "other"):
        made = admin.post("/channels", {"channel": channel, "name": channel, "fee_bps": 100})
        assert made.status_code == 201, made.text
    spec = good_spec(creators=[{"id": "alice", "share_bps": 10_000}], resale_bps=1_000)
    for tier in spec["tiers"]:
        tier["quota"] = 3
    minted = admin.post("/goods", {"spec": spec})
    assert minted.status_code == 201, minted.text
    good = str(minted.json()["good_id"])
    tier = spec["tiers"][0]["name"]
    path = f"/goods/{good}/tiers/{tier}/sales"
    for n in range(3):
        sold = shop.post(path, sale(f"b{n}"), key=f"sale-{n}", rid=f"ops-sale-{n}")
        assert sold.status_code == 201, sold.text
    replayed = shop.post(path, sale("b0"), key="sale-0", rid="ops-replay")
    assert replayed.headers["Idempotent-Replayed"] == "true"
    sold_out = shop.post(path, sale("b9"), rid="ops-sold-out")
    assert sold_out.json()["type"].endswith("/sold-out"), sold_out.text
    forbidden = other.post(path, sale("b8"), rid="ops-forbidden")
    assert forbidden.status_code == 403, forbidden.text
    return good


def test_metrics_move_with_sales_and_refusals(store_url: DatabaseURL, tmp_path: Path) -> None:
    keys = tokens(store_url)
    key, _ = generate_log_key(tmp_path, "ledger.test/ops")
    with running_server(store_url.display(), key, log_file=tmp_path / "server.log") as base:
        http = httpx.Client(base_url=base, timeout=30)
        before = scrape(http)  # open by default: no key
        good = sell_and_refuse(http, keys)
        deadline = time.monotonic() + 15
        while True:  # the sealer and the views catch up within a moment
            after = scrape(http)
            done = value(after, "ledger_sealer_unsealed_events") == 0
            if done and value(after, "ledger_views_behind_events") == 0:
                break
            assert time.monotonic() < deadline, after
            time.sleep(0.1)
        text = http.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    post = {"method": "POST", "route": SALES}
    assert moved("ledger_http_requests_total", **post, status="201") == 4  # 3 sales, a replay
    assert moved("ledger_http_requests_total", **post, status="409") == 1
    assert moved("ledger_http_requests_total", **post, status="403") == 1
    assert moved("ledger_http_request_duration_seconds_count", **post) == 6
    assert moved("ledger_http_request_duration_seconds_sum", **post) > 0
    assert moved("ledger_http_request_duration_seconds_bucket", **post, le="+Inf") == 6
    assert moved("ledger_commands_total", command="sell", outcome="ok") == 3
    assert moved("ledger_commands_total", command="sell", outcome="replayed") == 1
    assert moved("ledger_commands_total", command="sell", outcome="sold-out") == 1
    assert moved("ledger_commands_total", command="sell", outcome="forbidden") == 1
    assert moved("ledger_commands_total", command="mint", outcome="ok") == 1
    assert moved("ledger_commands_total", command="register_channel", outcome="ok") == 2
    # Each command that reached the runner ran in a batch (sold-out and
    # replays too; the forbidden sale never got past the edge).
    assert moved("ledger_group_commit_batch_size_count") >= 1 + 2 + 3
    assert moved("ledger_group_commit_batch_size_sum") >= moved(
        "ledger_group_commit_batch_size_count"
    )
    assert value(after, "ledger_command_conflicts_retried_total") >= 0
    assert value(after, "ledger_checkpoint_age_seconds") >= 0
    assert value(after, "ledger_sealer_lag_seconds") == 0
    assert value(after, "ledger_log_size") > 0
    for part in ("database", "views", "sealer"):
        assert value(after, "ledger_ready", part=part) == 1
    assert value(after, "ledger_db_pool_connections") >= 1
    assert ("ledger_db_pool_in_use", frozenset()) in after
    waiting = ("ledger_db_pool_waiting", frozenset()) in after
    assert waiting is (store_url.backend == "postgresql")
    assert any(name == "ledger_build_info" for name, _ in after)
    # No label carries an id: the good's id is in no series.
    assert good not in text
    assert "_created" not in text


def test_metrics_may_be_kept_for_auditors(sqlite_url: DatabaseURL, tmp_path: Path) -> None:
    keys = tokens(sqlite_url)
    key, _ = generate_log_key(tmp_path, "ledger.test/ops")
    env = {"LEDGER_METRICS_ACCESS": "auditor"}
    with running_server(sqlite_url.display(), key, env=env) as base:
        http = httpx.Client(base_url=base, timeout=30)
        assert http.get("/metrics").status_code == 401
        refused = http.get("/metrics", headers={"Authorization": f"Bearer {keys['shop']}"})
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/forbidden")
        samples = scrape(http, Authorization=f"Bearer {keys['auditor']}")
        # The refusals above were counted like any request.
        unauthorized = {"method": "GET", "route": "/metrics", "status": "401"}
        assert value(samples, "ledger_http_requests_total", **unauthorized) == 1


def test_json_logs_name_the_request_its_route_and_caller(
    store_url: DatabaseURL, tmp_path: Path
) -> None:
    keys = tokens(store_url)
    key, _ = generate_log_key(tmp_path, "ledger.test/ops")
    log = tmp_path / "server.log"
    env = {"LEDGER_LOG_FORMAT": "json"}
    with running_server(store_url.display(), key, log_file=log, env=env) as base:
        http = httpx.Client(base_url=base, timeout=30)
        sell_and_refuse(http, keys)
        missing = http.get("/goods/nosuch/stock", headers={"X-Request-Id": "ops-404"})
        assert missing.status_code in (404, 422, 401)
    lines = log.read_text().splitlines()
    assert [line for line in lines if not parses(line)] == []  # every line is JSON
    records = [json.loads(line) for line in lines]
    assert all(
        {"time", "level", "logger", "message"} <= set(r) and r["time"].endswith("Z")
        for r in records
    )
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's lines too
    access = {r["request_id"]: r for r in records if r["logger"] == "ledger.access"}
    assert not any(r["logger"] == "uvicorn.access" for r in records)  # replaced
    for n in range(3):
        line = access[f"ops-sale-{n}"]
        assert (line["method"], line["route"], line["status"]) == ("POST", SALES, 201)
        assert line["actor"]["role"] == "channel"
        assert line["actor"]["subject"] == "shop"
        assert line["actor"]["key_id"]
        assert 0 < line["latency"] < 30
    assert access["ops-sold-out"]["problem"] == "sold-out"
    assert access["ops-sold-out"]["status"] == 409
    assert access["ops-forbidden"]["actor"]["subject"] == "other"
    assert access["ops-forbidden"]["problem"] == "forbidden"
    assert "actor" not in access["ops-404"]  # no key: nobody
    # Every request line has an id, made by the server when none was sent.
    assert all(r.get("request_id") for r in records if r["logger"] == "ledger.access")
    whole = log.read_text()
    for token in keys.values():
        assert token not in whole
        secret = token.split("_", 2)[2]  # lk_<key id>_<secret>: the secret may hold "_"
        assert len(secret) >= 16
        assert secret[:16] not in whole
