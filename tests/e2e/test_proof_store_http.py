"""A damaged stored tree never gives a bad proof, through a real server on
both backends: every proof the server sends verifies against its signed
checkpoint; a proof that would read the damaged node is a 500
``proof-store-damaged`` problem instead, and the server logs which node is
damaged. ``ledger verify --db`` then exits 11 naming it."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog import merkle
from ledger.tlog.keys import Verifier
from tests.e2e.conftest import generate_log_key, running_server, wait_for_checkpoint
from tests.strategies import open_shop_and_sell

ORIGIN = "ledger.test/proof-store"
DAMAGED = (3, 0)  # leaves 0..7: the sibling in the path of leaves 8..15


@pytest.fixture
def log_key(tmp_path: Path) -> tuple[Path, str]:
    return generate_log_key(tmp_path, ORIGIN)


def zero_node(log: LogStore, level: int, index: int) -> None:
    with log._cursor(commit=True) as cursor:
        cursor.execute(
            log._sql("UPDATE {nodes} SET hash = ? WHERE level = ? AND idx = ?"),
            (bytes(32), level, index),
        )


def swap_leaf_rows(log: LogStore, one: int, other: int) -> None:
    with log._cursor(commit=True) as cursor:
        for source, target in ((one, -1), (other, one), (-1, other)):
            cursor.execute(
                log._sql("UPDATE {leaves} SET leaf_index = ? WHERE leaf_index = ?"),
                (target, source),
            )


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == "https://ledger.dev/problems/proof-store-damaged"
    assert "proof" not in problem


def test_a_damaged_node_gives_no_bad_proof_and_is_reported(
    store_url: DatabaseURL, log_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, vkey = log_key
    verifier = Verifier.from_vkey(vkey)
    server_log = tmp_path / "server.log"
    with Ledger(store_url) as ledger:
        # Everything is sold before the server starts: its first checkpoint
        # covers it all, and it has read no node below that checkpoint's
        # frontier (it would keep a good copy in its cache).
        _, sales = open_shop_and_sell(ledger, 20, quota=50, price=250)
        events = int(ledger.event_store.recorder.max_notification_id() or 0)
        log = LogStore(ledger.event_store.recorder, create=False)
        with running_server(store_url.display(), key, log_file=server_log) as base:
            checkpoint = wait_for_checkpoint(base, verifier, events)
            size = checkpoint.size
            assert size >= 16
            zero_node(log, *DAMAGED)

            served = refused = 0
            for index in range(size):
                response = httpx.get(f"{base}/log/proof/inclusion", params={"index": index})
                if DAMAGED in merkle.subtrees_read(inclusion=(index, size)):
                    assert_refused(response)
                    refused += 1
                    continue
                assert response.status_code == 200, response.text
                body = response.json()
                merkle.verify_inclusion(
                    b64d(body["leaf_hash"]),
                    index,
                    size,
                    [b64d(h) for h in body["proof"]],
                    checkpoint.root,
                )
                served += 1
            assert refused == 8  # leaves 8..15: today the server sends 8 failing proofs
            assert served == size - 8

            # By aggregate id and version, and for an earlier size.
            leaf = log.leaves(9, 10)[0]
            assert_refused(
                httpx.get(
                    f"{base}/log/proof/inclusion",
                    params={"aggregate_id": leaf.aggregate_id, "version": leaf.version},
                )
            )
            assert_refused(
                httpx.get(f"{base}/log/proof/inclusion", params={"index": 2, "size": 12})
            )

            # A tlog_leaves row naming another event: its proof by index is
            # still right (the nodes are), but looked up by the event it
            # names it would prove another event's leaf.
            first, second = log.leaves(40, 42)
            swap_leaf_rows(log, first.index, second.index)
            assert_refused(
                httpx.get(
                    f"{base}/log/proof/inclusion",
                    params={"aggregate_id": first.aggregate_id, "version": first.version},
                )
            )
            by_index = httpx.get(f"{base}/log/proof/inclusion", params={"index": 40})
            assert by_index.status_code == 200
            swap_leaf_rows(log, first.index, second.index)  # put back

            for old in range(1, size + 1):
                response = httpx.get(f"{base}/log/proof/consistency", params={"old": old})
                if DAMAGED in merkle.subtrees_read(root_of=old, consistency=(old, size)):
                    assert_refused(response)
                    continue
                assert response.status_code == 200, (old, response.text)
                body = response.json()
                assert b64d(body["new_root"]) == checkpoint.root
                merkle.verify_consistency(
                    old,
                    size,
                    b64d(body["old_root"]),
                    checkpoint.root,
                    [b64d(h) for h in body["proof"]],
                )

            # A provenance bundle is built on the same proofs.
            damaged_unit = None
            for sale in sales:
                unit = sale["units"][0]["unit_id"]
                unit_leaf = log.leaf_of(unit, 1)
                assert unit_leaf is not None
                response = httpx.get(f"{base}/units/{unit}/provenance")
                if 8 <= unit_leaf.index < 16:
                    assert_refused(response)
                    damaged_unit = unit
                else:
                    assert response.status_code == 200, response.text

        logged = server_log.read_text()
        assert "proof store damaged" in logged
        assert "tlog_nodes level 3 index 0" in logged  # the node, named for the operator

    # The operator's own export of a bundle refuses too, in one line.
    assert damaged_unit is not None
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "proof",
            "export",
            "--db",
            store_url.display(),
            "--unit",
            damaged_unit,
            "--out",
            str(tmp_path / "bundle.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode != 0
    assert "does not verify" in exported.stderr
    assert "Traceback" not in exported.stderr
    assert not (tmp_path / "bundle.json").exists()

    verified = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", "--db", store_url.display(), "--no-views"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 11, verified.stdout + verified.stderr
    assert "tlog_nodes" in verified.stdout
    assert "level 3 index 0" in verified.stdout
