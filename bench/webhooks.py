"""What outbound webhooks cost a flash sale over HTTP, and how soon they
arrive (issue 17 item 6).

    .venv/bin/python -m bench.webhooks [--backend sqlite|postgres|both]
        [--subscriptions 10] [--buyers 3000] [--units 2000] [--connections 64]
        [--wrk-threads 1] [--rounds 1] [--drain-seconds 300] [--pg-server URL]

The sale is bench.http's: ``ledger serve`` in a subprocess on a fresh
store (its keys, log key, channel and good made the same way), and wrk
sending ``--buyers`` single-unit sales (bench/flash_sale.lua) over
``--connections`` connections. Each round runs it twice, in turn, each on
a fresh store and a fresh server, both started with
``LEDGER_WEBHOOKS_ALLOW_PRIVATE=true`` (the receiver is on 127.0.0.1):

1. **without webhooks**: no subscription -- the baseline;
2. **with webhooks**: ``--subscriptions`` subscriptions registered by the
   channel's key through ``POST /webhooks`` before the sale, each to its own
   path of one receiver (bench/webhook_sink.py: a process of its own served
   by uvicorn as the ledger is, which verifies every signature with the
   ``standardwebhooks`` reference library against that subscription's
   secret), each subscribed to every event type a channel may receive.

Reported (medians over rounds): sales/s of each, and their ratio (target:
with >= 0.9x without); the delivery latency of every ``stock.sold``
delivered -- from the event's timestamp (taken when its command was
decided, just before its commit) to the receiver reading the request --
p50, p99 and max over all subscriptions; how long after the sale's last
answer the last delivery came; the server's CPU time per request during
the sale (its process and its views process, from /proc), which other
load on a shared machine moves much less than sales/s, and the
receiver's CPU during the sale -- on a small machine the receiver
competes with the server, which a real subscriber's does not;
and, as checks, duplicates received,
deliveries missing after ``--drain-seconds``, and signatures that did not
verify (all expected 0). Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    PG_SERVER,
    Figure,
    ensure_command,
    ensure_postgres,
    free_port,
    fresh_store,
    main_of,
    percentile,
    served,
)
from bench.http import (
    ROOT,
    TIER,
    Keys,
    WrkRun,
    backend_name,
    db_text,
    issue_keys,
    log_key,
    open_shop,
    quiet,
    run_wrk,
)
from ledger.store.database import DatabaseURL

SOLD = "stock.sold"
# Every type a channel may subscribe to (domain.subscription.CHANNEL_TYPES,
# read from there when it is installed): "receiving everything".
CHANNEL_TYPES_FALLBACK = (
    "stock.sold", "stock.reserved", "stock.hold-committed", "stock.hold-released",
    "unit.resold", "unit.refunded", "unit.moved", "unit.transferred",
    "code.delivered", "code.redeemed",
)  # fmt: skip


def channel_types() -> list[str]:
    try:
        from ledger.domain.subscription import CHANNEL_TYPES  # noqa: PLC0415 - see above
    except ImportError:
        return list(CHANNEL_TYPES_FALLBACK)
    return sorted(CHANNEL_TYPES)


@contextmanager
def webhook_server(url: DatabaseURL, directory: Path, key: Path) -> Iterator[tuple[str, int]]:
    """``ledger serve`` as bench.http starts it, allowed to deliver to
    127.0.0.1 (the operator's setting, which the tests use too): its base
    URL and process id."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["-m", "ledger.cli", "serve", "--db", db_text(url), "--port", str(port)]
    args += ["--log-key", str(key)]
    env = dict(os.environ) | {"LEDGER_WEBHOOKS_ALLOW_PRIVATE": "true"}
    with served(args, base, "/readyz", directory / "ledger.log", cwd=directory, env=env) as process:
        yield base, process.pid


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and its children alive
    now (the views' process), from /proc; 0 where /proc is not Linux's."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@dataclass
class Sink:
    """bench/webhook_sink.py, running."""

    base: str
    pid: int

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str) -> Any:
        response = httpx.get(self.base + path, timeout=60)
        response.raise_for_status()
        return response.json()


@contextmanager
def sink(directory: Path) -> Iterator[Sink]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["-m", "bench.webhook_sink", "--port", str(port)]
    with served(args, base, "/_ready", directory / "sink.log", cwd=ROOT) as process:
        yield Sink(base, process.pid)


def register(base: str, keys: Keys, receiver: Sink, count: int) -> list[str]:
    """``count`` subscriptions of the channel, each to its own path; the
    receiver learns each path's secret. Returns the paths."""
    paths, secrets_by_path = [], {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(count):
            path = f"/hooks/{n}"
            response = client.post(
                "/webhooks",
                json={"url": receiver.url(path), "types": channel_types()},
                headers={
                    "Authorization": f"Bearer {keys.channel}",
                    "Idempotency-Key": f"bench-hook-{secrets.token_hex(8)}",
                },
            )
            if response.status_code == 404:
                raise SystemExit("this server has no POST /webhooks (is the dispatcher merged?)")
            if response.status_code != 201:
                raise RuntimeError(f"POST /webhooks: {response.status_code} {response.text}")
            secrets_by_path[path] = response.json()["secret"]
            paths.append(path)
    httpx.post(receiver.url("/_secrets"), json=secrets_by_path, timeout=30).raise_for_status()
    return paths


@dataclass
class Deliveries:
    latencies_ms: list[float]  # stock.sold, first arrival per subscription and event
    expected: int  # sales sold x subscriptions
    duplicates: int
    unverified: int
    drained_ms: float  # from the sale's last answer to the last delivery

    @property
    def missing(self) -> int:
        return max(0, self.expected - len(self.latencies_ms))


def drain(
    receiver: Sink, paths: list[str], sold: int, last_answer: float, seconds: float
) -> Deliveries:
    """Wait until every subscription has every sale's ``stock.sold`` (or
    ``seconds`` pass), then measure from the receiver's records."""
    expected = sold * len(paths)
    deadline = time.monotonic() + seconds
    while True:
        if receiver.get("/_count")["received"] >= expected:
            records = receiver.get("/_records")
            first = _first_sold(records)
            if len(first) >= expected:
                break
        if time.monotonic() > deadline:
            records = receiver.get("/_records")
            first = _first_sold(records)
            break
        time.sleep(0.5)
    latencies = [
        (received_at - datetime.fromisoformat(at).timestamp()) * 1000
        for at, received_at in first.values()
    ]
    sold_records = sum(1 for r in records if r[2] == SOLD)
    last = max((received_at for _, received_at in first.values()), default=last_answer)
    return Deliveries(
        latencies,
        expected,
        sold_records - len(first),
        sum(1 for r in records if not r[5]),
        (last - last_answer) * 1000,
    )


def _first_sold(records: list[list[Any]]) -> dict[tuple[str, str], tuple[str, float]]:
    """(path, webhook-id) -> (event timestamp, received at) of the first
    arrival of each ``stock.sold``."""
    first: dict[tuple[str, str], tuple[str, float]] = {}
    for path, msg_id, kind, at, received_at, _ in records:
        if kind == SOLD and (path, msg_id) not in first:
            first[path, msg_id] = (at, received_at)
    return first


@dataclass
class Sale:
    run: WrkRun
    deliveries: Deliveries | None  # None: no subscriptions
    server_cpu_s: float  # the server's (and its views process's) CPU during the sale
    receiver_cpu_s: float  # the receiver's process's CPU during the sale

    @property
    def server_cpu_ms_per_sale(self) -> float:
        return self.server_cpu_s * 1000 / max(1, self.run.answered)


@dataclass
class Round:
    without: Sale
    with_hooks: Sale

    @property
    def deliveries(self) -> Deliveries:
        if self.with_hooks.deliveries is None:
            raise RuntimeError("no subscriptions registered")
        return self.with_hooks.deliveries


def one_sale(
    backend: str, options: argparse.Namespace, directory: Path, subscriptions: int
) -> Sale:
    """One flash sale on a fresh store and server, with ``subscriptions``
    subscriptions registered before it (0: none)."""
    with ExitStack() as stack:
        url = stack.enter_context(fresh_store(backend, "webhooks", options.pg_server))
        keys = issue_keys(url)
        key, _ = log_key(directory, "bench.ledger/webhooks")
        base, pid = stack.enter_context(webhook_server(url, directory, key))
        good = open_shop(base, keys, options.units)
        receiver = stack.enter_context(sink(directory))
        paths = register(base, keys, receiver, subscriptions)
        quiet()
        server_cpu, receiver_cpu = cpu_seconds(pid), cpu_seconds(receiver.pid)
        run = run_wrk(
            base,
            f"/goods/{good}/tiers/{TIER}/sales",
            keys.channel,
            options.buyers,
            connections=options.connections,
            threads=options.wrk_threads,
        )
        server_cpu = cpu_seconds(pid) - server_cpu
        receiver_cpu = cpu_seconds(receiver.pid) - receiver_cpu
        deliveries = None
        if paths:
            deliveries = drain(receiver, paths, run.count(201), run.last, options.drain_seconds)
        return Sale(run, deliveries, server_cpu, receiver_cpu)


def run(options: argparse.Namespace) -> list[Figure]:
    ensure_command("wrk", "wrk")
    backends = ["sqlite", "postgres"] if options.backend == "both" else [options.backend]
    figures: list[Figure] = []
    for backend in backends:
        if backend == "postgres":
            ensure_postgres(options.pg_server)
        name = backend_name(backend)
        rounds: list[Round] = []
        with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as temp:
            for n in range(options.rounds):
                directory = Path(temp) / f"round-{n}"
                directory.mkdir()
                without = one_sale(backend, options, directory, 0)
                print(f"{name} without  {describe_sale(without)}", flush=True)
                with_hooks = one_sale(backend, options, directory, options.subscriptions)
                print(f"{name} with     {describe_sale(with_hooks)}", flush=True)
                done = Round(without, with_hooks)
                print(f"{name} delivery {describe(done.deliveries)}", flush=True)
                rounds.append(done)
        group = (
            f"flash sale over HTTP {options.buyers:,}/{options.units:,}, {name}, "
            f"{options.subscriptions} webhook subscriptions, median of {len(rounds)}"
        )
        figures += round_figures(group, rounds)
    return figures


def describe_sale(sale: Sale) -> str:
    return (
        f"{sale.run.describe()}; server CPU {sale.server_cpu_s:.1f} s "
        f"({sale.server_cpu_ms_per_sale:.2f} ms/request), receiver CPU {sale.receiver_cpu_s:.1f} s"
    )


def describe(d: Deliveries) -> str:
    return (
        f"{len(d.latencies_ms):,}/{d.expected:,} stock.sold delivered; latency p50 "
        f"{percentile(d.latencies_ms, 0.5):.0f} ms, p99 {percentile(d.latencies_ms, 0.99):.0f} "
        f"ms, max {max(d.latencies_ms, default=float('nan')):.0f} ms; drained "
        f"{d.drained_ms:.0f} ms after the last answer; {d.duplicates} duplicates, "
        f"{d.unverified} unverified"
    )


def round_figures(group: str, rounds: list[Round]) -> list[Figure]:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    without = Figure(
        group, "sale without webhooks", median([r.without.run.rate for r in rounds]), "sales/s"
    )
    ratio = median([r.with_hooks.run.rate / r.without.run.rate for r in rounds])
    with_hooks = Figure(
        group,
        "sale with webhooks",
        median([r.with_hooks.run.rate for r in rounds]),
        "sales/s",
        baseline=without,
        target=">= 0.9x",
        met=ratio >= 0.9,
        note=f"median ratio per round {ratio:.2f}x; the receiver's CPU "
        f"{median([r.with_hooks.receiver_cpu_s for r in rounds]):.1f} s during the sale",
    )
    cpu_without = Figure(
        group,
        "server CPU per request without webhooks",
        median([r.without.server_cpu_ms_per_sale for r in rounds]),
        "ms",
    )
    cpu_with = Figure(
        group,
        "server CPU per request with webhooks",
        median([r.with_hooks.server_cpu_ms_per_sale for r in rounds]),
        "ms",
        baseline=cpu_without,
        note="during the sale only (deliveries go on after it)",
    )
    checks: dict[str, Any] = {
        "missing": sum(r.deliveries.missing for r in rounds),
        "duplicates": sum(r.deliveries.duplicates for r in rounds),
        "unverified": sum(r.deliveries.unverified for r in rounds),
    }
    note = ", ".join(f"{k} {v}" for k, v in checks.items())

    def latency(name: str, fraction: float) -> Figure:
        value = median([percentile(r.deliveries.latencies_ms, fraction) for r in rounds])
        return Figure(group, f"delivery latency {name}", value, "ms", note=note)

    drained = Figure(
        group,
        "last delivery after the last sale",
        median([r.deliveries.drained_ms for r in rounds]),
        "ms",
    )
    return [
        without,
        with_hooks,
        cpu_without,
        cpu_with,
        latency("p50", 0.5),
        latency("p99", 0.99),
        drained,
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="postgres")
    parser.add_argument(
        "--subscriptions", type=int, default=10, help="subscriptions receiving everything (10)"
    )
    parser.add_argument("--buyers", type=int, default=3_000, help="sale attempts (3,000)")
    parser.add_argument("--units", type=int, default=2_000, help="units on sale (2,000)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of without/with, alternated (1)"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=300,
        help="how long to wait for every delivery after the sale (300)",
    )
    parser.add_argument("--pg-server", default=PG_SERVER, help="PostgreSQL server for the stores")


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
