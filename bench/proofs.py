"""Inclusion proofs at 1,000,000 leaves: ours against pymerkle's SQLite tree,
then p50/p99 of ``GET /log/proof/inclusion`` over HTTP.

    .venv/bin/pip install -q -e '.[bench]'
    .venv/bin/python -m bench.proofs [--leaves 1000000] [--proofs 10000]
        [--pymerkle-seconds 60]

* **The log** is built the way the ledger stores it, in a fresh SQLite store:
  ``LogStore.append`` (what the sealer calls) takes the leaf hashes in
  batches of 100,000 instead of a million sealed events -- ``tlog_leaves``
  rows, every perfect subtree in ``tlog_nodes``, the frontier in
  ``tlog_state`` -- and a checkpoint of the whole tree is signed, so the API
  serves proofs against it. Leaf ``i``'s data is a short JSON record of its
  own; its leaf hash is ``SHA-256(0x00 || data)``.
* **pymerkle** 6.1.0's ``SqliteTree`` gets the same data (``append_entries``,
  its bulk path) in a file beside the store. Its defaults (``sha256``,
  security on) are RFC 6962's encoding exactly -- leaf ``SHA-256(0x00 ||
  data)``, node ``SHA-256(0x01 || l || r)``, the same tree shape -- so both
  roots must be equal, and are checked to be (and its paths are ours: our
  verifier is run on them too). What differs is storage: pymerkle keeps
  only the entries and leaf hashes (indices from 1), recomputes every
  subtree under 128 leaves from leaf rows, keeps larger ones in an
  in-memory LRU cache (1 GiB), and runs ``SELECT COUNT(*)`` over its leaves
  for every proof; we keep every perfect subtree's hash in ``tlog_nodes``.
* **Proofs/s, in-process**: each side proves the same random leaves against
  the whole tree, after one untimed root computation (pymerkle's
  ``get_state`` fills its subroot cache with the large subtrees; ours opens
  a cold store as a server does). Ours is what the route computes: the
  latest checkpoint, then the leaf hash and the audit path, verified against
  the checkpoint's signed root before it would be sent
  (``ledger.service.proofs.CheckedProofs.inclusion``). pymerkle's is
  ``prove_inclusion(index, size)`` (which counts its leaves first, and gives
  no root). pymerkle gets at most
  ``--pymerkle-seconds`` (it proves a few dozen a second, so 10,000 would
  take minutes); its rate is over the proofs it finished. Every proof is
  then verified: ours with ``ledger.tlog.merkle.verify_inclusion``,
  pymerkle's with its own ``verify_inclusion``, each against the leaf hash
  recomputed from the data and the root of its own tree.
* **HTTP**: ``ledger serve`` runs on the store in a subprocess (uvicorn, one
  worker, the sealer, views and hold sweeper running as in production; its
  access log goes to a file). One keep-alive ``http.client`` connection
  sends ``--proofs`` sequential ``GET /log/proof/inclusion?index=i`` for
  random ``i``, each followed by a ``GET /healthz`` (the baseline: the
  cheapest route, one small read), after 200 untimed of each. Latency is
  from sending the request to the last byte of the body; each proof's
  JSON is verified afterwards. Then the server's CPU time per request
  (``/proc/<pid>/stat``) over up to 3,000 ``/healthz`` in a row and as
  many proofs of other random leaves: what a request costs the server,
  which moves less with the machine's load than latency does.

Figures only.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Figure, free_port, fresh_store, main_of, percentile, served, wait_quiet
from ledger.service import Ledger
from ledger.service.proofs import CheckedProofs
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Signer
from ledger.tlog.signed_note import sign_note

try:
    import pymerkle  # type: ignore[import-untyped]
except ImportError:  # the bench extra: .venv/bin/pip install -e '.[bench]'
    pymerkle = None

ORIGIN = "bench.example/log"
BATCH = 100_000
WARMUP = 200


def entry(index: int) -> bytes:
    """Leaf ``index``'s data: a short record of its own."""
    return b'{"bench":"proofs","leaf":%d}' % index


# --- the two trees ---------------------------------------------------------------


def build_log(url: DatabaseURL, leaves: int, signer: Signer) -> tuple[bytes, float]:
    """Append ``leaves`` leaves as the sealer would, and sign a checkpoint of
    them; returns the root and the seconds it took."""
    started = time.perf_counter()
    with Ledger(url) as ledger:
        log = LogStore(ledger.event_store.recorder)

        def read_new(last_position: int, limit: int) -> list[tuple[int, str, int, bytes]]:
            # Leaf i is "event" position i + 1 of its own aggregate, version 1.
            end = min(leaves, last_position + limit)
            return [
                (position, f"bench-{position - 1}", 1, merkle.leaf_hash(entry(position - 1)))
                for position in range(last_position + 1, end + 1)
            ]

        while log.append(read_new, BATCH):
            pass
        size = log.size()
        assert size == leaves, (size, leaves)
        root = merkle.root(size, log)
        note = sign_note(Checkpoint(ORIGIN, size, root).body(), [signer])
        log.add_checkpoint(size, root, note, "2026-01-01T00:00:00.000000Z")
    return root, time.perf_counter() - started


