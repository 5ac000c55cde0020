"""Through HTTP: the flash sale against the real server, beside a trivial
FastAPI endpoint served the same way, with wrk; the views' lag during it;
and the time from a sealed checkpoint to a 2-of-3 verifier quorum under a
steady load.

    .venv/bin/python -m bench.http [--backend sqlite|postgres|both]
        [--buyers 15342] [--units 10000] [--connections 64] [--wrk-threads 1]
        [--quorum-events 1000] [--quorum-seconds 10] [--no-quorum] [--pg-server URL]

Each backend runs, each on a fresh store (bench.common.fresh_store):

1. **Trivial baseline**: ``bench/trivial_app.py`` (a pydantic body, a 201
   JSON answer, nothing else) under ``uvicorn.run(app, log_level="info")``,
   one worker -- exactly how ``ledger serve`` runs the ledger (uvicorn picks
   uvloop and httptools, which ``uvicorn[standard]`` installs; the access
   log is on in both). The baseline is its ``async def`` route; the same
   route as a plain ``def`` (a thread-pool hop, as the ledger's command
   routes take) is reported beside it for reference.
2. **Flash sale**: API keys issued on the store (``ledger api-keys issue``'s
   code: an admin key, a channel key), a log key (``ledger keys generate``'s
   code), then ``python -m ledger.cli serve`` in a subprocess; the channel
   and a good with one tier of ``--units`` units are created through the API.
   Then ``bench/flash_sale.lua`` sends exactly ``--buyers`` sales of one unit
   (``POST /goods/{id}/tiers/drop/sales``, bearer channel key, a distinct
   buyer and Idempotency-Key each) over ``--connections`` connections, and
   the same number to the trivial endpoint. Reported: requests/s over the
   sale (first request to last answer), wrk's p50/p99, answers by status
   (201 sold, 409 sold out, other), and oversold: units issued beyond the
   stock, or a stock, 201 count and views that disagree (read from the
   ledger and through ``GET /goods/{id}/stock``).
3. **Projection lag**: the server's ProjectionRunner measures, per view
   batch, the time from its oldest event's decision to the batch's commit;
   ``GET /views/status`` after the sale gives p50/p99/max over the batches
   (the store is created through the API just before, so every batch is one
   of the sale's or close to it), and how long after the last answer the
   views caught up.
4. **Quorum**: a fresh store, three verifier nodes (``ledger verifier run``,
   cosigner keys, ``--peer`` each other, default poll) named with their URLs
   in the server's ``--policy`` (group of 2 of 3), so the server pushes each
   checkpoint (C2SP tlog-witness) as it seals it (every second, the
   default). wrk sends sales paced to ``--quorum-events`` events/s (the
   events of one sale are counted by a first sale) for ``--quorum-seconds``.
   For each checkpoint sealed during the load: from its ``signed_at`` to the
   first moment a checkpoint at least as large held two cosignatures (their
   ``received_at``), both stamped by the server in the log's tables. A line
   per checkpoint (when each cosignature came) is printed.

Figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

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
    wait_quiet,
)
from ledger.domain.model import parse_timestamp
from ledger.service import Ledger
from ledger.store.apikeys import Role, open_api_keys
from ledger.store.database import DatabaseURL
from ledger.tlog.keys import Signer

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).with_name("flash_sale.lua")
TIER = "drop"
VERIFIERS = ("verifier-a", "verifier-b", "verifier-c")


def spec(units: int) -> dict[str, Any]:
    return {
        "title": "Flash over HTTP",
        "creators": [{"id": "alice", "share_bps": 7_000}, {"id": "bob", "share_bps": 3_000}],
        "content_digest": "sha256:" + "ef" * 32,
        "kind": "collectible",
        "currency": "EUR",
        "edition": {"policy": "absolute"},
        "royalty": {"resale_bps": 1_000},
        "tiers": [{"name": TIER, "quota": units, "transferable": True}],
    }


def db_text(url: DatabaseURL) -> str:
    """The URL as the CLI takes it (with the password, which display() hides)."""
    if url.backend == "sqlite" or not url.password:
        return url.display()
    return url.display().replace(f"{url.user}@", f"{url.user}:{url.password}@", 1)


def event_loop_note() -> str:
    """What uvicorn's "auto" picks here, for the trivial app and the ledger alike."""
    found = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name)]
    if len(found) == 2:
        return "uvloop + httptools"
    return f"asyncio + h11 (installed of uvloop/httptools: {', '.join(found) or 'none'})"


