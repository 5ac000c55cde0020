"""The provenance explorer in a real browser, on a real ``ledger serve``:
a unit sold, moved to another channel and resold there shows its serial,
holders and events; "Verify in this browser" passes on the real bundle
without a single request, and fails on a tampered one naming the check;
a pasted policy is kept and used; a receipt link finds the unit; a server
whose verifiers cosign has its quorum checked in the browser."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.tlog import merkle
from ledger.tlog.keys import Signer
from tests.browser.conftest import Visit, World

PHONE = {"width": 375, "height": 740}


def sealed_bundle(base: str, unit: str) -> dict[str, Any]:
    """The unit's provenance once every event is under a checkpoint."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/units/{unit}/provenance")
        if answer.status_code == 200:
            bundle: dict[str, Any] = answer.json()
            return bundle
        time.sleep(0.1)
    raise AssertionError(f"unit {unit} not sealed within 20 s")


def open_unit(visit: Visit, base: str, unit: str) -> Any:
    page = visit.page
    page.goto(f"{base}/explore/units/{unit}")
    page.locator("#verify").wait_for()
    return page


def verify(visit: Visit) -> tuple[str, int]:
    """Click "Verify in this browser"; the verdict and how many requests the
    browser made meanwhile."""
    page = visit.page
    before = len(visit.requests)
    page.get_by_role("button", name="Verify in this browser").click()
    verdict = page.locator("#verdict")
    verdict.wait_for()
    # (nothing absent is printed as the word "null" beside the verdict)
    assert "null" not in verdict.locator("..").inner_text().split()
    return verdict.inner_text(), len(visit.requests) - before


def test_a_resold_unit_shows_its_trail_and_verifies_in_the_browser(
    visit: Visit, world: World
) -> None:
    bundle = sealed_bundle(world.base, world.resold)
    page = open_unit(visit, world.base, world.resold)
    assert page.locator("#serial").inner_text().startswith("No. 1 of ")
    holders = page.get_by_role("region", name="The unit's holders in order")
    rows = holders.locator("tbody tr").all_inner_texts()
    assert len(rows) == len(bundle["events"]) == 3
    assert "b0" in rows[0]
    assert "shop" in rows[0]
    assert "€10.00" in rows[0]
    assert "moved" in rows[1]
    assert "shop → market" in rows[1]
    assert "b0 → zoe" in rows[2]
    assert "market" in rows[2]
    assert "€80.00" in rows[2]
    events = page.get_by_role("region", name="The unit's events with their log index")
    shown = [row.split("\t") for row in events.locator("tbody tr").all_inner_texts()]
    for item, row in zip(bundle["events"], shown, strict=True):
        leaf = base64.b64encode(merkle.leaf_hash(item["record"].encode())).decode()
        index = item["proof"].split("\nindex ")[1].split("\n")[0]
        assert row[2].replace(",", "") == index
        assert row[3] == leaf
    assert page.locator("#signers li").first.inner_text().startswith("ledger.test/browser+")
    assert "the server's word" in page.locator("#policy-status").inner_text()

    verdict, requests = verify(visit)
    assert requests == 0, "the check asked the server something"
    assert verdict.startswith("Verified in this browser: 3 event(s)")
    checks = page.locator("#checks li")
    assert checks.count() == len(page.locator("#checks li.pass").all())
    assert page.locator("#verified-badge").inner_text() == "verified in this browser"
    assert "ledger verify" in page.locator("#not-verified").inner_text()
    assert page.locator("#was-verified li").count() >= 4
    # The served policy names no verifier: the page says what that leaves open.
    assert "only the log operator's word" in page.locator("#unwitnessed").inner_text()


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


