"""The README's "See it in a browser", word for word: ``ledger demo`` then
``ledger serve`` as printed there (the demo with fewer purchase attempts,
and the server on a free port), and each user's page reached in a real
browser with the keys the demo printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import Visit
from tests.e2e.conftest import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
FEWER = ["--attempts", "600", "--resales", "40"]


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    section = text.split("## See it in a browser", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def local(command: list[str]) -> list[str]:
    """``.venv/bin/ledger ...`` as this test's interpreter has it."""
    assert command[0] == ".venv/bin/ledger", command
    return [str(BIN / "ledger"), *command[1:]]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    here = tmp_path_factory.mktemp("readme-demo")
    demo, serve = readme_commands()
    assert demo[1] == "demo"
    assert serve[1] == "serve"
    done = subprocess.run(
        local(demo) + FEWER, cwd=here, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "See it in a browser" in done.stdout
    keys = json.loads((here / "ledger-demo.keys.json").read_text())
    assert (here / "ledger-demo.keys.json").stat().st_mode & 0o777 == 0o600
    for token in keys.values():
        assert token in done.stdout  # printed, as the README says
    port = free_port()
    with (here / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [*local(serve), "--port", str(port)],
            cwd=here,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ | {"LEDGER_SEAL_INTERVAL": "0.2"},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                raise AssertionError((here / "serve.log").read_text())
            yield base, keys
        finally:
            server.terminate()
            server.wait(timeout=15)


def test_each_user_reaches_their_page(
    visit: Visit, demo_server: tuple[str, dict[str, str]]
) -> None:
    base, keys = demo_server
    page = visit.page
    page.goto(base + "/")
    page.get_by_role("link", name="Creator dashboard").first.click()
    page.get_by_label("API key (creator)").fill(keys["creator alice"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as creator alice").wait_for()
    page.goto(base + "/auditor")
    page.get_by_label("API key (auditor)").fill(keys["auditor"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as auditor").wait_for()
    page.goto(base + "/explore")
    assert page.locator("h1").inner_text() == "Provenance explorer"
    assert httpx.get(base + "/log/checkpoint").text.startswith("ledger.demo/log\n")
