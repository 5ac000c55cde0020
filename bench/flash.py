"""The flash sale in-process: 15,342 buyers on 10,000 units, 64 at a time.

    .venv/bin/python -m bench.flash [--backend sqlite|postgres|both]
        [--buyers 15342] [--units 10000] [--threads 64]

Each contender runs the same sale on a fresh store, one attempt per buyer
(one unit each), from ``--threads`` threads, and is timed from the first
attempt to the last answer; each attempt's latency is its own call's:

* **ledger**: ``Ledger.sell`` -- full hash-chained events (stock, unit,
  command record per sale), idempotency, royalty split, group commit; each
  attempt acts as a channel's API key with a request id of its own, as a
  request to the server does, so every event names its ``recorded_by``.
* **raw row-lock SQL** (PostgreSQL): what a typical shop writes -- per
  attempt, on its own connection (``--threads`` connections):
  ``BEGIN; UPDATE stock SET n = n - 1 WHERE id = 1 AND n > 0 RETURNING n;
  INSERT INTO sale ...; COMMIT``.
* **naive event sourcing** (PostgreSQL): the ``eventsourcing`` library's
  textbook loop per attempt -- ``repository.get`` the stock, mutate, ``save``,
  retry on a version conflict (with the library's aggregate cache, or every
  get would replay the whole stream).
* **raw decrement + insert** (SQLite): one process, one thread, per attempt
  ``BEGIN IMMEDIATE; UPDATE ... WHERE n > 0; INSERT; COMMIT``, at
  ``synchronous=FULL`` and ``NORMAL``.

Reported: sales/s (units sold over the sale's wall time), attempts/s, p50
and p99 attempt latency, and oversold (units sold beyond the stock, or a
final stock that disagrees). Figures only.
"""

from __future__ import annotations

import argparse
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from psycopg_pool import ConnectionPool

from bench.common import (
    Figure,
    ensure_postgres,
    fresh_store,
    main_of,
    percentile,
    wait_quiet,
)
from ledger.domain.actor import Actor, reset_actor, set_actor
from ledger.domain.errors import SoldOutError
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL

SPEC: dict[str, Any] = {
    "title": "Flash",
    "creators": [{"id": "alice", "share_bps": 7_000}, {"id": "bob", "share_bps": 3_000}],
    "content_digest": "sha256:" + "cd" * 32,
    "kind": "collectible",
    "currency": "EUR",
    "edition": {"policy": "absolute"},
    "royalty": {"resale_bps": 1_000},
    "tiers": [{"name": "drop", "quota": 10_000, "transferable": True}],
}
PRICE = Money(1_999, "EUR")
BENCH_KEY_ID = "0123456789ab"  # the channel key the sales are recorded by (no key table here)


@dataclass
class Sale:
    """One contender's flash sale: how long, who got a unit, each attempt's latency."""

    seconds: float
    sold: int
    latencies: list[float]
    left: int  # the stock's own count at the end
    units: int

    @property
    def oversold(self) -> int:
        return max(0, self.sold - self.units) + abs(self.units - self.sold - self.left)

    def figures(
        self,
        group: str,
        name: str,
        baseline: Figure | None = None,
        *,
        at_least: float | None = None,
        p99_target: float | None = None,
    ) -> list[Figure]:
        """Rate, latency and oversold; ``at_least``: the target ratio to the baseline."""
        rate = self.sold / self.seconds
        met = None
        if at_least is not None and baseline is not None:
            met = rate >= at_least * baseline.value
        main = Figure(
            group,
            name,
            rate,
            "sales/s",
            baseline,
            f">= {at_least:g}x" if at_least is not None else "",
            met,
            note=f"{len(self.latencies) / self.seconds:,.0f} attempts/s, {self.seconds:.2f} s",
        )
        p50, p99 = (percentile(self.latencies, q) * 1000 for q in (0.5, 0.99))
        latency = Figure(
            group,
            f"{name} p50 / p99",
            p99,
            "ms p99",
            target=f"<= {p99_target:g} ms" if p99_target else "",
            met=None if p99_target is None else p99 <= p99_target,
            note=f"p50 {p50:.1f} ms",
        )
        oversold = Figure(
            group,
            f"{name} oversold",
            self.oversold,
            "units",
            target="0",
            met=self.oversold == 0,
            note=f"sold {self.sold:,} of {self.units:,}",
        )
        return [main, latency, oversold]


