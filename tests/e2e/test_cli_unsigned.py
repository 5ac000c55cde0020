"""The attack of issue 12, item 2, as an attacker with disk access runs it
and an auditor then checks the store with ``ledger verify``: delete the
signed checkpoints, rewrite a resale they covered with every hash
recomputed, fix its command record and the later events, rebuild the
views. Naming the log key or the policy, the auditor is told that nothing
(or not enough) of the store is signed: exit code 10."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.domain import canonical
from ledger.domain.ids import account_id_for
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.sealer import Sealer
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog.cosignature import cosign
from ledger.tlog.keys import Signer
from ledger.tlog.signed_note import parse_note
from tests.e2e.test_cli import LEDGER, run
from tests.integration.test_verify_ledger import Store
from tests.strategies import good_spec

ORIGIN = "ledger.test/e2e-unsigned"


def rename(value: Any, old: str, new: str) -> Any:
    """Every string equal to ``old`` in ``value``, replaced by ``new``."""
    if isinstance(value, dict):
        return {k: rename(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rename(v, old, new) for v in value]
    return new if value == old else value


def build(directory: Path) -> tuple[Store, str, Path]:
    """A store served with a log key: sales and two resales of one unit
    (carol -> dave -> erin), every event under a checkpoint cosigned by
    the policy's witness. Returns the store, the log's vkey, the policy."""
    signer = Signer.generate(ORIGIN)
    witness = Signer.generate("w1", key_type=0x04)
    policy = directory / "policy.txt"
    policy.write_text(
        f"log {signer.verifier_key()}\nwitness w1 {witness.verifier_key()}\nquorum w1\n"
    )
    path = directory / "ledger.db"
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}")) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 20}]), idempotency_key="m")[
            "good_id"
        ]
        unit = ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=1,
            unit_price=Money(500, "EUR"),
            idempotency_key="s",
        )["units"][0]
        ledger.resell(
            unit["unit_id"],
            seller="carol",
            buyer="dave",
            channel="shop",
            price=Money(900, "EUR"),
            idempotency_key="r1",
        )
        ledger.resell(
            unit["unit_id"],
            seller="dave",
            buyer="erin",
            channel="shop",
            price=Money(1200, "EUR"),
            idempotency_key="r2",
        )
        for i in range(5):
            ledger.sell(
                good,
                "own",
                buyer=f"b{i}",
                channel="shop",
                quantity=1,
                unit_price=Money(500, "EUR"),
                idempotency_key=f"s{i}",
            )
        log = LogStore(ledger.event_store.recorder)
        sealed = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[signer]).seal()
        assert sealed is not None
        line = cosign(parse_note(sealed.note).text, witness, 1_800_000_000).line()
        log.add_cosignature(sealed.size, "w1", line, "2026-11-22T12:00:00.000000Z")
    return Store(path), signer.verifier_key(), policy


def forge(store: Store, tables: tuple[str, ...]) -> None:
    """Delete ``tables`` of the log, make the unit's first resale go to
    mallory instead of dave (and mallory the seller of the second), with
    the unit's chain recomputed, both command records fixed, and dave's
    account (opened by that resale) renamed mallory's."""
    with sqlite3.connect(store.path) as db:
        for table in tables:
            db.execute(f"DELETE FROM tlog_{table}")
    resales = [r for r in store.rows() if r.topic == "unit.resold"]
    records = [
        r
        for r in store.rows()
        if r.topic == "command.recorded" and r.data["payload"]["command"] == "resell"
    ]
    for row in resales:
        store.edit(row, lambda p: p.update(rename(p, "dave", "mallory")))
    for row in records:
        data = row.data
        payload = data["payload"] = rename(data["payload"], "dave", "mallory")
        result = payload["result"]
        args = {
            "unit_id": result["unit_id"],
            "seller": result["seller"],
            "buyer": result["buyer"],
            "channel": result["channel"],
            "price": result["price"],
        }
        payload["request_hash"] = canonical.sha256_hex(
            canonical.encode({"command": "resell", "args": args})
        )
        store.write_state(row.rowid, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    store.rechain(resales[0].aggregate_id)
    # dave's account becomes mallory's: its payload, and its derived id.
    opened = store.find("account.opened", account="dave")
    mallory = account_id_for("mallory")
    with sqlite3.connect(store.path) as db:
        db.execute(
            "UPDATE stored_events SET originator_id=? WHERE originator_id=?",
            (mallory.hex, opened.aggregate_id.replace("-", "")),
        )
    store.edit(store.find("account.opened", account="dave"), lambda p: p.update(account="mallory"))
    store.rechain(str(mallory))
    unit = store.aggregate(resales[0].aggregate_id)
    assert [r.data["payload"].get("buyer") for r in unit][1:] == ["mallory", "erin"]


def verify(store: Store, *args: str) -> tuple[int, dict[str, Any], str]:
    report = store.path.with_name("report.json")
    done = run(
        "verify", "--db", str(store.path), "--json", str(report), *args, cwd=store.path.parent
    )
    # (one line per space: rich wraps the summary at the terminal's width)
    return (
        done.returncode,
        json.loads(report.read_text()),
        " ".join((done.stdout + done.stderr).split()),
    )


@pytest.mark.parametrize(
    "tables",
    [("cosignatures", "checkpoints"), ("cosignatures", "checkpoints", "nodes", "leaves", "state")],
    ids=["checkpoints deleted", "whole log deleted"],
)
def test_a_rewrite_hidden_by_deleting_the_checkpoints_fails_with_a_key_or_a_policy(
    tmp_path: Path, tables: tuple[str, ...]
) -> None:
    store, vkey, policy = build(tmp_path)
    assert run("views", "rebuild", "--db", str(store.path), cwd=tmp_path).returncode == 0
    state = tmp_path / "audit-state.json"
    code, _, out = verify(store, "--policy", str(policy), "--state", str(state))
    assert code == 0, out

    forge(store, tables)
    rebuilt = run("views", "rebuild", "--db", str(store.path), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr

    for given in (["--log-key", vkey], ["--policy", str(policy)]):
        code, report, out = verify(store, *given)
        checks = {f["check"] for f in report["findings"]}
        assert "no-checkpoint" in checks, out
        assert "0/0 checkpoints" in out
        if tables[-1] == "state":  # nothing of the log is left to compare with
            assert checks == {"no-checkpoint"}, out
            assert code == 10, out
            assert "first bad not at one event (the message says where) [no-checkpoint]" in out
            assert f"{report['events']} events" in report["findings"][0]["message"]
        else:  # the stored tree, if checked, may fail first
            assert code != 0, out
    # Asked nothing of signatures, the auditor is told only how much is unsigned.
    code, report, out = verify(store)
    assert f"{report['events']} events not yet under a checkpoint" in out
    if tables[-1] == "state":
        assert code == 0, out
    else:  # the stored tree the server proves from still holds the old leaves
        assert code == 11, out
        assert {f["check"] for f in report["findings"]} <= {
            "stored-leaf",
            "stored-node",
            "stored-state",
        }, out
    # And the auditor's memory of the checkpoint verified before catches the rewrite.
    code, report, out = verify(store, "--state", str(state))
    assert code == 7, out
    assert "split-view" in {f["check"] for f in report["findings"]}


def test_max_unsigned_age_is_an_option_and_a_setting(tmp_path: Path) -> None:
    store, vkey, _ = build(tmp_path)
    with Ledger(DatabaseURL.parse(f"sqlite:///{store.path}")) as ledger:  # after the seal
        ledger.register_channel("late", "Late", 500, idempotency_key="late-1")
        ledger.register_channel("later", "Later", 500, idempotency_key="late-2")
    code, _, out = verify(store, "--log-key", vkey, "--no-views")
    assert code == 0, out  # a tail milliseconds old is what a live sealer leaves
    code, report, out = verify(store, "--log-key", vkey, "--no-views", "--max-unsigned-age", "0")
    assert code == 10, out
    assert [f["check"] for f in report["findings"]] == ["unsigned-events"]
    assert report["findings"][0]["event_type"] == "channel.registered"
    by_setting = subprocess.run(
        [*LEDGER, "verify", "--db", str(store.path), "--log-key", vkey, "--no-views"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ | {"LEDGER_VERIFY_MAX_UNSIGNED_AGE": "0"},
    )
    assert by_setting.returncode == 10, by_setting.stdout
    refused = run(
        "verify",
        "--db",
        str(store.path),
        "--log-key",
        vkey,
        "--max-unsigned-age",
        "-1",
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: --max-unsigned-age -1: must be a number of seconds, 0 or more"
    ]