def build_pymerkle(path: Path, leaves: int) -> tuple[Any, float]:
    if pymerkle is None:
        raise SystemExit("pymerkle is needed: .venv/bin/pip install -e '.[bench]'")
    started = time.perf_counter()
    tree = pymerkle.SqliteTree(str(path), algorithm="sha256")  # security on: RFC 6962 prefixes
    tree.append_entries([entry(i) for i in range(leaves)])
    return tree, time.perf_counter() - started


# --- in-process proofs -------------------------------------------------------------


def prove_ours(
    proofs: CheckedProofs, log: LogStore, index: int
) -> tuple[bytes, list[bytes], bytes]:
    """What ``GET /log/proof/inclusion?index=`` computes: the latest signed
    checkpoint, then the leaf hash and the path, verified against its root."""
    latest = log.latest_checkpoint()
    assert latest is not None
    checked = proofs.inclusion(index, latest.size, latest)
    return checked.leaf, checked.proof, checked.root


def ours_in_process(
    url: DatabaseURL, indices: list[int], size: int, root: bytes
) -> tuple[float, int]:
    """Proofs/s of our store on a cold store, and how many proofs verified."""
    with Ledger(url) as ledger:
        log = LogStore(ledger.event_store.recorder, create=False)
        checked = CheckedProofs(log, ledger.event_store)
        merkle.root(size, log)  # untimed, like pymerkle's get_state
        started = time.perf_counter()
        proofs = [prove_ours(checked, log, index) for index in indices]
        elapsed = time.perf_counter() - started
    verified = 0
    for index, (leaf, path, proved_root) in zip(indices, proofs, strict=True):
        assert leaf == merkle.leaf_hash(entry(index))
        assert proved_root == root
        merkle.verify_inclusion(leaf, index, size, path, root)
        verified += 1
    return len(indices) / elapsed, verified


def pymerkle_in_process(
    tree: Any, indices: list[int], size: int, seconds: float
) -> tuple[float, int, int, bytes, int]:
    """pymerkle's proofs/s over the proofs it finished within ``seconds``;
    also how many, how many verified, its root, and how many of its paths
    our own verifier accepts as they are."""
    root: bytes = tree.get_state(size)  # untimed: fills its subroot cache
    proofs = []
    started = time.perf_counter()
    deadline = started + seconds
    for index in indices:
        proofs.append(tree.prove_inclusion(index + 1, size))  # pymerkle counts from 1
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - started
    verified = ours_accept = 0
    for index, proof in zip(indices, proofs, strict=False):
        leaf = tree.hash_buff(entry(index))
        pymerkle.verify_inclusion(leaf, root, proof)
        verified += 1
        try:  # path[0] is the leaf itself, then the siblings from the leaf up
            merkle.verify_inclusion(leaf, index, size, proof.path[1:], root)
            ours_accept += 1
        except merkle.ProofError:
            pass
    return len(proofs) / elapsed, len(proofs), verified, root, ours_accept


# --- over HTTP -------------------------------------------------------------------------


