"""A real ``ledger serve`` process on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Verifier
from ledger.tlog.signed_note import open_note


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(
    db: str,
    log_key: Path,
    *,
    seal_interval: float = 0.2,
    log_file: Path | None = None,
    policy: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``ledger serve`` on ``db``; ``env``: more LEDGER_* settings."""
    port = free_port()
    env = os.environ | {"LEDGER_SEAL_INTERVAL": str(seal_interval)} | (env or {})
    extra = ["--policy", str(policy)] if policy else []
    with running_process(
        ["serve", "--db", db, "--port", str(port), "--log-key", str(log_key), *extra],
        f"http://127.0.0.1:{port}",
        "/readyz",
        env=env,
        log_file=log_file,
        ready_status=200,
    ) as base:
        yield base


@contextmanager
def running_process(
    args: list[str],
    base: str,
    ready_path: str,
    *,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
    ready_status: int | None = None,
) -> Iterator[str]:
    """Run ``python -m ledger.cli ARGS`` until ``base + ready_path`` answers
    (with ``ready_status``, if given: ``ledger serve`` listens before it is
    ready, and says so on ``/readyz``)."""
    output = open(log_file or os.devnull, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", *args],
        env=env or dict(os.environ),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"ledger {args[0]} exited with {process.returncode}")
            try:
                status = httpx.get(f"{base}{ready_path}", timeout=1).status_code
                if status == ready_status or (ready_status is None and status < 600):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ledger {args[0]} did not come up within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


def generate_log_key(tmp_path: Path, origin: str) -> tuple[Path, str]:
    """``ledger keys generate`` for ``origin``: the key file (0600) and its vkey."""
    key = tmp_path / "log.key"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "keys",
            "generate",
            "--name",
            origin,
            "--out",
            str(key),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    return key, done.stdout.strip()


def wait_for_checkpoint(base: str, verifier: Verifier, size: int) -> Checkpoint:
    """The server's checkpoint once it covers ``size`` entries, signed by ``verifier``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = httpx.get(f"{base}/log/checkpoint")
        if response.status_code == 200:
            note, signed = open_note(response.text, [verifier])
            assert [v.name for v in signed] == [verifier.name]
            checkpoint = Checkpoint.parse(note.text)
            if checkpoint.size >= size:
                return checkpoint
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size {size} within 20 s")
