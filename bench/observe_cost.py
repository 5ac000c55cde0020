"""What the operations signals (issue 14 item 8) cost an HTTP sale, in CPU.

    .venv/bin/python -m bench.observe_cost [--backend sqlite|postgres]
        [--sales 500] [--rounds 12] [--concurrency 64] [--trivial 20000]

The ledger's own app (``ledger.api.app.create_app``, one runtime, no
background threads) is driven in-process over ASGI -- no network, no
uvicorn, no client library -- with concurrent sales of one unit
(``POST /goods/{id}/tiers/own/sales``, a channel key, a fresh buyer and
Idempotency-Key each), so group commit batches them as under a flash sale.
Three apps on one store take turns, ``--rounds`` times:

* **without**: the app with its ``Observed`` middleware taken out (what
  main had: no metrics, no access line of its own);
* **metrics**: the app as ``ledger serve`` runs it by default (metrics on,
  text logs: no access line from the app);
* **json**: metrics and the JSON access line (``--log-format json``),
  written through the JSON formatter to a file.

Reported: the process's CPU time per sale (``time.process_time``: every
thread, so the commits too), the median over the rounds (the variants take
turns in short rounds, so the store's growth and the machine's other load
fall on all three alike), and each variant's cost over **without**. The
ASGI path leaves out uvicorn's own work, so the share is an upper bound of
the share of a sale over HTTP.

Then the middleware alone, where the sale's own spread cannot hide it: a
trivial ``async`` route (a 201 with a small JSON body) called
``--trivial`` times in a row, with and without ``Observed``, alternated;
the difference of the medians is what ``Observed`` adds to any request.
Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.datastructures import State

from bench.common import Figure, fresh_store, main_of
from ledger.api.app import create_app
from ledger.api.logs import JsonFormatter, RequestContext
from ledger.api.metrics import ServerMetrics
from ledger.api.observe import AccessLog, Observed
from ledger.api.runtime import open_runtime
from ledger.config import Settings
from ledger.store.apikeys import Role
from ledger.store.database import DatabaseURL

GROUP = "HTTP sale in-process over ASGI, CPU per sale"
QUOTA = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sales", type=int, default=500, help="sales per round and variant")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--trivial", type=int, default=20_000, help="requests per round")


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _sell(app: Any, path: str, token: str, sales: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        body = orjson.dumps(
            {
                "buyer": f"b-{uuid.uuid4().hex[:12]}",
                "channel": "shop",
                "unit_price": {"amount": 100, "currency": "EUR"},
            }
        )
        headers = [
            (b"authorization", f"Bearer {token}".encode()),
            (b"idempotency-key", uuid.uuid4().hex.encode()),
            (b"content-type", b"application/json"),
        ]
        async with gate:
            status = await _call(app, path, headers, body)
        if status != 201:
            raise RuntimeError(f"a sale answered {status}")

    await asyncio.gather(*(one() for _ in range(sales)))


def _setup(url: DatabaseURL) -> tuple[Any, str, str]:
    """The runtime, a channel key and the sales path of a big one-tier good."""
    runtime = open_runtime(url, Settings())
    keys = runtime.api_keys
    assert keys is not None
    token = keys.issue(Role.CHANNEL, "shop", label="bench")[1]
    ledger = runtime.ledger
    ledger.register_channel("shop", "Shop", 100, idempotency_key="channel")
    spec = {
        "title": "Observed",
        "creators": [{"id": "alice", "share_bps": 10_000}],
        "content_digest": "sha256:" + "ab" * 32,
        "kind": "collectible",
        "currency": "EUR",
        "edition": {"policy": "absolute"},
        "royalty": {"resale_bps": 1_000},
        "tiers": [{"name": "own", "quota": QUOTA, "transferable": True}],
    }
    good = ledger.mint(spec, idempotency_key="good")["good_id"]
    return runtime, token, f"/goods/{good}/tiers/own/sales"


def _log_access_as_json(log_file: Path) -> None:
    """``ledger.access`` lines to ``log_file`` as ``--log-format json`` writes them."""
    handler = logging.FileHandler(log_file)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContext())
    access = logging.getLogger("ledger.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def _apps(runtime: Any) -> dict[str, Any]:
    without = create_app(runtime)
    without.user_middleware = [m for m in without.user_middleware if m.cls is not Observed]
    return {
        "without": without,
        "metrics": create_app(runtime),
        "json": create_app(runtime, access_log=AccessLog()),
    }


def _sales(options: argparse.Namespace) -> dict[str, list[float]]:
    """CPU seconds per sale of each variant, one value per round."""
    per_sale: dict[str, list[float]] = {}
    with fresh_store(options.backend, "observe") as url:
        runtime, token, path = _setup(url)
        try:
            apps = _apps(runtime)

            def measure(app: Any) -> None:
                asyncio.run(_sell(app, path, token, options.sales, options.concurrency))

            for app in apps.values():
                measure(app)  # warm up: caches, the key, the app's stack
            for round_ in range(options.rounds):
                for name, app in apps.items():
                    started = time.process_time()
                    measure(app)
                    spent = (time.process_time() - started) / options.sales
                    per_sale.setdefault(name, []).append(spent)
                    print(f"  round {round_ + 1:2} {name:8} {spent * 1e6:8.1f} µs CPU per sale")
        finally:
            runtime.ledger.close()
    return per_sale


def _trivial(options: argparse.Namespace) -> dict[str, list[float]]:
    """CPU seconds per request of a trivial route, with and without Observed."""
    bare, observed, logged = FastAPI(), FastAPI(), FastAPI()
    for app in (bare, observed, logged):

        @app.post("/goods/{good_id}/tiers/{tier}/sales", status_code=201)
        async def sale(good_id: str, tier: str) -> dict[str, str]:
            return {"good_id": good_id, "tier": tier}

    commands = {"/goods/{good_id}/tiers/{tier}/sales": "sell"}
    observed.add_middleware(Observed, metrics=ServerMetrics(State(), commands), access=None)
    logged.add_middleware(Observed, metrics=ServerMetrics(State(), commands), access=AccessLog())
    path = f"/goods/{uuid.uuid4()}/tiers/own/sales"

    async def calls(app: Any, count: int) -> None:
        for _ in range(count):
            await _call(app, path, [], b"")

    per_request: dict[str, list[float]] = {}
    apps = {"bare": bare, "observed": observed, "json": logged}
    for app in apps.values():
        asyncio.run(calls(app, 1_000))  # warm up
    for _ in range(options.rounds):
        for name, app in apps.items():
            started = time.process_time()
            asyncio.run(calls(app, options.trivial))
            spent = (time.process_time() - started) / options.trivial
            per_request.setdefault(name, []).append(spent)
    return per_request


def run(options: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        _log_access_as_json(Path(tmp) / "access.jsonl")
        per_sale = _sales(options)
        trivial = _trivial(options)
    median = {name: statistics.median(values) for name, values in per_sale.items()}
    backend = "SQLite" if options.backend == "sqlite" else "PostgreSQL"
    group = f"{GROUP}, {backend}, {options.concurrency} at a time"
    base = Figure(group, "without Observed", median["without"] * 1e6, "µs")
    figures = [base]
    for name in ("metrics", "json"):
        cost = median[name] / median["without"] - 1
        figures.append(
            Figure(
                group,
                name,
                median[name] * 1e6,
                "µs",
                baseline=base,
                target="<= 1.05x",
                met=cost <= 0.05,
                note=f"{cost:+.1%} CPU per sale; median of {options.rounds} rounds of "
                f"{options.sales} sales",
            )
        )
    bare = statistics.median(trivial["bare"])
    for name, who in (("observed", "added by Observed"), ("json", "... and a JSON access line")):
        spent = statistics.median(trivial[name])
        added = spent - bare
        figures.append(
            Figure(
                "Observed on a trivial async route, CPU per request",
                who,
                added * 1e6,
                "µs",
                note=f"{bare * 1e6:.1f} -> {spent * 1e6:.1f} µs per request; "
                f"{added / median['without']:.2%} of a sale's CPU above",
            )
        )
    return figures


if __name__ == "__main__":
    main_of(__doc__, add_arguments, run)
