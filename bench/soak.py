"""A soak: a real ``ledger serve`` under a steady stream of sales, resales,
mints and the reads a client makes right after each of them, for minutes.

    .venv/bin/python -m bench.soak [--minutes 10] [--rate 150] [--db sqlite|postgres]
        [--goods 4] [--resale-share 0.2] [--mint-every 2] [--inflight 64]
        [--rss-every 10] [--pg-server URL]

On a fresh store (bench.common.fresh_store) it issues an admin and a channel
key, writes a log key, starts ``python -m ledger.cli serve`` on a free
loopback port (bench.http.ledger_server), registers the channel and mints
``--goods`` goods through the API. Then, for ``--minutes``, it starts a
client *journey* ``--rate`` times a second (paced; at most ``--inflight``
at once -- a journey that finds no room is counted as skipped, never queued):

1. ``POST /goods/{g}/tiers/drop/sales`` (one unit, a new buyer);
2. at once ``GET /units/{u}``, ``GET /goods/{g}/stock``, ``GET /goods/{g}``;
3. for a share of them (``--list-share``) ``GET /goods/{g}/units?holder=B``,
   which must list the unit just sold;
4. for ``--resale-share`` of them ``POST /units/{u}/resales`` to a new buyer,
   then ``GET /units/{u}`` (which must show the new holder) and the new
   holder's listing; for ``--provenance-share`` ``GET /units/{u}/provenance``
   (``409 not-yet-sealed`` is an answer: the unit is not sealed yet).

Every ``--mint-every`` seconds it mints a good and reads it at once
(``/goods/{g}``, its stock, lineage, velocity, units); it joins the goods on sale.

Everything read was created by this client and acknowledged (201) before
the read was sent, so docs/api.md promises it is found: a 404 on it is an
error, as is any 5xx. For each error it prints the path, the status, the
time since the write was answered, the view position the answer carried,
``/views/status`` just after, and whether the same read found it a moment
later. It also prints errors by path and status, latency p50/p99/max per
path, the server's RSS (with its children: the views process on
PostgreSQL) every ``--rss-every`` seconds, and the achieved rates. Loops
are bounded by the duration; it talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.common import PG_SERVER, ensure_postgres, free_port, fresh_store, percentile, served
from bench.http import db_text, issue_keys, log_key

TIER = "drop"
SAMPLES_PER_KIND = 10  # errors printed in full per (method, path, status)


class Answer:
    """A response: status, headers (lower-case names), body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.body)


class Loopback:
    """A small HTTP/1.1 keep-alive client for 127.0.0.1 (at most ``size``
    connections). httpx spent more of the machine than the server did at
    these rates; this one reads a status line, headers and a
    Content-Length body, which is all uvicorn answers here."""

    def __init__(self, base: str, size: int) -> None:
        host_port = base.removeprefix("http://")
        self.host, port = host_port.rsplit(":", 1)
        if self.host != "127.0.0.1":
            raise ValueError("the soak talks to 127.0.0.1 only")
        self.port = int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.room = asyncio.Semaphore(size)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        timeout: float = 30.0,
    ) -> Answer:
        body = b"" if json is None else orjson.dumps(json)
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        if json is not None:
            head.append("Content-Type: application/json")
        head += [f"{name}: {value}" for name, value in headers.items()]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        async with self.room:
            reused = bool(self.idle)
            connection = (
                self.idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
            )
            try:
                answer = await asyncio.wait_for(self._exchange(connection, payload), timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                connection[1].close()
                stale = isinstance(error, ConnectionError) or not error.partial
                if not (reused and stale):
                    raise
                # The server closed this idle connection (uvicorn's keep-alive
                # timeout) before it read the request: send it again on a new
                # one. (Safe for POSTs too: each carries an Idempotency-Key.)
                connection = await asyncio.open_connection(self.host, self.port)
                try:
                    answer = await asyncio.wait_for(self._exchange(connection, payload), timeout)
                except BaseException:
                    connection[1].close()
                    raise
            except BaseException:
                connection[1].close()
                raise
            if answer.headers.get("connection", "").lower() == "close":
                connection[1].close()
            else:
                self.idle.append(connection)
            return answer

    async def get(self, path: str, *, headers: dict[str, str]) -> Answer:
        return await self.request("GET", path, headers=headers)

    @staticmethod
    async def _exchange(
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], payload: bytes
    ) -> Answer:
        reader, writer = connection
        writer.write(payload)
        await writer.drain()
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ConnectionError(f"an answer without Content-Length: {lines[0]}")
        body = await reader.readexactly(int(headers["content-length"]))
        return Answer(status, headers, body)

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def good_spec(title: str, quota: int) -> dict[str, Any]:
    return {
        "title": title,
        "creators": [{"id": "alice", "share_bps": 10_000}],
        "content_digest": "sha256:" + secrets.token_hex(32),
        "kind": "collectible",
        "currency": "EUR",
        "edition": {"policy": "absolute"},
        "royalty": {"resale_bps": 1_000},
        "tiers": [{"name": TIER, "quota": quota, "transferable": True}],
    }


