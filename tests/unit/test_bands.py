"""Display bands: exact thresholds, and hysteresis only on the way back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.projections.bands import (
    LAST_CHANCE,
    LIMITED,
    ORDER,
    PLENTY,
    SCARCE,
    SOLD_OUT,
    BandPolicy,
    display,
)

POLICY = BandPolicy()


@pytest.mark.parametrize(
    ("available", "band"),
    [
        (100, PLENTY),
        (31, PLENTY),
        (30, LIMITED),
        (10, LIMITED),
        (9, SCARCE),
        (5, SCARCE),
        (4, LAST_CHANCE),
        (1, LAST_CHANCE),
        (0, SOLD_OUT),
        (-1, SOLD_OUT),
    ],
)
def test_bands_from_scratch_follow_the_thresholds(available: int, band: str) -> None:
    assert POLICY.band(None, available, 100) == band


def test_easing_back_needs_the_margin() -> None:
    assert POLICY.band(SCARCE, 10, 100) == SCARCE  # 10 % is limited, but not 10 % + 2 %
    assert POLICY.band(SCARCE, 11, 100) == SCARCE
    assert POLICY.band(SCARCE, 12, 100) == LIMITED
    assert POLICY.band(LIMITED, 31, 100) == LIMITED
    assert POLICY.band(LIMITED, 33, 100) == PLENTY
    assert POLICY.band(SOLD_OUT, 1, 100) == LAST_CHANCE  # sold out is always exact
    assert POLICY.band(PLENTY, 0, 100) == SOLD_OUT


@given(
    previous=st.sampled_from([None, *ORDER]),
    available=st.integers(-5, 1_000),
    supply=st.integers(1, 1_000),
)
def test_a_band_is_never_wrong_by_more_than_the_margin(
    previous: str | None, available: int, supply: int
) -> None:
    band = POLICY.band(previous, available, supply)
    fresh = POLICY.band(None, available, supply)
    if available <= 0:
        assert band == SOLD_OUT
        return
    assert band != SOLD_OUT
    # Never less scarce than the truth, and never scarcer than the truth
    # would be with the margin taken off what is left.
    assert ORDER.index(fresh) <= ORDER.index(band)
    assert ORDER.index(band) <= ORDER.index(POLICY._raw(available, supply, POLICY.hysteresis_bps))


@given(available=st.integers(2, 10_000), supply=st.integers(50, 10_000))
def test_taking_and_releasing_one_hold_does_not_flap(available: int, supply: int) -> None:
    # With supply >= 50 one unit is at most the 2 % margin: releasing the
    # hold never undoes the band change that taking it caused.
    available = min(available, supply)
    start = POLICY.band(None, available, supply)
    held = POLICY.band(start, available - 1, supply)
    released = POLICY.band(held, available, supply)
    assert released == held


def test_display_and_settings_validation() -> None:
    assert display(PLENTY, 1234) == "1,234 left"
    assert display(LAST_CHANCE, 3) == "last chance"
    with pytest.raises(ValueError, match="thresholds"):
        BandPolicy(plenty_bps=500, scarce_bps=1_000)
    with pytest.raises(ValueError, match="hysteresis"):
        BandPolicy(hysteresis_bps=600)
