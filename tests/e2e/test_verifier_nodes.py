"""The ledger and three verifier nodes, each its own process on loopback.

They follow the ledger, re-verify every entry, and cosign; the ledger's
checkpoint reaches a 2-of-3 quorum under the policy. Then the store is
tampered with (on either backend) and a verifier restarted on its own state
catches the rewritten entry, refuses to cosign, and says which entry and
which hashes.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog.keys import Verifier
from ledger.tlog.policy import parse_policy
from ledger.verify.provenance import verify_provenance
from tests.e2e.conftest import free_port, running_process, running_server
from tests.strategies import open_shop_and_sell

ORIGIN = "ledger.test/witnessed"
NAMES = ["verifier-a", "verifier-b", "verifier-c"]

pytestmark = pytest.mark.slow


def keygen(directory: Path, name: str, *, cosigner: bool = False) -> tuple[Path, str]:
    key = directory / f"{name.replace('/', '_')}.key"
    args = [
        sys.executable,
        "-m",
        "ledger.cli",
        "keys",
        "generate",
        "--name",
        name,
        "--out",
        str(key),
        *(["--cosigner"] if cosigner else []),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return key, done.stdout.strip()


def test_three_verifiers_reach_quorum_then_catch_a_rewritten_entry(
    store_url: DatabaseURL, tmp_path: Path
) -> None:
    log_key, log_vkey = keygen(tmp_path, ORIGIN)
    keys = {name: keygen(tmp_path, name, cosigner=True) for name in NAMES}
    policy_text = (
        f"log {log_vkey}\n"
        + "".join(f"witness {n} {keys[n][1]}\n" for n in NAMES)
        + f"group verifiers 2 {' '.join(NAMES)}\nquorum verifiers\n"
    )
    (tmp_path / "policy.txt").write_text(policy_text)
    policy = parse_policy(policy_text)
    ports = {name: free_port() for name in NAMES}

    def verifier(stack: ExitStack, name: str, base: str) -> str:
        peers = [a for n in NAMES if n != name for a in ("--peer", f"http://127.0.0.1:{ports[n]}")]
        return stack.enter_context(
            running_process(
                [
                    "verifier",
                    "run",
                    "--ledger",
                    base,
                    "--key",
                    str(keys[name][0]),
                    "--log-key",
                    log_vkey,
                    "--state",
                    str(tmp_path / name),
                    "--port",
                    str(ports[name]),
                    "--poll",
                    "0.1",
                    *peers,
                ],
                f"http://127.0.0.1:{ports[name]}",
                "/status",
                log_file=tmp_path / f"{name}.log",
            )
        )

    with Ledger(store_url) as ledger, ExitStack() as stack:
        base = stack.enter_context(
            running_server(
                store_url.display(),
                log_key,
                policy=tmp_path / "policy.txt",
                log_file=tmp_path / "ledger.log",
            )
        )
        own_stacks = {name: stack.enter_context(ExitStack()) for name in NAMES}
        nodes = {name: verifier(own_stacks[name], name, base) for name in NAMES}
        _, sales = open_shop_and_sell(ledger, 25, quota=40, price=300)
        sold_at = time.monotonic()
        events = int(ledger.event_store.recorder.max_notification_id() or 0)

        deadline = sold_at + 30
        while True:
            response = httpx.get(f"{base}/log/checkpoint")
            note = response.text
            if response.status_code == 200:
                result = policy.check(note, log_verifiers=[Verifier.from_vkey(log_vkey)])
                if result.checkpoint.size >= events and result.quorum_met:
                    break
            assert time.monotonic() < deadline, f"no quorum: {note}"
            time.sleep(0.05)
        quorum_seconds = time.monotonic() - sold_at
        print(
            f"2-of-3 quorum on size {result.checkpoint.size} "
            f"{quorum_seconds:.2f} s after the last sale"
        )
        assert not result.invalid_cosigners
        # A platform checks a unit's provenance offline, trusting only the policy.
        unit = sales[11]["units"][0]["unit_id"]
        bundle = httpx.get(f"{base}/units/{unit}/provenance").json()
        proven = verify_provenance(bundle, policy)
        assert proven.holder == "b11"
        assert len(proven.cosigners) >= 2

        for name, node in nodes.items():
            status = httpx.get(f"{node}/status")
            assert status.status_code == 200, (name, status.text)
            assert status.json()["alarm"] is None

        # Rewrite a sale every verifier has verified and cosigned. The running
        # ones re-audit old entries on every poll; one stopped meanwhile
        # re-follows from the start when it comes back. All must alarm.
        victim = NAMES[2]
        own_stacks[victim].close()
        index = rewrite_a_sale(store_url)
        nodes[victim] = verifier(own_stacks[victim], victim, base)
        deadline = time.monotonic() + 20
        for name, node in nodes.items():
            while True:
                status = httpx.get(f"{node}/status")
                if status.status_code == 503:
                    break
                assert time.monotonic() < deadline, (name, status.text)
                time.sleep(0.1)
            alarm = status.json()["alarm"]
            assert alarm["check"] in {"leaf-hash", "history-rewritten"}, alarm
            assert alarm["index"] == index
            assert alarm["expected"] != alarm["actual"]
            metrics = httpx.get(f"{node}/metrics").text
            assert "ledger_verifier_alarm 1" in metrics
            assert_prometheus_text(metrics)
            refused = httpx.post(f"{node}/add-checkpoint", content="old 0\n\n" + note)
            assert refused.status_code == 503


def assert_prometheus_text(text: str) -> None:
    """Each sample follows its own # HELP and # TYPE lines (text format 0.0.4)."""
    lines = text.splitlines()
    samples = [line for line in lines if not line.startswith("#")]
    assert samples
    for sample in samples:
        name = sample.split()[0]
        at = lines.index(sample)
        assert lines[at - 2].startswith(f"# HELP {name} "), lines[at - 2 : at + 1]
        kind = lines[at - 1].removeprefix(f"# TYPE {name} ")
        assert kind in {"counter", "gauge"}, lines[at - 1]
        assert kind != "counter" or name.endswith("_total"), name


