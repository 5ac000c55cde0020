"""A verifier node whose ledger shows less than it cosigned raises an alarm.

A ledger never removes a checkpoint: a latest checkpoint smaller than the
one the node cosigned (``rollback``), or none at all
(``checkpoint-withdrawn``), means the store was rolled back or its
checkpoints deleted. Here the operator restores older backups of the store
and serves them with the log key, as usual.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Signer
from ledger.tlog.signed_note import open_note
from ledger.verifier_node.node import Alarm, VerifierNode
from tests.e2e.conftest import running_server
from tests.strategies import good_spec

ORIGIN = "ledger.test/withdrawn"


def signed_size(base: str, log: Signer, at_least: int) -> int:
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(f"{base}/log/checkpoint")
        if response.status_code == 200:
            note, _ = open_note(response.text, [log.verifier()])
            size = Checkpoint.parse(note.text).size
            if size >= at_least:
                return size
        assert time.monotonic() < deadline
        time.sleep(0.05)


def backup(url: DatabaseURL, to: Path) -> None:
    with sqlite3.connect(url.path) as source, sqlite3.connect(to) as target:
        source.backup(target)


def restore(url: DatabaseURL, source: Path) -> None:
    with sqlite3.connect(source) as old, sqlite3.connect(url.path) as live:
        old.backup(live)


def test_a_ledger_that_withdraws_cosigned_checkpoints_alarms_its_verifiers(
    sqlite_url: DatabaseURL, tmp_path: Path
) -> None:
    log = Signer.generate(ORIGIN)
    (tmp_path / "log.key").write_text(log.to_private_text() + "\n")
    nodes = {
        name: VerifierNode(
            ledger_url="",
            signer=Signer.generate(name, key_type=0x04),
            log_keys=[log.verifier()],
            origin=ORIGIN,
            state_dir=tmp_path / name,
        )
        for name in ("a", "b")
    }
    with Ledger(sqlite_url) as ledger:
        backup(sqlite_url, tmp_path / "empty.db")
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(), idempotency_key="m")["good_id"]

        def sell(key: str) -> int:
            ledger.sell(
                good,
                "own",
                buyer=key,
                channel="shop",
                quantity=1,
                unit_price=Money(10, "EUR"),
                idempotency_key=key,
            )
            return int(ledger.event_store.recorder.max_notification_id() or 0)

        with running_server(sqlite_url.display(), tmp_path / "log.key") as base:
            for node in nodes.values():
                node.ledger_url = base
            first = signed_size(base, log, sell("s1"))
            for node in nodes.values():
                node.poll_once()
            backup(sqlite_url, tmp_path / "first.db")
            second = signed_size(base, log, sell("s2"))
            nodes["a"].poll_once()
    assert (nodes["a"].state.size, nodes["b"].state.size) == (second, first)

    restore(sqlite_url, tmp_path / "first.db")
    with running_server(sqlite_url.display(), tmp_path / "log.key") as base:
        for node in nodes.values():
            node.ledger_url = base
        with pytest.raises(Alarm):
            nodes["a"].poll_once()
        alarm = nodes["a"].state.alarm
        assert alarm is not None
        assert alarm["check"] == "rollback"
        assert (alarm["expected"], alarm["actual"]) == (str(second), str(first))
        nodes["b"].poll_once()  # shown what it cosigned: nothing is wrong
        assert nodes["b"].state.alarm is None

    restore(sqlite_url, tmp_path / "empty.db")
    with running_server(sqlite_url.display(), tmp_path / "log.key") as base:
        nodes["b"].ledger_url = base
        assert httpx.get(f"{base}/log/checkpoint").status_code == 404
        with pytest.raises(Alarm):
            nodes["b"].poll_once()
        alarm = nodes["b"].state.alarm
        assert alarm is not None
        assert alarm["check"] == "checkpoint-withdrawn"
    for node in nodes.values():
        node.close()
