"""Redemption codes on both backends: imported once, bound at sale (or lent
to a hold), shown only to the unit's holder, delivered once, redeemed once;
refunds return or void them; keys rotate. The codes' text is looked for --
and must not be found -- in the database's every table (and on SQLite in
the files themselves), in the logs, and in every answer but the delivery."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain import errors
from ledger.domain.code import code_range
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.codevault import Keyring, VaultError
from ledger.store.database import DatabaseURL
from ledger.store.postgres import create_schema
from tests.audit import audit
from tests.clock import Clock
from tests.conftest import POSTGRES_SERVER
from tests.strategies import good_spec

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EUR = Money(1_000, "EUR")
SECRET_CODES = ["ZQ7-SECRET-ALPHA", "ZQ7-SECRET-BRAVO", "ZQ7-SECRET-CHARLIE"]
RANGE = {"prefix": "ZQ7R-", "width": 6, "start": 41, "end": 47}


def coded_spec(quota: int = 20, kind: str = "redemption-code") -> dict[str, Any]:
    spec = good_spec(tiers=[{"name": "key", "quota": quota}])
    spec["kind"] = kind
    return spec


@pytest.fixture
def shop(store_url: DatabaseURL) -> Iterator[tuple[Ledger, str, Clock]]:
    clock = Clock()
    with Ledger(store_url, clock=clock, code_keyring=Keyring.generate()) as ledger:
        for channel in ("shop", "live"):
            ledger.register_channel(channel, channel, 500, idempotency_key=f"ch-{channel}")
        good = ledger.mint(coded_spec(), idempotency_key="mint")["good_id"]
        yield ledger, str(good), clock


def sell(
    ledger: Ledger, good: str, buyer: str, key: str, quantity: int = 1, channel: str = "shop"
) -> dict[str, Any]:
    return ledger.sell(
        good,
        "key",
        buyer=buyer,
        channel=channel,
        quantity=quantity,
        unit_price=EUR,
        idempotency_key=key,
    )


def events_of(ledger: Ledger, event_type: str) -> list[bytes]:
    recorder = ledger.event_store.recorder
    return [
        bytes(e.state)
        for e in recorder.select_notifications(start=1, limit=1_000_000)
        if e.topic == event_type
    ]


# -- import ---------------------------------------------------------------------
def test_a_batch_is_imported_by_list_or_range_and_never_twice(shop: Any) -> None:
    ledger, good, _ = shop
    first = ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i1")
    assert (first["imported"], first["codes_available"]) == (3, 3)
    ranged = ledger.import_codes(good, "key", code_range=RANGE, idempotency_key="i2")
    assert (ranged["imported"], ranged["codes_imported"]) == (7, 10)
    assert ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i1") == first
    # Any code seen before, in any batch, refuses the whole batch, naming only
    # its place in the batch.
    for codes, where in (
        (["NEW-1", "ZQ7R-000044"], "#2"),
        (["NEW-2", "NEW-2"], "#2"),
        ([SECRET_CODES[1]], "#1"),
    ):
        with pytest.raises(errors.DuplicateCodeError, match=where) as refused:
            ledger.import_codes(good, "key", codes=codes, idempotency_key=f"dup-{codes[0]}")
        assert "NEW" not in str(refused.value)
        assert "ZQ7" not in str(refused.value)
    assert ledger.code_counts(good, "key")["imported"] == 10
    # ... also into another good's tier: a code is unique in the whole ledger.
    other = ledger.mint(coded_spec() | {"title": "Other"}, idempotency_key="m2")["good_id"]
    with pytest.raises(errors.DuplicateCodeError):
        ledger.import_codes(other, "key", codes=["ZQ7R-000041"], idempotency_key="x")
    plain = ledger.mint(coded_spec(kind="collectible") | {"title": "Plain"}, idempotency_key="m3")[
        "good_id"
    ]
    with pytest.raises(errors.CodeStateError, match="not a redemption-code"):
        ledger.import_codes(plain, "key", codes=["FRESH"], idempotency_key="y")
    for bad in (
        {"codes": []},
        {"codes": ["has space"]},
        {"codes": ["x" * 129]},
        {"code_range": {"prefix": "A", "width": 2, "start": 5, "end": 100}},
        {"code_range": {"prefix": "A", "width": 2, "start": 9, "end": 1}},
        {"codes": ["A"], "code_range": RANGE},
        {},
    ):
        with pytest.raises(errors.InvalidInputError):
            ledger.import_codes(good, "key", idempotency_key="bad", **bad)
    assert ledger.code_counts(good, "key") == {
        "good_id": good,
        "tier": "key",
        "coded": True,
        "imported": 10,
        "available": 10,
        "held": 0,
        "bound": 0,
    }
    audit(ledger)


def test_without_a_keyring_codes_are_refused_and_nothing_changes(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "shop", 500, idempotency_key="c")
        good = ledger.mint(coded_spec(), idempotency_key="m")["good_id"]
        with pytest.raises(errors.CodesUnavailableError, match="LEDGER_CODE_KEYRING_FILE"):
            ledger.import_codes(good, "key", codes=["A1"], idempotency_key="i")
        with pytest.raises(errors.CodesExhaustedError):  # a coded tier never sells codeless
            sell(ledger, str(good), "ann", "s")
        assert ledger.code_counts(good, "key")["imported"] == 0
        audit(ledger)


def test_a_store_refuses_another_keyring(store_url: DatabaseURL, tmp_path: Path) -> None:
    """Another ring's ref key would name every code differently, so codes
    imported before would not be seen as duplicates: the vault refuses it."""
    with Ledger(store_url, code_keyring=Keyring.generate()) as ledger:
        ledger.register_channel("shop", "shop", 500, idempotency_key="c")
        good = str(ledger.mint(coded_spec(), idempotency_key="m")["good_id"])
        ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i")
    with Ledger(store_url, code_keyring=Keyring.generate()) as ledger:
        with pytest.raises(errors.CodesUnavailableError, match="not the one"):
            ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i2")
        with pytest.raises(errors.CodesUnavailableError, match="not the one"):
            ledger.redeem_code(SECRET_CODES[0], redeemer="x", idempotency_key="x")
        assert ledger.code_counts(good, "key")["imported"] == 3


def test_a_keyring_file_is_saved_private(tmp_path: Path) -> None:
    ring_file = tmp_path / "codes.keyring"
    leftover = tmp_path / "codes.keyring.tmp"
    leftover.write_text("crashed save")
    leftover.chmod(0o644)
    Keyring.generate().save(ring_file)
    assert ring_file.stat().st_mode & 0o777 == 0o600
    assert not leftover.exists()


# -- sale, hold, delivery, redemption ---------------------------------------------
def test_each_unit_sold_takes_one_code_first_in_first_out(shop: Any) -> None:
    ledger, good, _ = shop
    ledger.import_codes(good, "key", code_range=RANGE, idempotency_key="i")
    refs = ledger.vault.refs(code_range(**RANGE))
    sold = sell(ledger, good, "ann", "s1", quantity=3)
    assert [u["code_ref"] for u in sold["units"]] == refs[:3]
    with pytest.raises(errors.CodesExhaustedError, match="4 redemption code"):
        sell(ledger, good, "bob", "s2", quantity=5)
    assert ledger.code_counts(good, "key")["available"] == 4
    audit(ledger)


def test_a_hold_lends_codes_and_its_commit_binds_exactly_those(shop: Any) -> None:
    ledger, good, clock = shop
    ledger.import_codes(good, "key", code_range=RANGE, idempotency_key="i")
    refs = ledger.vault.refs(code_range(**RANGE))
    hold = ledger.reserve(
        good, "key", channel="shop", quantity=3, ttl_seconds=60, idempotency_key="h1"
    )
    assert ledger.code_counts(good, "key")["held"] == 3
    other = sell(ledger, good, "bob", "s1", quantity=2)  # not from the hold's codes
    assert [u["code_ref"] for u in other["units"]] == refs[3:5]
    paid = ledger.commit_hold(
        good, "key", hold["hold_id"], buyer="ann", quantity=2, unit_price=EUR, idempotency_key="pay"
    )
    assert [u["code_ref"] for u in paid["units"]] == refs[:2]
    # The third lent code went back to the free codes: the next sale may take it.
    counts = ledger.code_counts(good, "key")
    assert (counts["held"], counts["available"], counts["bound"]) == (0, 3, 4)
    released = ledger.reserve(
        good, "key", channel="live", quantity=2, ttl_seconds=5, idempotency_key="h2"
    )
    expiring = ledger.reserve(
        good, "key", channel="live", quantity=1, ttl_seconds=5, idempotency_key="h3"
    )
    assert ledger.code_counts(good, "key")["available"] == 0
    ledger.release_hold(good, "key", released["hold_id"], idempotency_key="rel")
    clock.advance(10)
    assert ledger.expire_holds(good, "key") == [expiring["hold_id"]]
    assert ledger.code_counts(good, "key")["available"] == 3
    audit(ledger)


def test_the_code_is_shown_to_the_holder_only_and_delivered_once(shop: Any) -> None:
    ledger, good, _ = shop
    ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i")
    unit = sell(ledger, good, "ann", "s1")["units"][0]["unit_id"]
    with pytest.raises(errors.NotHolderError):
        ledger.deliver_code(unit, holder="mallory", idempotency_key="d0")
    with pytest.raises(errors.ForbiddenError):  # another channel asks for ann
        ledger.deliver_code(unit, holder="ann", idempotency_key="d0", channel="live")
    first = ledger.deliver_code(unit, holder="ann", idempotency_key="d1", channel="shop")
    again = ledger.deliver_code(unit, holder="ann", idempotency_key="d2", channel="shop")
    replay = ledger.deliver_code(unit, holder="ann", idempotency_key="d1", channel="shop")
    assert first["code"] == again["code"] == replay["code"] == SECRET_CODES[0]
    assert (first["first_delivery"], again["first_delivery"]) == (True, False)
    assert first["delivered_at"] == again["delivered_at"]
    assert len(events_of(ledger, "code.delivered")) == 1
    # The revealed unit is final: no resale, and only its sale can be refunded.
    with pytest.raises(errors.CodeStateError, match="revealed"):
        ledger.resell(
            unit, seller="ann", buyer="bob", channel="shop", price=EUR, idempotency_key="r"
        )
    redeemed = ledger.redeem_code(SECRET_CODES[0], redeemer="game", idempotency_key="x1")
    assert (redeemed["unit_id"], redeemed["holder"]) == (unit, "ann")
    with pytest.raises(errors.CodeStateError, match="redeemed already"):
        ledger.redeem_code(SECRET_CODES[0], redeemer="game", idempotency_key="x2")
    with pytest.raises(errors.CodeStateError, match="redeemed"):
        ledger.refund(unit, reason="too late", idempotency_key="rf")
    with pytest.raises(errors.CodeNotFoundError):
        ledger.redeem_code("NEVER-IMPORTED", redeemer="game", idempotency_key="x3")
    with pytest.raises(errors.CodeStateError, match="free"):  # imported, never sold
        ledger.redeem_code(SECRET_CODES[2], redeemer="game", idempotency_key="x4")
    sealed = sell(ledger, good, "bob", "s2")["units"][0]["unit_id"]
    with pytest.raises(errors.CodeStateError, match="bound"):  # sold but not delivered
        ledger.redeem_code(SECRET_CODES[1], redeemer="game", idempotency_key="x5")
    ledger.resell(
        sealed, seller="bob", buyer="cat", channel="shop", price=EUR, idempotency_key="r2"
    )  # a sealed code travels with its unit
    with pytest.raises(errors.NotHolderError):
        ledger.deliver_code(sealed, holder="bob", idempotency_key="d3")
    assert (
        ledger.deliver_code(sealed, holder="cat", idempotency_key="d4")["code"] == SECRET_CODES[1]
    )
    audit(ledger)


def test_only_a_creator_of_the_good_redeems_its_codes(shop: Any) -> None:
    ledger, good, _ = shop
    ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i")
    unit = sell(ledger, good, "ann", "s1")["units"][0]["unit_id"]
    ledger.deliver_code(unit, holder="ann", idempotency_key="d")
    creator = ledger.good(good).spec.creators[0].id
    with pytest.raises(errors.CodeNotFoundError):  # another creator learns nothing
        ledger.redeem_code(
            SECRET_CODES[0], redeemer="x", idempotency_key="x", creator="someone-else"
        )
    assert (
        ledger.redeem_code(SECRET_CODES[0], redeemer="x", idempotency_key="x", creator=creator)[
            "unit_id"
        ]
        == unit
    )


def test_refunds_return_a_sealed_code_and_void_a_revealed_one(shop: Any) -> None:
    ledger, good, _ = shop
    ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i")
    refs = ledger.vault.refs(SECRET_CODES)
    sealed, revealed = (u["unit_id"] for u in sell(ledger, good, "ann", "s1", 2)["units"])
    ledger.deliver_code(revealed, holder="ann", idempotency_key="d")
    ledger.refund(sealed, reason="changed mind", idempotency_key="rf1")
    ledger.refund(revealed, reason="did not work", idempotency_key="rf2")
    with pytest.raises(errors.CodeStateError, match="voided"):
        ledger.redeem_code(SECRET_CODES[1], redeemer="game", idempotency_key="x")
    counts = ledger.code_counts(good, "key")
    assert (counts["available"], counts["bound"]) == (2, 1)  # 1 voided for good
    # The returned code comes after the never-sold one; the voided never again.
    again = sell(ledger, good, "bob", "s2", 2)["units"]
    assert [u["code_ref"] for u in again] == [refs[2], refs[0]]
    with pytest.raises(errors.CodesExhaustedError):
        sell(ledger, good, "cat", "s3")
    audit(ledger)


# -- the text goes nowhere but to the holder ------------------------------------------
def _every_table(url: DatabaseURL) -> bytes:
    """Every row of every table of the store, as bytes (PostgreSQL)."""
    out = []
    with psycopg.connect(
        host=url.host, port=url.port, user=url.user, dbname=url.dbname, autocommit=True
    ) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (url.schema,),
        ).fetchall()
        assert len(tables) >= 5
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{url.schema}"."{table}"'):
                for value in row:
                    out.append(
                        bytes(value)
                        if isinstance(value, (bytes, memoryview))
                        else str(value).encode()
                    )
    return b"\n".join(out)


def _stored_bytes(url: DatabaseURL) -> bytes:
    if url.backend == "sqlite":
        files = [Path(url.path + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    return _every_table(url)


def test_the_text_is_in_no_table_file_log_or_other_answer(
    shop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ledger, good, _ = shop
    caplog.set_level(logging.DEBUG)
    texts = SECRET_CODES + code_range(**RANGE)
    answers: list[Any] = []
    answers.append(ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i1"))
    answers.append(ledger.import_codes(good, "key", code_range=RANGE, idempotency_key="i2"))
    answers.append(sold := sell(ledger, good, "ann", "s1", 2))
    hold = ledger.reserve(
        good, "key", channel="live", quantity=2, ttl_seconds=60, idempotency_key="h"
    )
    answers += [
        hold,
        ledger.commit_hold(
            good,
            "key",
            hold["hold_id"],
            buyer="bob",
            quantity=1,
            unit_price=EUR,
            idempotency_key="p",
        ),
    ]
    unit = sold["units"][0]["unit_id"]
    delivered = ledger.deliver_code(unit, holder="ann", idempotency_key="d")
    answers.append(ledger.redeem_code(delivered["code"], redeemer="game", idempotency_key="x"))
    answers.append(ledger.refund(sold["units"][1]["unit_id"], reason="r", idempotency_key="rf"))
    answers.append(ledger.code_counts(good, "key"))
    views = audit(ledger)  # also brings the views up to date: they are scanned too
    answers += [views.unit(unit), views.stock(good)]
    stored = _stored_bytes(ledger.url)
    assert len(stored) > 10_000
    for text in texts:
        assert text.encode() not in stored, f"{text} is stored in the clear"
        assert text not in caplog.text
        assert all(text not in repr(answer) for answer in answers)
    assert delivered["code"] == SECRET_CODES[0]  # the one answer that shows it


# -- keys rotate ------------------------------------------------------------------------
def test_rotation_reseals_every_code_and_retires_the_old_key(
    store_url: DatabaseURL, tmp_path: Path
) -> None:
    ring_file = tmp_path / "codes.keyring"
    Keyring.generate().save(ring_file)
    old = Keyring.load(ring_file)
    stale = Keyring(old.ref_key, dict(old.keys), old.active)  # a copy kept from before
    with Ledger(store_url, code_keyring=Keyring.load(ring_file)) as ledger:
        ledger.register_channel("shop", "shop", 500, idempotency_key="c")
        good = str(ledger.mint(coded_spec(), idempotency_key="m")["good_id"])
        ledger.import_codes(good, "key", codes=SECRET_CODES, idempotency_key="i")
        unit = sell(ledger, good, "ann", "s")["units"][0]["unit_id"]
        ring = Keyring.load(ring_file)
        new_id = ring.add_key()
        ring.save()
        assert ledger.vault.reencrypt(ring) == 3
        assert ledger.vault.key_usage() == {new_id: 3}
        del ring.keys[old.active]
        ring.save()
        # The running ledger picks the rotated file up by itself.
        assert (
            ledger.deliver_code(unit, holder="ann", idempotency_key="d")["code"] == SECRET_CODES[0]
        )
        ref = ledger.vault.refs([SECRET_CODES[1]])[0]
        before = type(ledger.vault)(ledger.event_store.recorder, stale)
        with pytest.raises(VaultError, match="not in the keyring"):
            before.reveal(ref)
        # New codes are sealed under the new key.
        ledger.import_codes(good, "key", codes=["ZQ7-AFTER"], idempotency_key="i2")
        assert ledger.vault.key_usage() == {new_id: 4}


# -- the card-key shops' bug: repeated payment callbacks ---------------------------------
def fresh_store(request: pytest.FixtureRequest, backend: str) -> DatabaseURL:
    """A new, empty store for one Hypothesis example."""
    if backend == "sqlite":
        folder = request.getfixturevalue("tmp_path_factory").mktemp("example")
        return DatabaseURL.parse(f"sqlite:///{folder / 'ledger.db'}")
    database: DatabaseURL = request.getfixturevalue("postgres_database")
    url = DatabaseURL.parse(
        f"{POSTGRES_SERVER.rstrip('/')}/{database.dbname}?schema=x{secrets.token_hex(4)}"
    )
    create_schema(url)
    return url


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@settings(max_examples=8)
@given(
    quantity=st.integers(1, 3),
    callbacks=st.integers(2, 6),
    distinct_keys=st.booleans(),
    askers=st.integers(1, 4),
)
def test_duplicated_payment_callbacks_deliver_each_code_at_most_once(
    request: pytest.FixtureRequest,
    backend: str,
    quantity: int,
    callbacks: int,
    distinct_keys: bool,
    askers: int,
) -> None:
    """Concurrent copies of one payment callback (same idempotency key, or
    each its own), through two ledger instances on one store as two server
    processes would, then concurrent delivery requests: one sale, one code per
    unit, each delivered once, the same text to everyone who asks."""
    url = fresh_store(request, backend)
    ring = Keyring.generate()
    with Ledger(url, code_keyring=ring) as one, Ledger(url, code_keyring=ring) as two:
        one.register_channel("shop", "shop", 500, idempotency_key="c")
        good = str(one.mint(coded_spec(), idempotency_key="m")["good_id"])
        one.import_codes(good, "key", code_range=RANGE, idempotency_key="i")
        hold = one.reserve(
            good,
            "key",
            channel="shop",
            quantity=quantity,
            ttl_seconds=60,
            idempotency_key="order-1",
        )["hold_id"]
        outcomes: list[Any] = []
        lock = threading.Lock()
        start = threading.Barrier(callbacks)

        def callback(i: int) -> None:
            ledger = (one, two)[i % 2]
            start.wait()
            try:
                result: Any = ledger.commit_hold(
                    good,
                    "key",
                    hold,
                    buyer="ann",
                    quantity=quantity,
                    unit_price=EUR,
                    idempotency_key=f"pay-{i}" if distinct_keys else "pay",
                )
            except errors.HoldResolvedError as error:
                result = error
            with lock:
                outcomes.append(result)

        run_all([threading.Thread(target=callback, args=(i,)) for i in range(callbacks)])
        sales = [o for o in outcomes if isinstance(o, dict)]
        assert len({o["sale_id"] for o in sales}) == 1
        assert len(sales) == (1 if distinct_keys else callbacks)
        units = [u["unit_id"] for u in sales[0]["units"]]
        shown: dict[str, set[str]] = {u: set() for u in units}

        def ask(i: int) -> None:
            for unit in units:
                text = (one, two)[i % 2].deliver_code(
                    unit, holder="ann", idempotency_key=f"ask-{i}-{unit}"
                )["code"]
                with lock:
                    shown[unit].add(text)

        run_all([threading.Thread(target=ask, args=(i,)) for i in range(askers * 2)])
        assert all(len(texts) == 1 for texts in shown.values())
        assert len({next(iter(t)) for t in shown.values()}) == len(units)
        assert len(events_of(one, "code.bound")) == quantity
        assert len(events_of(one, "code.delivered")) == quantity
        assert one.code_counts(good, "key")["bound"] == quantity
        audit(one)


def run_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
