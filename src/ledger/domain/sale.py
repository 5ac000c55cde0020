"""Where a primary sale comes from, and the per-buyer limit.

Pure decisions with typed inputs: no store, no clock of their own."""

from __future__ import annotations

from enum import Enum

from ledger.domain.errors import BuyerLimitError


class SaleSource(Enum):
    """Where a primary sale's units come from, which decides two things: whether
    the selling channel's pool is drawn first, and whether the sale may be an
    early-bird sale (inside the allotment's window and quantity, at its price).

    - ``DIRECT``: an ordinary sale: the channel's pool first; may be an early bird.
    - ``HOLD``: a hold paid on time: its units, kept apart from any pool;
      never an early bird, whatever the clock.
    - ``LATE_HOLD``: a hold paid after its time: a fresh sale from what is
      available now (the channel's pool first, as any sale); never an early bird.
    """

    DIRECT = "direct"
    HOLD = "hold"
    LATE_HOLD = "late-hold"

    @property
    def draws_pool(self) -> bool:
        """Whether the selling channel's pool comes first."""
        return self is not SaleSource.HOLD

    @property
    def may_be_early_bird(self) -> bool:
        """Whether the sale can count as an early-bird sale."""
        return self is SaleSource.DIRECT


def check_buyer_limit(
    *, buyer: str, tier: str, limit: int | None, bought: int, quantity: int
) -> None:
    """Refuse a sale of ``quantity`` to ``buyer`` that would take them over the
    tier's per-buyer ``limit`` (None: no limit), having ``bought`` already."""
    if limit is not None and bought + quantity > limit:
        raise BuyerLimitError(buyer, tier, limit, bought)
