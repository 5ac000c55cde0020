"""The creator dashboard in a real browser against a real ``ledger serve``:
the goods list, a sale pushed over SSE onto the page within a second, the
velocity chart with its text equivalent, the lineage, the royalty statement
(its lines equal the API's, each resale with its trail) and its CSV download,
keyboard-only use, and another creator's key seeing nothing of alice's."""

from __future__ import annotations

import csv
import io
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Visit, World, issue_key
from tests.strategies import good_spec

SALE_TO_SCREEN_MS_MAX = 1_000
FIRST_PAINT_MS_MAX = 200
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def bob(world: World) -> str:
    """A key of another creator, who made none of the world's goods."""
    return issue_key(world.db, "creator", "bob")


def sign_in(visit: Visit, world: World, key: str, path: str = "/dashboard") -> Any:
    page = visit.page
    page.goto(world.base + path)
    field = page.get_by_label("API key (creator)")
    field.fill(key)
    field.press("Enter")
    page.locator("#session-status .who").wait_for()
    return page


def open_good(visit: Visit, world: World, good: str) -> Any:
    page = sign_in(visit, world, world.keys["alice"], f"/dashboard/goods/{good}")
    page.locator("#statement-table").wait_for()
    page.locator("#stock-table tbody tr").first.wait_for()
    return page