@dataclass
class Failure:
    method: str
    path: str
    status: int
    detail: str
    since_write_ms: float | None  # from the write's 201 to this read's answer
    view_position: str | None  # X-Ledger-View-Position of the failing answer
    at_s: float  # seconds into the soak
    views_status: dict[str, Any] | None = None
    later: list[str] = field(default_factory=list)  # the same read again: "+ms: status"


@dataclass
class Tally:
    started: float = field(default_factory=time.monotonic)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)  # found, but without the write
    failures: list[Failure] = field(default_factory=list)
    journeys: int = 0
    skipped: int = 0
    rss: list[tuple[float, float]] = field(default_factory=list)  # (s, MB)
    elapsed: float = 0.0
    final_views: dict[str, Any] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.started


class Soak:
    def __init__(
        self,
        client: Loopback,
        keys: Any,
        options: argparse.Namespace,
        goods: list[str],
        tally: Tally,
    ) -> None:
        self.client = client
        self.channel = {"Authorization": f"Bearer {keys.channel}"}
        self.admin = {"Authorization": f"Bearer {keys.admin}"}
        self.options = options
        self.goods = goods
        self.tally = tally
        self.ids = itertools.count()
        self.rng = random.Random(options.seed)

    # -- one request, timed and judged ---------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        template: str,
        *,
        body: Any = None,
        admin: bool = False,
        written_at: float | None = None,
        allowed: tuple[int, ...] = (),
    ) -> Answer | None:
        headers = dict(self.admin if admin else self.channel)
        if method == "POST":
            headers["Idempotency-Key"] = f"soak-{secrets.token_hex(8)}"
        began = time.monotonic()
        try:
            response = await self.client.request(method, path, json=body, headers=headers)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            self.tally.errors[(f"{method} {template}", 0)] += 1
            self.record(
                Failure(
                    method,
                    path,
                    0,
                    f"{type(error).__name__}: {error}",
                    None,
                    None,
                    self.tally.now(),
                )
            )
            return None
        answered = time.monotonic()
        key = f"{method} {template}"
        self.tally.latencies[key].append(answered - began)
        self.tally.statuses[(key, response.status_code)] += 1
        ok = response.status_code < 300 or response.status_code in allowed
        if not ok:
            self.tally.errors[(key, response.status_code)] += 1
            failure = Failure(
                method,
                path,
                response.status_code,
                response.text[:300],
                None if written_at is None else (answered - written_at) * 1e3,
                response.headers.get("x-ledger-view-position"),
                self.tally.now(),
            )
            if self.record(failure) and method == "GET":
                await self.investigate(failure, path, headers)
            return None
        return response

    def record(self, failure: Failure) -> bool:
        """Keep the first few failures of each kind in full; True if kept."""
        kind = [
            f
            for f in self.tally.failures
            if (f.method, f.status) == (failure.method, failure.status)
            and _template(f.path) == _template(failure.path)
        ]
        if len(kind) >= SAMPLES_PER_KIND:
            return False
        self.tally.failures.append(failure)
        return True

    async def investigate(self, failure: Failure, path: str, headers: dict[str, str]) -> None:
        """Right after a failed read: where the views are, and whether the
        same read finds it a moment later."""
        began = time.monotonic()
        try:
            status = await self.client.get("/views/status", headers=self.admin)
            failure.views_status = {
                k: v
                for k, v in status.json().items()
                if k in ("position", "store_position", "behind", "error")
            }
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            pass
        for pause in (0.0, 0.1, 0.5, 2.0):
            await asyncio.sleep(pause)
            try:
                again = await self.client.get(path, headers=headers)
                failure.later.append(
                    f"+{(time.monotonic() - began) * 1e3:.0f} ms: {again.status_code}"
                )
                if again.status_code < 300:
                    break
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
                failure.later.append(f"{type(error).__name__}")

    # -- what a client does --------------------------------------------------
    async def journey(self) -> None:
        n = next(self.ids)
        good = self.rng.choice(self.goods)
        buyer = f"b{n}"
        sold = await self.request(
            "POST",
            f"/goods/{good}/tiers/{TIER}/sales",
            "/goods/{g}/tiers/{t}/sales",
            body={
                "buyer": buyer,
                "channel": "shop",
                "quantity": 1,
                "unit_price": {"amount": 1_000, "currency": "EUR"},
            },
        )
        if sold is None:
            return
        at = time.monotonic()
        unit = sold.json()["units"][0]["unit_id"]
        await self.request("GET", f"/units/{unit}", "/units/{u}", written_at=at)
        await self.request("GET", f"/goods/{good}/stock", "/goods/{g}/stock", written_at=at)
        await self.request("GET", f"/goods/{good}", "/goods/{g}", written_at=at)
        if self.rng.random() < self.options.list_share:
            await self.listed(good, buyer, unit, at)
        if self.rng.random() < self.options.provenance_share:
            await self.request(
                "GET",
                f"/units/{unit}/provenance",
                "/units/{u}/provenance",
                written_at=at,
                allowed=(409,),
            )
        if self.rng.random() < self.options.resale_share:
            buyer2 = f"r{n}"
            resold = await self.request(
                "POST",
                f"/units/{unit}/resales",
                "/units/{u}/resales",
                body={
                    "seller": buyer,
                    "buyer": buyer2,
                    "channel": "shop",
                    "price": {"amount": 2_000, "currency": "EUR"},
                },
            )
            if resold is None:
                return
            at = time.monotonic()
            found = await self.request("GET", f"/units/{unit}", "/units/{u}", written_at=at)
            if found is not None and found.json().get("holder") != buyer2:
                self.tally.stale["GET /units/{u} after a resale: old holder"] += 1
            await self.listed(good, buyer2, unit, at)

    async def listed(self, good: str, holder: str, unit: str, at: float) -> None:
        page = await self.request(
            "GET", f"/goods/{good}/units?holder={holder}", "/goods/{g}/units?holder=", written_at=at
        )
        if page is not None and unit not in {u["unit_id"] for u in page.json()["items"]}:
            self.tally.stale["GET /goods/{g}/units?holder= without the unit"] += 1

    async def mint(self, quota: int) -> None:
        minted = await self.request(
            "POST",
            "/goods",
            "/goods",
            admin=True,
            body={"spec": good_spec(f"soak {len(self.goods)}", quota)},
        )
        if minted is None:
            return
        at = time.monotonic()
        good = minted.json()["good_id"]
        for suffix in ("", "/stock", "/lineage", "/velocity", f"/units?tier={TIER}"):
            await self.request(
                "GET",
                f"/goods/{good}{suffix}",
                "/goods/{g}" + suffix.split("?")[0] + ("?tier=" if "?" in suffix else ""),
                written_at=at,
            )
        self.goods.append(good)

    # -- pacing ----------------------------------------------------------------
    async def run(self, seconds: float, quota: int) -> None:
        tasks: set[asyncio.Task[None]] = set()
        interval = 1.0 / self.options.rate
        deadline = self.tally.started + seconds
        next_start = time.monotonic()
        next_mint = next_start + self.options.mint_every
        while (now := time.monotonic()) < deadline:
            if now < next_start:
                await asyncio.sleep(next_start - now)
                continue
            next_start += interval
            if next_start < now - 1.0:  # fell a second behind: do not burst to catch up
                next_start = now
            if len(tasks) >= self.options.inflight:
                self.tally.skipped += 1
                continue
            if self.options.mint_every and now >= next_mint:
                next_mint += self.options.mint_every
                work = self.mint(quota)
            else:
                self.tally.journeys += 1
                work = self.journey()
            task = asyncio.create_task(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=60)


