"""The pages' common ground in a real browser: the home page, the offline
API docs, signing in (the key stays in the tab, never in a URL), the page
headers, a phone's width, and the 404 page."""

from __future__ import annotations

import httpx

from tests.browser.conftest import Visit, World

PHONE = {"width": 375, "height": 740}


def test_home_links_each_page_and_loads_only_from_this_server(visit: Visit, world: World) -> None:
    page = visit.page
    answer = page.goto(world.base + "/")
    assert answer is not None
    assert answer.status == 200
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    links = page.locator("main .card h2 a")
    assert links.all_inner_texts() == [
        "Creator dashboard",
        "Provenance explorer",
        "Auditor console",
    ]
    page.get_by_role("link", name="Provenance explorer").click()
    page.wait_for_url(world.base + "/explore")
    assert page.locator("nav a[aria-current=page]").inner_text() == "Explorer"
    assert all(url.startswith(world.base) for url in visit.requests)


def test_the_api_docs_work_offline(visit: Visit, world: World) -> None:
    page = visit.page
    page.goto(world.base + "/docs")
    page.locator(".swagger-ui .info .title").wait_for()
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("ledger")
    page.get_by_text("/goods/{good_id}/tiers/{tier}/sales").first.wait_for()
    # ReDoc's side menu asks for its vendor's logo from a CDN; the page's
    # Content-Security-Policy refuses it before any request is made.
    visit.expect_console("cdn.redoc.ly/redoc/logo-mini.svg")
    with page.expect_event("requestfailed") as refused:
        page.goto(world.base + "/redoc")
    assert refused.value.failure == "csp"
    page.locator("redoc h1, [role=main] h1").first.wait_for()
    assert any("/static-docs/" in url for url in visit.requests)


def test_a_key_is_kept_in_the_tab_and_never_in_a_url(visit: Visit, world: World) -> None:
    page = visit.page
    visit.expect_console("401")
    page.goto(world.base + "/dashboard")
    field = page.get_by_label("API key (creator)")
    field.fill("not-a-key")
    field.press("Enter")
    page.get_by_role("alert").get_by_text("does not know this key").wait_for()
    field.fill(world.keys["auditor"])
    field.press("Enter")
    page.get_by_text("needs a creator key; this one is an auditor key").wait_for()
    field.fill(world.keys["alice"])
    field.press("Enter")
    page.get_by_text("Signed in as creator alice").wait_for()
    secret = world.keys["alice"]
    assert page.evaluate("sessionStorage.getItem('ledger.api-key')") == secret
    assert page.evaluate("Object.keys(localStorage).length") == 0
    assert page.context.cookies() == []
    assert not any(secret in url for url in visit.requests)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key (creator)").wait_for()
    assert page.evaluate("sessionStorage.getItem('ledger.api-key')") is None


def test_pages_fit_a_phone_and_a_bad_id_is_a_readable_404(visit: Visit, world: World) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    for path in ("/", "/explore", "/dashboard", "/auditor"):
        page.goto(world.base + path)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)
    visit.expect_console("404")
    answer = page.goto(world.base + "/explore/units/not-an-id")
    assert answer is not None
    assert answer.status == 404
    assert page.locator("h1").inner_text() == "Not found"


def test_pages_need_no_key_and_hold_no_data(world: World) -> None:
    for path in ("/", "/dashboard", f"/dashboard/goods/{world.good}", "/explore", "/auditor"):
        answer = httpx.get(world.base + path)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/html")
        assert "alice" not in answer.text
        assert world.keys["alice"] not in answer.text
