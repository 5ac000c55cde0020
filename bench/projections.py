"""How far behind the store the views run, what following costs the writers,
and how fast the views rebuild -- on SQLite and on PostgreSQL.

    .venv/bin/python bench/projections.py [--backend sqlite|postgres|both]
        [--sales N] [--threads T] [--pg-server URL]

Each backend runs, in this order and on fresh stores:
1. baseline: T threads sell N single units with no views running;
2. live: the same load while a ProjectionRunner follows (PostgreSQL via
   LISTEN/NOTIFY, then again by polling; SQLite by polling every 50 ms),
   each on a fresh store; prints the write rate
   and its ratio to the baseline, the commit-to-view lag (p50/p99/max over
   batches, from each batch's oldest event) and how long after the last
   sale the views had caught up;
3. rebuild: drop the views and replay every event (events/s);
4. replay check: compare_with_replay (events/s).
Figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.domain.model import format_timestamp
from ledger.domain.money import Money
from ledger.projections import ProjectionRunner, ProjectionStore
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.store.postgres import create_database, create_schema, drop_database

SPEC: dict[str, Any] = {
    "title": "Bench", "creators": [{"id": "alice", "share_bps": 7_000},
                                   {"id": "bob", "share_bps": 3_000}],
    "content_digest": "sha256:" + "ab" * 32, "kind": "collectible", "currency": "EUR",
    "edition": {"policy": "absolute"}, "royalty": {"resale_bps": 1_000},
    "tiers": [{"name": "own", "quota": 1_000_000, "transferable": True}],
}


def now() -> str:
    return format_timestamp(datetime.now(UTC))


@contextmanager
def fresh_store(backend: str, pg_server: str, label: str) -> Iterator[DatabaseURL]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
            yield DatabaseURL.parse(f"sqlite:///{Path(directory) / f'{label}.db'}")
        return
    name = f"ledger_bench_{secrets.token_hex(4)}"
    url = DatabaseURL.parse(f"{pg_server.rstrip('/')}/{name}?schema=bench")
    create_database(url)
    try:
        create_schema(url)
        yield url
    finally:
        drop_database(url)


def sell(ledger: Ledger, good: str, sales: int, threads: int) -> float:
    """Sell ``sales`` single units from ``threads`` threads; seconds taken."""
    per = sales // threads

    def worker(t: int) -> None:
        for i in range(per):
            ledger.sell(good, "own", buyer=f"t{t}b{i}", channel="shop", quantity=1,
                        unit_price=Money(1_000, "EUR"), idempotency_key=f"t{t}s{i}")

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started


def prepare(ledger: Ledger) -> str:
    ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
    return str(ledger.mint(SPEC, idempotency_key="mint")["good_id"])


def listen_dsn(url: DatabaseURL, follow: str) -> dict[str, Any] | None:
    if url.backend != "postgresql" or follow != "listen":
        return None
    return {"host": url.host, "port": url.port, "user": url.user, "password": url.password,
            "dbname": url.dbname}


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def bench(backend: str, sales: int, threads: int, pg_server: str, follows: list[str]) -> None:
    sales -= sales % threads
    print(f"\n== {backend}: {sales:,} sales from {threads} threads")
    with fresh_store(backend, pg_server, "baseline") as url, Ledger(url) as ledger:
        good = prepare(ledger)
        baseline_s = sell(ledger, good, sales, threads)
    baseline = sales / baseline_s
    print(f"baseline    {baseline:8,.0f} sales/s  ({baseline_s:.2f} s, no views running)")

    for follow in follows:
        live_run(backend, sales, threads, pg_server, follow, baseline)


def live_run(backend: str, sales: int, threads: int, pg_server: str, follow: str,
             baseline: float) -> None:
    print(f"-- views following by {follow}")
    with fresh_store(backend, pg_server, "live") as url, Ledger(url) as ledger:
        good = prepare(ledger)
        store = ProjectionStore(ledger.event_store.recorder)
        runner = ProjectionRunner(store, listen_dsn=listen_dsn(url, follow))
        runner.start()
        try:
            live_s = sell(ledger, good, sales, threads)
            head = store.store_position()
            caught_up, wait_s = timed(lambda: runner.wait_for(head, timeout=300))
        finally:
            runner.stop()
        live = sales / live_s
        lag = runner.lag.summary()
        ms = {k: (v or 0.0) * 1_000 for k, v in lag.items() if k.endswith("_seconds")}
        print(f"live        {live:8,.0f} sales/s  ({live_s:.2f} s; {live / baseline:.2f}x the "
              "baseline, views following)")
        print(f"lag         p50 {ms['p50_seconds']:.1f} ms, p99 {ms['p99_seconds']:.1f} ms, "
              f"max {ms['max_seconds']:.1f} ms over {lag['batches']:,} batches; caught up "
              f"{wait_s * 1_000:.1f} ms after the last sale ({'yes' if caught_up else 'NO'})")

        events = store.store_position()
        store.reset()
        applied = 0

        def rebuild() -> None:
            nonlocal applied
            while (changes := store.apply_next(now)) is not None:
                applied += changes.events

        _, rebuild_s = timed(rebuild)
        print(f"rebuild     {applied / rebuild_s:8,.0f} events/s ({applied:,} events in "
              f"{rebuild_s:.2f} s)")
        report, check_s = timed(lambda: compare_with_replay(store))
        print(f"replay      {report.events / check_s:8,.0f} events/s (compare_with_replay: "
              f"{sum(report.rows.values()):,} rows, {'equal' if report.ok else 'DIFFER'}, "
              f"{check_s:.2f} s; store position {events:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sales", type=int, default=4_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432/")
    args = parser.parse_args()
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        bench(backend if backend == "sqlite" else "postgresql", args.sales, args.threads,
              args.pg_server, ["poll"] if backend == "sqlite" else ["listen", "poll"])


if __name__ == "__main__":
    main()
