"""The verifier re-checks authority from the events alone (rule 8.13),
each rule shown by a forgery a careful forger re-chains: a resale through a
channel that does not hold the unit, a sale to another channel's account, a
move whose holder signature is forged or replayed. Each is a domain-rule
finding (exit code 4) located at the forged event; the honest stores,
signed moves included, verify."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.verify import verify_store
from ledger.verify.classes import exit_code
from tests.integration.test_api_holders import Holder
from tests.integration.test_verify_ledger import (  # noqa: F401 - fixtures
    SPEC,
    Store,
    busy,
    busy_template,
    only,
)

ORIGIN = "ledger.test/holders"


def _checks(store: Store) -> tuple[set[str], int]:
    report = verify_store(store.url)
    checks = set(report.by_check())
    return checks, exit_code(checks)


def test_a_resale_through_a_channel_not_holding_the_unit(busy: Store) -> None:  # noqa: F811
    # Ivy's unit was handed off to the market before the market resold it:
    # without the move (and its link), the market resells a shop's unit.
    moved = busy.find("unit.moved", holder="ivy")
    linked = busy.find("account.linked", unit_id=moved.aggregate_id)
    busy.delete(moved.rowid)
    busy.delete(linked.rowid)
    busy.rechain(moved.aggregate_id)
    busy.rechain(linked.aggregate_id)
    resold = busy.find("unit.resold", seller="ivy")
    report = verify_store(busy.url)
    finding = only(report, "not-in-custody")
    assert finding.position == resold.rowid
    assert (finding.expected, finding.actual) == ("shop", "market")
    assert exit_code(report.by_check()) == 4


def test_a_sale_to_an_account_another_channel_serves(busy: Store) -> None:  # noqa: F811
    opened = busy.find("account.opened", account="ivy")
    busy.edit(opened, lambda p: p.update(channel="market"))
    busy.rechain(opened.aggregate_id)
    issued = busy.find("unit.issued", holder="ivy")
    report = verify_store(busy.url)
    served = [f for f in report.findings if f.check == "not-served"]
    assert [f.position for f in served] == [issued.rowid]
    assert (served[0].expected, served[0].actual) == ("market", "shop")
    assert exit_code(report.by_check()) == 4


def test_a_hand_off_dressed_as_a_holder_signature(busy: Store) -> None:  # noqa: F811
    moved = busy.find("unit.moved", holder="carol")
    forged = {
        "key_id": "0" * 16,
        "payload": base64.urlsafe_b64encode(b'{"type":"x"}').decode().rstrip("="),
        "signature": "A" * 86,
    }
    busy.edit(moved, lambda p: p.update(consent="holder-signature", authorization=forged))
    busy.rechain(moved.aggregate_id)
    checks, code = _checks(busy)
    assert "move-consent" in checks
    assert code == 4


@pytest.fixture
def signed_store(tmp_path: Path) -> tuple[Store, str, Holder, str]:
    """Carol takes her unit from the shop to the market with her signature,
    then the market hands it back: an honest store."""
    path = tmp_path / "ledger.db"
    carol = Holder("carol")
    with Ledger(f"sqlite:///{path}", log_origin=ORIGIN) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
        ledger.register_channel("market", "Market", 250, idempotency_key="c2")
        good = ledger.mint(SPEC, idempotency_key="m1")["good_id"]
        sale = ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=1,
            unit_price=Money(999, "EUR"),
            idempotency_key="s1",
        )
        unit = sale.units[0].unit_id
        key_id = ledger.register_holder_key(
            "carol", public_key=carol.public, channel="shop", idempotency_key="k1"
        ).key_id
        authorization = carol.authorize(unit, "market", 1, key_id=key_id)
        ledger.move_unit(
            unit,
            holder="carol",
            to_channel="market",
            channel="market",
            authorization=authorization,
            idempotency_key="mv1",
        )
        ledger.move_unit(
            unit, holder="carol", to_channel="shop", channel="market", idempotency_key="mv2"
        )
    return Store(path), unit, carol, key_id


def test_a_signed_move_verifies(signed_store: tuple[Store, str, Holder, str]) -> None:
    store, *_ = signed_store
    report = verify_store(store.url)
    assert report.ok, [str(f) for f in report.findings]
    assert report.by_type["unit.moved"] == 2


def test_a_replayed_authorization_forged_into_the_log(
    signed_store: tuple[Store, str, Holder, str],
) -> None:
    # The hand-off back (the unit's version 3) re-dressed with the signed
    # authorization of the first move: its nonce (1) is spent.
    store, unit, _, _ = signed_store
    first = store.find("unit.moved", consent="holder-signature")
    back = store.find("unit.moved", consent="hand-off")
    authorization = first.data["payload"]["authorization"]
    store.edit(
        back,
        lambda p: p.update(
            consent="holder-signature", authorization=authorization, to_channel="market"
        ),
    )
    store.rechain(unit)
    report = verify_store(store.url)
    consent = [f for f in report.findings if f.check == "move-consent"]
    assert back.rowid in [f.position for f in consent]
    assert any("nonce" in f.message for f in consent)
    assert exit_code(report.by_check()) == 4


def test_a_move_signed_by_a_key_not_the_holders(
    signed_store: tuple[Store, str, Holder, str],
) -> None:
    store, unit, carol, key_id = signed_store
    first = store.find("unit.moved", consent="holder-signature")
    forged = carol.authorize(unit, "market", 1, key_id=key_id, signer=Ed25519PrivateKey.generate())
    store.edit(first, lambda p: p.update(authorization=forged))
    store.rechain(unit)
    report = verify_store(store.url)
    consent = only(report, "move-consent")
    assert consent.position == first.rowid
    assert "signature" in consent.message


def test_a_move_after_its_authorization_expired(
    signed_store: tuple[Store, str, Holder, str],
) -> None:
    store, unit, carol, key_id = signed_store
    first = store.find("unit.moved", consent="holder-signature")
    stale = carol.authorize(unit, "market", 1, key_id=key_id, expires_in=timedelta(days=-1))
    store.edit(first, lambda p: p.update(authorization=stale))
    store.rechain(unit)
    consent = only(verify_store(store.url), "move-consent")
    assert "outside the authorization's life" in consent.message


def test_a_refund_recorded_by_a_channel_key_not_holding_the_unit(
    signed_store: tuple[Store, str, Holder, str],
) -> None:
    # A refund names no channel; who recorded it does. The shop's key (say
    # an edge that forgot its check) refunds the unit the market holds.
    from ledger.domain.actor import Actor, acting

    store, unit, _, _ = signed_store
    with (
        Ledger(store.url) as ledger,
        acting(Actor.of_key("0123456789ab", "channel", "market", "req-1")),
    ):
        ledger.move_unit(
            unit, holder="carol", to_channel="market", channel="shop", idempotency_key="mv3"
        )
    with Ledger(store.url) as ledger, acting(Actor.of_key("0123456789ab", "channel", "shop", "r2")):
        ledger.refund(unit, reason="not ours", idempotency_key="f1")
    refunded = store.find("unit.refunded")
    moved = store.find("unit.moved", consent="hand-off", nth=1)
    report = verify_store(store.url)
    acting_as = [f for f in report.findings if f.check == "acting-channel"]
    # The hand-off recorded by the market's key, from the shop; the refund
    # by the shop's key, of the market's unit.
    assert [(f.position, f.expected, f.actual) for f in acting_as] == [
        (moved.rowid, "market", "shop"),
        (refunded.rowid, "shop", "market"),
    ]
    assert exit_code(report.by_check()) == 4
