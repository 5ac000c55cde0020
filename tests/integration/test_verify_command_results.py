"""A command record's ``result`` is what a retrying client is answered,
byte for byte: it must agree with the command's effects (``command-result``).

A careful forger edits one member of the result of an unsealed record --
another id, serial, price, count, a list member dropped or added, a member
added or removed -- and re-chains the record's aggregate (it is version 1 of
its own, so every hash still holds). Each edit, for every command whose
effects name its record, is a domain-rule finding at the record (exit 4).
The honest store, on SQLite and PostgreSQL, has none.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from ledger.verify.classes import exit_code
from ledger.verify.codec import encode as codec_encode
from tests.integration.test_verify_codes import forge
from tests.integration.test_verify_ledger import Store, describe
from tests.integration.test_verify_mutations import verify
from tests.strategies import good_spec

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EUR = Money(100, "EUR")
OTHER_ID = str(uuid.UUID(int=7))

Result = dict[str, Any]


def build(url: DatabaseURL) -> None:
    """Every command whose effects name its record, each under its own
    idempotency key: sales (plain and coded), a resale, refunds of a resale
    and of a sale, reservations, a hold's payment in time, late and too late
    (refund owed), waitlist joins around a leave, a code import."""
    now = [T0]
    with Ledger(url, clock=lambda: now[0], code_keyring=Keyring.generate()) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(
            good_spec(
                policy="restockable", tiers=[{"name": "own", "quota": 4, "lifetime_cap": 10}]
            ),
            idempotency_key="m",
        )["good_id"]
        coded_spec = good_spec(title="Keys", tiers=[{"name": "key", "quota": 3}])
        coded_spec["kind"] = "redemption-code"
        coded = ledger.mint(coded_spec, idempotency_key="m2")["good_id"]
        ledger.import_codes(
            coded, "key", codes=["ALPHA-1", "BRAVO-2", "CHARLIE-3"], idempotency_key="import"
        )
        ledger.sell(
            coded,
            "key",
            buyer="kim",
            channel="shop",
            quantity=2,
            unit_price=EUR,
            idempotency_key="sell-coded",
        )
        units = ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=2,
            unit_price=EUR,
            idempotency_key="sell",
        )["units"]
        ledger.resell(
            units[0]["unit_id"],
            seller="carol",
            buyer="dave",
            channel="shop",
            price=Money(300, "EUR"),
            idempotency_key="resell",
        )
        ledger.refund(units[0]["unit_id"], reason="fraud", idempotency_key="refund-resale")
        ledger.refund(units[1]["unit_id"], reason="changed mind", idempotency_key="refund")
        # In time: the payment reissues the returned serial.
        hold = ledger.reserve(
            good, "own", channel="shop", quantity=1, ttl_seconds=60, idempotency_key="reserve"
        )["hold_id"]
        ledger.commit_hold(
            good, "own", hold, buyer="ann", quantity=1, unit_price=EUR, idempotency_key="commit"
        )
        # Late: the hold's time is up, units are left.
        late = ledger.reserve(
            good, "own", channel="shop", quantity=1, ttl_seconds=5, idempotency_key="reserve-late"
        )["hold_id"]
        now[0] += timedelta(seconds=10)
        ledger.commit_hold(
            good,
            "own",
            late,
            buyer="bea",
            quantity=1,
            unit_price=EUR,
            idempotency_key="commit-late",
        )
        # Too late: expired (recorded by the sweeper), and the last unit sold meanwhile.
        owed = ledger.reserve(
            good, "own", channel="shop", quantity=1, ttl_seconds=5, idempotency_key="reserve-owed"
        )["hold_id"]
        now[0] += timedelta(seconds=10)
        ledger.expire_holds(good, "own")
        ledger.sell(
            good,
            "own",
            buyer="lou",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="sell-last",
        )
        assert (
            ledger.commit_hold(
                good,
                "own",
                owed,
                buyer="cid",
                quantity=1,
                unit_price=EUR,
                idempotency_key="commit-owed",
            )["outcome"]
            == "refund-owed"
        )
        # The sold-out tier's waitlist: a leave frees a place.
        first = ledger.join_waitlist(
            good, "own", buyer="wes", channel="shop", quantity=1, idempotency_key="join"
        )["entry_id"]
        assert (
            ledger.join_waitlist(
                good, "own", buyer="xia", channel="shop", quantity=2, idempotency_key="join-2"
            )["place"]
            == 2
        )
        ledger.leave_waitlist(good, "own", first, idempotency_key="leave")
        assert (
            ledger.join_waitlist(
                good, "own", buyer="yan", channel="shop", quantity=1, idempotency_key="join-3"
            )["place"]
            == 2
        )
        ledger.restock(good, "own", 2, idempotency_key="restock")  # offers xia a hold


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("results") / "ledger.db"
    build(DatabaseURL.parse(f"sqlite:///{path}"))
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    shutil.copy(template, tmp_path / "ledger.db")
    return Store(tmp_path / "ledger.db")


def test_the_honest_store_has_no_command_result_finding(store_url: DatabaseURL) -> None:
    build(store_url)
    report = verify_store(store_url)
    assert report.ok, describe(report)
    assert report.by_type["command.recorded"] >= 17


def test_group_committed_commands_have_no_command_result_finding(store_url: DatabaseURL) -> None:
    """Commands racing on one stock are saved in batches (group commit):
    a batch's effects come before its records, and each answer -- a waiting
    buyer's place in line, say -- is the one its own effects determine."""
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(
            good_spec(
                policy="restockable", tiers=[{"name": "own", "quota": 48, "lifetime_cap": 100}]
            ),
            idempotency_key="m",
        )["good_id"]
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: ledger.sell(
                        good,
                        "own",
                        buyer=f"b{i}",
                        channel="shop",
                        quantity=1 + i % 2,
                        unit_price=EUR,
                        idempotency_key=f"s{i}",
                    ),
                    range(24),
                )
            )
            holds = list(
                pool.map(
                    lambda i: ledger.reserve(
                        good,
                        "own",
                        channel="shop",
                        quantity=1,
                        ttl_seconds=60,
                        idempotency_key=f"h{i}",
                    )["hold_id"],
                    range(12),
                )
            )
            list(
                pool.map(
                    lambda i: ledger.commit_hold(
                        good,
                        "own",
                        holds[i],
                        buyer=f"c{i}",
                        quantity=1,
                        unit_price=EUR,
                        idempotency_key=f"p{i}",
                    ),
                    range(12),
                )
            )
            places = list(
                pool.map(
                    lambda i: ledger.join_waitlist(
                        good,
                        "own",
                        buyer=f"w{i}",
                        channel="shop",
                        quantity=1,
                        idempotency_key=f"j{i}",
                    )["place"],
                    range(12),
                )
            )
    assert sorted(places) == list(range(1, 13))
    report = verify_store(store_url)
    assert report.ok, describe(report)


