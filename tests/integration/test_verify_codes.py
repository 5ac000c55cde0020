"""The auditor and the redemption codes: a careful forger edits code events
(or the code members of sales, holds and units) and re-chains the aggregate
(so every hash checks out); rule 8.11 still catches each edit, as a
domain-rule finding located at the forged event."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from ledger.verify import Report, export_store, verify_export, verify_store
from ledger.verify.classes import exit_code
from tests.integration.test_verify_ledger import Row, Store, encode
from tests.strategies import good_spec

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EUR = Money(100, "EUR")
NOWHERE = "f" * 32  # a well-formed ref no batch imported

Change = Callable[[dict[str, Any], Store], Any]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every path of a code's life, on one redemption-code good (tiers ``key``
    and ``gift``) beside a plain collectible (``own``)."""
    path = tmp_path_factory.mktemp("codes") / "ledger.db"
    now = [T0]
    with Ledger(
        DatabaseURL.parse(f"sqlite:///{path}"),
        clock=lambda: now[0],
        code_keyring=Keyring.generate(),
    ) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        spec = good_spec(tiers=[{"name": "key", "quota": 12}, {"name": "gift", "quota": 3}])
        spec["kind"] = "redemption-code"
        good = ledger.mint(spec, idempotency_key="m")["good_id"]
        plain = ledger.mint(
            good_spec(title="Poster", tiers=[{"name": "own", "quota": 5}]), idempotency_key="m2"
        )["good_id"]
        ledger.import_codes(
            good, "key", codes=["ALPHA-1", "BRAVO-2", "CHARLIE-3"], idempotency_key="i1"
        )
        ledger.import_codes(
            good,
            "key",
            idempotency_key="i2",
            code_range={"prefix": "R-", "width": 4, "start": 1, "end": 8},
        )
        ledger.import_codes(good, "gift", codes=["GIFT-1"], idempotency_key="i3")

        def sell(buyer: str, quantity: int) -> list[str]:
            sale = ledger.sell(
                good,
                "key",
                buyer=buyer,
                channel="shop",
                quantity=quantity,
                unit_price=EUR,
                idempotency_key=f"s-{buyer}",
            )
            return [u["unit_id"] for u in sale["units"]]

        # Three holds, each lent codes: one committed in part, one released,
        # one expired; a plain sale while they are live.
        committed = ledger.reserve(
            good, "key", channel="shop", quantity=3, ttl_seconds=60, idempotency_key="h1"
        )["hold_id"]
        released = ledger.reserve(
            good, "key", channel="shop", quantity=2, ttl_seconds=60, idempotency_key="h2"
        )["hold_id"]
        ledger.reserve(good, "key", channel="shop", quantity=1, ttl_seconds=5, idempotency_key="h3")
        bob = sell("bob", 2)
        now[0] += timedelta(seconds=2)
        ann = ledger.commit_hold(
            good, "key", committed, buyer="ann", quantity=2, unit_price=EUR, idempotency_key="p1"
        )["units"]
        ledger.release_hold(good, "key", released, idempotency_key="r2")
        now[0] += timedelta(seconds=10)
        ledger.expire_holds(good, "key")
        # Delivered and redeemed.
        code = ledger.deliver_code(bob[0], holder="bob", idempotency_key="d-bob")["code"]
        ledger.redeem_code(code, redeemer="bob", idempotency_key="x-bob")
        # Refunded after delivery: voided.
        [dan] = sell("dan", 1)
        ledger.deliver_code(dan, holder="dan", idempotency_key="d-dan")
        ledger.refund(dan, reason="changed mind", idempotency_key="f-dan")
        # Refunded while sealed (the unit reissued): the code goes back to the pool.
        [eve] = sell("eve", 1)
        ledger.refund(eve, reason="changed mind", idempotency_key="f-eve")
        # A unit resold while its code is sealed, then delivered to its new holder.
        ledger.resell(
            ann[0]["unit_id"],
            seller="ann",
            buyer="gus",
            channel="shop",
            price=Money(300, "EUR"),
            idempotency_key="r-gus",
        )
        ledger.deliver_code(ann[0]["unit_id"], holder="gus", idempotency_key="d-gus")
        # The pool runs dry: the last code sold is the one eve's refund returned.
        sell("fay", 5)
        sell("ivy", 1)
        assert ledger.code_counts(good, "key")["available"] == 0
        ledger.sell(
            plain,
            "own",
            buyer="hal",
            channel="shop",
            quantity=1,
            unit_price=EUR,
            idempotency_key="s-hal",
        )
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "ledger.db"
    shutil.copy(template, copy)
    return Store(copy)


