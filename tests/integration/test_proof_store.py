"""The stored tree the server proves from (``tlog_leaves``, ``tlog_nodes``,
``tlog_state``) is checked by ``ledger verify --db`` against the tree
recomputed from the events, on both backends: a damaged, missing or extra
row is a located ``proof-store`` finding (exit code 11)."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.service import Ledger
from ledger.service.proofs import CheckedProofs, ProofStoreError
from ledger.service.provenance import provenance_bundle
from ledger.service.sealer import Sealer
from ledger.service.witnessing import WitnessPusher
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog import merkle
from ledger.tlog.keys import Signer
from ledger.tlog.policy import parse_policy
from ledger.verify import Report, verify_store
from ledger.verify.classes import exit_code
from tests.strategies import open_shop_and_sell

ORIGIN = "ledger.test/proof-store"
SIGNER = Signer.generate(ORIGIN)
ZERO = bytes(32)


@pytest.fixture
def sealed(store_url: DatabaseURL) -> Iterator[tuple[Ledger, LogStore, int]]:
    """A store with 20 sales under a signed checkpoint (some 60 leaves)."""
    with Ledger(store_url) as ledger:
        open_shop_and_sell(ledger, 20, quota=50)
        log = LogStore(ledger.event_store.recorder)
        checkpoint = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[SIGNER]).seal()
        assert checkpoint is not None
        yield ledger, log, checkpoint.size


def execute(log: LogStore, statement: str, *parameters: Any) -> None:
    """Edit the log's tables as someone with database access would."""
    with log._cursor(commit=True) as cursor:
        cursor.execute(log._sql(statement), parameters)


def _read_node(log: LogStore, level: int, index: int) -> bytes:
    with log._cursor(commit=False) as cursor:
        cursor.execute(
            log._sql("SELECT hash FROM {nodes} WHERE level = ? AND idx = ?"), (level, index)
        )
        return bytes(cursor.fetchone()["hash"])


def audit(url: DatabaseURL) -> Report:
    return verify_store(url, log_keys=[SIGNER.verifier()])


def proof_findings(report: Report) -> list[Any]:
    return [f for f in report.findings if f.check.startswith("stored-")]


def test_the_untouched_proof_store_verifies(
    sealed: tuple[Ledger, LogStore, int], store_url: DatabaseURL
) -> None:
    report = audit(store_url)
    assert report.ok, [str(f) for f in report.findings]


def test_a_zeroed_node_is_located_and_has_its_own_exit_code(
    sealed: tuple[Ledger, LogStore, int], store_url: DatabaseURL
) -> None:
    """Zeroing (3, 0) breaks the inclusion proof of leaves 8..15 and of
    nothing else the events show: only the proof store's check sees it."""
    _, log, size = sealed
    assert size >= 16
    true = _read_node(log, 3, 0)
    execute(log, "UPDATE {nodes} SET hash = ? WHERE level = 3 AND idx = 0", ZERO)
    broken = sum(1 for index in range(16) if not _proves(log, index, size))
    assert broken == 8  # what a client of the server would have been served today

    report = audit(store_url)
    found = proof_findings(report)
    assert [f.check for f in found] == ["stored-node"], [str(f) for f in report.findings]
    finding = found[0]
    assert "tlog_nodes" in finding.message
    assert "level 3" in finding.message
    assert "index 0" in finding.message
    assert finding.expected == true.hex()
    assert finding.actual == ZERO.hex()
    assert finding.position is not None  # the event whose leaf completed the node
    assert exit_code(f.check for f in report.findings) == 11


def _proves(log: LogStore, index: int, size: int) -> bool:
    checkpoint = log.checkpoint(size)
    assert checkpoint is not None
    leaf, proof = merkle.leaf_and_inclusion_proof(index, size, _Uncached(log))
    try:
        merkle.verify_inclusion(leaf, index, size, proof, checkpoint.root)
    except merkle.ProofError:
        return False
    return True


class _Uncached:
    """The log's nodes as stored now (the store's cache kept what it read)."""

    def __init__(self, log: LogStore) -> None:
        self._log = log

    def subtree(self, level: int, index: int) -> bytes:
        return _read_node(self._log, level, index)


def test_a_damaged_leaf_hash_is_located(
    sealed: tuple[Ledger, LogStore, int], store_url: DatabaseURL
) -> None:
    _, log, _ = sealed
    true = _read_node(log, 0, 5)
    damaged = bytes([true[0] ^ 1]) + true[1:]
    execute(log, "UPDATE {nodes} SET hash = ? WHERE level = 0 AND idx = 5", damaged)
    report = audit(store_url)
    found = proof_findings(report)
    assert [f.check for f in found] == ["stored-node"]
    assert "level 0 index 5" in found[0].message
    assert (found[0].expected, found[0].actual) == (true.hex(), damaged.hex())
    assert exit_code(f.check for f in report.findings) == 11