def _set(name: str, value: Any) -> Callable[[Result], None]:
    def change(result: Result) -> None:
        result[name] = value

    return change


def _add(result: Result, name: str, delta: int) -> None:
    result[name] += delta


def _price(name: str) -> Callable[[Result], None]:
    def change(result: Result) -> None:
        result[name]["amount"] += 1

    return change


def _first_unit(name: str, value: Any) -> Callable[[Result], None]:
    def change(result: Result) -> None:
        result["units"][0][name] = value

    return change


def _drop(name: str) -> Callable[[Result], None]:
    def change(result: Result) -> None:
        del result[name]

    return change


def _drop_unit(result: Result) -> None:
    result["units"].pop()


def _add_unit(result: Result) -> None:
    result["units"].append(dict(result["units"][0], serial=99))


def _extra(result: Result) -> None:
    result["note"] = "refunded in full"


def _serial_up(result: Result) -> None:
    result["units"][0]["serial"] += 1


def _split_shift(result: Result) -> None:
    parts = result["split_per_unit"]
    parts[0]["amount"] -= 1
    parts[-1]["amount"] += 1


def _code_ref(result: Result) -> None:
    result["units"][0]["code_ref"] = "f" * 32


def _no_code_ref(result: Result) -> None:
    del result["units"][1]["code_ref"]


def _edition(name: str, value: Any, unit: int | None = 0) -> Callable[[Result], None]:
    """Set member ``name`` of the edition of a sale's unit (``unit``), or of
    a resale's (``unit=None``)."""

    def change(result: Result) -> None:
        edition = result["edition"] if unit is None else result["units"][unit]["edition"]
        edition[name] = value(edition[name]) if callable(value) else value

    return change


def _one_edition_dropped(result: Result) -> None:
    del result["units"][1]["edition"]


def _without_editions(result: Result) -> None:
    """The result as written before units carried their edition."""
    result.pop("edition", None)
    for unit in result.get("units", ()):
        del unit["edition"]


def _quantity_as_bool(result: Result) -> None:
    assert result["quantity"] == 1
    result["quantity"] = True


