"""Unlock tiers (issue 18, item 2): a tier that opens only when another tier
of its good has sold N units, or at a time -- whichever its definition says.

Declared in the good's definition as the tier's optional ``unlock`` member,
``{"tier": "early", "sold": 100}`` or ``{"at": "2026-12-01T10:00:00Z"}``
(absent: the tier is never locked, and older goods keep their fingerprint).

Until it opens, the tier's sales (early birds included) and holds are
refused with a problem saying what unlocks it. The opening is an event,
``stock.unlocked``, recorded once on the locked tier's stock by the first
sale or hold of it that finds the condition met, in that sale's
transaction: the units sold of the other tier are its primary sales,
refunds not subtracted (a count that only grows, so a sale deciding on a
count read a moment ago never opens the tier too early).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain import limits, validate
from ledger.domain.errors import InvalidInputError
from ledger.domain.model import format_timestamp


@dataclass(frozen=True, slots=True)
class Unlock:
    """When a tier opens: at ``at``, or once tier ``tier`` has sold ``sold`` units."""

    at: str | None = None
    tier: str | None = None
    sold: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.at is not None:
            return {"at": self.at}
        return {"tier": self.tier, "sold": self.sold}


def read_unlock(value: Any, where: str) -> Unlock:
    """A tier's ``unlock`` member: exactly one of its two forms."""
    if isinstance(value, dict) and "at" in value:
        item = validate.mapping(value, field=where, keys={"at"}, required={"at"})
        at = validate.timestamp(item["at"], field=f"{where}.at")
        if at is None:
            raise InvalidInputError(f"{where}.at", "must be a timestamp")
        return Unlock(at=at)
    item = validate.mapping(value, field=where, keys={"tier", "sold"}, required={"tier", "sold"})
    tier = validate.text(
        item["tier"], field=f"{where}.tier", max_chars=32, pattern=limits.TIER_NAME_PATTERN
    )
    sold = validate.integer(item["sold"], field=f"{where}.sold", low=1, high=limits.TIER_QUOTA_MAX)
    return Unlock(tier=tier, sold=sold)


def check_unlocks(unlocks: dict[str, Unlock | None], caps: dict[str, int]) -> None:
    """Each tier's unlock names another tier of the good, for no more units
    than that tier can ever sell, and no tier waits on itself through others."""
    for name, unlock in unlocks.items():
        if unlock is None or unlock.tier is None:
            continue
        where = f"tiers[{list(unlocks).index(name)}].unlock"
        if unlock.tier == name or unlock.tier not in caps:
            raise InvalidInputError(f"{where}.tier", "must name another tier of this good")
        if unlock.sold is not None and unlock.sold > caps[unlock.tier]:
            raise InvalidInputError(
                f"{where}.sold",
                f"tier {unlock.tier!r} can sell at most {caps[unlock.tier]} (its lifetime cap)",
            )
        seen: set[str] = {name}
        after: Unlock | None = unlock
        while after is not None and after.tier is not None:
            if after.tier in seen:
                raise InvalidInputError(f"{where}.tier", "tiers must not wait on each other")
            seen.add(after.tier)
            after = unlocks.get(after.tier)


def due(unlock: dict[str, Any], now: datetime, sold: int | None) -> bool:
    """Whether a tier with ``unlock`` opens now (``sold``: the other tier's units sold)."""
    if "at" in unlock:
        return format_timestamp(now) >= str(unlock["at"])
    return sold is not None and sold >= int(unlock["sold"])


def describe(unlock: dict[str, Any], sold: int | None = None) -> str:
    """What opens the tier, for a problem's detail."""
    if "at" in unlock:
        return f"it opens at {unlock['at']}"
    so_far = "" if sold is None else f" (it has sold {sold})"
    return f"it opens once tier {unlock['tier']!r} has sold {unlock['sold']} unit(s){so_far}"