def forge(store: Store, row: Row, change: Callable[[dict[str, Any]], Any]) -> int:
    store.edit(row, change)
    store.rechain(row.aggregate_id)
    return row.rowid


def caught(store: Store, check: str, position: int, case: str = "") -> Report:
    """The forgery is a rule finding ``check`` at ``position``, and no event
    after it was beyond the verifier (``unverifiable``)."""
    report = verify_store(store.url)
    found = [f for f in report.findings if f.check == check]
    everything = [str(f) for f in report.findings]
    assert found, f"{case}: no {check} finding in {everything}"
    assert position in {f.position for f in found}, (
        f"{case}: {check} not at {position}: {everything}"
    )
    assert exit_code(f.check for f in report.findings) == 4  # a domain rule, not the chain
    assert "unverifiable" not in {f.check for f in report.findings}, everything
    return report


# -- facts of the honest log, read from it (refs depend on the keyring) ----------
def _payload(s: Store, topic: str, nth: int = 0, **where: Any) -> dict[str, Any]:
    payload: dict[str, Any] = s.find(topic, nth, **where).data["payload"]
    return payload


def _sold(s: Store, buyer: str) -> list[str]:
    """The codes of ``buyer``'s sale."""
    codes: list[str] = _payload(s, "stock.sold", buyer=buyer)["codes"]
    return codes


def _lent(s: Store, nth: int) -> list[str]:
    """The codes lent to the ``nth`` hold (h1, h2, h3)."""
    codes: list[str] = _payload(s, "stock.reserved", nth)["codes"]
    return codes


def _unit(s: Store, buyer: str, nth: int = 0) -> str:
    """The unit id of the ``nth`` unit of ``buyer``'s sale."""
    sale_id = _payload(s, "stock.sold", buyer=buyer)["sale_id"]
    unit_id: str = _payload(s, "code.bound", nth, sale_id=sale_id)["unit_id"]
    return unit_id


def _refund(s: Store, holder: str) -> str:
    refund_id: str = _payload(s, "unit.refunded", holder=holder)["refund_id"]
    return refund_id


def _gift(s: Store) -> str:
    ref: str = _payload(s, "stock.codes-imported", 2)["refs"][0]
    return ref


def _replace(items: list[str], index: int, value: str) -> list[str]:
    return [value if i == index else item for i, item in enumerate(items)]


# -- the honest log -------------------------------------------------------------
CODE_TYPES = (
    "code.imported",
    "code.bound",
    "code.delivered",
    "code.redeemed",
    "code.returned",
    "code.voided",
    "stock.codes-imported",
    "stock.code-returned",
)


def test_the_honest_store_verifies_with_every_code_event(store: Store, tmp_path: Path) -> None:
    report = verify_store(store.url)
    assert report.ok, report.first
    for event_type in (
        *CODE_TYPES,
        "stock.reserved",
        "stock.hold-committed",
        "stock.hold-released",
        "unit.reissued",
        "unit.resold",
        "unit.refunded",
    ):
        assert report.by_type[event_type] >= 1, event_type
    assert report.by_type["code.imported"] == 12  # 3 listed, 8 in a range, 1 gift
    # The code eve's refund returned is sold again, to ivy.
    returned = _payload(store, "stock.code-returned")["ref"]
    assert _sold(store, "ivy") == [returned]
    # Only refs: an export verifies the same, with no key.
    out = tmp_path / "ledger.jsonl"
    export_store(store.url, out)
    assert verify_export(out).ok


