"""The global log on both backends: sequencing, checkpoints, proofs."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import threading
from collections.abc import Iterator

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.sealer import Sealer
from ledger.store import logstore
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Signer, Verifier
from ledger.tlog.signed_note import open_note, sign_note
from ledger.verify import export_store
from tests.strategies import good_spec

ORIGIN = "ledger.test/log"


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH, recursively, straight from the definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def ledger(store_url: DatabaseURL) -> Iterator[Ledger]:
    with Ledger(store_url) as opened:
        opened.register_channel("shop", "Shop", 500, idempotency_key="ch")
        yield opened


def trade(ledger: Ledger, n: int, key: str) -> None:
    good = ledger.mint(
        good_spec(title=f"Good {key}", tiers=[{"name": "own", "quota": 100}]),
        idempotency_key=f"mint-{key}",
    )["good_id"]
    for i in range(n):
        ledger.sell(
            good,
            "own",
            buyer=f"b{i}",
            channel="shop",
            quantity=1,
            unit_price=Money(100 + i, "EUR"),
            idempotency_key=f"{key}-{i}",
        )


def records(url: DatabaseURL, tmp_path_name: str) -> list[bytes]:
    from pathlib import Path

    path = Path(tmp_path_name)
    export_store(url, path)
    return [line.rstrip(b"\n") for line in path.read_bytes().splitlines()]


def test_every_event_becomes_a_leaf_under_a_signed_checkpoint(
    ledger: Ledger, store_url: DatabaseURL, signer: Signer, tmp_path: object
) -> None:
    trade(ledger, 12, "a")
    log = LogStore(ledger.event_store.recorder)
    sealer = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[signer])
    sealed = sealer.seal()
    assert sealed is not None
    exported = records(store_url, f"{tmp_path}/export.jsonl")
    assert sealed.size == len(exported)
    assert sealed.root == reference_root(exported)
    note, verified = open_note(sealed.note, [Verifier.from_vkey(signer.verifier_key())])
    assert [v.name for v in verified] == [ORIGIN]
    assert Checkpoint.parse(note.text) == Checkpoint(ORIGIN, sealed.size, sealed.root)
    assert sealer.seal() is None  # nothing new: no new checkpoint

    for index in random.Random(1).sample(range(sealed.size), k=10):
        proof = merkle.inclusion_proof(index, sealed.size, log)
        merkle.verify_inclusion(
            merkle.leaf_hash(exported[index]), index, sealed.size, proof, sealed.root
        )


def test_a_grown_log_is_provably_consistent_with_its_past(
    ledger: Ledger, signer: Signer, tmp_path: object, store_url: DatabaseURL
) -> None:
    log = LogStore(ledger.event_store.recorder)
    sealer = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[signer])
    trade(ledger, 5, "a")
    first = sealer.seal()
    trade(ledger, 9, "b")
    second = sealer.seal()
    assert first is not None
    assert second is not None
    assert second.size > first.size
    proof = merkle.consistency_proof(first.size, second.size, log)
    merkle.verify_consistency(first.size, second.size, first.root, second.root, proof)
    assert [c.size for c in log.checkpoints()] == [first.size, second.size]
    assert second.root == reference_root(records(store_url, f"{tmp_path}/e.jsonl"))


def test_concurrent_sealers_build_one_tree(
    store_url: DatabaseURL, signer: Signer, tmp_path: object
) -> None:
    with Ledger(store_url) as writer:
        writer.register_channel("shop", "Shop", 500, idempotency_key="ch")
        done = threading.Event()

        failures: list[BaseException] = []

        def seal_continuously(own: Ledger) -> None:
            try:
                sealer = Sealer(
                    own.event_store,
                    LogStore(own.event_store.recorder),
                    origin=ORIGIN,
                    signers=[signer],
                )
                while not done.is_set():
                    sealer.seal()
                sealer.seal()
            except BaseException as error:
                failures.append(error)
            finally:
                own.close()

        sealers = [
            threading.Thread(target=seal_continuously, args=(Ledger(store_url),)) for _ in range(2)
        ]
        for thread in sealers:
            thread.start()
        trade(writer, 30, "c")
        done.set()
        for thread in sealers:
            thread.join(timeout=60)
        assert not failures, failures
        log = LogStore(writer.event_store.recorder)
        Sealer(writer.event_store, log, origin=ORIGIN, signers=[signer]).seal()
        exported = records(store_url, f"{tmp_path}/e.jsonl")
        latest = log.latest_checkpoint()
        assert latest is not None
        assert latest.size == len(exported)
        assert latest.root == reference_root(exported)
        sizes = [c.size for c in log.checkpoints()]
        for old, new in itertools.pairwise(sizes):
            old_cp, new_cp = log.checkpoint(old), log.checkpoint(new)
            assert old_cp is not None
            assert new_cp is not None
            merkle.verify_consistency(
                old, new, old_cp.root, new_cp.root, merkle.consistency_proof(old, new, log)
            )


def test_the_auditor_checks_each_checkpoint_against_the_events(
    ledger: Ledger, store_url: DatabaseURL, signer: Signer
) -> None:
    from ledger.verify import verify_store

    log = LogStore(ledger.event_store.recorder)
    sealer = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[signer])
    trade(ledger, 4, "a")
    sealer.seal()
    trade(ledger, 3, "b")
    latest = sealer.seal()
    assert latest is not None
    trusted = [Verifier.from_vkey(signer.verifier_key())]
    report = verify_store(store_url, log_keys=trusted)
    assert report.ok, report.first
    assert report.log is not None
    assert report.log["verified"] == 2
    assert report.log["latest_size"] == latest.size
    assert report.log["signers"] == [ORIGIN]

    stranger = Verifier.from_vkey(Signer.generate(ORIGIN).verifier_key())
    untrusted = verify_store(store_url, log_keys=[stranger])
    assert {f.check for f in untrusted.findings} == {"checkpoint-signature"}

    # A checkpoint signed over a root that is not the events' root is caught.
    forged_root = bytes(32)
    forged = sign_note(Checkpoint(ORIGIN, latest.size + 1, forged_root).body(), [signer])
    log.add_checkpoint(latest.size + 1, forged_root, forged, "2026-01-01T00:00:00.000000Z")
    trade(ledger, 1, "c")  # the store now has more events than that size
    lied = verify_store(store_url, log_keys=trusted)
    assert [f.check for f in lied.findings] == ["checkpoint-root"]
    assert lied.findings[0].actual == base64.b64encode(forged_root).decode()


def test_the_auditor_checks_the_quorum_and_remembers_what_it_verified(
    ledger: Ledger, store_url: DatabaseURL, signer: Signer
) -> None:
    from ledger.tlog.cosignature import cosign
    from ledger.tlog.policy import parse_policy
    from ledger.tlog.signed_note import parse_note
    from ledger.verify import verify_store
    from ledger.verify.classes import exit_code

    witnesses = {name: Signer.generate(name, key_type=0x04) for name in ("w1", "w2", "w3")}
    policy = parse_policy(
        f"log {signer.verifier_key()}\n"
        + "".join(f"witness {n} {w.verifier_key()}\n" for n, w in witnesses.items())
        + "group all-of-us 2 w1 w2 w3\nquorum all-of-us\n"
    )
    log = LogStore(ledger.event_store.recorder)
    trade(ledger, 3, "a")
    sealed = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[signer]).seal()
    assert sealed is not None
    body = parse_note(sealed.note).text

    def cosigned_by(*names: str) -> None:
        for name in names:
            line = cosign(body, witnesses[name], 1_800_000_000).line()
            log.add_cosignature(sealed.size, name, line, "2026-11-22T00:00:00.000000Z")

    cosigned_by("w2")
    short = verify_store(store_url, policy=policy)
    assert [f.check for f in short.findings] == ["quorum"]
    assert exit_code(f.check for f in short.findings) == 6
    cosigned_by("w3")
    met = verify_store(store_url, policy=policy)
    assert met.ok, met.first
    assert met.log is not None
    assert (met.log["cosigners"], met.log["quorum"]) == (["w2", "w3"], "met")

    remembered = (sealed.size, base64.b64encode(sealed.root).decode())
    assert verify_store(store_url, remembered=remembered).ok
    other = verify_store(store_url, remembered=(sealed.size, "A" * 43 + "="))
    assert [f.check for f in other.findings] == ["split-view"]
    assert exit_code(f.check for f in other.findings) == 7
    beyond = verify_store(store_url, remembered=(sealed.size + 10_000, remembered[1]))
    assert [f.check for f in beyond.findings] == ["rollback"]


def test_key_rotation_old_and_new_keys_sign_side_by_side(
    ledger: Ledger, store_url: DatabaseURL, signer: Signer
) -> None:
    from ledger.verify import verify_store

    successor = Signer.generate(ORIGIN)
    log = LogStore(ledger.event_store.recorder)
    trade(ledger, 2, "a")
    Sealer(ledger.event_store, log, origin=ORIGIN, signers=[signer]).seal()
    trade(ledger, 2, "b")
    both = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[signer, successor]).seal()
    assert both is not None
    for key in (signer, successor):
        _, verified = open_note(both.note, [key.verifier()])
        assert [v.key_id for v in verified] == [key.key_id]
    # An auditor who trusts both keys verifies the whole history; one who
    # knows only the successor sees the older checkpoint unsigned by it.
    assert verify_store(store_url, log_keys=[signer.verifier(), successor.verifier()]).ok
    only_new = verify_store(store_url, log_keys=[successor.verifier()])
    assert {f.check for f in only_new.findings} == {"checkpoint-signature"}


def test_the_store_reads_a_proofs_nodes_at_once(
    ledger: Ledger,
    signer: Signer,
    tmp_path: object,
    store_url: DatabaseURL,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``LogStore.inclusion`` (what the API serves) and ``subtrees`` on a real
    store: the same leaf, path and root as one read per node, cold or cached."""
    trade(ledger, 30, "a")
    sealed = Sealer(
        ledger.event_store, LogStore(ledger.event_store.recorder), origin=ORIGIN, signers=[signer]
    ).seal()
    assert sealed is not None
    size = sealed.size
    exported = records(store_url, f"{tmp_path}/export.jsonl")
    for cache in (0, 10_000):  # every node read from the database; then mostly cached
        log = LogStore(ledger.event_store.recorder, node_cache=cache)
        for index in [0, 1, size // 2, size - 2, size - 1]:
            leaf, proof, root = log.inclusion(index, size)
            assert leaf == merkle.leaf_hash(exported[index])
            assert root == sealed.root
            assert proof == merkle.inclusion_proof(index, size, _OneByOne(log))
            merkle.verify_inclusion(leaf, index, size, proof, root)
        for old in (1, size // 3, size - 1):
            assert merkle.consistency_proof(old, size, log) == merkle.consistency_proof(
                old, size, _OneByOne(log)
            )
            assert log.root(old) == merkle.root(old, _OneByOne(log)) == log.root(old)
    # More keys than one query takes, repeated keys, and a key not in the tree.
    monkeypatch.setattr(logstore, "_NODES_PER_QUERY", 7)
    log = LogStore(ledger.event_store.recorder, node_cache=0)
    keys = [(0, i) for i in range(size)] * 2 + [(1, i) for i in range(size // 2)]
    nodes = log.subtrees(keys)
    assert set(nodes) == set(keys)
    assert all(nodes[key] == log.subtree(*key) for key in keys)
    assert [nodes[(0, i)] for i in range(size)] == [merkle.leaf_hash(r) for r in exported]
    with pytest.raises(LookupError, match=f"level 0 index {size}"):
        log.subtrees([(0, 0), (0, size)])
    with pytest.raises(LookupError):
        log.inclusion(size, size + 1)
    with pytest.raises(LookupError):
        log.root(size + 1)


class _OneByOne:
    """A store seen as a plain ``SubtreeSource``: one read per node."""

    def __init__(self, log: LogStore) -> None:
        self._log = log

    def subtree(self, level: int, index: int) -> bytes:
        return self._log.subtree(level, index)


def test_sealing_in_the_same_process_never_stalls_the_writers(
    ledger: Ledger, signer: Signer, store_url: DatabaseURL, tmp_path: object
) -> None:
    """A sealer sharing the writers' connection pool (as `ledger serve`'s
    does) used to read new events while holding SQLite's writer lock, from a
    second pooled connection, while writers waiting for the lock held the
    pool's other slots: both sides stalled until the pool timed out and a
    write failed. Now the sealer reads before it takes the lock."""
    sealer = Sealer(
        ledger.event_store, LogStore(ledger.event_store.recorder), origin=ORIGIN, signers=[signer]
    )
    done = threading.Event()
    failures: list[BaseException] = []

    def seal() -> None:
        while not done.is_set():
            try:
                sealer.seal()
            except BaseException as error:
                failures.append(error)

    def write(t: int) -> None:
        try:
            trade(ledger, 40, f"w{t}")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=seal) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for thread in threads + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures[:3]
    sealer.seal()
    # Every event is sequenced. (Not max_notification_id: the writers race to
    # open the same buyers' accounts, and on PostgreSQL a lost race leaves a
    # gap in the positions.)
    assert len(records(store_url, f"{tmp_path}/all.jsonl")) == sealer.sequence()
