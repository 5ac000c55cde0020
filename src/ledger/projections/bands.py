"""Display bands for stock: what a shop shows instead of a bare number.

A tier shows its number while more than ``plenty`` of it is left, then
``limited``, ``scarce`` under ``scarce``, ``last-chance`` under
``last_chance``, and ``sold-out`` at zero. Holds come and go (a reservation
made and released), so a band only moves back to a *less* scarce one when
the share left clears the boundary by ``hysteresis``: the display does not
flap between "scarce" and "limited" as one hold is taken and released.
Moving to a scarcer band, and to or from sold out, is immediate and exact.

The band is a pure function of (previous band, available, supply), so a
replay computes the same bands as the live view did.
"""

from __future__ import annotations

from dataclasses import dataclass

PLENTY, LIMITED, SCARCE, LAST_CHANCE, SOLD_OUT = (
    "plenty",
    "limited",
    "scarce",
    "last-chance",
    "sold-out",
)
# Scarcest last; index = how scarce.
ORDER = (PLENTY, LIMITED, SCARCE, LAST_CHANCE, SOLD_OUT)
LABELS = {
    LIMITED: "selling fast",
    SCARCE: "scarce",
    LAST_CHANCE: "last chance",
    SOLD_OUT: "sold out",
}


@dataclass(frozen=True)
class BandPolicy:
    """Thresholds in basis points of supply: integers, so a band is exact."""

    plenty_bps: int = 3_000  # above this share left, show the number
    scarce_bps: int = 1_000
    last_chance_bps: int = 500
    hysteresis_bps: int = 200  # margin to clear before easing to a less scarce band

    def __post_init__(self) -> None:
        if not 0 < self.last_chance_bps < self.scarce_bps < self.plenty_bps < 10_000:
            raise ValueError(
                "band thresholds must satisfy 0 < last_chance_bps < scarce_bps < plenty_bps < 10000"
            )
        if not 0 <= self.hysteresis_bps < self.last_chance_bps:
            raise ValueError("hysteresis_bps must be at least 0 and below last_chance_bps")

    def _raw(self, available: int, supply: int, margin: int) -> str:
        left = available * 10_000  # compared with supply x threshold: no rounding
        if left > supply * (self.plenty_bps + margin):
            return PLENTY
        if left >= supply * (self.scarce_bps + margin):
            return LIMITED
        if left >= supply * (self.last_chance_bps + margin):
            return SCARCE
        return LAST_CHANCE

    def band(self, previous: str | None, available: int, supply: int) -> str:
        if available <= 0 or supply <= 0:
            return SOLD_OUT
        now = self._raw(available, supply, 0)
        if previous is None or previous == SOLD_OUT or previous not in ORDER:
            return now
        if ORDER.index(now) >= ORDER.index(previous):
            return now  # as scarce or scarcer: move at once
        # Easing: only as far as the margin allows, never scarcer than before.
        eased = self._raw(available, supply, self.hysteresis_bps)
        return eased if ORDER.index(eased) < ORDER.index(previous) else previous


def display(band: str, available: int) -> str:
    """What a shop window shows for a band."""
    return f"{available:,} left" if band == PLENTY else LABELS[band]