# -- forgeries: (case, topic, where, nth, change, check) -----------------------------
CASES: list[tuple[str, str, dict[str, Any], int, Change, str]] = [
    # Sales and holds name free codes, one a unit.
    (
        "sell a code lent to a live hold",
        "stock.sold",
        {"buyer": "bob"},
        0,
        lambda p, s: p.update(codes=_replace(p["codes"], 0, _lent(s, 2)[0])),
        "code-binding",
    ),
    (
        "sell a code already sold",
        "stock.sold",
        {"buyer": "fay"},
        0,
        lambda p, s: p.update(codes=_replace(p["codes"], 1, _sold(s, "bob")[1])),
        "code-binding",
    ),
    (
        "sell a code already redeemed",
        "stock.sold",
        {"buyer": "fay"},
        0,
        lambda p, s: p.update(codes=_replace(p["codes"], 4, _sold(s, "bob")[0])),
        "code-binding",
    ),
    (
        "sell a code that was voided",
        "stock.sold",
        {"buyer": "ivy"},
        0,
        lambda p, s: p.update(codes=_sold(s, "dan")),
        "code-binding",
    ),
    (
        "sell a code no batch imported",
        "stock.sold",
        {"buyer": "bob"},
        0,
        lambda p, _: p.update(codes=_replace(p["codes"], 0, NOWHERE)),
        "code-binding",
    ),
    (
        "sell a unit, later refunded, with a code no batch imported",
        "stock.sold",
        {"buyer": "dan"},
        0,
        lambda p, _: p.update(codes=[NOWHERE]),
        "code-binding",
    ),
    (
        "commit a hold's sale with a code no batch imported",
        "stock.sold",
        {"buyer": "ann"},
        0,
        lambda p, _: p.update(codes=_replace(p["codes"], 0, NOWHERE)),
        "code-binding",
    ),
    (
        "sell a code of another tier",
        "stock.sold",
        {"buyer": "dan"},
        0,
        lambda p, s: p.update(codes=[_gift(s)]),
        "code-binding",
    ),
    (
        "sell two units with one code",
        "stock.sold",
        {"buyer": "bob"},
        0,
        lambda p, _: p.update(codes=p["codes"][:1]),
        "code-binding",
    ),
    (
        "sell one unit with two codes",
        "stock.sold",
        {"buyer": "dan"},
        0,
        lambda p, s: p.update(codes=[*p["codes"], _sold(s, "eve")[0]]),
        "code-binding",
    ),
    (
        "sell a unit of a coded tier without a code",
        "stock.sold",
        {"buyer": "dan"},
        0,
        lambda p, _: p.pop("codes"),
        "code-binding",
    ),
    (
        "name one code for two units",
        "stock.sold",
        {"buyer": "bob"},
        0,
        lambda p, _: p.update(codes=[p["codes"][0]] * 2),
        "code-binding",
    ),
    (
        "name codes for a tier that is not coded",
        "stock.sold",
        {"buyer": "hal"},
        0,
        lambda p, s: p.update(codes=[_sold(s, "ivy")[0]]),
        "code-binding",
    ),
    (
        "commit a hold's sale with a code the hold returns",
        "stock.sold",
        {"buyer": "ann"},
        0,
        lambda p, s: p.update(codes=_replace(p["codes"], 1, _lent(s, 0)[2])),
        "code-binding",
    ),
    (
        "commit a hold's sale with a free code",
        "stock.sold",
        {"buyer": "ann"},
        0,
        lambda p, s: p.update(codes=_replace(p["codes"], 1, _sold(s, "dan")[0])),
        "code-binding",
    ),
    (
        "lend a hold a code lent to another",
        "stock.reserved",
        {},
        1,
        lambda p, s: p.update(codes=_replace(p["codes"], 0, _lent(s, 0)[0])),
        "code-binding",
    ),
    (
        "lend a hold too few codes",
        "stock.reserved",
        {},
        1,
        lambda p, _: p.update(codes=p["codes"][:1]),
        "code-binding",
    ),
    (
        "hold a coded unit without a code",
        "stock.reserved",
        {},
        2,
        lambda p, _: p.pop("codes"),
        "code-binding",
    ),
    # Units carry their sale's code; a code is bound to its sale's unit.
    (
        "a unit carries another code than its sale gave",
        "unit.issued",
        {"holder": "bob"},
        0,
        lambda p, s: p.update(code=_sold(s, "bob")[1]),
        "code-binding",
    ),
    (
        "a unit of a coded tier carries no code",
        "unit.issued",
        {"holder": "fay"},
        1,
        lambda p, _: p.pop("code"),
        "code-binding",
    ),
    (
        "a reissued unit carries its former code",
        "unit.reissued",
        {"holder": "eve"},
        0,
        lambda p, s: p.update(code=_sold(s, "dan")[0]),
        "code-binding",
    ),
    (
        "a plain unit carries a code",
        "unit.issued",
        {"holder": "hal"},
        0,
        lambda p, s: p.update(code=_sold(s, "ivy")[0]),
        "code-binding",
    ),
    (
        "bind a code to another unit",
        "code.bound",
        {},
        0,
        lambda p, s: p.update(unit_id=_unit(s, "bob", 1)),
        "code-binding",
    ),
    (
        "bind a code by another sale",
        "code.bound",
        {},
        0,
        lambda p, s: p.update(sale_id=_payload(s, "stock.sold", buyer="ann")["sale_id"]),
        "code-binding",
    ),
    # Delivery, redemption.
    (
        "deliver to someone who does not hold the unit",
        "code.delivered",
        {"holder": "gus"},
        0,
        lambda p, _: p.update(holder="ann"),
        "code-state",
    ),  # ann resold it to gus
    (
        "deliver a code for another unit",
        "code.delivered",
        {"holder": "bob"},
        0,
        lambda p, s: p.update(unit_id=_unit(s, "bob", 1)),
        "code-state",
    ),
    (
        "redeem for another holder",
        "code.redeemed",
        {},
        0,
        lambda p, _: p.update(holder="mallory"),
        "code-state",
    ),
    (
        "redeem for another unit",
        "code.redeemed",
        {},
        0,
        lambda p, s: p.update(unit_id=_unit(s, "bob", 1)),
        "code-state",
    ),
    # Refunds return a sealed code, void a revealed one.
    (
        "a refund-return frees a code the refund did not return",
        "stock.code-returned",
        {},
        0,
        lambda p, s: p.update(ref=_sold(s, "bob")[1]),
        "code-state",
    ),
    (
        "a refund-return frees a code into another tier's pool",
        "stock.code-returned",
        {},
        0,
        lambda p, s: p.update(ref=_gift(s)),
        "code-state",
    ),
    (
        "a refund-return names another refund",
        "stock.code-returned",
        {},
        0,
        lambda p, s: p.update(refund_id=_refund(s, "dan")),
        "code-state",
    ),
    (
        "return a code for another refund",
        "code.returned",
        {},
        0,
        lambda p, s: p.update(refund_id=_refund(s, "dan")),
        "code-state",
    ),
    (
        "void a code for another refund",
        "code.voided",
        {},
        0,
        lambda p, s: p.update(refund_id=_refund(s, "eve")),
        "code-state",
    ),
    # Imports.
    (
        "list a ref its batch did not import",
        "stock.codes-imported",
        {},
        1,
        lambda p, s: p.update(
            refs=_replace(p["refs"], 0, _payload(s, "stock.codes-imported", 0)["refs"][0])
        ),
        "code-import",
    ),
    (
        "list a ref no batch imported",
        "stock.codes-imported",
        {},
        0,
        lambda p, _: p.update(refs=[*p["refs"], NOWHERE]),
        "code-import",
    ),
    (
        "list another tier's code",
        "stock.codes-imported",
        {},
        0,
        lambda p, s: p.update(refs=_replace(p["refs"], 2, _gift(s))),
        "code-import",
    ),
    (
        "import a code into a tier that is not coded",
        "code.imported",
        {},
        0,
        lambda p, s: p.update(
            good_id=_payload(s, "stock.opened", tier="own")["good_id"], tier="own"
        ),
        "code-import",
    ),
    (
        "import a code under another ref",
        "code.imported",
        {},
        0,
        lambda p, _: p.update(ref=NOWHERE),
        "bad-id",
    ),
    (
        "open a redemption-code tier without coded",
        "stock.opened",
        {"tier": "key"},
        0,
        lambda p, _: p.pop("coded"),
        "stock-mismatch",
    ),
    (
        "open a collectible's tier coded",
        "stock.opened",
        {"tier": "own"},
        0,
        lambda p, _: p.update(coded=True),
        "stock-mismatch",
    ),
    # Shapes: refs are 32 lowercase hex digits; optional members are never null.
    (
        "a sale's code ref in capitals",
        "stock.sold",
        {"buyer": "bob"},
        0,
        lambda p, _: p.update(codes=[c.upper() for c in p["codes"]]),
        "bad-payload",
    ),
    (
        "a unit's code ref cut short",
        "unit.issued",
        {"holder": "bob"},
        0,
        lambda p, _: p.update(code=p["code"][:31]),
        "bad-payload",
    ),
    (
        "an imported ref that is not hex",
        "code.imported",
        {},
        0,
        lambda p, _: p.update(ref="z" * 32),
        "bad-payload",
    ),
    (
        "a listing with no refs",
        "stock.codes-imported",
        {},
        0,
        lambda p, _: p.update(refs=[]),
        "bad-payload",
    ),
    (
        "a sale's codes null",
        "stock.sold",
        {"buyer": "dan"},
        0,
        lambda p, _: p.update(codes=None),
        "bad-payload",
    ),
    (
        "a sale's codes empty",
        "stock.sold",
        {"buyer": "dan"},
        0,
        lambda p, _: p.update(codes=[]),
        "bad-payload",
    ),
    (
        "a hold's codes null",
        "stock.reserved",
        {},
        2,
        lambda p, _: p.update(codes=None),
        "bad-payload",
    ),
    (
        "a unit's code null",
        "unit.issued",
        {"holder": "bob"},
        0,
        lambda p, _: p.update(code=None),
        "bad-payload",
    ),
    (
        "a reissued unit's code null",
        "unit.reissued",
        {"holder": "eve"},
        0,
        lambda p, _: p.update(code=None),
        "bad-payload",
    ),
    (
        "coded null",
        "stock.opened",
        {"tier": "key"},
        0,
        lambda p, _: p.update(coded=None),
        "bad-payload",
    ),
    (
        "coded false rather than absent",
        "stock.opened",
        {"tier": "own"},
        0,
        lambda p, _: p.update(coded=False),
        "bad-payload",
    ),
    (
        "a delivery without its holder",
        "code.delivered",
        {"holder": "bob"},
        0,
        lambda p, _: p.pop("holder"),
        "bad-payload",
    ),
    (
        "a redemption with an extra member",
        "code.redeemed",
        {},
        0,
        lambda p, _: p.update(text="ALPHA-1"),
        "bad-payload",
    ),
]


