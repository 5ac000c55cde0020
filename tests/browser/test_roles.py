"""Roles across the pages (issue 16: "a channel key cannot see another
channel's data in any page"): a page shows only what its key may read
through the public API, so each test records every API answer the page
received (with whose key it asked) and checks what was shown of it.

* A channel key (shop's) is refused by the creator dashboard and the
  auditor console with a plain message, and nothing but ``/me`` is asked.
* A creator key is refused by the auditor console.
* A key revoked while the auditor console is open: every read it is
  refused is shown as a problem, and the data shown before is gone.
* With shop's key held in the tab, no page reads anything of market's or
  alice's: every answer a page turned into data is one anyone may read
  without a key (the explorer's public data), or one for shop itself; every
  answer other than 2xx is shown as a problem, never as data.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.browser.conftest import Visit, World, issue_key
from tests.browser.test_auditor import refreshed


@dataclass(frozen=True)
class Answer:
    path: str  # with its query
    status: int
    who: str | None  # whose key the page sent (a key of the world's), None: none
    streamed: bool


def record(visit: Visit, world: World) -> list[Answer]:
    """Every API answer the page receives from now on (not pages or assets)."""
    answers: list[Answer] = []
    tokens = {token: who for who, token in world.keys.items()}

    def on_response(response: Any) -> None:
        request = response.request
        if request.resource_type not in ("fetch", "xhr"):
            return
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        split = urlsplit(response.url)
        answers.append(
            Answer(
                split.path + (f"?{split.query}" if split.query else ""),
                response.status,
                tokens.get(sent) if sent else None,
                response.headers.get("content-type", "").startswith("text/event-stream"),
            )
        )

    visit.page.on("response", on_response)
    return answers


def hold_key(visit: Visit, world: World, who: str) -> None:
    """The tab holds ``who``'s key, as session.js keeps it once signed in."""
    token = world.keys[who]
    me = httpx.get(world.base + "/me", headers={"Authorization": f"Bearer {token}"}).json()
    script = (
        f"sessionStorage.setItem('ledger.api-key', {json.dumps(token)});"
        f"sessionStorage.setItem('ledger.api-key.who', {json.dumps(json.dumps(me))});"
    )
    visit.page.add_init_script(script)


def not_channel_private(world: World, answer: Answer) -> bool:
    """Whether the same GET is answered 2xx without a key, or with the other
    channel's key too: data any reader may see, not one channel's (what the
    API scopes per channel -- holds, settlements -- its own tests check)."""
    for headers in ({}, {"Authorization": f"Bearer {world.keys['market']}"}):
        with httpx.stream("GET", world.base + answer.path, headers=headers, timeout=10) as got:
            if got.status_code < 300:
                return True
    return False


def test_a_channel_key_is_refused_by_the_dashboard_and_the_console(
    visit: Visit, world: World
) -> None:
    page = visit.page
    answers = record(visit, world)
    for path, needs in (
        ("/dashboard", "creator"),
        (f"/dashboard/goods/{world.good}", "creator"),
        ("/auditor", "auditor"),
    ):
        page.goto(world.base + path)
        field = page.get_by_label(f"API key ({needs})")
        field.fill(world.keys["shop"])
        field.press("Enter")
        # ("a auditor" or "an auditor": whichever session.js says)
        message = re.compile(f"This page needs an? {needs} key; this one is an? channel key")
        page.get_by_role("alert").get_by_text(message).wait_for()
        assert page.evaluate("sessionStorage.length") == 0
        assert page.locator("#app table, #app section").count() == 0
    assert answers == [Answer("/me", 200, "shop", streamed=False)] * 3


def test_a_creator_key_is_refused_by_the_console(visit: Visit, world: World) -> None:
    page = visit.page
    answers = record(visit, world)
    page.goto(world.base + "/auditor")
    field = page.get_by_label("API key (auditor)")
    field.fill(world.keys["alice"])
    field.press("Enter")
    message = re.compile("This page needs an? auditor key; this one is an? creator key")
    page.get_by_role("alert").get_by_text(message).wait_for()
    assert page.locator("#app section").count() == 0
    assert answers == [Answer("/me", 200, "alice", streamed=False)]


def test_with_a_channel_key_in_the_tab_no_page_shows_anothers_data(
    visit: Visit, world: World
) -> None:
    page = visit.page
    hold_key(visit, world, "shop")
    answers = record(visit, world)
    pages = [
        "/",
        "/dashboard",
        f"/dashboard/goods/{world.good}",
        "/auditor",
        "/explore",
        f"/explore/units/{world.resold}",
        f"/explore/goods/{world.good}",
    ]
    for path in pages:
        start = len(answers)
        page.goto(world.base + path)
        page.locator("#main").wait_for()
        page.wait_for_timeout(750)  # (the page's first reads)
        seen = answers[start:]
        shown = page.locator("#main").inner_text()
        if path.startswith(("/dashboard", "/auditor")):
            # Not a creator's or an auditor's key: asked for one, nothing read.
            page.locator("#api-key").wait_for()
            assert seen == [], (path, seen)
        for answer in seen:
            assert not answer.path.startswith(("/channels/market", "/creators/")), (path, answer)
            if answer.status < 300:
                # Data a page shows: shop's own, or anyone's to read.
                assert answer.path.startswith("/channels/shop") or not_channel_private(
                    world, answer
                ), (
                    path,
                    answer,
                )
            else:
                # Refused: shown as the problem it is, never as data.
                assert page.get_by_role("alert").count() > 0, (path, answer)
        assert "settlement" not in shown.lower(), path
    assert page.evaluate("sessionStorage.getItem('ledger.api-key')") == world.keys["shop"]
    assert not [url for url in visit.requests if world.keys["shop"] in url]


def test_a_key_revoked_meanwhile_shows_problems_not_data(visit: Visit, world: World) -> None:
    page = visit.page
    token = issue_key(world.db, "auditor")
    key_id = httpx.get(world.base + "/me", headers={"Authorization": f"Bearer {token}"}).json()[
        "key_id"
    ]
    answers = record(visit, world)
    page.goto(world.base + "/auditor")
    field = page.get_by_label("API key (auditor)")
    field.fill(token)
    field.press("Enter")
    page.locator("#app[data-refreshed]").wait_for()
    assert page.locator("#log dd").count() > 0
    assert page.get_by_role("alert").count() == 0
    revoke = ["api-keys", "revoke", "--db", world.db, key_id]
    subprocess.run([sys.executable, "-m", "ledger.cli", *revoke], check=True, timeout=60)
    time.sleep(5.5)  # (servers refuse a revoked key within 5 s)
    visit.expect_console("401")
    start = len(answers)
    refreshed(page)()
    refused = [a for a in answers[start:] if a.status == 401]
    # Every keyed read refused; /healthz and /log/checkpoint are anyone's.
    assert {a.path.split("?")[0] for a in refused} == {
        "/witnesses",
        "/alarms",
        "/views/status",
        "/audit",
    }
    for section in ("alarms", "verifiers", "views", "audit"):
        body = page.locator(f"#{section}-body")
        assert body.get_by_role("alert").count() == 1, section
        assert body.locator("table, dl, li.alarm").count() == 0, section
