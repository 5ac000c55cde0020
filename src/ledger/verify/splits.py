"""Section 7 of ``docs/format.md``: royalty splits by largest remainder,
and the weights each kind of sale gives each party."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WHOLE = 10_000


@dataclass(frozen=True, slots=True)
class Weight:
    recipient: str
    role: str
    weight: int


def largest_remainder(price: int, weights: Sequence[Weight]) -> list[dict[str, Any]] | None:
    """The parts of ``price``, in the weights' order, or None if no part has
    a positive weight (or any weight is negative: such a split is refused)."""
    if any(w.weight < 0 for w in weights):
        return None
    live = [w for w in weights if w.weight > 0]
    total = sum(w.weight for w in live)
    if total <= 0:
        return None
    amounts = [price * w.weight // total for w in live]
    remainders = [price * w.weight % total for w in live]
    left = price - sum(amounts)
    # Largest remainder first; equal remainders go to the earlier part.
    for i in sorted(range(len(live)), key=lambda i: (-remainders[i], i))[:left]:
        amounts[i] += 1
    return [
        {"recipient": w.recipient, "role": w.role, "amount": a}
        for w, a in zip(live, amounts, strict=True)
    ]


def primary_weights(
    creators: Sequence[tuple[str, int]],
    master_creators: Sequence[tuple[str, int]],
    master_bps: int,
    channel: str,
    fee_bps: int,
) -> list[Weight]:
    """A primary sale: creators get what the channel fee and the master's cut
    leave, master creators the master's cut, the channel its fee."""
    weights = [Weight(c, "creator", (WHOLE - fee_bps - master_bps) * s) for c, s in creators]
    weights += [Weight(c, "master-creator", master_bps * s) for c, s in master_creators]
    weights.append(Weight(channel, "channel", fee_bps * WHOLE))
    return weights


def resale_weights(
    creators: Sequence[tuple[str, int]],
    resale_bps: int,
    master_creators: Sequence[tuple[str, int]],
    master_bps: int,
    channel: str,
    fee_bps: int,
    seller: str,
) -> list[Weight]:
    """A resale: royalties to creators and master creators, the channel's fee,
    and the rest to the seller."""
    weights = [Weight(c, "creator", resale_bps * s) for c, s in creators]
    weights += [Weight(c, "master-creator", master_bps * s) for c, s in master_creators]
    weights.append(Weight(channel, "channel", fee_bps * WHOLE))
    weights.append(Weight(seller, "seller", (WHOLE - fee_bps - resale_bps - master_bps) * WHOLE))
    return weights