def drive(
    attempt: Callable[[int], bool], buyers: int, threads: int
) -> tuple[float, int, list[float]]:
    """Run ``attempt(buyer)`` for every buyer from ``threads`` threads; returns
    (seconds, units sold, latencies)."""
    latencies = [0.0] * buyers
    sold = [0]
    lock = threading.Lock()

    def one(buyer: int) -> None:
        began = time.perf_counter()
        ok = attempt(buyer)
        latencies[buyer] = time.perf_counter() - began
        if ok:
            with lock:
                sold[0] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(one, range(buyers)):
            pass
    return time.perf_counter() - started, sold[0], latencies


# -- the ledger --------------------------------------------------------------
def ledger_sale(url: DatabaseURL, buyers: int, units: int, threads: int) -> Sale:
    spec = SPEC | {"tiers": [SPEC["tiers"][0] | {"quota": units}]}
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = str(ledger.mint(spec, idempotency_key="mint")["good_id"])

        def attempt(buyer: int) -> bool:
            # As the API does per request: the key's actor, with this request's id.
            token = set_actor(Actor.of_key(BENCH_KEY_ID, "channel", "shop", f"req-{buyer}"))
            try:
                ledger.sell(
                    good,
                    "drop",
                    buyer=f"b{buyer}",
                    channel="shop",
                    quantity=1,
                    unit_price=PRICE,
                    idempotency_key=f"order-{buyer}",
                )
            except SoldOutError:
                return False
            finally:
                reset_actor(token)
            return True

        seconds, sold, latencies = drive(attempt, buyers, threads)
        stock = ledger.stock(good, "drop")
        return Sale(seconds, sold, latencies, stock.available, units)


# -- raw row-lock SQL on PostgreSQL ---------------------------------------------------
def pg_conninfo(url: DatabaseURL) -> str:
    return f"host={url.host} port={url.port} user={url.user} dbname={url.dbname}" + (
        f" password={url.password}" if url.password else ""
    )


