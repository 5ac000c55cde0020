"""Answers that agree with each other and with docs/api.md (issue 15 item 4):
every 422 lists every invalid field in ``errors``; the settlement CSV says
its view position like the JSON reads; statement totals are Money, as the
items are; mint answers the members docs/api.md names."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.runtime import Runtime, open_runtime
from ledger.config import Settings
from ledger.store.apikeys import Role
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


class Api:
    def __init__(self, client: TestClient, runtime: Runtime, tokens: dict[str, str]) -> None:
        self.client, self.runtime, self.tokens = client, runtime, tokens

    def post(self, who: str, path: str, body: Any) -> Any:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        return self.client.post(path, json=body, headers=headers | self._auth(who))

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self._auth(who))

    def _auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def caught_up(self) -> None:
        assert self.runtime.runner is not None
        recorder = self.runtime.ledger.event_store.recorder
        assert self.runtime.runner.wait_for(recorder.max_notification_id() or 0, timeout=10)


@pytest.fixture
def api(store_url: DatabaseURL) -> Iterator[Api]:
    runtime = open_runtime(store_url, Settings(projection_poll_interval=0.01))
    assert runtime.api_keys is not None
    tokens = {
        name: runtime.api_keys.issue(role, subject, label=name)[1]
        for name, role, subject in [
            ("admin", Role.ADMIN, None),
            ("alice", Role.CREATOR, "alice"),
            ("shop", Role.CHANNEL, "shop"),
        ]
    }
    try:
        with TestClient(create_app(runtime)) as client:
            yield Api(client, runtime, tokens)
    finally:
        runtime.ledger.close()


def _sold(api: Api) -> str:
    """A channel, a good, a sale and a resale: a statement and a settlement."""
    assert api.post("admin", "/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
    spec = good_spec(creators=[{"id": "alice", "share_bps": 10_000}])
    minted = api.post("alice", "/goods", {"spec": spec})
    assert minted.status_code == 201, minted.text
    good = minted.json()["good_id"]
    sale = api.post(
        "shop",
        f"/goods/{good}/tiers/own/sales",
        {"buyer": "b1", "channel": "shop", "unit_price": {"amount": 1_000, "currency": "EUR"}},
    )
    assert sale.status_code == 201, sale.text
    unit = sale.json()["units"][0]["unit_id"]
    resale = api.post(
        "shop",
        f"/units/{unit}/resales",
        {
            "seller": "b1",
            "buyer": "b2",
            "channel": "shop",
            "price": {"amount": 4_000, "currency": "EUR"},
        },
    )
    assert resale.status_code == 201, resale.text
    api.caught_up()
    return good


def _unprocessable(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"], body
    assert all(set(e) == {"location", "message"} and e["location"] for e in body["errors"])
    return list(body["errors"])


def test_every_invalid_field_of_a_request_is_listed(api: Api) -> None:
    days = api.get(
        "alice", "/creators/alice/statement", **{"from": "2026-13-01", "to": "2026-02-30"}
    )
    assert [e["location"] for e in _unprocessable(days)] == [["query", "from"], ["query", "to"]]
    settlement = api.get("shop", "/channels/shop/settlement", **{"from": "2026-13-01"})
    assert [e["location"] for e in _unprocessable(settlement)] == [["query", "from"]]


def test_a_domain_refusal_of_input_lists_its_field(api: Api) -> None:
    cursor = api.get("alice", "/goods", cursor="not-a-cursor")
    errors = _unprocessable(cursor)
    assert errors == [
        {"location": ["query", "cursor"], "message": "not a cursor this server issued"}
    ]
    assert cursor.json()["field"] == "cursor"  # (as before)
    channel = api.post("admin", "/channels", {"channel": "bad channel", "name": "x", "fee_bps": 1})
    assert _unprocessable(channel)[0]["location"][:2] == ["body", "channel"]


def test_the_log_and_the_body_422s_list_their_fields(api: Api) -> None:
    backwards = api.client.get("/log/entries", params={"start": 5, "end": 2})
    assert [e["location"] for e in _unprocessable(backwards)] == [["query", "end"]]
    proof = api.client.get("/log/proof/inclusion", params={"version": 1})
    assert [e["location"] for e in _unprocessable(proof)] == [["query", "aggregate_id"]]
    twice = api.client.post(
        "/channels",
        content=b'{"channel": "a", "channel": "b", "name": "n", "fee_bps": 1}',
        headers={"Idempotency-Key": "k", "content-type": "application/json"} | api._auth("admin"),
    )
    assert twice.json()["type"].endswith("/duplicate-key")
    assert [e["location"] for e in _unprocessable(twice)] == [["body", "channel"]]


def test_the_settlement_csv_says_its_view_position(api: Api) -> None:
    _sold(api)
    as_json = api.get("shop", "/channels/shop/settlement")
    as_csv = api.get("shop", "/channels/shop/settlement", format="csv")
    assert as_csv.status_code == as_json.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    position = as_csv.headers["X-Ledger-View-Position"]
    assert int(position) > 0
    assert position == as_json.headers["X-Ledger-View-Position"]


def test_statement_totals_are_money_like_the_items(api: Api) -> None:
    good = _sold(api)
    statement = api.get("alice", "/creators/alice/statement").json()
    assert {line["kind"] for line in statement["items"]} == {"primary", "resale"}
    for line in statement["items"]:
        assert set(line["amount"]) == {"amount", "currency"}
    totals = {t["kind"]: t for t in statement["totals"]}
    assert set(totals) == {"primary", "resale"}
    for kind, total in totals.items():
        assert set(total) == {"good_id", "kind", "lines", "amount"}
        assert total["good_id"] == good
        assert total["amount"]["currency"] == "EUR"
        paid = [i["amount"]["amount"] for i in statement["items"] if i["kind"] == kind]
        assert total["amount"]["amount"] == sum(paid)
        assert total["lines"] == len(paid)


def _documented_answer(endpoint: str) -> tuple[set[str], set[str]]:
    """The members docs/api.md's endpoint table says ``endpoint`` answers
    with 201 (``{a, b, list: [{c, d}]}``): the top level's and the list's."""
    for line in API_DOC.read_text().splitlines():
        if line.startswith(f"| `{endpoint}`"):
            found = re.search(r"201 `(\{.*?\})`", line)
            assert found, line
            answer = found.group(1)[1:-1]
            inner = re.search(r"\[\{(.*?)\}\]", answer)
            top = re.sub(r"\[.*?\]", "", answer)
            return set(re.findall(r"\w+", top)), set(
                re.findall(r"\w+", inner.group(1) if inner else "")
            )
    raise AssertionError(f"{endpoint} is not in the endpoint table of docs/api.md")


def test_mint_answers_what_the_docs_say(api: Api) -> None:
    spec = good_spec(creators=[{"id": "alice", "share_bps": 10_000}])
    minted = api.post("alice", "/goods", {"spec": spec})
    assert minted.status_code == 201, minted.text
    answer = minted.json()
    top, per_tier = _documented_answer("POST /goods")
    assert set(answer) == top
    assert [set(t) for t in answer["tiers"]] == [per_tier] * len(spec["tiers"])


def test_a_bad_spec_field_is_located_in_the_spec(api: Api) -> None:
    spec = good_spec(
        creators=[{"id": "alice", "share_bps": 10_000}], tiers=[{"name": "own", "quota": 0}]
    )
    refused = api.post("alice", "/goods", {"spec": spec})
    errors = _unprocessable(refused)
    assert errors[0]["location"] == ["body", "spec", "tiers", "0", "quota"], errors


def test_units_answer_their_edition_as_the_docs_say(api: Api) -> None:
    """A sale's units, a resale, the units page and one unit: each names
    the unit's edition (docs/api.md, "No. k of N"), the same everywhere."""
    good = _sold(api)
    sale = api.post(
        "shop",
        f"/goods/{good}/tiers/own/sales",
        {"buyer": "b4", "channel": "shop", "unit_price": {"amount": 1_000, "currency": "EUR"}},
    )
    assert sale.status_code == 201, sale.text
    _top, per_unit = _documented_answer("POST /goods/{good_id}/tiers/{tier}/sales")
    [unit] = sale.json()["units"]
    assert set(unit) == per_unit == {"unit_id", "serial", "edition"}
    assert unit["edition"] == {"serial": 2, "of": 10, "basis": "quota"}
    api.caught_up()
    page = api.get("shop", f"/goods/{good}/units", tier="own").json()["items"]
    assert [u["edition"] for u in page] == [
        {"serial": 1, "of": 10, "basis": "quota"},
        unit["edition"],
    ]
    assert api.get("shop", f"/units/{unit['unit_id']}").json()["edition"] == unit["edition"]