@pytest.mark.parametrize("how", ["record", "proof"])
def test_a_tampered_bundle_fails_and_names_the_failing_check(
    visit: Visit, world: World, how: str
) -> None:
    unit = world.units[1]
    sealed_bundle(world.base, unit)
    page = visit.page

    def tamper(route: Any) -> None:
        bundle = route.fetch().json()
        item = bundle["events"][0]
        if how == "record":
            at = item["record"].index('"holder":"') + len('"holder":"')
            item["record"] = _flip(item["record"], at)
        else:
            at = item["proof"].index("\nindex ")
            line = item["proof"].index("\n", at + 1) + 1
            item["proof"] = _flip(item["proof"], line + 5)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(bundle))

    page.route(f"**/units/{unit}/provenance", tamper)
    open_unit(visit, world.base, unit)
    verdict, requests = verify(visit)
    assert requests == 0
    assert verdict.startswith("Verification failed at event 1: event 1")
    assert "not in the log" in verdict
    failing = page.locator("#checks li.fail")
    assert failing.first.inner_text().startswith("fail event 1: canonical, chained, in the log")
    assert page.locator("#verified-badge").inner_text() == "verification failed"
    assert page.locator("#was-verified").count() == 0


def test_a_pasted_policy_is_kept_used_and_can_be_dropped(visit: Visit, world: World) -> None:
    unit = world.units[2]
    sealed_bundle(world.base, unit)
    page = open_unit(visit, world.base, unit)
    pinned = page.locator("#policy").input_value()
    assert pinned.startswith("log ledger.test/browser+")
    assert pinned.endswith("quorum none\n")
    stranger = Signer.generate("ledger.test/browser").verifier_key()
    page.get_by_label("Policy (C2SP tlog-policy").fill(f"log {stranger}\nquorum none\n")
    verdict, _ = verify(visit)
    assert verdict.startswith("Verification failed at checkpoint")
    assert "no signature from a trusted log key" in verdict

    page.reload()
    page.locator("#verify").wait_for()
    assert page.locator("#policy").input_value() == f"log {stranger}\nquorum none\n"
    assert "your policy" in page.locator("#policy-status").inner_text()
    page.get_by_role("button", name="Use the server's policy").click()
    assert page.locator("#policy").input_value() == pinned
    verdict, _ = verify(visit)
    assert verdict.startswith("Verified in this browser")
    assert page.evaluate("localStorage.getItem('ledger.explorer.policy')") is None


def test_a_receipt_link_or_an_id_finds_the_unit_and_the_good(visit: Visit, world: World) -> None:
    sealed_bundle(world.base, world.resold)
    page = visit.page
    page.goto(f"{world.base}/explore")
    field = page.get_by_label("Unit id, good id, or a receipt link")
    field.fill(f"  {world.base}/explore/units/{world.resold.upper()}  ")
    field.press("Enter")
    page.wait_for_url(f"{world.base}/explore/units/{world.resold}")
    page.locator("#verify").wait_for()

    page.goto(f"{world.base}/explore")
    page.get_by_label("Unit id, good id, or a receipt link").fill("no such thing")
    page.get_by_role("button", name="Look up").click()
    page.get_by_role("alert").get_by_text("neither an id").wait_for()
    page.get_by_label("Unit id, good id, or a receipt link").fill(world.good)
    page.get_by_label("good", exact=True).check()
    page.get_by_role("button", name="Look up").click()
    page.wait_for_url(f"{world.base}/explore/goods/{world.good}")
    page.get_by_label("API key (creator or auditor)").fill(world.keys["auditor"])
    page.get_by_role("button", name="Sign in").click()
    units = page.get_by_role("region", name="The good's units, by tier and serial")
    units.locator("tbody tr").first.wait_for()
    assert units.locator("tbody tr").count() == len(world.units)
    units.get_by_role("link", name="No. 1 of", exact=False).first.click()
    page.wait_for_url(f"{world.base}/explore/units/*")
    page.locator("#verify").wait_for()


def test_a_unit_page_fits_a_phone(visit: Visit, world: World) -> None:
    sealed_bundle(world.base, world.resold)
    page = visit.page
    page.set_viewport_size(PHONE)
    open_unit(visit, world.base, world.resold)
    verify(visit)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]


