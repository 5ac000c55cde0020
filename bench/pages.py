"""The web pages' first paint, from a local ``ledger serve``, in Debian's
chromium (Playwright), beside a trivial static page measured in the same run.

    .venv/bin/python -m bench.pages [--loads 30] [--chromium /usr/bin/chromium]

A fresh SQLite store with a channel, a good and a sale; each page is loaded
``--loads`` times in a tab whose HTTP cache is disabled (each load fetches
the page and its assets again, as a first visit does; the tab is reused so
that starting a renderer process, the browser's cost, is not counted), and
the browser's own figures are read:
first-contentful-paint (``performance.getEntriesByType("paint")``) and
DOMContentLoaded (the navigation entry's ``domContentLoadedEventEnd``),
both from the start of the navigation. The baseline is a trivial static
HTML file (one heading, one paragraph, no stylesheet, no script) served by
Python's ``http.server`` on 127.0.0.1, loaded the same way, alternated
with the pages, so a busy machine slows both. The auditor console is also
measured signed in (its key already in the tab) up to its data shown.
Median and p95 per page; target: first paint under 200 ms.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from bench.common import Figure, fresh_store, main_of, percentile
from bench.http import TIER, issue_keys, ledger_server, log_key, open_shop, post

TARGET_MS = 200.0
BASELINE_HTML = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>baseline</title>"
    "<h1>A static page</h1><p>One heading, one paragraph.</p></html>\n"
)
PAINT = """async () => {
  for (let i = 0; i < 100; i++) {
    const paint = performance.getEntriesByName("first-contentful-paint")[0];
    if (paint) {
      const nav = performance.getEntriesByType("navigation")[0];
      return [paint.startTime, nav.domContentLoadedEventEnd];
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return [null, null];
}"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loads", type=int, default=30, help="loads of each page")
    parser.add_argument("--chromium", default="/usr/bin/chromium")


@contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """Python's http.server on 127.0.0.1, serving ``directory``."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Tab:
    """One browser tab that loads pages with its HTTP cache disabled: every
    load fetches the page and each asset again (a first visit's requests),
    without the cost of starting a renderer process, which is the browser's
    and not the page's."""

    def __init__(self, browser: Any, setup: str | None = None) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        if setup:
            self.context.add_init_script(setup)
        self.page = self.context.new_page()
        cdp = self.context.new_cdp_session(self.page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})

    def load(self, url: str, ready: str | None = None) -> list[float]:
        """[first paint, DOMContentLoaded(, ready: ``ready`` shown)] in ms
        from the navigation's start."""
        self.page.goto(url, wait_until="load")
        fcp, dcl = self.page.evaluate(PAINT)
        if fcp is None:
            raise RuntimeError(f"no first-contentful-paint for {url}")
        times = [float(fcp), float(dcl)]
        if ready:
            self.page.locator(ready).wait_for(timeout=30_000)
            times.append(float(self.page.evaluate("performance.now()")))
        return times


def measure(
    loads: int, pages: dict[str, Callable[[], list[float]]], baseline: Callable[[], list[float]]
) -> tuple[list[list[float]], dict[str, list[list[float]]]]:
    """Each page ``loads`` times, the baseline once before each round."""
    base: list[list[float]] = []
    samples: dict[str, list[list[float]]] = {name: [] for name in pages}
    for page in pages.values():  # one warm-up each (the server's first render, the browser's)
        page()
    baseline()
    for _ in range(loads):
        base.append(baseline())
        for name, page in pages.items():
            samples[name].append(page())
    return base, samples


def figures(base: list[list[float]], samples: dict[str, list[list[float]]]) -> list[Figure]:
    out = []
    for column, what in ((0, "first contentful paint"), (1, "DOMContentLoaded")):
        values = [s[column] for s in base]
        reference = Figure(what, "static HTML (http.server)", median(values), "ms")
        reference.note = f"p95 {percentile(values, 0.95):.1f} ms"
        out.append(reference)
        for name, runs in samples.items():
            values = [s[column] for s in runs]
            p95 = percentile(values, 0.95)
            figure = Figure(what, name, median(values), "ms", baseline=reference)
            figure.note = f"p95 {p95:.1f} ms, n={len(values)}"
            if column == 0:
                figure.target = f"median < {TARGET_MS:.0f} ms"
                figure.met = figure.value < TARGET_MS
            out.append(figure)
    ready = {name: runs for name, runs in samples.items() if len(runs[0]) > 2}
    for name, runs in ready.items():
        values = [s[2] for s in runs]
        figure = Figure("data shown", name, median(values), "ms")
        figure.note = f"p95 {percentile(values, 0.95):.1f} ms, n={len(values)}"
        out.append(figure)
    return out


def run(options: argparse.Namespace) -> list[Figure]:
    with (
        fresh_store("sqlite", "pages") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        directory = Path(tmp)
        (directory / "static").mkdir()
        (directory / "static" / "baseline.html").write_text(BASELINE_HTML)
        keys = issue_keys(url)
        key, _ = log_key(directory, "bench.ledger/pages")
        with (
            ledger_server(url, directory, key) as base,
            static_server(directory / "static") as static,
            sync_playwright() as playwright,
        ):
            good = open_shop(base, keys, 100)
            with httpx.Client(base_url=base, timeout=30) as client:
                sale = {
                    "buyer": "b0",
                    "channel": "shop",
                    "unit_price": {"amount": 100, "currency": "EUR"},
                }
                sold = post(client, f"/goods/{good}/tiers/{TIER}/sales", keys.channel, sale)
                me = client.get("/me", headers={"Authorization": f"Bearer {keys.admin}"}).json()
            unit = sold["units"][0]["unit_id"]
            signed_in = (
                f"sessionStorage.setItem('ledger.api-key', {json.dumps(keys.admin)});"
                f"sessionStorage.setItem('ledger.api-key.who', {json.dumps(json.dumps(me))});"
            )
            browser = playwright.chromium.launch(
                executable_path=options.chromium,
                args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
            )
            try:
                paths = {
                    "home /": "/",
                    "dashboard": "/dashboard",
                    "dashboard, a good": f"/dashboard/goods/{good}",
                    "explorer": "/explore",
                    "explorer, a unit": f"/explore/units/{unit}",
                    "explorer, a good": f"/explore/goods/{good}",
                    "auditor console": "/auditor",
                }
                tab, keyed, plain = Tab(browser), Tab(browser, signed_in), Tab(browser)
                pages: dict[str, Callable[[], list[float]]] = {
                    name: functools.partial(tab.load, base + path) for name, path in paths.items()
                }
                pages["auditor console, signed in"] = functools.partial(
                    keyed.load, base + "/auditor", "#app[data-refreshed]"
                )
                baseline = functools.partial(plain.load, static + "/baseline.html")
                base_runs, samples = measure(options.loads, pages, baseline)
            finally:
                browser.close()
    return figures(base_runs, samples)


if __name__ == "__main__":
    main_of(__doc__, add_arguments, run)