def until(page: Any, expression: str, timeout: float = 5.0) -> None:
    """Wait for ``expression`` to hold in the page. (Not wait_for_function:
    the pages' CSP forbids the eval it uses; page.evaluate goes around it.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.01)


def euros(amount: dict[str, Any]) -> str:
    assert amount["currency"] == "EUR"
    return f"€{amount['amount'] / 100:,.2f}"


def test_the_goods_list_shows_each_good_with_its_tiers(visit: Visit, world: World) -> None:
    page = sign_in(visit, world, world.keys["alice"])
    card = page.locator(f"li.dash-good[data-good-id='{world.good}']")
    card.wait_for()
    assert page.locator("#goods-title").inner_text() == "Goods by alice"
    stock = world.api("alice").get(f"/goods/{world.good}/stock")["tiers"]
    rows = card.locator("tbody tr")
    assert rows.count() == len(stock)
    for row, tier in zip(rows.all(), stock, strict=True):
        cells = row.locator("th, td").all_inner_texts()
        assert cells == [tier["tier"], f"{tier['issued']} / {tier['quota']}", tier["display"]]
    variant = page.locator(f"li.dash-good[data-good-id='{world.variant}']")
    assert variant.get_by_role("link").inner_text() == "Dawn (gold)"
    card.get_by_role("link", name="Dawn").click()
    page.wait_for_url(f"{world.base}/dashboard/goods/{world.good}")
    page.locator("#good-title", has_text="Dawn").wait_for()


def test_a_sale_is_on_the_dashboard_within_a_second(visit: Visit, world: World) -> None:
    # A good of its own, so that the sale changes no other test's world.
    spec = good_spec(
        title=f"Dusk {uuid.uuid4().hex[:6]}",
        creators=[{"id": "alice", "share_bps": 10_000}],
        tiers=[{"name": "own", "quota": 10}],
    )
    good = world.api("alice").post("/goods", {"spec": spec})["good_id"]
    page = open_good(visit, world, good)
    page.get_by_text("Live: changes are pushed").wait_for()
    row = page.locator("#stock-table tr[data-tier='own']")
    assert row.get_attribute("data-issued") == "0"
    # Note the moment the page shows the sale (wall clock, as the test's).
    page.evaluate(
        """() => {
          window.saleSeenAt = null;
          const table = document.querySelector('#stock-table tbody');
          new MutationObserver(() => {
            const row = table.querySelector("tr[data-tier='own']");
            if (window.saleSeenAt === null && row?.dataset.issued === '1') {
              window.saleSeenAt = Date.now();
            }
          }).observe(table, { childList: true, subtree: true, attributes: true });
        }"""
    )
    world.sell("dusk-buyer", good=good)
    answered = time.time() * 1000  # the API's 201 is in
    until(page, "window.saleSeenAt !== null")
    shown_ms = page.evaluate("window.saleSeenAt") - answered
    print(f"\nsale to screen: {shown_ms:.0f} ms after the API's 201 (SSE, no polling)")
    assert shown_ms < SALE_TO_SCREEN_MS_MAX
    cells = row.locator("td").all_inner_texts()
    assert cells[1:3] == ["10", "1"]  # quota, issued
    assert cells[-2] == "9"  # available
    announce = page.locator("#stock-announce")
    assert announce.get_attribute("aria-live") == "polite"
    announce.filter(has_text=" UTC: Tier own: 1 sold; 9 available.").wait_for(timeout=1_000)
    # The chart follows the push (fetched on the event, not on a timer).
    page.locator("#velocity-table tr[data-tier='own'] td").first.filter(has_text="1").wait_for()
    # A pool set aside for the shop: pushed too, counts and the pool table.
    world.api("alice").post(
        f"/goods/{good}/tiers/own/pools/shop/allot", {"quantity": 2, "overflow": True}
    )
    pool = page.locator("#pool-table tr[data-tier='own'][data-channel='shop']")
    pool.wait_for(timeout=2_000)
    assert pool.locator("td").all_inner_texts()[1:3] == ["2", "2"]  # free, allotted
    page.locator("#stock-table tr[data-tier='own'][data-available='7']").wait_for(timeout=2_000)
    assert row.locator("td").all_inner_texts()[4] == "2"  # pooled
    # Said too, at most every 3 s (a flash sale is not a torrent of announcements).
    announce.filter(has_text="Tier own: 2 in pools; 7 available.").wait_for(timeout=5_000)
    assert not any(world.keys["alice"] in url for url in visit.requests)


def test_the_velocity_chart_has_axes_and_a_text_equivalent(visit: Visit, world: World) -> None:
    page = open_good(visit, world, world.good)
    chart = page.locator("svg#velocity-chart")
    chart.wait_for()
    assert chart.get_attribute("role") == "img"
    assert chart.get_attribute("aria-labelledby") == "velocity-svg-title velocity-svg-desc"
    labels = chart.locator("text.axis-label").all_text_contents()
    assert labels == ["units sold per hour (last 60 min)", "tier"]
    velocity = world.api("alice").get(f"/goods/{world.good}/velocity")["tiers"]
    rows = page.locator("#velocity-table tbody tr")
    assert rows.count() == len(velocity)
    for row, tier in zip(rows.all(), velocity, strict=True):
        cells = row.locator("th, td").all_inner_texts()
        assert cells[:5] == [
            tier["tier"],
            str(tier["sold_in_window"]),
            str(tier["window_minutes"]),
            f"{tier['units_per_hour']:g}",
            str(tier["available"]),
        ]
    own = page.locator("#velocity-table tr[data-tier='own'] td").last.inner_text()
    assert own.startswith("sells out about ")
    assert "sells out about" in chart.locator("desc").text_content() or ""


def test_the_lineage_shows_the_variant_and_links_both_ways(visit: Visit, world: World) -> None:
    page = open_good(visit, world, world.good)
    graph = page.locator("svg#lineage-graph")
    graph.wait_for()
    assert graph.locator(f"a[href='/dashboard/goods/{world.variant}']").count() == 1
    assert graph.locator("[aria-current=page] text").text_content() == "Dawn"
    listed = page.locator("#lineage-list")
    assert (
        listed.locator(f"li[data-good-id='{world.variant}']")
        .inner_text()
        .startswith("Dawn (gold) (No. 1, derived ")
    )
    listed.get_by_role("link", name="Dawn (gold)").click()
    page.wait_for_url(f"{world.base}/dashboard/goods/{world.variant}")
    page.locator("#lineage-list").get_by_role("link", name="Dawn").wait_for()
    assert page.locator("#good-title").inner_text() == "Dawn (gold)"


def statement_rows(page: Any) -> list[list[str]]:
    rows = page.locator("#statement-table tbody tr")
    return [row.locator("td").all_inner_texts() for row in rows.all()]


def test_the_statement_lines_equal_the_apis_with_each_trail(visit: Visit, world: World) -> None:
    page = open_good(visit, world, world.good)
    alice = world.api("alice")
    lines = alice.get("/creators/alice/statement", good_id=world.good)["items"]
    assert len(lines) >= 4
    shown = statement_rows(page)
    assert len(shown) == len(lines)
    for cells, line in zip(shown, lines, strict=True):
        unit = alice.get(f"/units/{line['unit_id']}")
        event = next(e for e in unit["history"] if e["reference"] == line["reference"])
        assert cells == [
            f"{line['at'][:10]} {line['at'][11:19]}",
            line["kind"],
            line["unit_id"][:8],
            f"{event['from'] or '—'} → {event['to']}",
            line["channel"],
            euros(line["price"]),
            euros(line["amount"]),
        ]
    resale = page.locator("#statement-table tr[data-kind='resale']")
    assert resale.locator("td.trail").inner_text() == "b0 → zoe"
    page.get_by_label("Kind of line", exact=True).select_option("resale")
    until(page, "!document.querySelector('#statement-table tbody tr:not([data-kind=resale])')")
    resales = alice.get("/creators/alice/statement", good_id=world.good, kind="resale")["items"]
    assert len(statement_rows(page)) == len(resales) == 1
    assert statement_rows(page)[0][-2:] == ["€80.00", "€8.00"]


def test_the_csv_download_is_the_statement(visit: Visit, world: World, tmp_path: Path) -> None:
    page = open_good(visit, world, world.good)
    alice = world.api("alice")
    lines = alice.get("/creators/alice/statement", good_id=world.good, limit=1_000)["items"]
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    saved = tmp_path / "statement.csv"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"statement-alice-{world.good}.csv"
    raw = saved.read_bytes().decode()
    assert raw.endswith("\r\n")
    assert "\n" not in raw.replace("\r\n", "")  # RFC 4180: CRLF only
    records = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert len(records) == len(lines)
    for record, line in zip(records, lines, strict=True):
        unit = alice.get(f"/units/{line['unit_id']}")
        event = next(e for e in unit["history"] if e["reference"] == line["reference"])
        assert record == {
            "at": line["at"],
            "day": line["day"],
            "kind": line["kind"],
            "reference": line["reference"],
            "good_id": line["good_id"],
            "unit_id": line["unit_id"],
            "seller": event["from"] or "",
            "buyer": event["to"],
            "channel": line["channel"],
            "price": str(line["price"]["amount"]),
            "creator_part": str(line["amount"]["amount"]),
            "currency": line["amount"]["currency"],
            "role": line["role"],
        }
    page.get_by_text(f"{len(lines)} lines saved as").wait_for()
    assert not any(world.keys["alice"] in url for url in visit.requests)


def test_keyboard_only_from_sign_in_to_a_good(visit: Visit, world: World) -> None:
    page = visit.page
    page.goto(world.base + "/dashboard")
    page.get_by_label("API key (creator)").wait_for()
    until(page, "document.activeElement.id === 'api-key'")
    page.keyboard.type(world.keys["alice"])  # the key field has the focus
    page.keyboard.press("Enter")
    target = f"/dashboard/goods/{world.good}"
    page.locator(f"a[href='{target}']").wait_for()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == target:
            break
    else:
        pytest.fail("Tab never reached the good's link")
    page.keyboard.press("Enter")
    page.wait_for_url(world.base + target)
    page.locator("#statement-table").wait_for()
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "statement-kind":
            break
    else:
        pytest.fail("Tab never reached the statement's kind")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible


def test_another_creator_sees_nothing_of_alices_good(visit: Visit, world: World, bob: str) -> None:
    page = sign_in(visit, world, bob)
    page.get_by_text("No goods yet").wait_for()
    assert page.locator("li.dash-good").count() == 0
    visit.expect_console("403")
    page.goto(f"{world.base}/dashboard/goods/{world.good}")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.locator("strong").inner_text() == "Forbidden"
    assert "https://ledger.dev/problems/forbidden" in alert.inner_text()
    main = page.locator("main").inner_text()
    assert "Dawn" not in main
    assert "alice" not in main
    assert page.locator("#stock-table, #statement-table, svg").count() == 0
    assert not any("/stock/stream" in url for url in visit.requests)
    visit.expect_console("404")
    page.goto(f"{world.base}/dashboard/goods/{uuid.uuid4()}")
    page.get_by_role("alert").get_by_text("does not exist").wait_for()


def test_the_good_page_fits_a_phone_and_paints_fast(visit: Visit, world: World) -> None:
    page = open_good(visit, world, world.good)
    page.set_viewport_size(PHONE)
    page.locator("svg#lineage-graph").wait_for()
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"]
    page.goto(f"{world.base}/dashboard/goods/{world.good}")  # signed in: straight to it
    page.locator("#statement-table").wait_for()
    paint = page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
    )
    assert paint is not None
    print(f"\ndashboard good page: first contentful paint {paint:.0f} ms (375 px)")
    assert paint < FIRST_PAINT_MS_MAX


def test_signing_out_ends_the_live_stream(visit: Visit, world: World) -> None:
    page = open_good(visit, world, world.good)
    page.get_by_text("Live: changes are pushed").wait_for()
    with page.expect_event(
        "requestfailed", lambda request: request.url.endswith("/stock/stream")
    ) as ended:
        page.get_by_role("button", name="Sign out").click()
    assert ended.value.failure == "net::ERR_ABORTED"
    page.get_by_label("API key (creator)").wait_for()
    assert page.locator("#stock-table").count() == 0


def test_a_masters_creator_sees_their_part_of_anothers_variant(visit: Visit, world: World) -> None:
    # A master of alice's with a variant by carol: each sale of the variant
    # pays alice her master's part, so her dashboard shows her statement of it.
    alice = world.api("alice")
    rules = {"max_variants": 1, "max_supply_per_variant": 5, "master_primary_bps": 1_000}
    master_spec = good_spec(
        title=f"Noon {uuid.uuid4().hex[:6]}",
        creators=[{"id": "alice", "share_bps": 10_000}],
        tiers=[{"name": "own", "quota": 5}],
        variant_rules=rules,
    )
    master = alice.post("/goods", {"spec": master_spec})["good_id"]
    variant_spec = good_spec(
        title="Noon (carol)",
        creators=[{"id": "carol", "share_bps": 10_000}],
        tiers=[{"name": "own", "quota": 5}],
    )
    variant = alice.post(f"/goods/{master}/variants", {"spec": variant_spec})["good_id"]
    world.sell("noon-buyer", good=variant)
    deadline = time.monotonic() + 5
    while not (lines := alice.get("/creators/alice/statement", good_id=variant)["items"]):
        assert time.monotonic() < deadline, "the views never showed the sale"
        time.sleep(0.05)  # the views follow the store a few ms behind
    assert [line["role"] for line in lines] == ["master-creator"]
    page = open_good(visit, world, variant)
    assert page.locator("#statement-title").inner_text() == "Royalty statement of alice"
    assert statement_rows(page)[0][-2:] == ["€10.00", euros(lines[0]["amount"])]
    assert page.locator("#good-title").inner_text() == "Noon (carol)"


def test_an_admin_sees_every_good_and_the_creators_statement(visit: Visit, world: World) -> None:
    page = visit.page
    page.goto(world.base + "/dashboard")
    page.get_by_label("API key (creator)").fill(world.keys["admin"])
    page.get_by_label("API key (creator)").press("Enter")
    page.locator(f"li.dash-good[data-good-id='{world.good}']").wait_for()
    assert page.locator("#goods-title").inner_text() == "All goods"
    page.goto(f"{world.base}/dashboard/goods/{world.good}")
    page.locator("#statement-table").wait_for()
    assert page.locator("#statement-title").inner_text() == "Royalty statement of alice"
