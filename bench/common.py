"""What every benchmark of the suite shares: the figure it reports, the
table they all print into, fresh stores, percentiles, a quiet machine, and
the PostgreSQL server (found, or started).

A benchmark module exposes ``run(options) -> list[Figure]`` and can run on
its own (``python -m bench.<name>``); ``python -m bench`` runs them all and
prints one table. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ledger.store.database import DatabaseURL
from ledger.store.postgres import create_database, create_schema, drop_database, server_reachable

PG_SERVER = os.environ.get("LEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/")


@dataclass
class Figure:
    """One measured figure, and how it compares with its baseline and target."""

    group: str  # what is measured, e.g. "flash sale, PostgreSQL, in-process"
    name: str  # who: "ledger", "raw row-lock SQL", ...
    value: float
    unit: str  # "sales/s", "ms", "MB", ...
    baseline: Figure | None = None  # measured in the same run
    target: str = ""  # the goal, e.g. ">= 5x" or "<= 50 ms"
    met: bool | None = None  # whether the target is met (None: no target)
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.value:
            return None
        return self.value / self.baseline.value

    def row(self) -> list[str]:
        ratio = self.ratio
        verdict = "" if self.met is None else ("met" if self.met else "missed")
        return [
            self.group,
            self.name,
            f"{_number(self.value)} {self.unit}",
            ""
            if self.baseline is None
            else f"{ratio:.2f}x {self.baseline.name}"
            if ratio is not None
            else "",
            f"{self.target} {verdict}".strip(),
            self.note,
        ]


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


HEADER = ["measure", "who", "figure", "vs baseline (same run)", "target", "note"]


def table(figures: Sequence[Figure], *, markdown: bool = False) -> str:
    rows = [HEADER] + [f.row() for f in figures]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += [
            "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]
        ]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The sample at ``fraction`` (0..1) of the sorted samples (nearest rank)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def wait_quiet(max_seconds: float = 20.0, busy_below: float = 0.25) -> float:
    """Wait (up to ``max_seconds``) until the machine's CPUs are mostly idle;
    returns the busy fraction last seen, so a figure can say how quiet it was."""

    def busy_sample() -> float:
        def read() -> tuple[int, int]:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            values = [int(v) for v in fields]
            idle = values[3] + values[4]
            return sum(values), idle

        total_a, idle_a = read()
        time.sleep(0.5)
        total_b, idle_b = read()
        return 1 - (idle_b - idle_a) / max(1, total_b - total_a)

    deadline = time.monotonic() + max_seconds
    busy = busy_sample()
    while busy > busy_below and time.monotonic() < deadline:
        busy = busy_sample()
    return busy


def ensure_postgres(server: str = PG_SERVER) -> DatabaseURL:
    """The PostgreSQL server the benchmarks use: found reachable, or started
    with the cluster's own tools (as on these machines)."""
    url = DatabaseURL.parse(server.rstrip("/") + "/postgres")
    if server_reachable(url) is None:
        return url
    clusters = (
        sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    )
    if clusters and shutil.which("pg_ctlcluster"):
        version = clusters[-1].parent.name
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
        )
        for _ in range(50):
            if server_reachable(url) is None:
                return url
            time.sleep(0.2)
    problem = server_reachable(url)
    raise SystemExit(
        f"no PostgreSQL server at {url.host}:{url.port} ({problem}); start one or "
        "set LEDGER_BENCH_POSTGRES_URL"
    )


@contextmanager
def fresh_store(
    backend: str, label: str = "bench", server: str = PG_SERVER
) -> Iterator[DatabaseURL]:
    """A new, empty store: a SQLite file in a temp dir, or a PostgreSQL
    database ``ledger_bench_<random>`` created here and dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
            yield DatabaseURL.parse(f"sqlite:///{Path(directory) / f'{label}.db'}")
        return
    name = f"ledger_bench_{secrets.token_hex(4)}"
    url = DatabaseURL.parse(f"{server.rstrip('/')}/{name}?schema=bench")
    create_database(url)
    try:
        create_schema(url)
        yield url
    finally:
        drop_database(url)


def ensure_command(command: str, debian_package: str) -> str:
    """The path of ``command``, installing its Debian package if it is missing
    (the benchmark machines let root use apt-get)."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-q", debian_package],
            check=False,
            capture_output=True,
            env=env,
        )
        if subprocess.run(["which", command], capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True, env=env)
            subprocess.run(
                ["apt-get", "install", "-y", "-q", debian_package],
                check=False,
                capture_output=True,
                env=env,
            )
        found = shutil.which(command)
    if not found:
        raise SystemExit(f"{command} is needed: install the Debian package {debian_package}")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(
    args: list[str],
    base: str,
    ready_path: str,
    log_file: Path,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python ARGS`` until ``base + ready_path`` answers (below 500);
    yields the process; stops it after."""
    with open(log_file, "w") as output:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=env or dict(os.environ),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{' '.join(args[:3])} exited with {process.returncode}; "
                        f"see {log_file}:\n{log_file.read_text()[-2000:]}"
                    )
                try:
                    if httpx.get(f"{base}{ready_path}", timeout=2).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(args[:3])} did not come up within 60 s")
                time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main_of(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], list[Figure]],
) -> None:
    """``python -m bench.<name>``: parse the module's options, run it, print its table."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    add_arguments(parser)
    print(table(run(parser.parse_args())))