# -- wrk ------------------------------------------------------------------------
@dataclass
class WrkRun:
    first: float  # wall clock: the first request sent
    last: float  # wall clock: the last answer received
    sent: int
    answered: int
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    total: int

    @property
    def seconds(self) -> float:
        return max(1e-9, self.last - self.first)

    @property
    def rate(self) -> float:
        return self.answered / self.seconds

    @property
    def complete(self) -> bool:
        return self.answered == self.total and self.last > 0

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    @property
    def other(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in (201, 409))

    def describe(self) -> str:
        by_status = ", ".join(f"{n:,} x {status}" for status, n in sorted(self.statuses.items()))
        errors = {k: v for k, v in self.errors.items() if v and k != "status"}
        return (
            f"{self.answered:,}/{self.total:,} answered in {self.seconds:.2f} s = "
            f"{self.rate:,.0f} req/s; p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"max {self.max_ms:.0f} ms; {by_status}"
            + (f"; socket errors {errors}" if errors else "")
        )


def run_wrk(
    base: str,
    path: str,
    key: str,
    total: int,
    *,
    connections: int,
    threads: int,
    rate: float = 0.0,
    channel: str = "shop",
) -> WrkRun:
    """Send exactly ``total`` sales with bench/flash_sale.lua; stop wrk once
    every thread has its answers (wrk itself runs by duration)."""
    wrk = ensure_command("wrk", "wrk")
    threads = max(1, min(threads, connections))
    limit = max(120, int(total / 50) if not rate else int(total / rate * 2 + 60))
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as markers:
        label = secrets.token_hex(3)
        command = [
            wrk,
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{limit}s",
            "--timeout",
            "60s",
            "--latency",
            "-s",
            str(LUA),
            base,
            "--",
            path,
            key,
            channel,
            label,
            str(total),
            str(threads),
            f"{rate:.3f}",
            markers,
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + limit
        while (
            process.poll() is None
            and time.monotonic() < deadline
            and len(os.listdir(markers)) < threads
        ):
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # wrk prints its summary and done()
        out, err = process.communicate(timeout=60)
    found = re.search(r"^BENCH-JSON (.*)$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{out}\n{err}")
    data = json.loads(found.group(1))
    return WrkRun(
        first=data["first"],
        last=data["last"],
        sent=data["sent"],
        answered=data["answered"],
        statuses={int(k): int(v) for k, v in data["statuses"].items()},
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=data["errors"],
        total=total,
    )


# -- the trivial baseline ------------------------------------------------------------
def trivial_sales(
    total: int, connections: int, threads: int, directory: Path
) -> tuple[WrkRun, WrkRun]:
    """The same sale against the trivial endpoint: as ``async def`` (the
    baseline), then as a plain ``def`` run in the thread pool like the
    ledger's routes (for reference)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    path = f"/goods/{secrets.token_hex(8)}/tiers/{TIER}/sales"
    with served(
        ["-m", "bench.trivial_app", "--port", str(port)],
        base,
        "/healthz",
        directory / "trivial.log",
        cwd=ROOT,
    ):
        quiet()
        baseline = run_wrk(base, path, "none", total, connections=connections, threads=threads)
        quiet()
        pooled = run_wrk(
            base, "/sync" + path, "none", total, connections=connections, threads=threads
        )
    return baseline, pooled


def quiet(max_seconds: float = 20.0) -> None:
    """Wait for a quiet machine (bench.common.wait_quiet) and say how quiet it got."""
    busy = wait_quiet(max_seconds)
    print(f"  (machine {busy:.0%} busy before the next measurement)", flush=True)


# -- the ledger's server ----------------------------------------------------------------
@dataclass
class Keys:
    admin: str
    channel: str


def issue_keys(url: DatabaseURL) -> Keys:
    with open_api_keys(url, create=True) as keys:
        admin = keys.issue(Role.ADMIN, label="bench admin")[1]
        channel = keys.issue(Role.CHANNEL, "shop", label="bench channel")[1]
    return Keys(admin, channel)


def log_key(directory: Path, origin: str) -> tuple[Path, str]:
    signer = Signer.generate(origin)
    path = directory / "log.key"
    path.write_text(signer.to_private_text() + "\n")
    return path, signer.verifier_key()


@contextmanager
def ledger_server(
    url: DatabaseURL, directory: Path, key: Path, policy: Path | None = None
) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        "-m",
        "ledger.cli",
        "serve",
        "--db",
        db_text(url),
        "--port",
        str(port),
        "--log-key",
        str(key),
        *(["--policy", str(policy)] if policy else []),
    ]
    with served(args, base, "/readyz", directory / "ledger.log", cwd=directory):
        yield base


def post(client: httpx.Client, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        path,
        json=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Idempotency-Key": f"bench-{secrets.token_hex(8)}",
        },
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def open_shop(base: str, keys: Keys, units: int) -> str:
    """Register the channel and mint the good through the API; wait until the
    views have it. Returns the good's id."""
    with httpx.Client(base_url=base, timeout=30) as client:
        post(client, "/channels", keys.admin, {"channel": "shop", "name": "Shop", "fee_bps": 500})
        good = str(post(client, "/goods", keys.admin, {"spec": spec(units)})["good_id"])
        response = client.get(f"/goods/{good}", headers={"Authorization": f"Bearer {keys.channel}"})
        response.raise_for_status()
    return good


def views_status(base: str, keys: Keys) -> dict[str, Any]:
    response = httpx.get(
        f"{base}/views/status", timeout=30, headers={"Authorization": f"Bearer {keys.admin}"}
    )
    response.raise_for_status()
    status: dict[str, Any] = response.json()
    return status


@dataclass
class LedgerSale:
    run: WrkRun
    units: int
    issued: int  # the stock's own count, from the ledger
    left: int
    views_issued: int  # GET /goods/{id}/stock
    lag: dict[str, Any]
    caught_up_ms: float
    views_behind: int

    @property
    def oversold(self) -> int:
        """Units beyond the stock, plus any disagreement between the stock's
        count, what it has left, the 201 answers and the views."""
        return (
            max(0, self.issued - self.units)
            + abs(self.units - self.issued - self.left)
            + abs(self.run.count(201) - self.issued)
            + abs(self.views_issued - self.issued)
        )


def ledger_sale(
    url: DatabaseURL, total: int, units: int, connections: int, threads: int, directory: Path
) -> LedgerSale:
    keys = issue_keys(url)
    key, _ = log_key(directory, "bench.ledger/http")
    with ledger_server(url, directory, key) as base:
        good = open_shop(base, keys, units)
        quiet()
        run = run_wrk(
            base,
            f"/goods/{good}/tiers/{TIER}/sales",
            keys.channel,
            total,
            connections=connections,
            threads=threads,
        )
        # The views: how soon after the last answer they hold every event.
        status = views_status(base, keys)
        deadline = time.monotonic() + 30
        while status["behind"] and time.monotonic() < deadline:
            time.sleep(0.01)
            status = views_status(base, keys)
        caught_up_ms = (time.time() - run.last) * 1000
        stock = httpx.get(
            f"{base}/goods/{good}/stock",
            timeout=30,
            headers={"Authorization": f"Bearer {keys.channel}"},
        ).json()
        tier = next(t for t in stock["tiers"] if t["tier"] == TIER)
    with Ledger(url) as ledger:
        own = ledger.stock(good, TIER)
        issued, left = own.issued, own.available
    return LedgerSale(
        run,
        units,
        issued,
        left,
        int(tier["issued"]),
        status["lag"],
        caught_up_ms,
        int(status["behind"]),
    )


# -- quorum ------------------------------------------------------------------------------
@dataclass
class Quorum:
    seconds: list[float]  # per checkpoint sealed during the load
    unwitnessed: int  # of those, how many never reached a quorum
    events_per_s: float
    events_per_sale: float
    run: WrkRun
    checkpoints_total: int
    notes: list[str] = field(default_factory=list)


Received = dict[int, dict[str, datetime]]  # size -> cosigner -> received_at


def log_times(url: DatabaseURL) -> tuple[dict[int, datetime], Received]:
    """The log's checkpoints (size -> signed_at) and, per size, when each
    cosignature was received, from the log's tables (ledger.store.logstore)."""
    select_checkpoints = "SELECT size, signed_at FROM {}"
    select_cosignatures = "SELECT size, cosigner, received_at FROM {}"
    if url.backend == "sqlite":
        with sqlite3.connect(url.path) as db:
            checkpoints = db.execute(select_checkpoints.format("tlog_checkpoints")).fetchall()
            cosignatures = db.execute(select_cosignatures.format("tlog_cosignatures")).fetchall()
    else:
        with psycopg.connect(
            host=url.host, port=url.port, user=url.user, dbname=url.dbname, password=url.password
        ) as pg:

            def read(statement: str, table_name: str) -> list[Any]:
                query = sql.SQL(statement).format(sql.Identifier(url.schema, table_name))
                return pg.execute(query).fetchall()

            checkpoints = read(select_checkpoints, "ledger_tlog_checkpoints")
            cosignatures = read(select_cosignatures, "ledger_tlog_cosignatures")
    signed = {int(size): parse_timestamp(str(at)) for size, at in checkpoints}
    received: Received = {}
    for size, cosigner, at in cosignatures:
        received.setdefault(int(size), {})[str(cosigner)] = parse_timestamp(str(at))
    return signed, received


def quorum_latencies(
    signed: dict[int, datetime], received: Received, start: float, end: float
) -> tuple[list[float], int, int]:
    """For each checkpoint signed in [start, end] (wall clock): seconds until
    some checkpoint at least as large held 2 cosignatures. Returns (those
    seconds, how many never did, how many were signed in the window)."""
    # The moment each size reached 2 cosignatures; then the earliest moment
    # any size >= n did (a later checkpoint's quorum covers every earlier entry).
    reached = {
        size: sorted(times.values())[1].timestamp()
        for size, times in received.items()
        if len(times) >= 2
    }
    covered: dict[int, float] = {}
    best = float("inf")
    for size in sorted(signed, reverse=True):
        best = min(best, reached.get(size, float("inf")))
        covered[size] = best
    window = [size for size, at in signed.items() if start <= at.timestamp() <= end]
    seconds = [covered[s] - signed[s].timestamp() for s in window if covered[s] != float("inf")]
    return seconds, len(window) - len(seconds), len(window)


def quorum_run(
    url: DatabaseURL,
    events_per_s: float,
    seconds: float,
    connections: int,
    threads: int,
    directory: Path,
) -> Quorum:
    origin = "bench.ledger/witnessed"
    key, vkey = log_key(directory, origin)
    ports = {name: free_port() for name in VERIFIERS}
    cosigners = {name: Signer.generate(name, key_type=0x04) for name in VERIFIERS}
    for name, signer in cosigners.items():
        (directory / f"{name}.key").write_text(signer.to_private_text() + "\n")
    policy = directory / "policy.txt"
    policy.write_text(
        f"log {vkey}\n"
        + "".join(
            f"witness {n} {s.verifier_key()} http://127.0.0.1:{ports[n]}\n"
            for n, s in cosigners.items()
        )
        + f"group verifiers 2 {' '.join(VERIFIERS)}\n"
        "quorum verifiers\n"
    )
    keys = issue_keys(url)
    with ExitStack() as stack:
        base = stack.enter_context(ledger_server(url, directory, key, policy))
        for name in VERIFIERS:
            node = f"http://127.0.0.1:{ports[name]}"
            peers = [
                part
                for other in VERIFIERS
                if other != name
                for part in ("--peer", f"http://127.0.0.1:{ports[other]}")
            ]
            stack.enter_context(
                served(
                    [
                        "-m",
                        "ledger.cli",
                        "verifier",
                        "run",
                        "--ledger",
                        base,
                        "--key",
                        str(directory / f"{name}.key"),
                        "--log-key",
                        vkey,
                        "--state",
                        str(directory / name),
                        "--port",
                        str(ports[name]),
                        *peers,
                    ],
                    node,
                    "/status",
                    directory / f"{name}.log",
                    cwd=directory,
                )
            )
        good = open_shop(base, keys, 10_000_000)
        # One sale to count the events a sale makes, then let the log settle.
        before = views_status(base, keys)["store_position"]
        with httpx.Client(base_url=base, timeout=30) as client:
            post(
                client,
                f"/goods/{good}/tiers/{TIER}/sales",
                keys.channel,
                {
                    "buyer": "first",
                    "channel": "shop",
                    "quantity": 1,
                    "unit_price": {"amount": 1999, "currency": "EUR"},
                },
            )
        per_sale = max(1, views_status(base, keys)["store_position"] - before)
        rate = events_per_s / per_sale
        quiet(max_seconds=5)
        start_position = views_status(base, keys)["store_position"]
        run = run_wrk(
            base,
            f"/goods/{good}/tiers/{TIER}/sales",
            keys.channel,
            max(1, round(rate * seconds)),
            connections=connections,
            threads=threads,
            rate=rate,
        )
        end_position = views_status(base, keys)["store_position"]
        # Wait until a checkpoint signed after the last answer (so covering
        # every sale) has its quorum.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            signed, received = log_times(url)
            top = max(signed, default=0)
            if signed and signed[top].timestamp() > run.last and len(received.get(top, [])) >= 2:
                break
            time.sleep(0.2)
    signed, received = log_times(url)
    latencies, missed, total = quorum_latencies(signed, received, run.first, run.last)
    events = (end_position - start_position) / run.seconds
    print(timeline(signed, received, run.first, run.last), flush=True)
    return Quorum(latencies, missed, events, per_sale, run, total)


def timeline(signed: dict[int, datetime], received: Received, start: float, end: float) -> str:
    """One line per checkpoint signed during the load: when each cosignature
    came, in seconds after the checkpoint was signed."""
    lines = []
    previous = 0
    for size in sorted(signed):
        at = signed[size].timestamp()
        if start <= at <= end:
            came = ", ".join(
                f"{name} +{moment.timestamp() - at:.2f}"
                for name, moment in sorted(received.get(size, {}).items(), key=lambda item: item[1])
            )
            lines.append(
                f"  size {size:>7,} (+{size - previous:,}) signed "
                f"{at - start:6.2f} s into the load; cosigned: {came or 'by no one'}"
            )
        previous = size
    return "\n".join(lines)


# -- figures ---------------------------------------------------------------------------
def backend_name(backend: str) -> str:
    return "PostgreSQL" if backend == "postgres" else "SQLite"


def flash_figures(group: str, trivial: WrkRun, pooled: WrkRun, sale: LedgerSale) -> list[Figure]:
    run = sale.run

    def plain(name: str, got: WrkRun) -> Figure:
        return Figure(
            group,
            name,
            got.rate,
            "req/s",
            note=f"p50 {got.p50_ms:.1f} ms, p99 {got.p99_ms:.1f} ms; "
            f"{got.seconds:.2f} s" + ("" if got.complete else f"; INCOMPLETE {got.answered:,}"),
        )

    base = plain("trivial FastAPI endpoint", trivial)
    in_pool = plain("trivial endpoint as def (thread pool)", pooled)
    ratio = run.rate / trivial.rate if trivial.rate else 0.0
    main = Figure(
        group,
        "ledger",
        run.rate,
        "req/s",
        base,
        ">= 0.7x",
        ratio >= 0.7,
        note=f"{run.count(201):,} sold (201), {run.count(409):,} sold out (409), "
        f"{run.other:,} other; {run.count(201) / run.seconds:,.0f} sales/s, "
        f"{run.seconds:.2f} s" + ("" if run.complete else f"; INCOMPLETE {run.answered:,}"),
    )
    latency = Figure(
        group,
        "ledger p50 / p99",
        run.p99_ms,
        "ms p99",
        note=f"p50 {run.p50_ms:.1f} ms, max {run.max_ms:.0f} ms (trivial: "
        f"p50 {trivial.p50_ms:.1f}, p99 {trivial.p99_ms:.1f})",
    )
    oversold = Figure(
        group,
        "ledger oversold",
        sale.oversold,
        "units",
        target="0",
        met=sale.oversold == 0,
        note=f"issued {sale.issued:,} of {sale.units:,}, {sale.left:,} left; "
        f"views {sale.views_issued:,}; 201s {run.count(201):,}",
    )
    lag = sale.lag
    ms = {k: (v or 0.0) * 1000 for k, v in lag.items() if k.endswith("_seconds")}
    lag_figure = Figure(
        group,
        "projection lag p99",
        ms["p99_seconds"],
        "ms",
        target="<= 100 ms",
        met=ms["p99_seconds"] <= 100,
        note=f"p50 {ms['p50_seconds']:.0f} ms, max {ms['max_seconds']:.0f} ms "
        f"over {lag['batches']:,} batches (window {lag['window']:,}); "
        f"caught up {sale.caught_up_ms:.0f} ms after the last answer",
    )
    return [main, base, in_pool, latency, oversold, lag_figure]


def quorum_figures(group: str, quorum: Quorum) -> list[Figure]:
    samples = quorum.seconds
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    worst = max(samples, default=float("nan"))
    met = bool(samples) and p99 <= 1.0 and not quorum.unwitnessed
    return [
        Figure(
            group,
            "sealed -> 2 of 3 cosigned p99",
            p99,
            "s",
            target="<= 1 s",
            met=met,
            note=f"p50 {p50:.2f} s, max {worst:.2f} s over {len(samples)} checkpoints"
            + (f" ({quorum.unwitnessed} never)" if quorum.unwitnessed else "")
            + f"; load {quorum.events_per_s:,.0f} events/s "
            f"({quorum.run.rate:,.0f} sales/s x {quorum.events_per_sale:g}), "
            f"p99 sale {quorum.run.p99_ms:.0f} ms",
        )
    ]


def run(options: argparse.Namespace) -> list[Figure]:
    ensure_command("wrk", "wrk")
    backends = ["sqlite", "postgres"] if options.backend == "both" else [options.backend]
    figures: list[Figure] = []
    loop = event_loop_note()
    for backend in backends:
        if backend == "postgres":
            ensure_postgres(options.pg_server)
        name = backend_name(backend)
        group = (
            f"flash sale over HTTP {options.buyers:,}/{options.units:,}, {name}, "
            f"wrk {options.connections} conns, 1 uvicorn worker ({loop})"
        )
        with ExitStack() as stack:
            if options.log_dir is None:
                directory = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-"))
                )
            else:  # keep the servers' logs (and keys, policy, verifier state) there
                directory = options.log_dir / f"{backend}-{time.strftime('%H%M%S')}"
                directory.mkdir(parents=True)
            trivial, pooled = trivial_sales(
                options.buyers, options.connections, options.wrk_threads, directory
            )
            print(f"{name} trivial  {trivial.describe()}", flush=True)
            print(f"{name} def      {pooled.describe()}", flush=True)
            with fresh_store(backend, "http", options.pg_server) as url:
                sale = ledger_sale(
                    url,
                    options.buyers,
                    options.units,
                    options.connections,
                    options.wrk_threads,
                    directory,
                )
            print(f"{name} ledger   {sale.run.describe()}", flush=True)
            figures += flash_figures(group, trivial, pooled, sale)
            if options.quorum:
                quorum_dir = directory / "quorum"
                quorum_dir.mkdir()
                with fresh_store(backend, "quorum", options.pg_server) as url:
                    quorum = quorum_run(
                        url,
                        options.quorum_events,
                        options.quorum_seconds,
                        options.connections,
                        options.wrk_threads,
                        quorum_dir,
                    )
                print(f"{name} quorum   {quorum.run.describe()}", flush=True)
                figures += quorum_figures(
                    f"quorum over HTTP at ~{options.quorum_events:,.0f} events/s for "
                    f"{options.quorum_seconds:g} s, {name}, 3 verifiers (push)",
                    quorum,
                )
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--buyers", type=int, default=15_342, help="sale attempts (15,342)")
    parser.add_argument("--units", type=int, default=10_000, help="units on sale (10,000)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (1: on 2 cores, leave the other to the server)",
    )
    parser.add_argument(
        "--quorum-events",
        type=float,
        default=1_000,
        help="events/s of the steady load during the quorum run (1,000)",
    )
    parser.add_argument(
        "--quorum-seconds",
        type=float,
        default=10,
        help="seconds of steady load during the quorum run (10)",
    )
    parser.add_argument(
        "--no-quorum", dest="quorum", action="store_false", help="leave out the quorum run"
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep the servers' logs, keys and verifier state under this "
        "directory (default: a temp dir, removed)",
    )
    parser.add_argument(
        "--pg-server",
        default=PG_SERVER,
        help="PostgreSQL server for the stores (a database per run)",
    )


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