def rewrite_a_sale(url: DatabaseURL) -> int:
    """Change the buyer of the fourth sale in the store, in place, as someone
    with write access to the database would; returns its leaf index."""
    if url.backend == "sqlite":
        with sqlite3.connect(url.path) as db:
            rows = db.execute(
                "SELECT rowid, topic, state FROM stored_events ORDER BY rowid"
            ).fetchall()
            position, index, state = next(
                (r[0], i, bytes(r[2]))
                for i, r in enumerate(rows)
                if r[1] == "stock.sold" and b'"buyer":"b3"' in r[2]
            )
            db.execute(
                "UPDATE stored_events SET state = ? WHERE rowid = ?",
                (state.replace(b'"buyer":"b3"', b'"buyer":"mallory"'), position),
            )
        return index
    import psycopg
    from psycopg import sql

    table = sql.Identifier(url.schema, "ledger_events")
    with psycopg.connect(
        host=url.host, port=url.port, user=url.user, dbname=url.dbname, autocommit=True
    ) as db:
        rows = db.execute(
            sql.SQL("SELECT notification_id, topic, state FROM {} ORDER BY notification_id").format(
                table
            )
        ).fetchall()
        position, index, state = next(
            (r[0], i, bytes(r[2]))
            for i, r in enumerate(rows)
            if r[1] == "stock.sold" and b'"buyer":"b3"' in bytes(r[2])
        )
        db.execute(
            sql.SQL("UPDATE {} SET state = %s WHERE notification_id = %s").format(table),
            (state.replace(b'"buyer":"b3"', b'"buyer":"mallory"'), position),
        )
    return index