def test_a_missing_and_an_extra_node_are_located(
    sealed: tuple[Ledger, LogStore, int], store_url: DatabaseURL
) -> None:
    _, log, size = sealed
    execute(log, "DELETE FROM {nodes} WHERE level = 1 AND idx = 3")
    execute(log, "INSERT INTO {nodes} (level, idx, hash) VALUES (?, ?, ?)", 0, size + 4, ZERO)
    report = audit(store_url)
    found = sorted(proof_findings(report), key=lambda f: f.message)
    assert [f.check for f in found] == ["stored-node", "stored-node"], [str(f) for f in found]
    messages = " | ".join(f.message for f in found)
    assert "level 1 index 3" in messages
    assert "missing" in messages
    assert f"level 0 index {size + 4}" in messages
    assert "extra" in messages
    assert exit_code(f.check for f in report.findings) == 11


def test_a_leaf_row_naming_another_event_is_located(
    sealed: tuple[Ledger, LogStore, int], store_url: DatabaseURL
) -> None:
    """Leaf 7 claims to be another aggregate's event: a proof looked up by
    aggregate id and version would then be one of the wrong leaf."""
    _, log, _ = sealed
    execute(log, "UPDATE {leaves} SET version = version + 1000 WHERE leaf_index = 7")
    report = audit(store_url)
    found = proof_findings(report)
    assert [f.check for f in found] == ["stored-leaf"], [str(f) for f in report.findings]
    assert "tlog_leaves" in found[0].message
    assert "leaf 7" in found[0].message
    assert found[0].expected != found[0].actual
    assert exit_code(f.check for f in report.findings) == 11


def test_a_damaged_frontier_is_located(
    sealed: tuple[Ledger, LogStore, int], store_url: DatabaseURL
) -> None:
    """The frontier the next append continues from: damaged, every later
    node the sealer writes is wrong."""
    _, log, size = sealed
    frontier = merkle.CompactRange(size, [ZERO] * size.bit_count())
    execute(log, "UPDATE {state} SET frontier = ? WHERE id = 1", json.dumps(frontier.to_json()))
    report = audit(store_url)
    found = proof_findings(report)
    assert [f.check for f in found] == ["stored-state"], [str(f) for f in report.findings]
    assert "tlog_state" in found[0].message
    assert exit_code(f.check for f in report.findings) == 11


def test_a_hash_of_another_type_and_a_dropped_table_are_findings_not_crashes(
    sealed: tuple[Ledger, LogStore, int], store_url: DatabaseURL
) -> None:
    _, log, _ = sealed
    if store_url.backend == "sqlite":  # only SQLite lets a column hold another type
        execute(log, "UPDATE {nodes} SET hash = 'not a hash' WHERE level = 2 AND idx = 1")
        found = proof_findings(audit(store_url))
        assert [f.check for f in found] == ["stored-node"]
        assert "level 2 index 1" in found[0].message
        assert found[0].actual is not None
        assert "not a hash" in found[0].actual
    execute(log, "DROP TABLE {nodes}")
    report = audit(store_url)
    found = proof_findings(report)
    assert [f.check for f in found] == ["stored-state"], [str(f) for f in report.findings]
    assert "cannot be read" in found[0].message
    assert exit_code(f.check for f in report.findings) == 11


# -- the server's side: no proof leaves unchecked ------------------------------------


def checker(ledger: Ledger) -> tuple[CheckedProofs, LogStore]:
    """A fresh log store (empty node cache) and its checker, as a server has."""
    log = LogStore(ledger.event_store.recorder, create=False)
    return CheckedProofs(log, ledger.event_store), log


