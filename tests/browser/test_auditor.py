"""The auditor console in a real browser, against a server whose policy names
a live verifier node, one refusing every push and one nobody answers for
(tests/e2e/witnessed.py): the log's size and checkpoint, each verifier's
cosignature, lag and last push, the alarms, the views, the newest audit
lines, and the verify command copied; refreshed on its button and its timer, keeping the focus and what was
opened; at a phone's
width; an admin key passes too."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.browser.conftest import Visit, issue_key
from tests.browser.test_pages import PHONE
from tests.e2e.witnessed import pushed_to_all, wait_for, witnessed_server
from tests.strategies import open_shop_and_sell


@dataclass
class Console:
    base: str
    url: DatabaseURL
    keys: dict[str, str]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    here = tmp_path_factory.mktemp("auditor")
    url = DatabaseURL.parse(f"sqlite:///{here / 'ledger.db'}")
    Ledger(url).close()
    db = url.display()
    keys = {"auditor": issue_key(db, "auditor"), "admin": issue_key(db, "admin")}
    with witnessed_server(here, db) as served, Ledger(url) as ledger:
        open_shop_and_sell(ledger, 3)
        size = int(ledger.event_store.recorder.max_notification_id() or 0)
        wait_for(pushed_to_all(served.base, keys["auditor"], size), "the pushes")
        yield Console(served.base, url, keys)


def sign_in(visit: Visit, console: Console, who: str = "auditor") -> None:
    page = visit.page
    page.goto(console.base + "/auditor")
    field = page.get_by_label("API key (auditor)")
    field.fill(console.keys[who])
    field.press("Enter")
    page.locator("#app[data-refreshed]").wait_for()


def refreshes(page: Any) -> int:
    """How many refreshes the console has shown (its ``data-refreshed``)."""
    return int(page.locator("#app").get_attribute("data-refreshed") or 0)


def until(ready: Callable[[], bool], what: str) -> None:
    """Poll from here: the pages' CSP refuses the eval wait_for_function needs."""
    wait_for(ready, what, seconds=30)


def refreshed(page: Any) -> Callable[[], None]:
    """Press "Refresh now"; the returned call waits until a refresh has shown
    its reads since (one already running when pressed counts: the page runs
    another after it, which a test waiting for what it shows sees)."""
    count = refreshes(page)
    page.get_by_role("button", name="Refresh now").click()
    return lambda: until(lambda: refreshes(page) > count, "a refresh")


def log_size(console: Console) -> int:
    size: int = httpx.get(console.base + "/healthz").json()["log_size"]
    return size


def test_the_console_shows_the_log_verifiers_alarms_views_and_audit(
    visit: Visit, console: Console
) -> None:
    page = visit.page
    sign_in(visit, console)
    page.get_by_text("Signed in as auditor").wait_for()

    alarms = page.locator("#alarms")
    assert alarms.locator("#alarm-count").inner_text() == "2 alarms"
    refused, unreachable = alarms.locator("li.alarm").all_inner_texts()
    assert re.fullmatch(r"verifier-refused refusing: size \d+: HTTP 404 .*", refused)
    assert re.fullmatch(r"verifier-unreachable gone: size \d+: \w+", unreachable)

    log = page.locator("#log")
    size = log_size(console)
    assert log.locator("dd").first.inner_text() == f"{size:,}"
    assert "ledger.test/witnessed" in log.inner_text()
    assert "size" in log.locator("dl").inner_text()
    log.get_by_text("The checkpoint as served").click()
    checkpoint = httpx.get(console.base + "/log/checkpoint").text
    assert page.locator("#checkpoint-text").inner_text().strip() == checkpoint.strip()

    verifiers = page.locator("#verifiers")
    assert verifiers.locator("#quorum").inner_text().endswith("met")
    rows = verifiers.locator("tbody tr")
    assert rows.count() == 3
    live, refusing, gone = (rows.nth(i).locator("td").all_inner_texts() for i in range(3))
    assert live[0] == "live"
    assert int(live[1].replace(",", "")) == size - int(live[2])
    assert "cosigned" in live[4]
    assert (refusing[0], refusing[1], refusing[2]) == ("refusing", "none yet", f"{size:,}")
    assert "refused" in refusing[4]
    assert "HTTP 404" in refusing[4]
    assert (gone[0], gone[1]) == ("gone", "none yet")
    assert "unreachable" in gone[4]

    views = page.locator("#views")
    assert "caught up" in views.inner_text()
    assert "Lag p50 / p99 / max" in views.inner_text()

    audit = page.locator("#audit tbody tr")
    assert audit.count() >= 5
    first = audit.first.locator("td").all_inner_texts()
    positions = [int(r.split("\t")[0].replace(",", "")) for r in audit.all_inner_texts()]
    assert positions == sorted(positions, reverse=True)
    assert re.fullmatch(r"[a-z]+\.[a-z.]+", first[2]), first

    verify = page.locator("#verify")
    command = 'ledger verify --db "$LEDGER_DATABASE_URL" --policy policy.txt'
    assert page.locator("#verify-db").inner_text() == command
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.base)
    verify.get_by_role("button", name="Copy: verify the store").click()
    verify.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == command
    assert not [url for url in visit.requests if console.keys["auditor"] in url]