# (idempotency key of the record, what is edited in its result)
CASES: dict[str, tuple[str, Callable[[Result], None]]] = {
    "sell: another sale_id": ("sell", _set("sale_id", OTHER_ID)),
    "sell: another good_id": ("sell", _set("good_id", OTHER_ID)),
    "sell: another buyer": ("sell", _set("buyer", "mallory")),
    "sell: another price": ("sell", _price("unit_price")),
    "sell: another split": ("sell", _split_shift),
    "sell: another quantity": ("sell", lambda r: _add(r, "quantity", 1)),
    "sell: another serial": ("sell", _serial_up),
    "sell: another unit id": ("sell", _first_unit("unit_id", OTHER_ID)),
    "sell: a unit dropped": ("sell", _drop_unit),
    "sell: a unit added": ("sell", _add_unit),
    "sell: an extra member": ("sell", _extra),
    "sell: a member missing": ("sell", _drop("sold_at")),
    "sell: another time": ("sell", _set("sold_at", "2027-01-01T00:00:00.000000Z")),
    "sell: quantity true": ("sell-last", _quantity_as_bool),
    "sell: another code": ("sell-coded", _code_ref),
    "sell: a code dropped": ("sell-coded", _no_code_ref),
    "sell: another edition size": ("sell", _edition("of", 4)),
    "sell: a fixed edition, says the basis": ("sell", _edition("basis", "quota")),
    "sell: another serial in the edition": ("sell", _edition("serial", lambda n: n + 1)),
    "sell: the size as text": ("sell", _edition("of", "10")),
    "sell: one unit's edition dropped": ("sell", _one_edition_dropped),
    "sell: another coded edition": ("sell-coded", _edition("of", 30, unit=1)),
    "resell: another edition size": ("resell", _edition("of", 4, unit=None)),
    "resell: another edition basis": ("resell", _edition("basis", "open", unit=None)),
    "commit-hold: another edition size": ("commit", _edition("of", 11)),
    "resell: another resale_id": ("resell", _set("resale_id", OTHER_ID)),
    "resell: another serial": ("resell", lambda r: _add(r, "serial", 1)),
    "resell: another price": ("resell", _price("price")),
    "resell: another buyer": ("resell", _set("buyer", "mallory")),
    "resell: a member missing": ("resell", _drop("split")),
    "refund: another amount": ("refund", _price("amount")),
    "refund: another holder": ("refund", _set("holder", "mallory")),
    "refund: returned to someone": ("refund", _set("returned_to", "mallory")),
    "refund: another acquisition": ("refund-resale", _set("refunded_acquisition", OTHER_ID)),
    "refund: an extra member": ("refund-resale", _extra),
    "reserve: another hold_id": ("reserve", _set("hold_id", OTHER_ID)),
    "reserve: another quantity": ("reserve", lambda r: _add(r, "quantity", 1)),
    "reserve: another expiry": ("reserve", _set("expires_at", "2027-01-01T00:00:00.000000Z")),
    "commit-hold: another outcome": ("commit", _set("outcome", "sold-late")),
    "commit-hold: another hold": ("commit", _set("hold_id", OTHER_ID)),
    "commit-hold: another serial": ("commit", _serial_up),
    "commit-hold: hold_id missing": ("commit", _drop("hold_id")),
    "commit-hold late: in time": ("commit-late", _set("outcome", "sold")),
    "commit-hold late: a hold never made": ("commit-late", _set("hold_id", OTHER_ID)),
    "commit-hold late: another price": ("commit-late", _price("unit_price")),
    "commit-hold owed: another amount": ("commit-owed", _price("amount")),
    "commit-hold owed: another channel": ("commit-owed", _set("channel", "market")),
    "commit-hold owed: another buyer": ("commit-owed", _set("buyer", "mallory")),
    "commit-hold owed: sold instead": ("commit-owed", _set("outcome", "sold-late")),
    "join-waitlist: another place": ("join-3", lambda r: _add(r, "place", -1)),
    "join-waitlist: another entry": ("join-2", _set("entry_id", OTHER_ID)),
    "join-waitlist: another quantity": ("join", lambda r: _add(r, "quantity", 1)),
    "join-waitlist: a member missing": ("join", _drop("joined_at")),
    "import-codes: another count": ("import", lambda r: _add(r, "imported", -1)),
    "import-codes: codes available": ("import", lambda r: _add(r, "codes_available", 1)),
    "import-codes: codes imported": ("import", lambda r: _add(r, "codes_imported", 1)),
    "import-codes: another batch": ("import", _set("batch_id", OTHER_ID)),
    "import-codes: an extra member": ("import", _extra),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_forged_result_is_a_command_result_finding_at_its_record(
    store: Store, case: str
) -> None:
    key, change = CASES[case]
    row = store.find("command.recorded", key=key)
    assert verify_store(store.url).ok
    position = forge(store, row, lambda payload: change(payload["result"]))
    report = verify_store(store.url)
    assert [f.check for f in report.findings] == ["command-result"], (case, describe(report))
    finding = report.findings[0]
    assert (finding.position, finding.event_type) == (position, "command.recorded")
    assert row.data["payload"]["command"] in finding.message
    assert exit_code(f.check for f in report.findings) == 4


@pytest.mark.parametrize("key", ["sell", "sell-coded", "resell", "commit", "commit-late"])
def test_a_result_recorded_before_editions_is_no_finding(store: Store, key: str) -> None:
    """Records written before units carried their edition ("No. k of N")
    name none: the same answer without them is what their effects
    determined then -- but every member else is still checked."""
    row = store.find("command.recorded", key=key)
    forge(store, row, lambda payload: _without_editions(payload["result"]))
    report = verify_store(store.url)
    assert report.ok, describe(report)

    def also_another_buyer(payload: dict[str, Any]) -> None:
        payload["result"]["buyer"] = "mallory"

    forge(store, store.find("command.recorded", key=key), also_another_buyer)
    report = verify_store(store.url)
    assert [f.check for f in report.findings] == ["command-result"], describe(report)
    assert "edition" not in report.findings[0].message


def test_the_editions_are_no_command_result_when_honest(store: Store) -> None:
    """The honest answers carry each unit's edition: the restockable tier's
    lifetime cap (10), and the coded tier's quota (3)."""
    sold = store.find("command.recorded", key="sell").data["payload"]["result"]
    assert [u["edition"] for u in sold["units"]] == [
        {"serial": 1, "of": 10, "basis": "lifetime-cap"},
        {"serial": 2, "of": 10, "basis": "lifetime-cap"},
    ]
    coded = store.find("command.recorded", key="sell-coded").data["payload"]["result"]
    assert coded["units"][1]["edition"] == {"serial": 2, "of": 3, "basis": "quota"}
    resold = store.find("command.recorded", key="resell").data["payload"]["result"]
    assert resold["edition"] == {"serial": 1, "of": 10, "basis": "lifetime-cap"}


def test_the_finding_names_what_differs(store: Store) -> None:
    """The finding names the members that differ, and those added or missing."""
    row = store.find("command.recorded", key="sell")

    def change(payload: dict[str, Any]) -> None:
        result = payload["result"]
        result["buyer"] = "mallory"
        result["note"] = "x"
        del result["sold_at"]

    forge(store, row, change)
    [finding] = verify_store(store.url).findings
    assert finding.check == "command-result"
    for word in ("buyer", "note", "sold_at", "mallory"):
        assert word in finding.message, finding.message


def test_ledger_verify_exits_4_at_the_forged_record(store: Store) -> None:
    """The auditor's command: ``ledger verify --db`` names the record and
    exits with the domain-rule code."""
    row = store.find("command.recorded", key="resell")
    forge(store, row, lambda payload: payload["result"].update(resale_id=OTHER_ID))
    done = verify(store.path)
    assert done.code == 4, done.stdout + done.stderr
    assert done.report is not None
    [finding] = done.report["findings"]
    assert (finding["check"], finding["position"]) == ("command-result", row.rowid)
    assert "resale_id" in finding["message"]
    assert "command-result" in done.stdout


@pytest.mark.postgres
def test_a_forged_result_is_caught_on_postgresql(postgres_url: DatabaseURL) -> None:
    build(postgres_url)
    assert verify_store(postgres_url).ok
    record = ""
    with psycopg.connect(
        host=postgres_url.host,
        port=postgres_url.port,
        user=postgres_url.user,
        dbname=postgres_url.dbname,
        autocommit=True,
    ) as con:
        table = f'"{postgres_url.schema}".ledger_events'
        rows = con.execute(
            f"SELECT originator_id, state FROM {table} WHERE topic = 'command.recorded'"
        ).fetchall()
        for originator_id, state in rows:
            data = orjson.loads(bytes(state))
            if data["payload"]["key"] == "resell":
                record = str(originator_id)
                data["payload"]["result"]["serial"] += 1
                con.execute(
                    f"UPDATE {table} SET state = %s WHERE originator_id = %s",
                    (codec_encode(data), originator_id),
                )
    report = verify_store(postgres_url)
    assert [f.check for f in report.findings] == ["command-result"], describe(report)
    assert report.findings[0].aggregate_id == record
    assert exit_code(["command-result"]) == 4
