"""Accounts and custody (issue 14 item 1): a channel acts only for the
accounts it serves and only on units held through it."""

from __future__ import annotations

import pytest

from ledger.domain.account import Account
from ledger.domain.errors import InvalidInputError, NotInCustodyError, NotServedError
from ledger.domain.ids import account_id_for
from tests.unit.test_domain import NOW, PRICE, unit


def test_an_account_is_served_by_the_channel_that_opened_it() -> None:
    account = Account.open("b1", "shop", NOW)
    assert account.id == account_id_for("b1")
    assert account.channels == ["shop"]
    account.check_served_by("shop")
    with pytest.raises(NotServedError, match="'other' does not serve account 'b1'"):
        account.check_served_by("other")
    [opened] = account.collect_events()
    assert opened.payload() == {"account": "b1", "channel": "shop"}


def test_a_linked_channel_serves_it_too_and_linking_twice_records_nothing() -> None:
    account = Account.open("b1", "shop", NOW)
    account.collect_events()
    account.link("other", consent="hand-off", unit_id="u", now=NOW)
    account.link("other", consent="hand-off", unit_id="u", now=NOW)
    account.check_served_by("other")
    assert [e.TYPE for e in account.collect_events()] == ["account.linked"]


def test_an_account_id_is_checked_like_every_id() -> None:
    with pytest.raises(InvalidInputError):
        Account.open("has space", "shop", NOW)


def test_only_the_channel_a_unit_is_held_through_acts_on_it() -> None:
    held = unit()  # sold to carol through shop
    held.check_custody("shop")
    with pytest.raises(NotInCustodyError, match="held through channel 'shop'"):
        held.check_custody("other")
    held.resell(
        resale_id="r1", seller="carol", buyer="dave", channel="shop", price=PRICE, split=[], now=NOW
    )
    held.refund(refund_id="f1", reason="x", now=NOW)  # back to carol, at shop
    assert (held.holder, held.custody) == ("carol", "shop")
    held.refund(refund_id="f2", reason="x", now=NOW)  # back to stock
    assert held.custody is None
    with pytest.raises(NotInCustodyError, match="not held by anyone"):
        held.check_custody("shop")
