"""Every event of a real HTTP run names who recorded it (issue 14 item 5),
on both backends: the API key (id, role, subject) and the request id the
client sent, in the hashed bytes; the server's hold expiry sweeps name the
server; the CLI names the operator. Sales by two channels' keys that
were group-committed together each carry their own key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.verify import export_store, verify_store
from tests.e2e.conftest import free_port, generate_log_key, running_process
from tests.strategies import good_spec

SERVER_NAME = "edge-1"


def _issue(db: str, role: str, subject: str | None = None) -> dict[str, Any]:
    args = [sys.executable, "-m", "ledger.cli", "api-keys", "issue", "--db", db, "--role", role]
    args += ["--json", *(["--subject", subject] if subject else [])]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    issued: dict[str, Any] = json.loads(done.stdout)
    return issued


def _records(url: DatabaseURL, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "export.jsonl"
    export_store(url, out)
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_every_event_of_a_run_names_its_actor(store_url: DatabaseURL, tmp_path: Path) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    keys = {
        name: _issue(db, role, subject)
        for name, role, subject in [
            ("admin", "admin", None),
            ("alice", "creator", "alice"),
            ("shop", "channel", "shop"),
            ("market", "channel", "market"),
        ]
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "channels",
            "add",
            "live",
            "--fee-bps=0",
            f"--db={db}",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    log_key, _ = generate_log_key(tmp_path, "ledger.test/actors")
    port = free_port()
    env = os.environ | {
        "LEDGER_SERVER_NAME": SERVER_NAME,
        "LEDGER_HOLD_SWEEP_INTERVAL": "0.2",
        "LEDGER_SEAL_INTERVAL": "0.2",
    }
    sent: dict[str, tuple[str, str]] = {}  # request id -> (key name, what)

    with running_process(
        ["serve", "--db", db, "--port", str(port), "--log-key", str(log_key)],
        f"http://127.0.0.1:{port}",
        "/readyz",
        env=env,
        log_file=tmp_path / "server.log",
        ready_status=200,
    ) as base:
        http = httpx.Client(base_url=base, timeout=30)

        def post(name: str, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
            request_id = f"{what}-{uuid.uuid4().hex[:8]}"
            headers = {
                "Authorization": f"Bearer {keys[name]['token']}",
                "Idempotency-Key": uuid.uuid4().hex,
                "X-Request-Id": request_id,
            }
            answer = http.post(path, json=body, headers=headers)
            assert answer.status_code == 201, answer.text
            assert answer.headers["x-request-id"] == request_id
            sent[request_id] = (name, what)
            result: dict[str, Any] = answer.json()
            return result

        for channel in ("shop", "market"):
            post(
                "admin", "/channels", {"channel": channel, "name": channel, "fee_bps": 100}, "chan"
            )
        spec = good_spec(
            creators=[{"id": "alice", "share_bps": 10_000}], tiers=[{"name": "own", "quota": 500}]
        )
        good = post("alice", "/goods", {"spec": spec}, "mint")["good_id"]
        hold = post(
            "shop",
            f"/goods/{good}/tiers/own/holds",
            {"channel": "shop", "quantity": 1, "ttl_seconds": 1},
            "hold",
        )

        def sell(n: int) -> None:
            channel = ("shop", "market")[n % 2]
            body = {
                "buyer": f"b{n}",
                "channel": channel,
                "unit_price": {"amount": 100, "currency": spec["currency"]},
            }
            post(channel, f"/goods/{good}/tiers/own/sales", body, "sale")

        mixed = False
        for round_ in range(5):  # until some batch held both channels' sales
            with ThreadPoolExecutor(max_workers=24) as pool:
                list(pool.map(sell, range(round_ * 48, (round_ + 1) * 48)))
            by_moment: dict[str, set[str]] = {}
            for record in _records(store_url, tmp_path):
                if record["type"] == "stock.sold":
                    by_moment.setdefault(record["timestamp"], set()).add(
                        record["payload"]["channel"]
                    )
            if any(len(channels) == 2 for channels in by_moment.values()):
                mixed = True
                break
        assert mixed, "no batch held sales of both channels"

        # A queued sale (its place in the queue first) runs on a thread of
        # its own: its events still name its key and request.
        queued = http.post(
            f"/goods/{good}/tiers/own/sales",
            json={
                "buyer": "q1",
                "channel": "market",
                "unit_price": {"amount": 100, "currency": "EUR"},
            },
            headers={
                "Authorization": f"Bearer {keys['market']['token']}",
                "Idempotency-Key": uuid.uuid4().hex,
                "X-Request-Id": "queued-sale-1",
                "Accept": "application/x-ndjson",
            },
        )
        assert queued.status_code == 200, queued.text
        assert json.loads(queued.text.splitlines()[-1])["status"] == 201
        sent["queued-sale-1"] = ("market", "sale")

        deadline = time.monotonic() + 20  # the sweeper expires the hold
        while time.monotonic() < deadline:
            types = [r["type"] for r in _records(store_url, tmp_path)]
            if "stock.hold-released" in types:
                break
            time.sleep(0.2)

    records = _records(store_url, tmp_path)
    assert all("recorded_by" in r for r in records), [r for r in records if "recorded_by" not in r]
    actors = [r["recorded_by"] for r in records]

    # The CLI: the keys' issue and the channel it added, by the operator.
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_type.setdefault(record["type"], []).append(record)
    assert len(by_type["apikey.issued"]) == 4
    for record in by_type["apikey.issued"]:
        assert record["recorded_by"]["role"] == "operator"
        assert record["recorded_by"]["subject"] == "cli"
        assert "key_id" not in record["recorded_by"]
        key = next(k for k in keys.values() if k["key_id"] == record["payload"]["key_id"])
        assert record["payload"]["role"] == key["role"]
        assert key["token"][len("lk_") + 13 :] not in json.dumps(record)  # never the secret
    live = next(r for r in by_type["channel.registered"] if r["payload"]["channel"] == "live")
    assert live["recorded_by"]["role"] == "operator"

    # The API: every request id sent names the key that sent it, on every
    # event of its command (the effects and the command record).
    seen = {a["request_id"] for a in actors}
    assert set(sent) <= seen
    queued_events = [
        r["type"] for r in records if r["recorded_by"]["request_id"] == "queued-sale-1"
    ]
    assert {"stock.sold", "unit.issued", "command.recorded"} <= set(queued_events)
    for record in records:
        actor = record["recorded_by"]
        if actor["request_id"] not in sent:
            continue
        name, _ = sent[actor["request_id"]]
        assert actor["key_id"] == keys[name]["key_id"], (record, name)
        assert (actor["role"], actor["subject"]) == (keys[name]["role"], keys[name]["subject"])
        if record["type"] == "stock.sold":
            assert record["payload"]["channel"] == actor["subject"]  # each sale, its own key

    # The server: the hold's expiry, by the server under its configured name.
    released = by_type["stock.hold-released"]
    assert [r["payload"]["hold_id"] for r in released] == [hold["hold_id"]]
    assert released[0]["recorded_by"]["role"] == "server"
    assert released[0]["recorded_by"]["subject"] == SERVER_NAME
    assert released[0]["recorded_by"]["request_id"] not in sent

    # Who did what is in the hashed bytes, and the store verifies (rule 8.12).
    report = verify_store(store_url)
    assert report.findings == [], report.findings[:5]
