"""How far behind the store the views run, what following costs the writers,
and how fast the views rebuild -- on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.projections [--backend sqlite|postgres|both]
        [--sales N] [--threads T] [--resale-every K] [--pg-follow listen|poll|both]
        [--pg-server URL]

The load: T threads sell N single units between them, each to its own buyer
(idempotency key per buyer), and every K-th buyer resells the unit at once.
Each backend runs, in this order and each on a fresh store (a temp dir for
SQLite; a database ledger_bench_<random>, dropped afterwards, on PostgreSQL):
1. baseline: the load with no views running (commands/s);
2. live: the same load while a ProjectionRunner follows (PostgreSQL via
   LISTEN/NOTIFY and, with --pg-follow both, again by polling; SQLite by
   polling every 50 ms); prints the write rate and its ratio to the
   baseline, the runner's commit-to-view lag (p50/p99/max over batches,
   from each batch's oldest event), and how long after the last command's
   commit runner.wait_for(head) returned;
3. rebuild: store.reset(), then store.apply_next until caught up (events/s);
4. replay check: compare_with_replay (events/s).
Figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.common import fresh_store
from ledger.domain.model import format_timestamp
from ledger.domain.money import Money
from ledger.projections import ProjectionRunner, ProjectionStore
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.store.database import DatabaseURL

SPEC: dict[str, Any] = {
    "title": "Bench",
    "creators": [{"id": "alice", "share_bps": 7_000}, {"id": "bob", "share_bps": 3_000}],
    "content_digest": "sha256:" + "ab" * 32,
    "kind": "collectible",
    "currency": "EUR",
    "edition": {"policy": "absolute"},
    "royalty": {"resale_bps": 1_000},
    "tiers": [{"name": "own", "quota": 1_000_000, "transferable": True}],
}
PRICE = Money(1_000, "EUR")
RESALE_PRICE = Money(2_500, "EUR")


@dataclass(frozen=True)
class Load:
    sales: int
    threads: int
    resale_every: int  # 0: no resales

    @property
    def resales(self) -> int:
        return self.sales // self.resale_every if self.resale_every else 0

    @property
    def commands(self) -> int:
        return self.sales + self.resales

    def describe(self) -> str:
        return (
            f"{self.sales:,} sales + {self.resales:,} resales = {self.commands:,} commands "
            f"from {self.threads} threads"
        )


@dataclass(frozen=True)
class Run:
    seconds: float  # first thread started to last thread done
    last_commit: float  # perf_counter when the last command returned (committed)

    def rate(self, load: Load) -> float:
        return load.commands / self.seconds


def now() -> str:
    return format_timestamp(datetime.now(UTC))


def prepare(ledger: Ledger) -> str:
    ledger.register_channel("shop", "Shop", 500, idempotency_key="ch-shop")
    ledger.register_channel("market", "Market", 250, idempotency_key="ch-market")
    return str(ledger.mint(SPEC, idempotency_key="mint")["good_id"])


def drive(ledger: Ledger, good: str, load: Load) -> Run:
    """Run the load: thread t sells to buyers t, t+T, t+2T, ...; every
    ``resale_every``-th buyer resells the unit just bought."""
    finished = [0.0] * load.threads

    def worker(t: int) -> None:
        for n in range(t, load.sales, load.threads):
            buyer = f"b{n}"
            sold = ledger.sell(
                good,
                "own",
                buyer=buyer,
                channel="shop",
                quantity=1,
                unit_price=PRICE,
                idempotency_key=f"sale-{buyer}",
            )
            if load.resale_every and (n + 1) % load.resale_every == 0:
                ledger.resell(
                    sold["units"][0]["unit_id"],
                    seller=buyer,
                    buyer=f"r{n}",
                    channel="market",
                    price=RESALE_PRICE,
                    idempotency_key=f"resale-{buyer}",
                )
            finished[t] = time.perf_counter()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(load.threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return Run(time.perf_counter() - started, max(finished))


def listen_dsn(url: DatabaseURL, follow: str) -> dict[str, Any] | None:
    if url.backend != "postgresql" or follow != "listen":
        return None
    return {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "password": url.password,
        "dbname": url.dbname,
    }


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def baseline_run(backend: str, load: Load, pg_server: str) -> float:
    with fresh_store(backend, "baseline", pg_server) as url, Ledger(url) as ledger:
        good = prepare(ledger)
        run = drive(ledger, good, load)
    rate = run.rate(load)
    print(f"baseline    {rate:8,.0f} commands/s ({run.seconds:.2f} s, no views running)")
    return rate


def live_run(backend: str, load: Load, pg_server: str, follow: str, baseline: float) -> None:
    print(f"-- views following by {follow}")
    with fresh_store(backend, "live", pg_server) as url, Ledger(url) as ledger:
        good = prepare(ledger)
        store = ProjectionStore(ledger.event_store.recorder)
        runner = ProjectionRunner(store, listen_dsn=listen_dsn(url, follow))
        runner.start()
        try:
            run = drive(ledger, good, load)
            head = store.store_position()
            caught_up = runner.wait_for(head, timeout=300)
            catch_up_s = time.perf_counter() - run.last_commit
            status = runner.status()
        finally:
            runner.stop()
        rate = run.rate(load)
        lag = status["lag"]
        ms = {k: (v or 0.0) * 1_000 for k, v in lag.items() if k.endswith("_seconds")}
        print(
            f"live        {rate:8,.0f} commands/s ({run.seconds:.2f} s; {rate / baseline:.2f}x "
            "the baseline, views following)"
        )
        print(
            f"lag         p50 {ms['p50_seconds']:.1f} ms, p99 {ms['p99_seconds']:.1f} ms, "
            f"max {ms['max_seconds']:.1f} ms over {lag['batches']:,} batches"
        )
        print(
            f"caught up   {catch_up_s * 1_000:8.1f} ms after the last commit "
            f"({'yes' if caught_up else 'NO'}; views at {status['position']:,} "
            f"of {status['store_position']:,})"
        )
        rebuild_and_check(store)


def rebuild_and_check(store: ProjectionStore) -> None:
    events = store.store_position()
    store.reset()
    applied = 0

    def rebuild() -> None:
        nonlocal applied
        while (changes := store.apply_next(now)) is not None:
            applied += changes.events

    _, rebuild_s = timed(rebuild)
    print(
        f"rebuild     {applied / rebuild_s:8,.0f} events/s ({applied:,} events from zero in "
        f"{rebuild_s:.2f} s)"
    )
    report, check_s = timed(lambda: compare_with_replay(store))
    print(
        f"replay      {report.events / check_s:8,.0f} events/s (compare_with_replay: "
        f"{sum(report.rows.values()):,} rows, {'equal' if report.ok else 'DIFFER'}, "
        f"{check_s:.2f} s; store position {events:,})"
    )


def bench(backend: str, load: Load, pg_server: str, follows: list[str]) -> None:
    print(f"\n== {backend}: {load.describe()}")
    baseline = baseline_run(backend, load, pg_server)
    for follow in follows:
        live_run(backend, load, pg_server, follow, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sales", type=int, default=3_000, help="single-unit sales (3,000)")
    parser.add_argument("--threads", type=int, default=8, help="writer threads (8)")
    parser.add_argument(
        "--resale-every",
        type=int,
        default=10,
        help="every K-th buyer resells at once; 0 for none (10)",
    )
    parser.add_argument(
        "--pg-follow",
        choices=["listen", "poll", "both"],
        default="both",
        help="how the runner follows PostgreSQL (both: two live runs)",
    )
    parser.add_argument(
        "--pg-server",
        default="postgresql://postgres@127.0.0.1:5432/",
        help="PostgreSQL server to create the scratch database on",
    )
    args = parser.parse_args()
    if args.sales < 1 or args.threads < 1 or args.resale_every < 0:
        parser.error("--sales and --threads must be at least 1, --resale-every at least 0")
    load = Load(args.sales, args.threads, args.resale_every)
    pg_follows = ["listen", "poll"] if args.pg_follow == "both" else [args.pg_follow]
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        if backend == "sqlite":
            bench("sqlite", load, args.pg_server, ["poll"])
        else:
            bench("postgresql", load, args.pg_server, pg_follows)


if __name__ == "__main__":
    main()