def raw_pg_sale(url: DatabaseURL, buyers: int, units: int, threads: int) -> Sale:
    conninfo = pg_conninfo(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_stock (id int PRIMARY KEY, n int NOT NULL)")
        conn.execute(
            "CREATE TABLE raw_sale (id bigserial PRIMARY KEY, buyer text NOT NULL, "
            "body jsonb NOT NULL)"
        )
        conn.execute("INSERT INTO raw_stock VALUES (1, %s)", (units,))
    body = '{"good": "flash", "tier": "drop", "price": {"amount": 1999, "currency": "EUR"}}'
    with ConnectionPool(conninfo, min_size=threads, max_size=threads, open=True) as pool:
        pool.wait()

        def attempt(buyer: int) -> bool:
            with pool.connection() as conn, conn.transaction():
                row = conn.execute(
                    "UPDATE raw_stock SET n = n - 1 WHERE id = 1 AND n > 0 RETURNING n"
                ).fetchone()
                if row is None:
                    return False
                conn.execute(
                    "INSERT INTO raw_sale (buyer, body) VALUES (%s, %s)", (f"b{buyer}", body)
                )
                return True

        seconds, _, latencies = drive(attempt, buyers, threads)
    with psycopg.connect(conninfo) as conn:
        left = conn.execute("SELECT n FROM raw_stock WHERE id = 1").fetchone()
        rows = conn.execute("SELECT count(*) FROM raw_sale").fetchone()
    if left is None or rows is None:
        raise AssertionError("the raw tables are gone")
    return Sale(seconds, int(rows[0]), latencies, int(left[0]), units)


# -- naive event sourcing --------------------------------------------------------------
class Stock(Aggregate):
    @event("Opened")
    def __init__(self, units: int) -> None:
        self.left = units

    @event("Sold")
    def sell(self, buyer: str) -> None:
        self.left -= 1
        self.last_buyer = buyer


class Shop(Application[UUID]):
    pass


def naive_es_sale(url: DatabaseURL, buyers: int, units: int, threads: int) -> Sale:
    env = url.event_store_env() | {
        "AGGREGATE_CACHE_MAXSIZE": "100",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    env = {k: v for k, v in env.items() if not k.startswith("LEDGER_")}
    shop = Shop(env=env)
    try:
        stock = Stock(units)
        shop.save(stock)

        def attempt(buyer: int) -> bool:
            while True:
                current: Stock = shop.repository.get(stock.id)
                if current.left <= 0:
                    return False
                current.sell(f"b{buyer}")
                try:
                    shop.save(current)
                except IntegrityError:
                    continue  # another buyer got that version: load and try again
                return True

        seconds, sold, latencies = drive(attempt, buyers, threads)
        left: int = shop.repository.get(stock.id).left
    finally:
        shop.close()
    return Sale(seconds, sold, latencies, left, units)


# -- raw decrement + insert on SQLite ------------------------------------------------
def raw_sqlite_sale(path: Path, buyers: int, units: int, synchronous: str) -> Sale:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE stock (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    conn.execute(
        "CREATE TABLE sale (id INTEGER PRIMARY KEY, buyer TEXT NOT NULL, body TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO stock VALUES (1, ?)", (units,))
    body = '{"good": "flash", "tier": "drop", "price": {"amount": 1999, "currency": "EUR"}}'
    latencies = []
    sold = 0
    started = time.perf_counter()
    for buyer in range(buyers):
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("UPDATE stock SET n = n - 1 WHERE id = 1 AND n > 0").rowcount:
            conn.execute("INSERT INTO sale (buyer, body) VALUES (?, ?)", (f"b{buyer}", body))
            conn.execute("COMMIT")
            sold += 1
        else:
            conn.execute("ROLLBACK")
        latencies.append(time.perf_counter() - began)
    seconds = time.perf_counter() - started
    left = conn.execute("SELECT n FROM stock").fetchone()[0]
    rows = conn.execute("SELECT count(*) FROM sale").fetchone()[0]
    conn.close()
    return (
        Sale(seconds, int(rows), latencies, int(left), units)
        if rows == sold
        else Sale(seconds, sold, latencies, int(left), units)
    )


# -- the suite's part -----------------------------------------------------------------
def run(options: argparse.Namespace) -> list[Figure]:
    buyers, units, threads = options.buyers, options.units, options.threads
    figures: list[Figure] = []
    backends = ["postgres", "sqlite"] if options.backend == "both" else [options.backend]
    for backend in backends:
        if backend == "postgres":
            ensure_postgres()
            group = f"flash sale {buyers:,}/{units:,}, PostgreSQL, {threads} threads"
            wait_quiet()
            with fresh_store("postgres", "raw") as url:
                raw = raw_pg_sale(url, buyers, units, threads)
            raw_figs = raw.figures(group, "raw row-lock SQL")
            wait_quiet()
            with fresh_store("postgres", "naive") as url:
                naive = naive_es_sale(url, buyers, units, threads)
            naive_figs = naive.figures(group, "naive event sourcing", raw_figs[0])
            wait_quiet()
            with fresh_store("postgres", "ledger") as url:
                ours = ledger_sale(url, buyers, units, threads)
            figures += ours.figures(group, "ledger", raw_figs[0], at_least=5, p99_target=50)
            figures += raw_figs + naive_figs
        else:
            group = f"flash sale {buyers:,}/{units:,}, SQLite"
            raws = []
            for synchronous in ("FULL", "NORMAL"):
                wait_quiet()
                with fresh_store("sqlite", f"raw-{synchronous}") as url:
                    raws.append(
                        raw_sqlite_sale(Path(url.path), buyers, units, synchronous).figures(
                            group, f"raw decrement+insert, synchronous={synchronous} (1 thread)"
                        )
                    )
            wait_quiet()
            with fresh_store("sqlite", "ledger") as url:
                ours = ledger_sale(url, buyers, units, threads)
            normal = raws[1][0]
            figures += ours.figures(group, f"ledger ({threads} threads)", normal, at_least=0.25)
            figures += raws[0] + raws[1]
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--buyers", type=int, default=15_342)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=64)


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
