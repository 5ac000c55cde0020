"""A ``ledger serve`` whose policy names three verifiers, each in another
state: ``live`` (a real verifier node, pushed to and pulling, cosigning),
``refusing`` (its URL answers every push with a 404) and ``gone`` (its URL
is a port nobody listens on). For the verifiers' status, the alarms and the
auditor console."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.conftest import free_port, running_process, running_server
from tests.e2e.test_verifier_nodes import keygen

ORIGIN = "ledger.test/witnessed"
NAMES = ("live", "refusing", "gone")


@dataclass(frozen=True)
class Witnessed:
    base: str  # the ledger server
    node: str  # the live verifier node
    policy: Path


@contextmanager
def witnessed_server(directory: Path, db: str) -> Iterator[Witnessed]:
    log_key, log_vkey = keygen(directory, ORIGIN)
    keys = {name: keygen(directory, name, cosigner=True) for name in NAMES}
    node_port = free_port()
    urls = {
        "live": f"http://127.0.0.1:{node_port}",
        "refusing": f"http://127.0.0.1:{node_port}/not-a-verifier",
        "gone": f"http://127.0.0.1:{free_port()}",
    }
    policy = directory / "policy.txt"
    policy.write_text(
        f"log {log_vkey}\n"
        + "".join(f"witness {n} {keys[n][1]} {urls[n]}\n" for n in NAMES)
        + "quorum live\n"
    )
    with ExitStack() as stack:
        base = stack.enter_context(
            running_server(db, log_key, policy=policy, log_file=directory / "ledger.log")
        )
        node = stack.enter_context(
            running_process(
                [
                    "verifier",
                    "run",
                    "--ledger",
                    base,
                    "--key",
                    str(keys["live"][0]),
                    "--log-key",
                    log_vkey,
                    "--state",
                    str(directory / "node"),
                    "--port",
                    str(node_port),
                    "--poll",
                    "0.1",
                ],
                urls["live"],
                "/status",
                log_file=directory / "node.log",
            )
        )
        yield Witnessed(base, node, policy)


def wait_for(ready: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def pushed_to_all(base: str, token: str, size: int) -> Callable[[], bool]:
    """Whether the server has pushed a checkpoint of at least ``size`` to every
    verifier and the live one has cosigned it."""

    def ready() -> bool:
        answer = httpx.get(f"{base}/witnesses", headers={"Authorization": f"Bearer {token}"})
        verifiers = {v["name"]: v for v in answer.json()["verifiers"]}
        return verifiers["live"]["cosigned_size"] >= size and all(
            (v["last_push"] or {}).get("size", 0) >= size
            for name, v in verifiers.items()
            if name != "live"
        )

    return ready