@pytest.mark.parametrize(
    ("case", "topic", "where", "nth", "change", "check"), CASES, ids=[c[0] for c in CASES]
)
def test_each_forged_code_event_is_caught(
    store: Store, case: str, topic: str, where: dict[str, Any], nth: int, change: Change, check: str
) -> None:
    row = store.find(topic, nth, **where)
    rowid = forge(store, row, lambda p: change(p, store))
    caught(store, check, rowid, case)


def test_a_hold_naming_a_code_it_could_not_take_does_not_free_it(store: Store) -> None:
    # h2 names a code lent to h1 (then sold to ann, resold to gus and
    # delivered to him): h2's release must not put it back in the pool, or
    # gus's resale and delivery would be findings, and the code sellable again.
    rowid = forge(
        store,
        store.find("stock.reserved", 1),
        lambda p: p.update(codes=_replace(p["codes"], 0, _lent(store, 0)[0])),
    )
    report = verify_store(store.url)
    assert [(f.position, f.check) for f in report.findings] == [(rowid, "code-binding")]


def test_a_refund_return_is_the_refund_s_own(store: Store) -> None:
    # Only the refund that returned the code (its code.returned) frees it.
    row = store.find("stock.code-returned")
    rowid = forge(store, row, lambda p: p.update(refund_id=_refund(store, "dan")))
    report = verify_store(store.url)
    assert [(f.position, f.check) for f in report.findings] == [(rowid, "code-state")]
    assert report.findings[0].expected == row.data["payload"]["refund_id"]