@contextmanager
def ledger_served(url: DatabaseURL, signer: Signer) -> Iterator[tuple[int, int]]:
    """``ledger serve`` on ``url`` in a subprocess; yields its port and pid."""
    directory = Path(url.path).parent
    key = directory / "log.key"
    key.write_text(signer.to_private_text() + "\n")
    port = free_port()
    args = [
        "-m",
        "ledger.cli",
        "serve",
        "--db",
        url.display(),
        "--log-key",
        str(key),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    with served(
        args,
        f"http://127.0.0.1:{port}",
        "/readyz",
        directory / "server.log",
        cwd=directory,
        env=env,
    ) as server:
        yield port, server.pid


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
    return elapsed, body


def server_cpu(port: int, pid: int, paths: list[str]) -> float:
    """CPU seconds (user + system) the server spent per request on ``paths``,
    sent in a row: the cost of a route, less sensitive to the machine's load
    than its latency. Linux (``/proc``)."""

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    before = cpu()
    for path in paths:
        _get(conn, path)
    spent = cpu() - before
    conn.close()
    return spent / len(paths)


def over_http(
    port: int, indices: list[int], size: int, root: bytes
) -> tuple[list[float], list[float], int]:
    """Latencies (s) of the proofs and of /healthz, and how many proofs verified."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rng = random.Random(7)
    for _ in range(WARMUP):
        _get(conn, f"/log/proof/inclusion?index={rng.randrange(size)}")
        _get(conn, "/healthz")
    proof_times, health_times, bodies = [], [], []
    for index in indices:
        elapsed, body = _get(conn, f"/log/proof/inclusion?index={index}")
        proof_times.append(elapsed)
        bodies.append(body)
        elapsed, _ = _get(conn, "/healthz")
        health_times.append(elapsed)
    conn.close()
    verified = 0
    for index, body in zip(indices, bodies, strict=True):
        answer = json.loads(body)
        leaf = base64.b64decode(answer["leaf_hash"])
        assert (answer["index"], answer["size"]) == (index, size)
        assert leaf == merkle.leaf_hash(entry(index))
        assert base64.b64decode(answer["root"]) == root
        merkle.verify_inclusion(
            leaf, index, size, [base64.b64decode(h) for h in answer["proof"]], root
        )
        verified += 1
    return proof_times, health_times, verified


# --- the run -----------------------------------------------------------------------------


def run(options: argparse.Namespace) -> list[Figure]:
    leaves, count = options.leaves, options.proofs
    rng = random.Random(options.seed)
    indices = [rng.randrange(leaves) for _ in range(count)]
    signer = Signer.generate(ORIGIN)
    group = f"inclusion proofs, {leaves:,} leaves, SQLite, in-process"
    http_group = f"GET over HTTP, {leaves:,} leaves, 1 keep-alive client"
    with fresh_store("sqlite", "proofs") as url:
        root, log_seconds = build_log(url, leaves, signer)
        print(f"log: {leaves:,} leaves in {log_seconds:.1f} s", flush=True)
        tree, pm_seconds = build_pymerkle(Path(url.path).with_name("pymerkle.db"), leaves)
        print(f"pymerkle: {leaves:,} leaves in {pm_seconds:.1f} s", flush=True)

        quiet = wait_quiet()
        pm_rate, pm_done, pm_verified, pm_root, ours_accept = pymerkle_in_process(
            tree, indices, leaves, options.pymerkle_seconds
        )
        tree.con.close()
        roots = "roots equal" if pm_root == root else "ROOTS DIFFER"
        pymerkle_figure = Figure(
            group,
            "pymerkle 6.1.0 SqliteTree",
            pm_rate,
            "proofs/s",
            note=f"{pm_done:,} of {count:,} proofs in its {options.pymerkle_seconds:g} s, "
            f"{pm_verified:,} verify; {roots}; {ours_accept:,} of its paths pass our "
            f"verifier as they are; CPU {quiet:.0%} busy before",
        )
        quiet = wait_quiet()
        ours_rate, ours_verified = ours_in_process(url, indices, leaves, root)
        ours_figure = Figure(
            group,
            "ledger LogStore (the route's reads, hashing and check)",
            ours_rate,
            "proofs/s",
            baseline=pymerkle_figure,
            target=">= 10x",
            met=ours_rate >= 10 * pm_rate,
            note=f"{count:,} proofs, {ours_verified:,} verify; CPU {quiet:.0%} busy before",
        )

        with ledger_served(url, signer) as (port, pid):
            quiet = wait_quiet()
            proof_times, health_times, http_verified = over_http(port, indices, leaves, root)
            # Then the server's CPU per request, each route on its own (the
            # proofs on leaves not asked before: no warmer cache than above).
            cpu_rng = random.Random(options.seed + 1)
            cpu_paths = [
                f"/log/proof/inclusion?index={cpu_rng.randrange(leaves)}"
                for _ in range(min(count, 3_000))
            ]
            health_cpu = server_cpu(port, pid, ["/healthz"] * len(cpu_paths))
            proof_cpu = server_cpu(port, pid, cpu_paths)
        health_p50 = Figure(http_group, "/healthz p50", percentile(health_times, 0.5) * 1e3, "ms")
        health_p99 = Figure(
            http_group,
            "/healthz p99",
            percentile(health_times, 0.99) * 1e3,
            "ms",
            note=f"{count:,} requests, interleaved with the proofs",
        )
        proof_p50 = Figure(
            http_group,
            "/log/proof/inclusion p50",
            percentile(proof_times, 0.5) * 1e3,
            "ms",
            baseline=health_p50,
        )
        p99 = percentile(proof_times, 0.99) * 1e3
        proof_p99 = Figure(
            http_group,
            "/log/proof/inclusion p99",
            p99,
            "ms",
            baseline=health_p99,
            target="<= 2 ms",
            met=p99 <= 2.0,
            note=f"{count:,} random leaves, {http_verified:,} proofs verify; "
            f"max {max(proof_times) * 1e3:.1f} ms; CPU {quiet:.0%} busy "
            "before",
        )
    health_cpu_figure = Figure(
        http_group,
        "/healthz server CPU",
        health_cpu * 1e3,
        "ms/request",
        note=f"{len(cpu_paths):,} requests in a row",
    )
    proof_cpu_figure = Figure(
        http_group,
        "/log/proof/inclusion server CPU",
        proof_cpu * 1e3,
        "ms/request",
        baseline=health_cpu_figure,
        note=f"{len(cpu_paths):,} random leaves in a row",
    )
    return [
        pymerkle_figure,
        ours_figure,
        health_p50,
        health_p99,
        proof_p50,
        proof_p99,
        health_cpu_figure,
        proof_cpu_figure,
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument(
        "--proofs", type=int, default=10_000, help="random leaves proved, in-process and over HTTP"
    )
    parser.add_argument(
        "--pymerkle-seconds", type=float, default=60.0, help="time box for pymerkle's proofs"
    )
    parser.add_argument("--seed", type=int, default=6)


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
