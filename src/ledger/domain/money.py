"""Money and the royalty split.

Money is an integer number of minor units plus an ISO 4217 code; rates are
basis points. A split divides a price among weighted parts so that the parts
sum *exactly* to the price, by the largest-remainder method:

1. each part gets ``floor(price * weight / total_weight)``;
2. the ``price - sum`` units left over go, one each, to the parts with the
   largest remainders ``price * weight mod total_weight``;
3. equal remainders are broken by the parts' order (earlier first). The order
   is fixed by the rules: creators as declared at mint, then the master's
   creators as declared on the master, then the channel, then the seller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ledger.domain import limits
from ledger.domain.errors import InvalidInputError

_CURRENCY = re.compile(limits.CURRENCY_PATTERN)


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        check_amount(self.amount, field="amount")
        if not isinstance(self.currency, str) or not _CURRENCY.match(self.currency):
            raise InvalidInputError("currency", f"{self.currency!r} is not an ISO 4217 code")

    def to_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def from_json(cls, data: Any) -> Money:
        if not isinstance(data, dict) or set(data) != {"amount", "currency"}:
            raise InvalidInputError("price", "must be {amount, currency}")
        return cls(data["amount"], data["currency"])

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def check_amount(amount: object, *, field: str) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInputError(field, "must be an integer number of minor units")
    if not 0 <= amount <= limits.AMOUNT_MAX:
        raise InvalidInputError(field, f"must be between 0 and {limits.AMOUNT_MAX}")
    return amount


def check_bps(value: object, *, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(field, "must be an integer number of basis points")
    if not 0 <= value <= limits.BPS_DENOMINATOR:
        raise InvalidInputError(field, f"must be between 0 and {limits.BPS_DENOMINATOR}")
    return value


@dataclass(frozen=True, slots=True)
class Share:
    """One weighted claim on a price: who, in which role, with what weight."""

    recipient: str
    role: str
    weight: int


def split(amount: int, shares: list[Share]) -> list[dict[str, Any]]:
    """Divide ``amount`` among ``shares`` by largest remainder (see module doc).

    Shares of weight zero are left out. The result is a list of parts
    ``{"recipient", "role", "amount"}`` in the shares' order, summing to
    ``amount``.
    """
    live = [s for s in shares if s.weight > 0]
    total = sum(s.weight for s in live)
    if total <= 0:
        raise AssertionError("a split needs at least one part with a positive weight")
    floors = [amount * s.weight // total for s in live]
    remainders = [amount * s.weight % total for s in live]
    left = amount - sum(floors)
    # Largest remainder first; ties by position (stable sort keeps order).
    order = sorted(range(len(live)), key=lambda i: -remainders[i])
    for i in order[:left]:
        floors[i] += 1
    if sum(floors) != amount:
        raise AssertionError("split parts must sum to the amount")
    return [
        {"recipient": s.recipient, "role": s.role, "amount": a}
        for s, a in zip(live, floors, strict=True)
    ]