# -- forgeries that change an event's type, or add or move events ---------------------
def retype(store: Store, row: Row, topic: str, change: Callable[[dict[str, Any]], Any]) -> int:
    """Store ``row`` as an event of another type (its payload changed to
    fit), and re-chain its aggregate."""
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE stored_events SET topic=? WHERE rowid=?", (topic, row.rowid))
    return forge(store, _row_at(store, row.rowid), change)


def insert(store: Store, after: Row, aggregate_id: str, topic: str, payload: dict[str, Any]) -> int:
    """Add an event to ``aggregate_id`` right after ``after`` in the log (at
    the same moment), renumber the aggregate in log order and re-chain it."""
    at = after.rowid + 1
    state = encode(dict(after.data, payload=payload))
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE stored_events SET rowid=-(rowid + 1) WHERE rowid >= ?", (at,))
        db.execute("UPDATE stored_events SET rowid=-rowid WHERE rowid < 0")
        db.execute(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, "
            "topic, state) VALUES (?, ?, ?, ?, ?)",
            (at, uuid.UUID(aggregate_id).hex, 0, topic, state),
        )
    rowids = sorted(r.rowid for r in store.rows() if r.aggregate_id == aggregate_id)
    with sqlite3.connect(store.path) as db:
        for rowid in rowids:  # clear the versions first: (id, version) is unique
            db.execute(
                "UPDATE stored_events SET originator_version=? WHERE rowid=?", (-rowid, rowid)
            )
        for version, rowid in enumerate(rowids, 1):
            db.execute(
                "UPDATE stored_events SET originator_version=? WHERE rowid=?", (version, rowid)
            )
    store.rechain(aggregate_id)
    return at


