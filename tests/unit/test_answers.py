"""The commands' answers: typed fields over a read-only dict of the JSON."""

from __future__ import annotations

import pickle
from typing import Any

import orjson
import pytest

from ledger.domain import canonical
from ledger.domain.money import Money
from ledger.service import Replayed
from ledger.service.answers import CodeDelivered, HoldPaid, PoolMoved, Sold, SoldUnit

SALE: dict[str, Any] = {
    "sale_id": "s-1",
    "good_id": "g-1",
    "tier": "own",
    "buyer": "b1",
    "channel": "shop",
    "quantity": 1,
    "unit_price": {"amount": 500, "currency": "EUR"},
    "split_per_unit": [{"recipient": "alice", "role": "creator", "amount": 500}],
    "units": [{"unit_id": "u-1", "serial": 1, "code_ref": "r-1"}],
    "sold_at": "2026-12-07T19:00:00.000000Z",
}


def test_an_answer_is_its_json_typed() -> None:
    sale = Sold.read(SALE)
    assert sale == SALE
    assert SALE == sale  # noqa: SIM300 - the dict on the left is the point
    assert isinstance(sale, dict)
    assert sale.unit_price == Money(500, "EUR")
    assert sale.units == (SoldUnit("u-1", 1, "r-1"),)
    assert sale["units"][0]["serial"] == 1
    assert sale.to_json() == SALE
    assert type(sale.to_json()) is dict
    assert orjson.dumps(sale) == orjson.dumps(SALE)
    assert canonical.encode(sale) == canonical.encode(SALE)


def test_an_answer_is_read_only() -> None:
    sale = Sold.read(SALE)
    with pytest.raises(TypeError):
        sale["buyer"] = "b2"
    with pytest.raises(TypeError):
        sale.update(buyer="b2")
    with pytest.raises(AttributeError):
        sale.buyer = "b2"  # type: ignore[misc]
    assert sale["buyer"] == sale.buyer == "b1"


def test_a_replay_is_marked_and_keeps_the_stored_json() -> None:
    stored = SALE | {"a_field_of_another_version": 1}
    replay = Sold.read(stored, True)
    assert replay.replayed
    assert isinstance(replay, Replayed)
    assert not isinstance(Sold.read(SALE), Replayed)
    assert canonical.encode(replay.to_json()) == canonical.encode(stored)


def test_a_refund_owed_reads_without_the_sale_fields() -> None:
    owed = HoldPaid.read(
        {
            "outcome": "refund-owed",
            "hold_id": "h-1",
            "refund_id": "r-1",
            "good_id": "g-1",
            "tier": "own",
            "buyer": "b1",
            "channel": "shop",
            "quantity": 2,
            "amount": {"amount": 1000, "currency": "EUR"},
            "decided_at": "2026-12-07T19:00:00.000000Z",
        }
    )
    assert owed.amount == Money(1000, "EUR")
    assert owed.units is None
    assert owed.sale_id is None


def test_a_json_key_that_is_a_keyword() -> None:
    pool = {
        "good_id": "g-1",
        "tier": "own",
        "free": 3,
        "overflow": False,
        "shared_available": 7,
        "at": "2026-12-07T19:00:00.000000Z",
    }
    moved = PoolMoved.read({"from": pool | {"channel": "a"}, "to": pool | {"channel": "b"}})
    assert (moved.from_.channel, moved.to.channel) == ("a", "b")
    assert moved["from"]["channel"] == "a"


def test_a_revealed_code_leaves_the_answer_as_recorded() -> None:
    delivered = CodeDelivered.read(
        {
            "unit_id": "u-1",
            "good_id": "g-1",
            "tier": "own",
            "serial": 1,
            "holder": "b1",
            "code_ref": "r-1",
            "state": "delivered",
            "first_delivery": True,
            "delivered_at": "2026-12-07T19:00:00.000000Z",
        },
        True,
    )
    revealed = delivered.revealed("CODE-1")
    assert revealed.code == revealed["code"] == "CODE-1"
    assert revealed.replayed
    assert "code" not in delivered
    assert delivered.code is None


def test_an_answer_crosses_processes() -> None:
    """Pickled (multiprocessing returns answers so) and read back the same."""
    replay = Sold.read(SALE, True)
    again = pickle.loads(pickle.dumps(replay))
    assert type(again) is Sold
    assert again == SALE
    assert again.replayed
    assert again.units == replay.units