def test_keyboard_only_the_check_runs(visit: Visit, world: World) -> None:
    """From the policy box, Tab reaches "Verify in this browser" and Enter
    runs it."""
    sealed_bundle(world.base, world.resold)
    page = open_unit(visit, world.base, world.resold)
    page.focus("#policy")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "verify"
    page.keyboard.press("Enter")
    assert page.locator("#verdict").inner_text().startswith("Verified in this browser")


def test_a_cosigned_unit_verifies_against_the_pinned_quorum(visit: Visit, tmp_path: Path) -> None:
    """A server with a policy naming two verifiers, both cosigning its
    checkpoint: the page pins that policy (the log's key added), lists the
    cosigners and verifies their cosignatures and the quorum in the browser."""
    from ledger.service import Ledger
    from ledger.store.database import DatabaseURL
    from ledger.tlog.cosignature import cosign
    from ledger.tlog.signed_note import parse_note
    from tests.e2e.conftest import generate_log_key, running_server
    from tests.strategies import open_shop_and_sell

    key, vkey = generate_log_key(tmp_path, "ledger.test/cosigned")
    witnesses = {n: Signer.generate(n, key_type=0x04) for n in ("w1", "w2", "w3")}
    policy = tmp_path / "policy.txt"
    policy.write_text(
        "".join(f"witness {n} {w.verifier_key()}\n" for n, w in witnesses.items())
        + "group two 2 w1 w2 w3\nquorum two\n"
    )
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'ledger.db'}")
    with (
        Ledger(url) as ledger,
        running_server(url.display(), key, policy=policy, log_file=tmp_path / "s.log") as base,
    ):
        _, sales = open_shop_and_sell(ledger, 1)
        unit = sales[0]["units"][0]["unit_id"]
        sealed_bundle(base, unit)
        note = httpx.get(f"{base}/log/checkpoint").text
        body = parse_note(note).text
        size = int(body.split("\n")[1])
        for name in ("w1", "w3"):
            line = cosign(body, witnesses[name], int(time.time())).line()
            answer = httpx.post(f"{base}/log/cosignatures", json={"size": size, "line": line})
            assert answer.status_code == 201, answer.text
        bundle = sealed_bundle(base, unit)
        assert bundle["checkpoint"].count("\n\u2014 ") == 3

        page = open_unit(visit, base, unit)
        pinned = page.locator("#policy").input_value()
        assert pinned.startswith(f"log {vkey}\nwitness w1 ")
        signers = page.locator("#signers li").all_inner_texts()
        assert [s.split("+")[0] for s in signers] == ["ledger.test/cosigned", "w1", "w3"]
        verdict, requests = verify(visit)
        assert requests == 0
        assert verdict.endswith("cosigned by w1, w3.")
        assert page.locator("#unwitnessed").count() == 0
        quorum = page.locator("#checks li", has_text="cosignatures meet the policy's quorum")
        assert "2 of w1, w2, w3" in quorum.inner_text()


def test_a_browser_without_ed25519_says_it_cannot_verify(visit: Visit, world: World) -> None:
    """An older browser (WebCrypto without Ed25519, simulated) gets a plain
    statement and no button, never a "forged signature" verdict."""
    sealed_bundle(world.base, world.resold)
    page = visit.page
    page.add_init_script(
        """(() => {
          const original = crypto.subtle.importKey.bind(crypto.subtle);
          crypto.subtle.importKey = (format, data, algorithm, ...rest) =>
            (algorithm && (algorithm.name || algorithm) === "Ed25519")
              ? Promise.reject(new DOMException("no Ed25519", "NotSupportedError"))
              : original(format, data, algorithm, ...rest);
        })();"""
    )
    page.goto(f"{world.base}/explore/units/{world.resold}")
    page.get_by_role("alert").get_by_text("has no Ed25519").wait_for()
    assert page.locator("#verify").is_disabled()
