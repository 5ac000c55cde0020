"""Holders through the service, on both backends: two processes (two
``Ledger`` objects on one store, each with its own caches) never disagree
about who serves an account, and transfers and moves follow the domain's
rules."""

from __future__ import annotations

import pytest

from ledger.domain.errors import (
    NotInCustodyError,
    NotServedError,
    NotTransferableError,
    RuleViolation,
)
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

PRICE = Money(1_000, "EUR")


def _shop(ledger: Ledger) -> str:
    for channel in ("shop", "other"):
        ledger.register_channel(channel, channel.title(), 500, idempotency_key=f"c-{channel}")
    return str(
        ledger.mint(
            good_spec(
                tiers=[
                    {"name": "own", "quota": 50, "transferable": True},
                    {"name": "view", "quota": 50, "transferable": False},
                ]
            ),
            idempotency_key="m",
        )["good_id"]
    )


def test_a_link_made_by_another_process_is_seen(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as first, Ledger(store_url) as second:
        good = _shop(first)
        unit = (
            first.sell(
                good,
                "own",
                buyer="b1",
                channel="shop",
                quantity=1,
                unit_price=PRICE,
                idempotency_key="s1",
            )
            .units[0]
            .unit_id
        )
        # The first process has b1 in its cache, served by shop only.
        with pytest.raises(NotServedError):
            first.sell(
                good,
                "own",
                buyer="b1",
                channel="other",
                quantity=1,
                unit_price=PRICE,
                idempotency_key="s2",
            )
        # The second process hands b1's unit to other, which serves b1 from then on.
        second.move_unit(
            unit, holder="b1", to_channel="other", channel="shop", idempotency_key="mv"
        )
        sold = first.sell(
            good,
            "own",
            buyer="b1",
            channel="other",
            quantity=1,
            unit_price=PRICE,
            idempotency_key="s3",
        )
        assert sold.buyer == "b1"


def test_gifts_follow_the_rules(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        good = _shop(ledger)
        own, view = (
            ledger.sell(
                good,
                tier,
                buyer="b1",
                channel="shop",
                quantity=1,
                unit_price=PRICE,
                idempotency_key=f"s-{tier}",
            )
            .units[0]
            .unit_id
            for tier in ("own", "view")
        )
        with pytest.raises(NotTransferableError):
            ledger.transfer_unit(
                view, giver="b1", recipient="b2", channel="shop", idempotency_key="t0"
            )
        with pytest.raises(NotInCustodyError):
            ledger.transfer_unit(
                own, giver="b1", recipient="b2", channel="other", idempotency_key="t1"
            )
        given = ledger.transfer_unit(
            own,
            giver="b1",
            recipient="b2",
            channel="shop",
            kind="inheritance",
            idempotency_key="t2",
        )
        assert (given.recipient, given.kind) == ("b2", "inheritance")
        assert ledger.account("b2").channels == ["shop"]  # opened by the gift
        with pytest.raises(RuleViolation, match="transfer"):
            ledger.refund(own, reason="x", idempotency_key="f1")
        # b2 gives it back: b1 holds it again, by a transfer -- not refunded either.
        ledger.transfer_unit(own, giver="b2", recipient="b1", channel="shop", idempotency_key="t3")
        with pytest.raises(RuleViolation, match="transfer"):
            ledger.refund(own, reason="x", idempotency_key="f2")
