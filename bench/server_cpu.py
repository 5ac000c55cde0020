"""The HTTP flash sale's cost in the server's own CPU: what a loaded machine
disturbs far less than a throughput.

    .venv/bin/python -m bench.server_cpu [--buyers 15342] [--units 10000] [--connections 64]

``bench.http``'s sale (``ledger serve`` on a fresh SQLite store, a channel
and a good made through the API, ``bench/flash_sale.lua`` under wrk), with
the server process's user + system CPU time -- every thread: the requests,
the commits, the views, the sealer -- read from ``/proc/<pid>/stat`` before
and after the wrk run, divided by the requests answered. Settings come from
the environment (``LEDGER_LOG_FORMAT=json`` for JSON logs); to compare two
trees, run each from its own checkout (``PYTHONPATH=<tree>/src:<tree>``)
in turn. Figures only (Linux).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import Figure, free_port, fresh_store, main_of, served
from bench.http import TIER, db_text, issue_keys, log_key, open_shop, run_wrk


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--buyers", type=int, default=15_342)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=64)


def cpu_seconds(pid: int) -> float:
    """User + system time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(options: argparse.Namespace) -> list[Figure]:
    with fresh_store("sqlite", "cpu") as url, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        keys = issue_keys(url)
        key, _ = log_key(directory, "bench.ledger/cpu")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        args = ["-m", "ledger.cli", "serve", "--db", db_text(url), "--port", str(port)]
        args += ["--log-key", str(key)]
        with served(args, base, "/readyz", directory / "ledger.log", cwd=directory) as process:
            good = open_shop(base, keys, options.units)
            time.sleep(1)  # the views and the sealer settle
            before = cpu_seconds(process.pid)
            sale = run_wrk(
                base,
                f"/goods/{good}/tiers/{TIER}/sales",
                keys.channel,
                options.buyers,
                connections=options.connections,
                threads=1,
            )
            spent = cpu_seconds(process.pid) - before
    log = os.environ.get("LEDGER_LOG_FORMAT", "text")
    return [
        Figure(
            f"flash sale over HTTP {options.buyers:,}/{options.units:,}, SQLite, server CPU",
            f"ledger ({log} logs)",
            spent / max(1, sale.answered) * 1e6,
            "µs/request",
            note=sale.describe(),
        )
    ]


if __name__ == "__main__":
    main_of(__doc__, add_arguments, run)
