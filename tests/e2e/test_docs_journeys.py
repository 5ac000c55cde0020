"""The documentation runs as written (issue 15 items 1 and 2).

Every ``sh`` block of docs/api.md "First calls" (operator, creator,
platform, provenance, the creator again, auditor) and then of
docs/verification.md (the auditor's walkthrough, the verifier nodes' order
of operations, a platform's provenance check) runs with bash, in document
order, against a real ``ledger serve`` on each backend, and must exit 0.

Each block is its own bash process under ``set -euo pipefail``; the shell
variables a block sets (``GOOD=$(curl … | jq -r .good_id)``) are handed on
to the blocks after it, so every variable a call uses is set by the docs
themselves. ``curl`` runs with ``--fail-with-body``: a documented call
answered with a 4xx or 5xx fails its block. A stream (``curl -sN``, which a
reader ends with Ctrl-C) is read for two seconds.

What the docs say in prose, the test does: the operator's setup before
the first call (a log key, a code keyring, ``ledger serve`` with
``LEDGER_CODE_KEYRING_FILE``; ``LEDGER_DATABASE_URL`` names the store for
the server and for every ``ledger`` command), and step 3 of "Verifier
nodes" (the server restarted with ``--policy policy.txt``, on the same
address). A block that starts a verifier node runs in the background until
the end of the test, as a node does.

Needs curl and jq: without them the test skips, except under ``CI=true``,
where it fails (``.ci/run`` installs jq).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from ledger.store.database import DatabaseURL
from tests.conftest import IN_CI
from tests.e2e.conftest import free_port, running_process

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^( *)```sh\n(.*?)^\1```$", re.S | re.M)
ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=", re.M)
VERIFIER_PORT = 8101  # as docs/verification.md's policy and node say
BLOCK_SECONDS = 120

PRELUDE = """\
set -euo pipefail
curl() {
    local arg
    for arg in "$@"; do
        if [ "$arg" = -sN ]; then  # a stream: read it for 2 s (a reader stops it by hand)
            local status=0
            command curl --fail-with-body --max-time 2 "$@" || status=$?
            [ "$status" -eq 28 ] && return 0
            return "$status"
        fi
    done
    command curl --fail-with-body --max-time 30 "$@"
}
"""


def sh_blocks(doc: str, start: str = "", end: str = "") -> list[str]:
    """The ``sh`` blocks of ``doc`` between the headings ``start`` and ``end``."""
    text = (DOCS / doc).read_text()
    first = text.index(start) if start else 0
    last = text.index(end, first) if end else len(text)
    return [textwrap.dedent(m.group(2)) for m in FENCE.finditer(text[first:last])]


def _tools() -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        message = f"the documented calls need {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: .ci/run installs jq; the docs must run)")
        pytest.skip(message)


class Shell:
    """Runs blocks one by one in ``cwd``, each in its own bash, carrying the
    variables the blocks set from one to the next."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.saved = cwd / ".doc-variables.sh"
        self.names: set[str] = set()
        self.transcript: list[str] = []

    def script(self, block: str) -> str:
        self.names |= set(ASSIGNED.findall(block))
        keep = f"declare -p {' '.join(sorted(self.names))} > {self.saved} 2>/dev/null || true\n"
        restore = f"if [ -f {self.saved} ]; then source {self.saved}; fi\n"
        return PRELUDE + restore + block + "\n" + (keep if self.names else "")

    def run(self, label: str, block: str) -> str:
        done = subprocess.run(
            ["bash", "-c", self.script(block)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_SECONDS,
            check=False,
        )
        self.transcript.append(f"--- {label}\n{block}\n{done.stdout}{done.stderr}")
        assert done.returncode == 0, (
            f"{label} exited {done.returncode}:\n{block}\nstdout:\n{done.stdout[-3000:]}\n"
            f"stderr:\n{done.stderr[-3000:]}"
        )
        return done.stdout

    @contextmanager
    def background(self, label: str, block: str, ready: str) -> Iterator[None]:
        """A block that starts a long-running process, until the end."""
        name = re.sub(r"[^a-z0-9]+", "-", label.lower())
        log = open(self.cwd / f"{name}.log", "w")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            ["bash", "-c", self.script(block)],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped with its children
        )
        try:
            _wait_for(ready, lambda: process.poll() is None, label)
            yield
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()


def _wait_for(url: str, alive: object, label: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            raise AssertionError(f"{label} exited before answering at {url}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{label} did not answer at {url} within 30 s")


def _operator(work: Path, env: dict[str, str]) -> None:
    """What docs/api.md says the operator did before the first call."""
    for args in (
        ["keys", "generate", "--name", "ledger.test/docs", "--out", "log.key"],
        ["codes", "keyring", "--out", "codes.keyring"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ledger.cli", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def test_the_documented_calls_run_as_written(store_url: DatabaseURL, tmp_path: Path) -> None:
    _tools()
    work = tmp_path / "docs"
    work.mkdir()
    port = free_port()
    database = (
        f"sqlite:///{work / 'ledger.db'}" if store_url.backend == "sqlite" else store_url.display()
    )
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LEDGER_DATABASE_URL": database,
        "LEDGER_CODE_KEYRING_FILE": str(work / "codes.keyring"),
        "LEDGER_SEAL_INTERVAL": "0.2",
        "LEDGER_WEBHOOKS_ALLOW_PRIVATE": "true",  # (api.md's webhook example)
        "LEDGER": f"http://127.0.0.1:{port}",
    }
    _operator(work, env)
    shell = Shell(work, env)
    api = sh_blocks("api.md", "## First calls", "## Endpoints")
    verification = sh_blocks("verification.md")
    assert len(api) >= 7
    assert len(verification) >= 7

    def serve(stack: ExitStack, *policy: str) -> None:
        stack.enter_context(
            running_process(
                ["serve", "--port", str(port), "--log-key", str(work / "log.key"), *policy],
                env["LEDGER"],
                "/readyz",
                env=env,
                log_file=work / f"serve{len(policy)}.log",
                ready_status=200,
            )
        )

    with ExitStack() as nodes, ExitStack() as first:
        serve(first)
        outputs = [shell.run(f"docs/api.md block {i + 1}", b) for i, b in enumerate(api)]
        for i, block in enumerate(verification):
            label = f"docs/verification.md block {i + 1}"
            if not block.startswith("ledger verifier run"):
                outputs.append(shell.run(label, block))
                continue
            # Step 3 of "Verifier nodes": the operator restarts the server with the policy.
            first.close()
            serve(nodes, "--policy", str(work / "policy.txt"))
            nodes.enter_context(
                shell.background(label, block, f"http://127.0.0.1:{VERIFIER_PORT}/status")
            )
    transcript = "\n".join(outputs)
    assert "event: stock" in transcript  # the stream showed the stock
    assert re.search(r"erin's code: GIFT-\d{6}", transcript)
    assert '"delivered":false' in transcript  # the ping: nothing listens on port 9
