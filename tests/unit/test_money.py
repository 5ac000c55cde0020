"""Royalty splits: exact sums, fair rounding, deterministic ties."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import InvalidInputError
from ledger.domain.money import Money, Share, split
from tests.strategies import amounts

weights = st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=8).filter(
    lambda ws: sum(ws) > 0
)


@given(amounts, weights)
def test_parts_sum_exactly_to_the_price(amount: int, ws: list[int]) -> None:
    parts = split(amount, [Share(f"r{i}", "creator", w) for i, w in enumerate(ws)])
    assert sum(p["amount"] for p in parts) == amount


@given(amounts, weights)
def test_each_part_is_within_one_unit_of_its_exact_share(amount: int, ws: list[int]) -> None:
    shares = [Share(f"r{i}", "creator", w) for i, w in enumerate(ws)]
    total = sum(ws)
    for part, share in zip(split(amount, shares), [s for s in shares if s.weight], strict=True):
        exact = Fraction(amount * share.weight, total)
        assert abs(part["amount"] - exact) < 1


@given(amounts, weights)
def test_largest_remainders_get_the_leftover_units(amount: int, ws: list[int]) -> None:
    shares = [Share(f"r{i}", "creator", w) for i, w in enumerate(ws) if w]
    total = sum(ws)
    parts = split(amount, shares)
    bumped = [
        amount * s.weight % total
        for s, p in zip(shares, parts, strict=True)
        if p["amount"] > amount * s.weight // total
    ]
    kept = [
        amount * s.weight % total
        for s, p in zip(shares, parts, strict=True)
        if p["amount"] == amount * s.weight // total
    ]
    if bumped and kept:
        assert min(bumped) >= max(kept)


def test_ties_go_to_the_earlier_part() -> None:
    parts = split(1, [Share("first", "creator", 1), Share("second", "creator", 1)])
    assert [p["amount"] for p in parts] == [1, 0]
    parts = split(2, [Share("a", "creator", 1), Share("b", "creator", 1), Share("c", "channel", 1)])
    assert [p["amount"] for p in parts] == [1, 1, 0]


def test_zero_weight_parts_are_left_out() -> None:
    parts = split(10, [Share("a", "creator", 0), Share("b", "channel", 5)])
    assert parts == [{"recipient": "b", "role": "channel", "amount": 10}]


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(-1, "EUR"), (1.5, "EUR"), (True, "EUR"), (10**13, "EUR"), (1, "eur"), (1, "EURO")],
)
def test_money_refuses_bad_amounts_and_currencies(amount: object, currency: str) -> None:
    with pytest.raises(InvalidInputError):
        Money(amount, currency)  # type: ignore[arg-type]
