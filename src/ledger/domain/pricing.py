"""Price rules by sell-through (issue 18, item 4): a tier's price schedule,
set by the good's creator as an event (``stock.price-set``).

A schedule is a list of steps, each a unit price: the first holds from the
start, each later one from a threshold -- ``after_sold`` (the tier's units
sold, refunds not subtracted, strictly increasing) or ``at`` (a time,
strictly increasing); one kind per schedule. The price in force at a sale's
decision is the last step whose threshold is reached, counting the units
sold *before* that sale: a sale of several units crossing a step pays the
price it started at, for every unit. ``None`` lifts the rule (any price,
as before).

Early birds come first: an early-bird sale is at the allotment's price,
whatever the schedule; the schedule prices every other sale -- a hold's
payment included, at the price in force when it is paid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.domain import limits, validate
from ledger.domain.errors import InvalidInputError
from ledger.domain.model import format_timestamp
from ledger.domain.money import Money

STEPS_MAX = 32


def read_schedule(value: Any, currency: str) -> list[dict[str, Any]] | None:
    """A schedule as given (``None``: lift it), checked and normalized."""
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= STEPS_MAX:
        raise InvalidInputError("steps", f"must be a list of 1 to {STEPS_MAX} steps, or null")
    steps: list[dict[str, Any]] = []
    kinds = set()
    for i, raw in enumerate(value):
        where = f"steps[{i}]"
        item = validate.mapping(
            raw, field=where, keys={"price", "after_sold", "at"}, required={"price"}
        )
        price = Money.from_json(item["price"])
        if price.currency != currency:
            raise InvalidInputError(f"{where}.price", f"must be in the good's currency {currency}")
        step: dict[str, Any] = {"price": price.to_json()}
        thresholds = [k for k in ("after_sold", "at") if k in item]
        if i == 0 and thresholds:
            raise InvalidInputError(where, "the first step holds from the start: no threshold")
        if i > 0 and len(thresholds) != 1:
            raise InvalidInputError(where, "needs one threshold: after_sold or at")
        if i > 0 and thresholds[0] == "after_sold":
            step["after_sold"] = validate.integer(
                item["after_sold"], field=f"{where}.after_sold", low=1, high=limits.TIER_QUOTA_MAX
            )
        elif i > 0:
            step["at"] = validate.timestamp(item["at"], field=f"{where}.at")
        kinds.update(thresholds)
        if i > 1 and not _after(step, steps[-1]):
            raise InvalidInputError(where, "thresholds must increase step by step")
        steps.append(step)
    if len(kinds) > 1:
        raise InvalidInputError("steps", "one kind of threshold per schedule: after_sold or at")
    return steps


def _after(step: dict[str, Any], before: dict[str, Any]) -> bool:
    key = "after_sold" if "after_sold" in step else "at"
    return key in before and step[key] > before[key]


def price_in_force(steps: list[dict[str, Any]], sold: int, now: datetime) -> dict[str, Any]:
    """The unit price a sale decided at ``now`` pays, ``sold`` units sold before it."""
    moment = format_timestamp(now)
    price: dict[str, Any] = steps[0]["price"]
    for step in steps[1:]:
        reached = sold >= step["after_sold"] if "after_sold" in step else moment >= str(step["at"])
        if not reached:
            break
        price = step["price"]
    return price
