"""Browser tests: Playwright (Python) driving Debian's chromium against a
real ``ledger serve`` on 127.0.0.1.

* ``browser`` -- one chromium for these tests, launched from its Debian path
  (``LEDGER_TEST_CHROMIUM``, default ``/usr/bin/chromium``; never a Playwright
  download). Without it the tests skip saying why, except under ``CI=true``,
  where they fail (``.ci/run`` installs the package).
* ``visit`` -- a fresh browser context and page that records every request
  the browser makes, and fails the test on any request to a host other than
  127.0.0.1 (but for one the page's Content-Security-Policy refused before
  it left the browser), on any page error and on any console error the test
  did not expect (``visit.expect_console("403")``). The browser also cannot
  resolve any other host, so nothing outside could load even unseen.
* ``world`` -- a served store shared by these tests: channels ``shop`` and
  ``market``, a good by ``alice`` with a variant, three sales by the shop, a
  unit handed to the market and resold there; keys for each role.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.e2e.conftest import running_server
from tests.e2e.witnessed import witnessed_server
from tests.strategies import good_spec

CHROMIUM = Path(os.environ.get("LEDGER_TEST_CHROMIUM", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI") == "true"
LOCAL_HOSTS = {"127.0.0.1"}
PRICE = {"amount": 1_000, "currency": "EUR"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


# Package-scoped, not session: Playwright's sync API keeps an event loop
# running on the main thread while it is open, and tests elsewhere call
# asyncio.run() (tests/e2e/test_soak.py); closed once tests/browser is done.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"no chromium at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: the browser tests must run")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            # Nothing but loopback resolves: a page cannot load from outside.
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Visit:
    """A page, and what it asked for and complained about."""

    page: Any
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect_console(self, fragment: str) -> None:
        """A console error containing ``fragment`` is expected (e.g. a 403)."""
        self.expected.append(fragment)

    def outside(self) -> list[str]:
        return [
            url
            for url in self.requests
            if not url.startswith(("data:", "blob:"))
            and urlsplit(url).hostname not in LOCAL_HOSTS
            and url not in self.refused
        ]

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(f in e for f in self.expected)]


@pytest.fixture
def visit(browser: Any) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Visit(page)
    context.on("request", lambda request: seen.requests.append(request.url))
    page.on(
        "requestfailed",
        lambda request: seen.refused.append(request.url) if request.failure == "csp" else None,
    )
    page.on("pageerror", lambda error: seen.errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            seen.errors.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    try:
        yield seen
    finally:
        context.close()
    assert seen.outside() == [], "the page loaded from outside 127.0.0.1"
    assert seen.unexpected_errors() == []


def issue_key(db: str, role: str, subject: str | None = None) -> str:
    args = [sys.executable, "-m", "ledger.cli", "api-keys", "issue", "--db", db]
    args += ["--role", role, "--json"] + (["--subject", subject] if subject else [])
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    token: str = json.loads(done.stdout)["token"]
    return token


class Api:
    """The JSON API with one key, for setting up what the pages show."""

    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def post(self, path: str, body: Any) -> Any:
        answer = self.http.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()


@dataclass
class World:
    base: str
    db: str
    keys: dict[str, str]
    good: str
    variant: str
    units: list[str]
    resold: str

    def api(self, who: str) -> Api:
        return Api(self.base, self.keys[who])

    def sell(self, buyer: str, *, good: str | None = None, channel: str = "shop") -> str:
        answer = self.api(channel).post(
            f"/goods/{good or self.good}/tiers/own/sales",
            {"buyer": buyer, "channel": channel, "unit_price": PRICE},
        )
        unit: str = answer["units"][0]["unit_id"]
        return unit


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with served_world(tmp_path_factory.mktemp("browser-world")) as world:
        yield world


@contextmanager
def served_world(here: Path, *, witnessed: bool = False) -> Iterator[World]:
    """The world, served from a store in ``here`` while the block runs (the
    ``world`` fixture's, and the screenshots'). ``witnessed``: the server's
    policy names three verifiers, a live node, one refusing every push and
    one nobody answers for (tests/e2e/witnessed.py)."""
    url = DatabaseURL.parse(f"sqlite:///{here / 'ledger.db'}")
    Ledger(url).close()
    db = url.display()
    keys = {
        "admin": issue_key(db, "admin"),
        "alice": issue_key(db, "creator", "alice"),
        "shop": issue_key(db, "channel", "shop"),
        "market": issue_key(db, "channel", "market"),
        "auditor": issue_key(db, "auditor"),
    }
    with ExitStack() as stack:
        if witnessed:
            base = stack.enter_context(witnessed_server(here, db)).base
        else:
            key = here / "log.key"
            command = ["keys", "generate", "--name", "ledger.test/browser", "--out", str(key)]
            subprocess.run(
                [sys.executable, "-m", "ledger.cli", *command],
                capture_output=True,
                check=True,
                timeout=60,
            )
            base = stack.enter_context(running_server(db, key, log_file=here / "server.log"))
        yield _populate(base, db, keys)


def _populate(base: str, db: str, keys: dict[str, str]) -> World:
    admin, alice = Api(base, keys["admin"]), Api(base, keys["alice"])
    admin.post("/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
    admin.post("/channels", {"channel": "market", "name": "Market", "fee_bps": 250})
    creators = [{"id": "alice", "share_bps": 10_000}]
    rules = {"max_variants": 3, "max_supply_per_variant": 5}
    spec = good_spec(creators=creators, resale_bps=1_000, variant_rules=rules)
    good = alice.post("/goods", {"spec": spec})["good_id"]
    variant_spec = good_spec(
        title="Dawn (gold)", creators=creators, tiers=[{"name": "own", "quota": 5}]
    )
    variant = alice.post(f"/goods/{good}/variants", {"spec": variant_spec})["good_id"]
    world = World(base, db, keys, good, variant, [], "")
    world.units = [world.sell(f"b{i}") for i in range(3)]
    world.resold = world.units[0]
    shop, market = world.api("shop"), world.api("market")
    shop.post(
        f"/units/{world.resold}/moves", {"holder": "b0", "to_channel": "market", "channel": "shop"}
    )
    market.post(
        f"/units/{world.resold}/resales",
        {
            "seller": "b0",
            "buyer": "zoe",
            "channel": "market",
            "price": {"amount": 8_000, "currency": "EUR"},
        },
    )
    return world
