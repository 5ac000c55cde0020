"""The independent verifier against real ledgers written by the service, and
against the same ledgers tampered with in the store (SQLite, raw rows).

Each tamper must be caught with its own check code, at the right event.
Tampers that are "rewritten consistently" re-chain the aggregate's later
events (new prev_hash, new hash) so the chain verifies and only the rule can
catch them.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.domain.model import record_bytes
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.store.eventstore import ChainedEventMapper
from ledger.store.records import StoreMissingError
from ledger.verify import Finding, Report, export_store, verify_export, verify_store

SPEC: dict[str, Any] = {
    "title": "Dawn",
    "creators": [{"id": "alice", "share_bps": 7000}, {"id": "bob", "share_bps": 3000}],
    "content_digest": "sha256:" + "a" * 64,
    "kind": "collectible",
    "currency": "EUR",
    "edition": {"policy": "restockable"},
    "tiers": [
        {"name": "own", "quota": 3, "lifetime_cap": 5, "per_buyer_limit": 2},
        {"name": "view", "quota": 10, "transferable": False},
    ],
    "royalty": {"resale_bps": 1000},
    "variant_rules": {
        "max_variants": 2,
        "max_supply_per_variant": 50,
        "master_primary_bps": 1000,
        "master_resale_bps": 200,
    },
}


def build_example(url: str | DatabaseURL) -> None:
    """The ledger of the brief: sale, resale, two refunds, restock, variant."""
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
        m = ledger.mint(SPEC, idempotency_key="m1")
        s = ledger.sell(
            m["good_id"],
            "own",
            buyer="carol",
            channel="shop",
            quantity=2,
            unit_price=Money(999, "EUR"),
            idempotency_key="s1",
        )
        u = s["units"][0]["unit_id"]
        ledger.resell(
            u,
            seller="carol",
            buyer="dave",
            channel="shop",
            price=Money(5000, "EUR"),
            idempotency_key="r1",
        )
        ledger.refund(u, reason="changed mind", idempotency_key="f1")
        ledger.refund(u, reason="changed mind", idempotency_key="f2")
        ledger.restock(m["good_id"], "own", 2, idempotency_key="rs1")
        v = ledger.derive_variant(
            m["good_id"],
            dict(SPEC, title="Dawn (red)", variant_rules=None, tiers=[{"name": "own", "quota": 5}]),
            idempotency_key="v1",
        )
        ledger.sell(
            v["good_id"],
            "own",
            buyer="erin",
            channel="shop",
            quantity=1,
            unit_price=Money(1001, "EUR"),
            idempotency_key="s2",
        )


def build_busy(url: str | DatabaseURL) -> None:
    """More paths: a reissued unit, two channels, a non-transferable tier,
    a variant's resale, an absolute edition with a sale window, a second
    variant, and idempotent replays (which write nothing)."""
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
        ledger.register_channel("market", "Market", 250, idempotency_key="c2")
        m = ledger.mint(SPEC, idempotency_key="m1")
        good = m["good_id"]
        s = ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=2,
            unit_price=Money(999, "EUR"),
            idempotency_key="s1",
        )
        u1 = s["units"][0]["unit_id"]
        # Carol takes her unit to the market (the shop hands it off), sells
        # it there to dave, who takes it back to the shop to sell to hana.
        ledger.move_unit(
            u1, holder="carol", to_channel="market", channel="shop", idempotency_key="mv1"
        )
        ledger.resell(
            u1,
            seller="carol",
            buyer="dave",
            channel="market",
            price=Money(5000, "EUR"),
            idempotency_key="r1",
        )
        ledger.move_unit(
            u1, holder="dave", to_channel="shop", channel="market", idempotency_key="mv2"
        )
        ledger.resell(
            u1,
            seller="dave",
            buyer="hana",
            channel="shop",
            price=Money(7777, "EUR"),
            idempotency_key="r2",
        )
        ledger.refund(u1, reason="fraud", idempotency_key="f1")  # back to dave
        ledger.refund(u1, reason="fraud", idempotency_key="f2")  # back to carol
        ledger.refund(u1, reason="fraud", idempotency_key="f3")  # back to stock
        ledger.restock(good, "own", 2, idempotency_key="rs1")
        # Serial 1 was returned: this sale reissues it, then issues serial 3.
        ledger.sell(
            good,
            "own",
            buyer="erin",
            channel="market",
            quantity=2,
            unit_price=Money(1234, "EUR"),
            idempotency_key="s2",
        )
        ledger.sell(
            good,
            "view",
            buyer="frank",
            channel="shop",
            quantity=3,
            unit_price=Money(100, "EUR"),
            idempotency_key="s3",
        )
        ledger.sell(
            good,
            "view",
            buyer="frank",
            channel="shop",
            quantity=3,
            unit_price=Money(100, "EUR"),
            idempotency_key="s3",
        )  # replay
        v = ledger.derive_variant(
            good,
            dict(SPEC, title="Dawn (red)", variant_rules=None, tiers=[{"name": "own", "quota": 5}]),
            idempotency_key="v1",
        )
        sv = ledger.sell(
            v["good_id"],
            "own",
            buyer="ivy",
            channel="shop",
            quantity=1,
            unit_price=Money(1001, "EUR"),
            idempotency_key="s4",
        )
        ledger.move_unit(
            sv["units"][0]["unit_id"],
            holder="ivy",
            to_channel="market",
            channel="shop",
            idempotency_key="mv3",
        )
        ledger.resell(
            sv["units"][0]["unit_id"],
            seller="ivy",
            buyer="gina",
            channel="market",
            price=Money(2000, "EUR"),
            idempotency_key="r3",
        )
        ledger.derive_variant(
            good,
            dict(
                SPEC,
                title="Dawn (blue)",
                variant_rules=None,
                tiers=[{"name": "one", "quota": 1}, {"name": "two", "quota": 2}],
            ),
            idempotency_key="v2",
        )
        w = ledger.mint(
            dict(
                SPEC,
                title="Window",
                variant_rules=None,
                metadata={"series": "A", "n": [1]},
                edition={
                    "policy": "absolute",
                    "sale_opens_at": "2000-01-01T00:00:00Z",
                    "sale_closes_at": "2999-01-01T00:00:00Z",
                },
                tiers=[{"name": "gen", "quota": 5}],
            ),
            idempotency_key="m2",
            scope="tenant-a",
        )
        ledger.sell(
            w["good_id"],
            "gen",
            buyer="ivan",
            channel="market",
            quantity=5,
            unit_price=Money(0, "EUR"),
            idempotency_key="s5",
            scope="tenant-a",
        )


# ---------------------------------------------------------------------------
# Raw store access (the tamperer's tools)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    rowid: int
    aggregate_id: str  # dashed, as in records
    version: int
    topic: str
    state: bytes

    @property
    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.state)
        return value


def encode(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class Store:
    """The SQLite table ``stored_events`` of a ledger, row by row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = DatabaseURL.parse(f"sqlite:///{path}")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def rows(self) -> list[Row]:
        with self._connect() as db:
            found = db.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                "FROM stored_events ORDER BY rowid"
            ).fetchall()
        return [Row(r[0], str(uuid.UUID(r[1])), r[2], r[3], bytes(r[4])) for r in found]

    def find(self, topic: str, nth: int = 0, **payload: Any) -> Row:
        matches = [
            r
            for r in self.rows()
            if r.topic == topic and all(r.data["payload"].get(k) == v for k, v in payload.items())
        ]
        return matches[nth]

    def aggregate(self, aggregate_id: str) -> list[Row]:
        return sorted(
            (r for r in self.rows() if r.aggregate_id == aggregate_id), key=lambda r: r.version
        )

    def write_state(self, rowid: int, state: bytes) -> None:
        with self._connect() as db:
            db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (state, rowid))

    def set_version(self, rowid: int, version: int) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE stored_events SET originator_version=? WHERE rowid=?", (version, rowid)
            )

    def delete(self, rowid: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM stored_events WHERE rowid=?", (rowid,))

    def edit(self, row: Row, change: Callable[[dict[str, Any]], None]) -> None:
        """Change the row's payload and store it re-encoded canonically."""
        data = row.data
        change(data["payload"])
        self.write_state(row.rowid, encode(data))

    def rechain(self, aggregate_id: str) -> None:
        """Renumber an aggregate's events 1..n in version order and recompute
        every prev_hash, as a careful forger would."""
        prev = "0" * 64
        rows = self.aggregate(aggregate_id)
        with self._connect() as db:
            # Clear versions first: (originator_id, version) is unique.
            for row in rows:
                db.execute(
                    "UPDATE stored_events SET originator_version=? WHERE rowid=?",
                    (-row.rowid, row.rowid),
                )
            for version, row in enumerate(rows, 1):
                data = row.data
                data["prev_hash"] = prev
                state = encode(data)
                prev = hashlib.sha256(
                    record_bytes(aggregate_id, version, row.topic, state)
                ).hexdigest()
                db.execute(
                    "UPDATE stored_events SET originator_version=?, state=? WHERE rowid=?",
                    (version, state, row.rowid),
                )

    def hash_of(self, row: Row) -> str:
        return hashlib.sha256(
            record_bytes(row.aggregate_id, row.version, row.topic, row.state)
        ).hexdigest()


@pytest.fixture(scope="module")
def example_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("example") / "ledger.db"
    build_example(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def busy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("busy") / "ledger.db"
    build_busy(f"sqlite:///{path}")
    return path


def _copy(template: Path, tmp_path: Path) -> Store:
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copy(source, tmp_path / ("ledger.db" + suffix))
    return Store(tmp_path / "ledger.db")


@pytest.fixture
def example(example_template: Path, tmp_path: Path) -> Store:
    return _copy(example_template, tmp_path)


@pytest.fixture
def busy(busy_template: Path, tmp_path: Path) -> Store:
    return _copy(busy_template, tmp_path)


def only(report: Report, check: str) -> Finding:
    """The one finding with this check code."""
    found = [f for f in report.findings if f.check == check]
    assert len(found) == 1, (check, [str(f) for f in report.findings])
    return found[0]


def describe(report: Report) -> list[str]:
    return [str(f) for f in report.findings]


# ---------------------------------------------------------------------------
# Clean ledgers
# ---------------------------------------------------------------------------
def test_clean_ledger_verifies_from_the_store_and_its_export(
    store_url: DatabaseURL, tmp_path: Path
) -> None:
    build_example(store_url)
    seen: list[int] = []
    report = verify_store(store_url, progress=seen.append)
    assert report.ok, describe(report)
    assert report.first is None
    # (Three accounts -- carol, dave, erin -- opened by their first purchases.)
    assert report.events == 32
    assert report.aggregates == 22
    assert report.by_type["stock.sold"] == 2
    assert report.by_type["account.opened"] == 3
    assert seen[-1] == 32

    out = tmp_path / "ledger.jsonl"
    assert export_store(store_url, out) == 32
    exported = verify_export(out)
    assert exported.ok, describe(exported)
    assert (exported.events, exported.aggregates) == (32, 22)
    assert exported.source == str(out)


def test_busy_ledger_verifies(busy: Store, tmp_path: Path) -> None:
    report = verify_store(busy.url)
    assert report.ok, describe(report)
    assert report.by_type["unit.reissued"] == 1
    assert report.events == len(busy.rows())
    out = tmp_path / "busy.jsonl"
    export_store(busy.url, out)
    assert verify_export(out).ok


def test_export_lines_are_the_writers_record_bytes(example: Store, tmp_path: Path) -> None:
    out = tmp_path / "ledger.jsonl"
    export_store(example.url, out)
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""  # every record ends with a newline
    mapper = ChainedEventMapper()
    from eventsourcing.persistence import StoredEvent

    for row, line in zip(example.rows(), lines[:-1], strict=True):
        event = mapper.to_domain_event(
            StoredEvent(
                originator_id=uuid.UUID(row.aggregate_id),
                originator_version=row.version,
                topic=row.topic,
                state=row.state,
            )
        )
        assert line == event.record
        assert hashlib.sha256(line).hexdigest() == event.hash


def test_export_is_atomic_and_replaces_the_target(example: Store, tmp_path: Path) -> None:
    out = tmp_path / "out" / "ledger.jsonl"
    out.parent.mkdir()
    out.write_bytes(b"old contents\n")
    assert export_store(example.url, out, progress=lambda n: None) == 32
    assert out.read_bytes().count(b"\n") == 32
    assert sorted(p.name for p in out.parent.iterdir()) == ["ledger.jsonl"]


def test_missing_store_raises(tmp_path: Path) -> None:
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'nope.db'}")
    with pytest.raises(StoreMissingError):
        verify_store(url)
    with pytest.raises(StoreMissingError):
        export_store(url, tmp_path / "x.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_report_to_json_is_serialisable(example: Store) -> None:
    row = example.find("stock.sold")
    example.write_state(row.rowid, row.state.replace(b'"buyer":"carol"', b'"buyer": "carol"'))
    report = verify_store(example.url)
    data = report.to_json()
    assert orjson.loads(orjson.dumps(data)) == data
    assert data["ok"] is False
    assert data["findings_total"] == report.findings_total == len(data["findings"])
    assert data["findings"][0]["check"] == "not-canonical"
    assert data["findings"][0]["position"] == row.rowid


# ---------------------------------------------------------------------------
# Tampering caught by encoding and chain
# ---------------------------------------------------------------------------
def test_flipped_byte_in_a_string_breaks_the_next_prev_hash(example: Store) -> None:
    refund = example.find("unit.refunded", kind="resale")
    state = refund.state.replace(b"changed mind", b"chbnged mind")  # 'a' ^ 0x03
    example.write_state(refund.rowid, state)
    after = example.aggregate(refund.aggregate_id)[refund.version]  # v+1
    report = verify_store(example.url)
    finding = only(report, "prev-hash-mismatch")
    assert report.findings_total == 1
    assert (finding.position, finding.version) == (after.rowid, refund.version + 1)
    tampered = Row(refund.rowid, refund.aggregate_id, refund.version, refund.topic, state)
    assert finding.expected == example.hash_of(tampered)
    assert finding.actual == after.data["prev_hash"] == example.hash_of(refund)
    assert finding.expected in finding.message
    assert finding.actual in finding.message


def test_flipped_byte_in_prev_hash_is_caught_at_the_event_itself(example: Store) -> None:
    sold = example.find("stock.sold", buyer="carol")
    prev = sold.data["prev_hash"]
    flipped = ("1" if prev[0] != "1" else "2") + prev[1:]
    example.write_state(sold.rowid, sold.state.replace(prev.encode(), flipped.encode()))
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("prev-hash-mismatch", sold.rowid)
    assert (first.expected, first.actual) == (prev, flipped)
    # The edit changed this event's hash, so its successor's link breaks too.
    successor = example.aggregate(sold.aggregate_id)[sold.version]
    assert [f.position for f in report.findings] == [sold.rowid, successor.rowid]


def test_flipped_structural_byte_is_not_json(example: Store) -> None:
    issued = example.find("unit.issued", serial=2)
    state = bytearray(issued.state)
    state[0] ^= 0x01  # '{' becomes 'z'
    example.write_state(issued.rowid, bytes(state))
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("bad-json", issued.rowid)
    assert first.aggregate_id == issued.aggregate_id
    assert "bad-json" in report.by_check()


def test_edited_payload_reencoded_canonically(example: Store) -> None:
    refund = example.find("unit.refunded", kind="resale")
    example.edit(refund, lambda p: p.update(reason="never happened"))
    after = example.aggregate(refund.aggregate_id)[refund.version]
    report = verify_store(example.url)
    assert report.findings_total == 1, describe(report)
    finding = only(report, "prev-hash-mismatch")
    assert finding.position == after.rowid
    assert finding.aggregate_id == refund.aggregate_id


def test_deleted_event_is_a_version_gap(example: Store) -> None:
    resold = example.find("unit.resold")
    successor = example.aggregate(resold.aggregate_id)[resold.version]
    example.delete(resold.rowid)
    report = verify_store(example.url)
    gap = only(report, "version-gap")
    assert (gap.position, gap.version) == (successor.rowid, resold.version + 1)
    assert (gap.expected, gap.actual) == (str(resold.version), str(resold.version + 1))
    # The refund that followed no longer undoes the holder's acquisition.
    assert only(report, "refund-mismatch").position == successor.rowid
    # And the resale's command record names a command whose effect is gone.
    assert "resell" in only(report, "command-orphan").message
    assert report.findings_total == 3, describe(report)


def test_swapped_versions(example: Store) -> None:
    unit = example.find("unit.resold").aggregate_id
    events = example.aggregate(unit)  # issued, resold, refunded, refunded
    a, b = events[2], events[3]
    example.set_version(a.rowid, -1)
    example.set_version(b.rowid, a.version)
    example.set_version(a.rowid, b.version)
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("version-gap", a.rowid)
    assert only(report, "version-order").position == b.rowid


def test_added_space_is_not_canonical(example: Store) -> None:
    issued = example.find("unit.issued", serial=1)
    example.write_state(
        issued.rowid, issued.state.replace(b'"holder":"carol"', b'"holder": "carol"')
    )
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("not-canonical", issued.rowid)
    assert "byte" in first.message
    # The stored bytes are what is hashed, so the next link breaks too.
    successor = example.aggregate(issued.aggregate_id)[1]
    assert only(report, "prev-hash-mismatch").position == successor.rowid


# ---------------------------------------------------------------------------
# Tampering rewritten consistently: the chain verifies, the rules do not
# ---------------------------------------------------------------------------
def test_oversold_stock_rechained(tmp_path: Path) -> None:
    store = Store(tmp_path / "ledger.db")
    spec = dict(SPEC, variant_rules=None, tiers=[{"name": "own", "quota": 2, "lifetime_cap": 4}])
    with Ledger(store.url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
        good = ledger.mint(spec, idempotency_key="m1")["good_id"]
        for key in ("s1", "s2"):
            ledger.sell(
                good,
                "own",
                buyer="carol",
                channel="shop",
                quantity=1,
                unit_price=Money(10, "EUR"),
                idempotency_key=key,
            )
        ledger.restock(good, "own", 2, idempotency_key="rs1")
        ledger.sell(
            good,
            "own",
            buyer="dave",
            channel="shop",
            quantity=2,
            unit_price=Money(10, "EUR"),
            idempotency_key="s3",
        )
    assert verify_store(store.url).ok
    # Erase the restock and its command record, then re-chain the stock.
    restock = store.find("stock.restocked")
    store.delete(restock.rowid)
    store.delete(restock.rowid + 1)
    store.rechain(restock.aggregate_id)
    last_sale = store.find("stock.sold", buyer="dave")
    report = verify_store(store.url)
    finding = only(report, "oversold")
    assert report.findings_total == 1, describe(report)
    assert finding.position == last_sale.rowid
    assert (finding.expected, finding.actual) == ("<= 2", "4")


def test_wrong_split_amount_rechained(example: Store) -> None:
    sold = example.find("stock.sold", buyer="carol")

    def shift_a_cent(payload: dict[str, Any]) -> None:
        payload["split"][0]["amount"] += 1  # alice
        payload["split"][1]["amount"] -= 1  # bob: the sum still matches

    example.edit(sold, shift_a_cent)
    example.rechain(sold.aggregate_id)
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("split-mismatch", sold.rowid)
    assert "alice/creator 664" in first.message
    assert "alice/creator 665" in first.message
    # Its units, and the answer its record keeps, now carry a split other
    # than the sale's.
    assert {f.check for f in report.findings} == {
        "split-mismatch",
        "unit-mismatch",
        "command-result",
    }


def test_split_not_summing_to_the_price_rechained(example: Store) -> None:
    sold = example.find("stock.sold", buyer="erin")
    example.edit(sold, lambda p: p["split"][-1].update(amount=0))
    example.rechain(sold.aggregate_id)
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("split-sum", sold.rowid)
    assert (first.expected, first.actual) == ("1001", "951")


def test_resale_by_a_non_holder_rechained(example: Store) -> None:
    resold = example.find("unit.resold")
    example.edit(resold, lambda p: p.update(seller="mallory"))
    example.rechain(resold.aggregate_id)
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("not-holder", resold.rowid)
    assert (first.expected, first.actual) == ("carol", "mallory")
    assert "prev-hash-mismatch" not in report.by_check()


def test_resale_of_a_non_transferable_unit_rechained(busy: Store) -> None:
    # Turn a resale of an 'own' unit into one of a 'view' unit (not transferable)
    # by moving the event onto that unit's chain.
    view_unit = busy.find("unit.issued", tier="view").aggregate_id
    resold = busy.find("unit.resold", seller="ivy")
    with sqlite3.connect(busy.path) as db:
        db.execute(
            "UPDATE stored_events SET originator_id=?, originator_version=2 WHERE rowid=?",
            (uuid.UUID(view_unit).hex, resold.rowid),
        )
    busy.edit(
        busy.rows()[[r.rowid for r in busy.rows()].index(resold.rowid)],
        lambda p: p.update(seller="frank"),
    )
    busy.rechain(view_unit)
    report = verify_store(busy.url)
    finding = only(report, "not-transferable")
    assert finding.position == resold.rowid
    assert finding.aggregate_id == view_unit


def test_buyer_limit_exceeded_rechained(example: Store) -> None:
    counted = example.find("allowance.counted", delta=2)
    example.edit(counted, lambda p: p.update(delta=3))
    example.rechain(counted.aggregate_id)
    report = verify_store(example.url)
    limit = only(report, "buyer-limit")
    assert limit.position == counted.rowid
    assert only(report, "allowance-mismatch").position == counted.rowid


def test_serial_sold_twice_rechained(busy: Store) -> None:
    # The sale that reissued returned serial 1 now claims serial 2, which
    # carol still holds.
    sold = busy.find("stock.sold", buyer="erin", channel="market")
    busy.edit(sold, lambda p: p.update(serials=[2, 3]))
    busy.rechain(sold.aggregate_id)
    report = verify_store(busy.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("serial-reused", sold.rowid)


def test_restock_of_an_absolute_edition_rechained(busy: Store) -> None:
    opened = busy.find("stock.opened", tier="gen")
    sold = busy.find("stock.sold", buyer="ivan")
    # Append a restock to the absolute edition's stock (a forged event).
    data = sold.data
    data["payload"] = {"quantity": 1, "supply": 6}
    with sqlite3.connect(busy.path) as db:
        db.execute(
            "INSERT INTO stored_events VALUES (?, ?, ?, ?)",
            (uuid.UUID(opened.aggregate_id).hex, 3, "stock.restocked", encode(data)),
        )
    busy.rechain(opened.aggregate_id)
    report = verify_store(busy.url)
    assert only(report, "restock-forbidden").aggregate_id == opened.aggregate_id
    assert only(report, "lifetime-cap").version == 3
    assert report.findings_total == 2, describe(report)


def test_sale_outside_the_window_rechained(busy: Store) -> None:
    sold = busy.find("stock.sold", buyer="ivan")
    data = sold.data
    data["timestamp"] = "2999-06-01T00:00:00.000000Z"
    busy.write_state(sold.rowid, encode(data))
    busy.rechain(sold.aggregate_id)
    report = verify_store(busy.url)
    assert only(report, "sale-window").position == sold.rowid
    # The sale's record still answers with the moment it was made.
    assert "sold_at" in only(report, "command-result").message
    assert report.findings_total == 2, describe(report)


def test_edited_definition_breaks_the_fingerprint(example: Store) -> None:
    minted = example.find("good.minted", nth=0)
    example.edit(minted, lambda p: p["definition"]["spec"].update(title="Dusk"))
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("bad-fingerprint", minted.rowid)
    assert first.expected != first.actual


def test_fingerprint_recomputed_still_breaks_the_id(example: Store) -> None:
    minted = example.find("good.minted", nth=0)

    def forge(payload: dict[str, Any]) -> None:
        payload["definition"]["spec"]["royalty"]["resale_bps"] = 0
        payload["fingerprint"] = hashlib.sha256(encode(payload["definition"])).hexdigest()

    example.edit(minted, forge)
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("bad-id", minted.rowid)


def test_refund_of_the_wrong_acquisition_rechained(example: Store) -> None:
    refund = example.find("unit.refunded", kind="resale")
    sold = example.find("stock.sold", buyer="carol")
    example.edit(refund, lambda p: p.update(acquisition_id=sold.data["payload"]["sale_id"]))
    example.rechain(refund.aggregate_id)
    report = verify_store(example.url)
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("refund-mismatch", refund.rowid)


def test_dangling_sale_when_a_unit_event_is_removed(example: Store) -> None:
    issued = example.find("unit.issued", serial=2)
    sold = example.find("stock.sold", buyer="carol")
    example.delete(issued.rowid)
    report = verify_store(example.url)
    finding = only(report, "dangling-sale")
    assert finding.position == sold.rowid
    assert "[2]" in finding.message


def test_variant_over_its_supply_limit_rechained(example: Store) -> None:
    minted = example.find("good.minted", nth=1)  # the variant

    def grow(payload: dict[str, Any]) -> None:
        payload["definition"]["spec"]["tiers"][0]["lifetime_cap"] = 51
        payload["definition"]["spec"]["tiers"][0]["quota"] = 51

    example.edit(minted, grow)
    report = verify_store(example.url)
    assert only(report, "variant-limit").position == minted.rowid


# ---------------------------------------------------------------------------
# Export files
# ---------------------------------------------------------------------------
@pytest.fixture
def export_lines(example: Store, tmp_path: Path) -> list[bytes]:
    out = tmp_path / "clean.jsonl"
    export_store(example.url, out)
    return out.read_bytes().split(b"\n")[:-1]


def write_lines(path: Path, lines: list[bytes], *, final_newline: bool = True) -> Path:
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline else b""))
    return path


def test_malformed_export_lines_never_crash(export_lines: list[bytes], tmp_path: Path) -> None:
    record = orjson.loads(export_lines[0])
    garbage = [
        b"not json at all",  # 1
        b"",  # 2
        b"[1,2,3]",  # 3
        b'{"a":1}',  # 4
        encode({k: v for k, v in record.items() if k != "payload"}),  # 5
        encode(dict(record, version="1")),  # 6
        encode(dict(record, version=True)),  # 7
        b'{"version":1.5}',  # 8
        encode(dict(record, payload=[])),  # 9
        encode(dict(record, timestamp="2026-11-22 07:25:02")),  # 10
        encode(dict(record, aggregate_id="NOT-A-UUID")),  # 11
        encode(dict(record, type="stock.stolen", version=2)),  # 12
        b"\xff\xfe\x00garbage",  # 13
        b'{"aggregate_id":' * 2000,  # 14: deep, truncated
        b"[" * 5000 + b"]" * 5000,  # 15: deeper than parsers allow
        encode(dict(record, version=2**60)),  # 16
        b'"\\ud800"',  # 17
    ]
    path = write_lines(tmp_path / "bad.jsonl", garbage, final_newline=False)
    report = verify_export(path)
    by_line: dict[int, set[str]] = {}
    for finding in report.findings:
        assert finding.position is not None
        by_line.setdefault(finding.position, set()).add(finding.check)
    assert by_line[1] == {"bad-json"}
    assert by_line[2] == {"bad-line"}
    assert by_line[3] == {"bad-envelope"}
    assert "bad-envelope" in by_line[4]
    assert "bad-envelope" in by_line[5]
    assert "bad-envelope" in by_line[6]
    assert "bad-envelope" in by_line[7]
    assert "not-canonical" in by_line[8]
    assert "bad-envelope" in by_line[9]
    assert "bad-timestamp" in by_line[10]
    assert "bad-envelope" in by_line[11]
    assert "unknown-type" in by_line[12]
    assert by_line[13] == {"bad-json"}
    assert by_line[14] == {"bad-json"}
    assert by_line[15] == {"bad-json"}
    assert "not-canonical" in by_line[16]
    assert by_line[17] == {"bad-json", "bad-line"}  # and no final newline
    assert "unverifiable" not in {f.check for f in report.findings}
    assert report.events == 16  # the empty line is no event


def test_non_canonical_export_line(export_lines: list[bytes], tmp_path: Path) -> None:
    lines = list(export_lines)
    lines[6] = lines[6].replace(b'"buyer":"carol"', b'"buyer": "carol"')  # stock.sold
    lines[3] = lines[3][:-1] + b',"type":"stock.opened"}'  # a duplicate key
    report = verify_export(write_lines(tmp_path / "t.jsonl", lines))
    checks = {(f.position, f.check) for f in report.findings}
    assert (7, "not-canonical") in checks
    assert (4, "not-canonical") in checks
    assert report.first is not None
    assert report.first.position == 4


def test_reordered_export_lines(export_lines: list[bytes], tmp_path: Path) -> None:
    lines = list(export_lines)
    # Move the second refund of the unit before the first.
    first_refund, second_refund = (
        i for i, line in enumerate(lines) if b'"type":"unit.refunded"' in line
    )
    lines[first_refund], lines[second_refund] = lines[second_refund], lines[first_refund]
    report = verify_export(write_lines(tmp_path / "t.jsonl", lines))
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("version-gap", first_refund + 1)


def test_export_with_a_crlf_line(export_lines: list[bytes], tmp_path: Path) -> None:
    lines = list(export_lines)
    lines[0] += b"\r"
    report = verify_export(write_lines(tmp_path / "t.jsonl", lines))
    first = report.first
    assert first is not None
    assert (first.check, first.position) == ("not-canonical", 1)


def test_findings_are_capped_but_counted(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "junk.jsonl", [b"x"] * 1500)
    report = verify_export(path)
    assert report.findings_total == 1500
    assert len(report.findings) == 1000
    assert report.to_json()["findings_truncated"] is True


def test_progress_every_few_thousand(
    example: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ledger.verify.sources

    monkeypatch.setattr(ledger.verify.sources, "PROGRESS_EVERY", 10)
    seen: list[int] = []
    report = verify_store(example.url, progress=seen.append)
    assert seen == [10, 20, 30, 32]
    out = tmp_path / "many.jsonl"
    exported: list[int] = []
    assert export_store(example.url, out, progress=exported.append) == report.events
    assert exported == [10, 20, 30, 32]
    checked: list[int] = []
    verify_export(out, progress=checked.append)
    assert checked == [10, 20, 30, 32]


def test_group_committed_batches_verify(tmp_path: Path) -> None:
    """Concurrent sales on one stock are group-committed: one command's
    events are then not adjacent (section 6), which the verifier must not
    mind."""
    import threading

    store = Store(tmp_path / "ledger.db")
    spec = dict(
        SPEC, variant_rules=None, tiers=[{"name": "own", "quota": 500, "per_buyer_limit": 20}]
    )
    with Ledger(store.url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c")
        good = ledger.mint(spec, idempotency_key="m")["good_id"]

        def work(k: int) -> None:
            for i in range(12):
                sale = ledger.sell(
                    good,
                    "own",
                    buyer=f"b{k}",
                    channel="shop",
                    quantity=1,
                    unit_price=Money(999, "EUR"),
                    idempotency_key=f"s{k}-{i}",
                )
                if i % 4 == 0:
                    ledger.refund(
                        sale["units"][0]["unit_id"], reason="x", idempotency_key=f"f{k}-{i}"
                    )

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    report = verify_store(store.url)
    assert report.ok, describe(report)
    assert report.by_type["stock.sold"] == 72
    assert report.by_type["stock.returned"] == 18