def swap(store: Store, first: Row, second: Row) -> None:
    """Exchange two events' places in the log (no chain changes: the log's
    order is not hashed in the events)."""
    with sqlite3.connect(store.path) as db:
        for rowid, to in ((first.rowid, 0), (second.rowid, first.rowid), (0, second.rowid)):
            db.execute("UPDATE stored_events SET rowid=? WHERE rowid=?", (to, rowid))


def _row_at(store: Store, rowid: int) -> Row:
    [row] = [r for r in store.rows() if r.rowid == rowid]
    return row


def test_a_second_delivery_in_a_redemption_s_place_is_caught(store: Store) -> None:
    redeemed = store.find("code.redeemed")
    rowid = retype(store, redeemed, "code.delivered", lambda p: p.pop("redeemer"))
    caught(store, "code-state", rowid)


def test_a_duplicated_delivery_is_caught(store: Store) -> None:
    delivered = store.find("code.delivered", holder="gus")
    rowid = insert(
        store, delivered, delivered.aggregate_id, "code.delivered", delivered.data["payload"]
    )
    caught(store, "code-state", rowid)


def test_a_redemption_before_delivery_is_caught(store: Store) -> None:
    delivered = store.find("code.delivered", holder="bob")
    rowid = retype(store, delivered, "code.redeemed", lambda p: p.update(redeemer="bob"))
    caught(store, "code-state", rowid)


def test_a_redemption_without_its_delivery_is_caught(store: Store) -> None:
    delivered = store.find("code.delivered", holder="bob")
    store.delete(delivered.rowid)
    store.rechain(delivered.aggregate_id)
    caught(store, "code-state", store.find("code.redeemed").rowid)


def test_a_sealed_code_voided_by_its_refund_is_caught(store: Store) -> None:
    rowid = retype(store, store.find("code.returned"), "code.voided", lambda p: None)
    report = caught(store, "code-state", rowid)
    # ... and its return to the pool no longer follows a code.returned.
    assert store.find("stock.code-returned").rowid in {
        f.position for f in report.findings if f.check == "code-state"
    }


def test_a_revealed_code_returned_by_its_refund_is_caught(store: Store) -> None:
    rowid = retype(store, store.find("code.voided"), "code.returned", lambda p: None)
    caught(store, "code-state", rowid)


def test_a_refund_of_a_redeemed_code_s_sale_is_caught(store: Store) -> None:
    # dan's code is redeemed between its delivery and the refund of its sale.
    delivered = store.find("code.delivered", holder="dan")
    redemption = dict(delivered.data["payload"], redeemer="dan")
    insert(store, delivered, delivered.aggregate_id, "code.redeemed", redemption)
    caught(store, "code-state", store.find("unit.refunded", holder="dan").rowid)


def test_a_unit_resold_after_its_code_was_revealed_is_caught(store: Store) -> None:
    # The code is delivered to ann, who then resells the unit to gus.
    delivered = store.find("code.delivered", holder="gus")
    forge(store, delivered, lambda p: p.update(holder="ann"))
    resold = store.find("unit.resold")
    swap(store, resold, _row_at(store, delivered.rowid))
    caught(store, "code-state", delivered.rowid)  # where the resale now is


def test_a_resale_refund_after_the_code_was_revealed_is_caught(store: Store) -> None:
    # gus's resale is refunded after the code was delivered to him.
    delivered = store.find("code.delivered", holder="gus")
    resold = store.find("unit.resold")
    refund = {
        "refund_id": _refund(store, "dan"),
        "acquisition_id": resold.data["payload"]["resale_id"],
        "kind": "resale",
        "holder": "gus",
        "returned_to": "ann",
        "price": resold.data["payload"]["price"],
        "split": resold.data["payload"]["split"],
        "reason": "forged",
    }
    rowid = insert(store, delivered, resold.aggregate_id, "unit.refunded", refund)
    caught(store, "code-state", rowid)
