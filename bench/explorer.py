"""What the provenance explorer costs a browser: a unit page's first paint,
and checking its bundle in the browser against checking it in Python.

    .venv/bin/python -m bench.explorer [--resales 50] [--loads 15] [--checks 20]

A real ``ledger serve`` on a SQLite store with one unit sold and resold
``--resales`` times (so its bundle carries that many events and proofs plus
its stock's), sealed; Debian's chromium (``/usr/bin/chromium``, or
``$LEDGER_TEST_CHROMIUM``) driven by Playwright.

* first contentful paint of ``/explore/units/{id}``, the median of
  ``--loads`` loads, against the bare page shell (the 404 page: base
  template and stylesheet, no script) in the same run; target 200 ms;
* ``verifyBundle`` (tlog.js: every signature, leaf hash and inclusion proof
  with WebCrypto) on the page's bundle, median of ``--checks`` runs, against
  ``ledger.verify.provenance.verify_provenance`` on the same bundle in this
  process.

Figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from bench.common import Figure, main_of
from bench.http import ledger_server, log_key
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog.policy import parse_policy
from ledger.verify.provenance import verify_provenance

CHROMIUM = Path(os.environ.get("LEDGER_TEST_CHROMIUM", "/usr/bin/chromium"))
FIRST_PAINT = """() => new Promise((done) => new PerformanceObserver((list, observer) => {
  const fcp = list.getEntriesByName("first-contentful-paint")[0];
  if (fcp) { observer.disconnect(); done(fcp.startTime); }
}).observe({ type: "paint", buffered: true }))"""
CHECK = """async ({unit, policy, runs}) => {
  const tlog = await import("/static/js/tlog.js");
  const bundle = await (await fetch(`/units/${unit}/provenance`)).json();
  const times = [];
  let ok = true;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    ok = ok && (await tlog.verifyBundle(bundle, policy)).ok;
    times.push(performance.now() - started);
  }
  return { ok, times };
}"""


def _unit(url: DatabaseURL, resales: int) -> str:
    """A unit sold to b0 and resold ``resales`` times along b1, b2, ..."""
    spec = {
        "title": "Bench print",
        "creators": [{"id": "alice", "share_bps": 10_000}],
        "content_digest": "sha256:" + "ab" * 32,
        "kind": "collectible",
        "currency": "EUR",
        "edition": {"policy": "absolute"},
        "tiers": [{"name": "own", "quota": 10, "transferable": True}],
        "royalty": {"resale_bps": 1_000},
    }
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(spec, idempotency_key="m")["good_id"]
        sold = ledger.sell(
            good, "own", buyer="b0", channel="shop", quantity=1,
            unit_price=Money(1_000, "EUR"), idempotency_key="s",
        )  # fmt: skip
        unit = str(sold["units"][0]["unit_id"])
        for n in range(resales):
            ledger.resell(
                unit, seller=f"b{n}", buyer=f"b{n + 1}", channel="shop",
                price=Money(1_000 + n, "EUR"), idempotency_key=f"r{n}",
            )  # fmt: skip
    return unit


def _sealed(base: str, unit: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/units/{unit}/provenance")
        if answer.status_code == 200:
            bundle: dict[str, Any] = answer.json()
            return bundle
        time.sleep(0.1)
    raise RuntimeError("the unit was not sealed within 30 s")


def _paints(page: Any, url: str, loads: int) -> list[float]:
    found = []
    for _ in range(loads):
        page.goto(url)
        found.append(float(page.evaluate(FIRST_PAINT)))
    return found


def run(options: argparse.Namespace) -> list[Figure]:
    if not CHROMIUM.exists():
        raise SystemExit(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as temporary:
        directory = Path(temporary)
        url = DatabaseURL.parse(f"sqlite:///{directory / 'explorer.db'}")
        unit = _unit(url, options.resales)
        key, _vkey = log_key(directory, "bench.example/explorer")
        with ledger_server(url, directory, key) as base:
            bundle = _sealed(base, unit)
            policy_text = httpx.get(f"{base}/log/policy").text
            policy = parse_policy(policy_text)
            python = []
            for _ in range(options.checks):
                started = time.perf_counter()
                verify_provenance(bundle, policy)
                python.append((time.perf_counter() - started) * 1_000)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                page = browser.new_page()
                shell = _paints(page, f"{base}/explore/units/not-an-id", options.loads)
                unit_page = _paints(page, f"{base}/explore/units/{unit}", options.loads)
                page.goto(f"{base}/explore/units/{unit}")
                checked = page.evaluate(
                    CHECK, {"unit": unit, "policy": policy_text, "runs": options.checks}
                )
                browser.close()
    if not checked["ok"]:
        raise RuntimeError("the browser refused a valid bundle")
    events = len(bundle["events"])
    paint_group = "explorer: first contentful paint, local server"
    check_group = f"provenance check, {events} events + stock ({options.checks} runs)"
    shell_figure = Figure(paint_group, "page shell (404 page)", statistics.median(shell), "ms")
    python_figure = Figure(check_group, "Python verify_provenance", statistics.median(python), "ms")
    painted = statistics.median(unit_page)
    return [
        shell_figure,
        Figure(
            paint_group,
            "/explore/units/{id}",
            painted,
            "ms",
            baseline=shell_figure,
            target="<= 200 ms",
            met=painted <= 200,
            note=f"median of {options.loads}; max {max(unit_page):.0f} ms",
        ),
        python_figure,
        Figure(
            check_group,
            "browser tlog.js verifyBundle",
            statistics.median(checked["times"]),
            "ms",
            baseline=python_figure,
            note="WebCrypto SHA-256 and Ed25519, no server call",
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resales", type=int, default=50, help="resales of the unit")
    parser.add_argument("--loads", type=int, default=15, help="page loads measured")
    parser.add_argument("--checks", type=int, default=20, help="bundle checks measured")


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