def test_the_commands_it_offers_verify_this_store(
    visit: Visit, console: Console, tmp_path: Path
) -> None:
    page = visit.page
    sign_in(visit, console)
    fetch = page.locator("#policy-fetch").inner_text()
    assert fetch == f"curl -s {console.base}/log/policy > policy.txt"
    command = page.locator("#verify-db").inner_text()
    # As an operator runs them (curl's part with httpx, the same GET).
    (tmp_path / "policy.txt").write_text(httpx.get(console.base + "/log/policy").text)
    env = os.environ | {"LEDGER_DATABASE_URL": console.url.display()}
    args = [sys.executable, "-m", "ledger.cli", *shlex.split(command)[1:]]
    args = [a.replace("$LEDGER_DATABASE_URL", env["LEDGER_DATABASE_URL"]) for a in args]
    done = subprocess.run(
        args, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_refresh_shows_what_happened_since(visit: Visit, console: Console) -> None:
    page = visit.page
    sign_in(visit, console)
    before = log_size(console)
    assert page.locator("#log dd").first.inner_text() == f"{before:,}"
    registered = httpx.post(
        console.base + "/channels",
        json={"channel": "later", "name": "Later", "fee_bps": 100},
        headers={
            "Authorization": f"Bearer {console.keys['admin']}",
            "Idempotency-Key": "later-channel",
        },
    )
    assert registered.status_code == 201, registered.text
    wait_for(lambda: log_size(console) > before, "the log to grow")
    after = log_size(console)
    page.get_by_text("The checkpoint as served").click()
    refreshed(page)()
    shown = page.locator("#log dd").first
    until(lambda: shown.inner_text() == f"{after:,}", "the new size shown")
    # What the reader opened stays open; where the keyboard was, it stays.
    assert page.locator("#log details").get_attribute("open") is not None
    copy = page.get_by_role("button", name="Copy: verify the store")
    copy.focus()
    count = refreshes(page)
    until(lambda: refreshes(page) > count, "the timer's refresh (10 s)")
    assert page.evaluate("document.activeElement.textContent") == "Copy: verify the store"
    assert page.locator("#log details").get_attribute("open") is not None
    assert "channel.registered" in page.locator("#audit tbody").inner_text()


def test_an_admin_passes_and_the_console_fits_a_phone(visit: Visit, console: Console) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    sign_in(visit, console, "admin")
    page.get_by_text("Signed in as admin").wait_for()
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"]
    # Keyboard only: the refresh button is reachable and works.
    count = refreshes(page)
    page.locator("#refresh").focus()
    page.keyboard.press("Enter")
    until(lambda: refreshes(page) > count, "a refresh from the keyboard")
