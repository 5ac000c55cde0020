""" "No. k of N" over real HTTP, on both backends (issue 14 item 4): every
answer that names a unit by its serial carries its edition -- the sale's
and the resale's answers, a hold payment's, the units views and one unit,
and the provenance bundle (checked offline) -- for a fixed tier (N is the
edition: basis "quota") and a restockable one (N is the lifetime cap that
restocks may reach: basis "lifetime-cap"), before and after a restock."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog.policy import parse_policy
from ledger.verify.provenance import verify_provenance
from tests.e2e.conftest import generate_log_key, running_server
from tests.e2e.test_api_flow import issue
from tests.integration.test_api_channels import _caught_up
from tests.strategies import good_spec

EUR = {"amount": 1_000, "currency": "EUR"}


def _no(edition: dict[str, Any]) -> str:
    """What a client prints."""
    cap = " (cap)" if edition["basis"] == "lifetime-cap" else ""
    return f"No. {edition['serial']} of {edition['of']}{cap}"


def test_every_unit_answer_says_no_k_of_n(store_url: DatabaseURL, tmp_path: Path) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    admin, shop = issue(db, "admin"), issue(db, "channel", "shop")
    key, vkey = generate_log_key(tmp_path, "ledger.test/editions")
    with running_server(db, key, log_file=tmp_path / "server.log") as base:
        http = httpx.Client(base_url=base, timeout=30)

        def post(path: str, body: dict[str, Any], token: str = admin) -> dict[str, Any]:
            done = http.post(
                path,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
            )
            assert done.status_code == 201, done.text
            answer: dict[str, Any] = done.json()
            return answer

        def get(path: str, **params: Any) -> Any:
            done = http.get(path, params=params, headers={"Authorization": f"Bearer {admin}"})
            assert done.status_code == 200, done.text
            return done.json()

        post("/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
        fixed = post("/goods", {"spec": good_spec(tiers=[{"name": "own", "quota": 500}])})[
            "good_id"
        ]
        restockable = post(
            "/goods",
            {
                "spec": good_spec(
                    title="Prints",
                    policy="restockable",
                    tiers=[{"name": "print", "quota": 2, "lifetime_cap": 50}],
                )
            },
        )["good_id"]

        def sell(good: str, tier: str, quantity: int) -> dict[str, Any]:
            body = {"buyer": "b1", "channel": "shop", "quantity": quantity, "unit_price": EUR}
            return post(f"/goods/{good}/tiers/{tier}/sales", body, shop)

        # The sale's answer: each unit's place in its edition.
        sold = sell(fixed, "own", 2)
        assert [u["edition"] for u in sold["units"]] == [
            {"serial": 1, "of": 500, "basis": "quota"},
            {"serial": 2, "of": 500, "basis": "quota"},
        ]
        printed = sell(restockable, "print", 2)["units"]
        assert [_no(u["edition"]) for u in printed] == ["No. 1 of 50 (cap)", "No. 2 of 50 (cap)"]
        # A restock raises the supply, never the edition size: N is the cap.
        post(f"/goods/{restockable}/tiers/print/restocks", {"quantity": 3})
        held = post(
            f"/goods/{restockable}/tiers/print/holds",
            {"channel": "shop", "quantity": 1, "ttl_seconds": 60},
            shop,
        )["hold_id"]
        paid = post(
            f"/goods/{restockable}/tiers/print/holds/{held}/commit",
            {"buyer": "b2", "quantity": 1, "unit_price": EUR},
            shop,
        )
        assert paid["units"][0]["edition"] == {"serial": 3, "of": 50, "basis": "lifetime-cap"}

        # The resale's answer.
        resold = post(
            f"/units/{sold['units'][1]['unit_id']}/resales",
            {"seller": "b1", "buyer": "b3", "channel": "shop", "price": EUR},
            shop,
        )
        assert (resold["serial"], _no(resold["edition"])) == (2, "No. 2 of 500")

        # The views: a page of units, and one unit with its history.
        _caught_up(http, {"Authorization": f"Bearer {admin}"})
        page = get(f"/goods/{fixed}/units")["items"]
        assert [(u["serial"], _no(u["edition"])) for u in page] == [
            (1, "No. 1 of 500"),
            (2, "No. 2 of 500"),
        ]
        prints = get(f"/goods/{restockable}/units", tier="print", limit=2)
        assert [_no(u["edition"]) for u in prints["items"]] == [
            "No. 1 of 50 (cap)",
            "No. 2 of 50 (cap)",
        ]
        rest = get(f"/goods/{restockable}/units", cursor=prints["next_cursor"])["items"]
        assert [(u["holder"], _no(u["edition"])) for u in rest] == [("b2", "No. 3 of 50 (cap)")]
        one = get(f"/units/{sold['units'][1]['unit_id']}")
        assert one["edition"] == {"serial": 2, "of": 500, "basis": "quota"}
        assert one["holder"] == "b3"
        assert len(one["history"]) == 2
        assert get(f"/goods/{fixed}/units", holder="b3")["items"][0]["edition"]["serial"] == 2

        # The provenance bundle proves it (the log's signature; no witnesses here).
        policy = parse_policy(f"log {vkey}\nquorum none\n")
        for unit, want in [
            (sold["units"][1]["unit_id"], {"serial": 2, "of": 500, "basis": "quota"}),
            (paid["units"][0]["unit_id"], {"serial": 3, "of": 50, "basis": "lifetime-cap"}),
        ]:
            deadline = time.monotonic() + 15
            while (bundle := http.get(f"/units/{unit}/provenance")).status_code == 409:
                assert time.monotonic() < deadline, bundle.text  # (not sealed yet)
                time.sleep(0.1)
            assert bundle.status_code == 200, bundle.text
            assert bundle.json()["edition"] == want
            assert verify_provenance(bundle.json(), policy).edition == want
