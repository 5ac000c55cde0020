"""The log's HTTP read API through a real server process, on both backends:
a follower recomputes everything from the entries and checks the proofs."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog import merkle
from ledger.tlog.keys import Verifier
from tests.e2e.conftest import generate_log_key, running_server, wait_for_checkpoint
from tests.strategies import open_shop_and_sell

ORIGIN = "ledger.test/e2e"


@pytest.fixture
def log_key(tmp_path: Path) -> tuple[Path, str]:
    return generate_log_key(tmp_path, ORIGIN)


def test_a_follower_rebuilds_the_tree_and_checks_every_proof(
    store_url: DatabaseURL, log_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, vkey = log_key
    verifier = Verifier.from_vkey(vkey)
    with (
        Ledger(store_url) as ledger,
        running_server(store_url.display(), key, log_file=tmp_path / "server.log") as base,
    ):
        _, sales = open_shop_and_sell(ledger, 20, quota=50, price=250)
        events = int(ledger.event_store.recorder.max_notification_id() or 0)
        first = wait_for_checkpoint(base, verifier, 1)
        checkpoint = wait_for_checkpoint(base, verifier, events)

        leaves: list[bytes] = []
        for start in range(0, checkpoint.size, 7):
            page = httpx.get(
                f"{base}/log/entries",
                params={"start": start, "end": min(start + 7, checkpoint.size)},
            )
            assert page.status_code == 200
            for entry in page.json()["entries"]:
                assert entry["index"] == len(leaves)
                leaf = merkle.leaf_hash(entry["record"].encode())
                assert base64.b64decode(entry["leaf_hash"]) == leaf
                leaves.append(leaf)
        follower = merkle.CompactRange()
        for leaf in leaves:
            follower.append(leaf)
        assert follower.root() == checkpoint.root

        unit = sales[7]["units"][0]["unit_id"]
        proof = httpx.get(
            f"{base}/log/proof/inclusion",
            params={"aggregate_id": unit, "version": 1, "size": checkpoint.size},
        ).json()
        merkle.verify_inclusion(
            leaves[proof["index"]],
            proof["index"],
            checkpoint.size,
            [base64.b64decode(h) for h in proof["proof"]],
            checkpoint.root,
        )
        for index, size in [(i, checkpoint.size) for i in range(checkpoint.size)] + [
            (i, first.size) for i in range(first.size)
        ]:
            proof = httpx.get(
                f"{base}/log/proof/inclusion", params={"index": index, "size": size}
            ).json()
            assert (proof["index"], proof["size"]) == (index, size)
            assert base64.b64decode(proof["leaf_hash"]) == leaves[index]
            assert base64.b64decode(proof["root"]) == (
                checkpoint.root if size == checkpoint.size else first.root
            )
            merkle.verify_inclusion(
                leaves[index],
                index,
                size,
                [base64.b64decode(h) for h in proof["proof"]],
                base64.b64decode(proof["root"]),
            )

        if first.size < checkpoint.size:
            consistency = httpx.get(
                f"{base}/log/proof/consistency", params={"old": first.size, "new": checkpoint.size}
            ).json()
            merkle.verify_consistency(
                first.size,
                checkpoint.size,
                first.root,
                checkpoint.root,
                [base64.b64decode(h) for h in consistency["proof"]],
            )

        for path, params, status in [
            ("/log/entries", {"start": 5, "end": 2}, 422),
            ("/log/entries", {"start": 0, "end": 5000}, 422),
            ("/log/entries", {"start": "x", "end": 2}, 422),
            ("/log/proof/inclusion", {"index": 0, "size": checkpoint.size + 10_000}, 422),
            ("/log/proof/inclusion", {"aggregate_id": "nope", "version": 1}, 404),
            ("/log/proof/inclusion", {"index": checkpoint.size}, 404),  # not in the log
            *(
                [("/log/proof/inclusion", {"index": first.size, "size": first.size}, 422)]
                if first.size < checkpoint.size
                else []
            ),  # in the log, not under that size
            ("/log/proof/consistency", {"old": checkpoint.size + 1, "new": checkpoint.size}, 422),
            ("/log/nowhere", {}, 404),
        ]:
            response = httpx.get(f"{base}{path}", params=params)
            assert response.status_code == status, (path, params, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["status"] == status
            assert problem["type"].startswith("https://ledger.dev/problems/")
            assert problem["detail"]


def test_the_served_policy_names_the_log_key_and_the_given_verifiers(
    sqlite_url: DatabaseURL, log_key: tuple[Path, str], tmp_path: Path
) -> None:
    """GET /log/policy: what the explorer pins. Without --policy, the log's
    own key and quorum none (a bundle verifies with it); with one naming
    only verifiers, the log's key is added to its witnesses and quorum."""
    from ledger.tlog.keys import Signer
    from ledger.tlog.policy import parse_policy
    from ledger.verify.provenance import verify_provenance

    key, vkey = log_key
    with (
        Ledger(sqlite_url) as ledger,
        running_server(sqlite_url.display(), key, log_file=tmp_path / "a.log") as base,
    ):
        _, sales = open_shop_and_sell(ledger, 1)
        served = httpx.get(f"{base}/log/policy")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("text/plain")
        assert served.text == f"log {vkey}\nquorum none\n"
        wait_for_checkpoint(base, Verifier.from_vkey(vkey), 3)
        unit = sales[0]["units"][0]["unit_id"]
        bundle = httpx.get(f"{base}/units/{unit}/provenance").json()
        assert verify_provenance(bundle, parse_policy(served.text)).holder == "b0"
    witness = Signer.generate("w1", key_type=0x04).verifier_key()
    given = tmp_path / "policy.txt"
    given.write_text(f"witness w1 {witness} http://127.0.0.1:9/\nquorum w1\n")
    with running_server(
        sqlite_url.display(), key, log_file=tmp_path / "b.log", policy=given
    ) as base:
        served = httpx.get(f"{base}/log/policy")
        assert served.text == f"log {vkey}\nwitness w1 {witness}\nquorum w1\n"
