"""A throwaway PostgreSQL cluster that a test creates, stops and starts.

Outage tests stop the database under a running server; they must never do
that to the shared server on 5432, so they make their own: ``initdb`` in a
temporary directory, a free port, TCP on 127.0.0.1 only, trust auth. As
root (CI), the cluster runs as the ``postgres`` user (initdb refuses root).
Outside CI a machine without the PostgreSQL server binaries skips, saying
why; under ``CI=true`` it fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ledger.store.database import DatabaseURL
from ledger.store.postgres import create_database
from tests.conftest import IN_CI
from tests.e2e.conftest import free_port


def _bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    def __init__(self, bin_dir: Path, root: Path, port: int, user: str | None) -> None:
        self.bin_dir, self.root, self.port, self._user = bin_dir, root, port, user
        self.data = root / "data"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def init(self) -> str | None:
        """None, or why the cluster could not be made."""
        done = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        return None if done.returncode == 0 else (done.stderr or done.stdout).strip()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        assert done.returncode == 0, done.stderr + done.stdout

    def stop(self, mode: str = "fast") -> None:
        done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        assert done.returncode == 0, done.stderr + done.stdout

    def url(self, dbname: str, *, password: str = "") -> DatabaseURL:
        secret = f":{password}" if password else ""
        return DatabaseURL.parse(f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{dbname}")

    def create_database(self, dbname: str) -> DatabaseURL:
        url = self.url(dbname)
        create_database(url)
        return url


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A started cluster of our own, removed at the end."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        reason = "no PostgreSQL server binaries (initdb) on this machine"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the outage tests must run)")
        pytest.skip(reason)
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    if user is not None:
        shutil.chown(root, user=user)
    cluster = Cluster(bin_dir, root, free_port(), user)
    problem = cluster.init()
    if problem is not None:
        shutil.rmtree(root, ignore_errors=True)
        if IN_CI:
            pytest.fail(f"initdb failed (CI=true: the outage tests must run): {problem}")
        pytest.skip(f"cannot make a throwaway PostgreSQL cluster: {problem}")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