def test_every_proof_of_an_intact_store_is_checked_and_served(
    sealed: tuple[Ledger, LogStore, int],
) -> None:
    ledger, _, size = sealed
    proofs, log = checker(ledger)
    latest = log.latest_checkpoint()
    assert latest is not None
    for index in range(size):
        for tree in (size, index + 1, max(index + 1, size // 2)):
            proved = proofs.inclusion(index, tree, latest)
            merkle.verify_inclusion(proved.leaf, index, tree, proved.proof, proved.root)
    for old in range(1, size + 1):
        consistent = proofs.consistency(old, size, latest)
        assert consistent.new_root == latest.root
        merkle.verify_consistency(old, size, consistent.old_root, latest.root, consistent.proof)


def test_a_damaged_or_missing_node_is_refused_and_named(
    sealed: tuple[Ledger, LogStore, int], caplog: pytest.LogCaptureFixture
) -> None:
    ledger, log, size = sealed
    execute(log, "UPDATE {nodes} SET hash = ? WHERE level = 3 AND idx = 0", ZERO)
    execute(log, "DELETE FROM {nodes} WHERE level = 0 AND idx = 20")
    proofs, fresh = checker(ledger)
    latest = fresh.latest_checkpoint()
    assert latest is not None
    with caplog.at_level(logging.ERROR, logger="ledger.proofs"):
        with pytest.raises(ProofStoreError) as zeroed:
            proofs.inclusion(9, size, latest)
        with pytest.raises(ProofStoreError):
            proofs.consistency(8, size, latest)
        with pytest.raises(ProofStoreError) as missing:
            proofs.inclusion(20, size, latest)
    children = merkle.node_hash(_read_node(log, 2, 0), _read_node(log, 2, 1))
    assert zeroed.value.suspects == [
        f"tlog_nodes level 3 index 0 (leaves 0..7) holds {ZERO.hex()}, its children hash to "
        f"{children.hex()}"
    ]
    assert "missing" in str(missing.value)
    # (and the zeroed node beneath (4, 0), which this proof reads: damaged too)
    assert "tlog_nodes level 0 index 20 is missing" in missing.value.suspects
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert "tlog_nodes level 3 index 0" in errors[0].getMessage()
    # Leaves whose proofs do not read the damaged nodes are still served.
    proofs.inclusion(3, size, latest)
    proofs.inclusion(size - 1, size, latest)


def test_a_damaged_leaf_is_named_from_its_event(sealed: tuple[Ledger, LogStore, int]) -> None:
    ledger, log, size = sealed
    execute(log, "UPDATE {nodes} SET hash = ? WHERE level = 0 AND idx = 6", ZERO)
    proofs, fresh = checker(ledger)
    latest = fresh.latest_checkpoint()
    assert latest is not None
    with pytest.raises(ProofStoreError) as refused:
        proofs.inclusion(7, size, latest)  # leaf 6 is its sibling
    assert len(refused.value.suspects) == 1
    assert refused.value.suspects[0].startswith("tlog_nodes level 0 index 6 (leaf 6) holds 00")
    assert "the event's leaf hash is" in refused.value.suspects[0]


def test_a_provenance_bundle_is_never_built_on_a_leaf_row_naming_another_event(
    sealed: tuple[Ledger, LogStore, int],
) -> None:
    """Swap two leaves' rows: each proof is valid for its index, but of the
    other event's leaf; the bundle is refused, not sent."""
    ledger, log, _ = sealed
    unit_leaf = next(
        leaf
        for leaf in log.leaves(0, 1_000)
        if leaf.version == 1
        and leaf.index > 10
        and provenance_of(ledger, leaf.aggregate_id) is not None
    )
    other = log.leaves(unit_leaf.index - 1, unit_leaf.index)[0]
    execute(log, "UPDATE {leaves} SET leaf_index = -1 WHERE leaf_index = ?", other.index)
    execute(
        log, "UPDATE {leaves} SET leaf_index = ? WHERE leaf_index = ?", other.index, unit_leaf.index
    )
    execute(log, "UPDATE {leaves} SET leaf_index = ? WHERE leaf_index = -1", unit_leaf.index)
    proofs, fresh = checker(ledger)
    with pytest.raises(ProofStoreError):
        provenance_bundle(ledger.event_store, fresh, unit_leaf.aggregate_id, proofs)


def provenance_of(ledger: Ledger, aggregate_id: str) -> dict[str, Any] | None:
    try:
        return provenance_bundle(
            ledger.event_store, LogStore(ledger.event_store.recorder, create=False), aggregate_id
        )
    except Exception:
        return None


def test_a_witness_is_never_pushed_a_proof_that_does_not_verify(
    sealed: tuple[Ledger, LogStore, int], caplog: pytest.LogCaptureFixture
) -> None:
    """A verifier that last cosigned size 9 gets a consistency proof from 9,
    which reads the zeroed node: the pusher logs the damage and sends
    nothing (a real HTTP endpoint records what reaches it)."""
    ledger, log, _ = sealed
    execute(log, "UPDATE {nodes} SET hash = ? WHERE level = 3 AND idx = 0", ZERO)
    received: list[bytes] = []

    class Verifier(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(409)  # "I have size 9": the tlog-witness answer
            self.send_header("Content-Type", "text/x.tlog.size")
            self.end_headers()
            self.wfile.write(b"9\n")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Verifier)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        witness = Signer.generate("witness-a", key_type=0x04)
        policy = parse_policy(
            f"log {SIGNER.verifier_key()}\nwitness witness-a "
            f"{witness.verifier_key()} http://127.0.0.1:{server.server_port}\n"
            "quorum witness-a\n"
        )
        proofs, fresh = checker(ledger)
        latest = fresh.latest_checkpoint()
        assert latest is not None
        pusher = WitnessPusher(fresh, policy, proofs=proofs)
        with caplog.at_level(logging.ERROR, logger="ledger.proofs"):
            assert pusher.push(latest) == {"witness-a": False}
        pusher.close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(received) == 1  # the first offer (from size 0, no proof); not the one from 9
    assert received[0].startswith(b"old 0\n")
    assert any("tlog_nodes level 3 index 0" in r.getMessage() for r in caplog.records)
