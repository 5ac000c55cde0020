"""Screenshots of every page, made by a script, not by hand (docs/pages.md,
"Screenshots")::

    python -m tests.browser.screenshots --out docs/screenshots

Serves the browser tests' world (tests/browser/conftest.py: channels shop
and market, alice's good and its variant, sales, a resale) from a temporary
store, with a policy naming three verifiers (one live, one refusing, one
gone: the auditor console has something to say), signs in where a page
needs a key, and saves ``<name>.png`` at a desktop's width and
``<name>-phone.png`` at a phone's, for each entry of :data:`SHOTS`. Debian's
chromium (``LEDGER_TEST_CHROMIUM``), nothing loaded from outside 127.0.0.1.
Exit 1 if a page loaded from elsewhere, failed with a script error, or never
showed what it waits for.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.browser.conftest import CHROMIUM, LOCAL_HOSTS, World, served_world
from tests.e2e.witnessed import pushed_to_all, wait_for

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
WAIT_MS = 15_000


@dataclass(frozen=True)
class Shot:
    """One page to take: ``path`` may name ``{good}``, ``{variant}``,
    ``{unit}`` (a unit sold at the shop) and ``{resold}`` (the unit resold at
    the market); ``role``: whose key signs in (a key of the world's: alice,
    shop, market, auditor, admin), None for none; ``ready``: a selector the
    page shows once it is ready; ``click``: a button to wait for and press
    first, then ``ready`` is waited for; ``full_page``: the whole
    page, not only the window's height; ``idle``: wait for the network to
    fall idle before the shot -- False for a page that holds a live stream
    open (it never falls idle): ``ready`` is then what it must show."""

    name: str
    path: str
    role: str | None
    ready: str
    click: str | None = None
    full_page: bool = True
    idle: bool = True


SHOTS = [
    Shot("home", "/", None, "main .cards"),
    Shot("dashboard", "/dashboard", "alice", ".dash-good"),
    # Its stock comes over a stream that stays open: ready once the pools
    # and the velocity (read after the stream's first event) are shown.
    Shot(
        "dashboard-good",
        "/dashboard/goods/{good}",
        "alice",
        "#app:has(#velocity-table tbody tr):has(#pools > *)",
        idle=False,
    ),
    Shot("explore-search", "/explore", None, "#app > *"),
    Shot(
        "explore-unit",
        "/explore/units/{resold}",
        None,
        "#verdict",
        click="Verify in this browser",
    ),
    Shot("auditor", "/auditor", "auditor", "#app[data-refreshed]"),
    Shot("docs", "/docs", None, ".swagger-ui .info .title", full_page=False),
]


def _url(world: World, shot: Shot) -> str:
    return world.base + shot.path.format(
        good=world.good, variant=world.variant, unit=world.units[1], resold=world.resold
    )


def _take(page: Any, world: World, shot: Shot, out: Path, suffix: str) -> None:
    page.goto(_url(world, shot))
    if shot.role is not None:
        field = page.locator("#api-key")
        field.fill(world.keys[shot.role])
        field.press("Enter")
    if shot.click is not None:
        # (waited for: a page builds its buttons after its first reads)
        page.get_by_role("button", name=shot.click).first.click(timeout=WAIT_MS)
    page.locator(shot.ready).first.wait_for(timeout=WAIT_MS)
    if shot.idle:
        page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / f"{shot.name}{suffix}.png"), full_page=shot.full_page)


def take(world: World, out: Path, shots: list[Shot]) -> list[str]:
    """Each shot at both widths into ``out``; what went wrong (empty: nothing)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        try:
            for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
                for shot in shots:
                    # A context per page: signing in on one is not carried to the next.
                    context = browser.new_context(viewport=viewport, color_scheme="light")
                    page = context.new_page()
                    page.on("request", lambda r: _outside(r.url, problems))
                    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                    try:
                        _take(page, world, shot, out, suffix)
                    except Exception as error:
                        problems.append(f"{shot.name}{suffix}: {error}")
                    finally:
                        context.close()
        finally:
            browser.close()
    return problems


def _outside(url: str, problems: list[str]) -> None:
    # (ReDoc's logo from its CDN is refused by the page's CSP: never sent.)
    local = url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS
    if not local and "cdn.redoc.ly" not in url:
        problems.append(f"loaded from outside 127.0.0.1: {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder for the PNGs")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"no chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as here, served_world(Path(here), witnessed=True) as world:
        size = httpx.get(world.base + "/healthz").json()["log_size"]
        wait_for(pushed_to_all(world.base, world.keys["auditor"], size), "the pushes")
        problems = take(world, args.out, SHOTS)
    for problem in problems:
        print(problem, file=sys.stderr)
    taken = sorted(p.name for p in args.out.glob("*.png"))
    print(f"{len(taken)} screenshots in {args.out}: {' '.join(taken)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