def _template(path: str) -> str:
    parts = path.split("?", maxsplit=1)[0].split("/")
    return "/".join("{id}" if len(p) == 36 and p.count("-") == 4 else p for p in parts)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the views process), in MB."""
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += (
                next(
                    int(line.split()[1])
                    for line in status.splitlines()
                    if line.startswith("VmRSS:")
                )
                / 1024
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pids.extend(int(c) for c in children)
        except (OSError, StopIteration, ValueError):
            continue
    return total


async def sample_rss(pid: int, every: float, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        tally.rss.append((tally.now(), rss_mb(pid)))
        print(
            f"  {tally.now():6.0f} s  RSS {tally.rss[-1][1]:7.1f} MB  journeys "
            f"{tally.journeys}  errors {sum(tally.errors.values())}  skipped "
            f"{tally.skipped}",
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    tally.rss.append((tally.now(), rss_mb(pid)))


async def soak(base: str, pid: int, keys: Any, options: argparse.Namespace) -> Tally:
    seconds = options.minutes * 60
    quota = max(1_000, int(options.rate * seconds * 1.5 / options.goods) + 1_000)
    client = Loopback(base, options.inflight)
    try:
        setup = Soak(client, keys, options, [], Tally())
        await setup.request(
            "POST",
            "/channels",
            "/channels",
            admin=True,
            body={"channel": "shop", "name": "Shop", "fee_bps": 500},
        )
        for _ in range(options.goods):
            await setup.mint(quota)
        if setup.tally.errors or len(setup.goods) < options.goods:
            raise SystemExit(f"setting up failed: {setup.tally.failures}")
        tally = Tally()
        runner = Soak(client, keys, options, setup.goods, tally)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(pid, options.rss_every, tally, stop))
        await runner.run(seconds, quota)
        tally.elapsed = tally.now()
        stop.set()
        await sampler
        status = await client.get("/views/status", headers=runner.admin)
        tally.final_views = status.json()
    finally:
        await client.close()
    return tally


def report(tally: Tally, options: argparse.Namespace, log_file: Path) -> int:
    elapsed = tally.elapsed or tally.now()
    sales = sum(
        n for (key, status), n in tally.statuses.items() if key.endswith("/sales") and status == 201
    )
    reads = sum(n for (key, _), n in tally.statuses.items() if key.startswith("GET"))
    print(f"\n== soak: {options.db}, {elapsed:.0f} s, asked {options.rate}/s")
    print(
        f"journeys {tally.journeys} ({tally.journeys / elapsed:.1f}/s), sales answered 201: "
        f"{sales} ({sales / elapsed:.1f}/s), reads {reads} ({reads / elapsed:.1f}/s), "
        f"skipped (client full) {tally.skipped}"
    )
    print("\nanswers by path and status:")
    for (key, status), n in sorted(tally.statuses.items()):
        print(f"  {status}  {n:8d}  {key}")
    print("\nerrors by path and status (404 on what this client created, any 5xx, ...):")
    if not tally.errors:
        print("  none")
    for (key, status), n in sorted(tally.errors.items()):
        print(f"  {status}  {n:8d}  {key}")
    print("\nreads that found the thing without the client's write:")
    if not tally.stale:
        print("  none")
    for what, n in sorted(tally.stale.items()):
        print(f"  {n:8d}  {what}")
    if tally.failures:
        print("\nfailures (first few of each kind):")
        for f in tally.failures:
            since = (
                ""
                if f.since_write_ms is None
                else f" {f.since_write_ms:.0f} ms after the write's answer"
            )
            print(
                f"  at {f.at_s:.1f} s: {f.method} {f.path} -> {f.status}{since}; view "
                f"position {f.view_position}; views then {json.dumps(f.views_status)}; "
                f"again: {', '.join(f.later) or '-'}; {f.detail[:160]}"
            )
    print("\nlatency by path (ms):")
    print(f"  {'n':>8}  {'p50':>7}  {'p99':>7}  {'max':>7}  path")
    for key, samples in sorted(tally.latencies.items()):
        print(
            f"  {len(samples):8d}  {percentile(samples, 0.5) * 1e3:7.1f}  "
            f"{percentile(samples, 0.99) * 1e3:7.1f}  {max(samples) * 1e3:7.1f}  {key}"
        )
    everything = [s for samples in tally.latencies.values() for s in samples]
    if everything:
        print(
            f"  {len(everything):8d}  {percentile(everything, 0.5) * 1e3:7.1f}  "
            f"{percentile(everything, 0.99) * 1e3:7.1f}  {max(everything) * 1e3:7.1f}  "
            "(all)"
        )
    if tally.rss:
        print(
            f"\nserver RSS (with children): start {tally.rss[0][1]:.1f} MB, end "
            f"{tally.rss[-1][1]:.1f} MB, max {max(r for _, r in tally.rss):.1f} MB"
        )
    final = tally.final_views
    print(
        f"views at the end: position {final.get('position')} of {final.get('store_position')}"
        f", lag {json.dumps(final.get('lag'))}"
    )
    print(f"server log: {log_file}")
    return 1 if tally.errors else 0


def run(options: argparse.Namespace) -> int:
    """The soak and its report; 1 if any read or write failed."""
    tally, log_file = soak_once(options)
    return report(tally, options, log_file)


def soak_once(options: argparse.Namespace) -> tuple[Tally, Path]:
    """Run the soak on a fresh store; what it saw, and the server's log."""
    if options.db == "postgres":
        ensure_postgres(options.pg_server)
    directory = Path(tempfile.mkdtemp(prefix="ledger-soak-"))
    with fresh_store(
        "sqlite" if options.db == "sqlite" else "postgres", "soak", options.pg_server
    ) as url:
        keys = issue_keys(url)
        key, _ = log_key(directory, "soak.ledger/log")
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
        ]
        with served(args, base, "/healthz", directory / "ledger.log", cwd=directory) as server:
            tally = asyncio.run(soak(base, server.pid, keys, options))
    return tally, directory / "ledger.log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=150.0, help="sales journeys per second")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--goods", type=int, default=4, help="goods on sale at the start")
    parser.add_argument(
        "--list-share", type=float, default=0.2, help="share of sales whose buyer's listing is read"
    )
    parser.add_argument("--resale-share", type=float, default=0.2)
    parser.add_argument("--provenance-share", type=float, default=0.02)
    parser.add_argument(
        "--mint-every", type=float, default=2.0, help="seconds between mints (0: none)"
    )
    parser.add_argument("--inflight", type=int, default=64, help="journeys at once, at most")
    parser.add_argument("--rss-every", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--pg-server", default=PG_SERVER)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
