"""How a hold's payment is settled: the late rule, decided on the stock alone.

A payment for a live hold inside its time buys the hold's units. A payment
for a hold whose time is up (whether or not its expiry was recorded yet)
buys from what is available now, as a fresh sale, once the hold's own
units are back; if too little is left, the channel owes the buyer the
amount back. Deciding changes nothing: the caller records the outcome."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from ledger.domain.errors import (
    ForbiddenError,
    HoldResolvedError,
    InvalidInputError,
    InvariantError,
    SoldOutError,
)
from ledger.domain.model import format_timestamp
from ledger.domain.sale import SaleSource
from ledger.domain.stock import TierStock

HELD, EXPIRED = "held", "expired"


class HoldPayment(Enum):
    """A hold's payment's outcome (its value is the answer's ``outcome``)."""

    ON_TIME = "sold"  # the hold's units are sold
    LATE = "sold-late"  # a fresh sale from what is available now
    REFUND_OWED = "refund-owed"  # nothing to sell: the channel owes the amount back

    @property
    def source(self) -> SaleSource:
        """Where the sale that settles the payment comes from."""
        if self is HoldPayment.ON_TIME:
            return SaleSource.HOLD
        if self is HoldPayment.LATE:
            return SaleSource.LATE_HOLD
        raise InvariantError("a refund owed is not a sale")


def hold_payment(
    stock: TierStock, hold_id: str, *, quantity: int, channel: str | None, now: datetime
) -> HoldPayment:
    """Decide a payment of ``quantity`` units for hold ``hold_id`` at ``now``
    (with ``channel``, only that channel's hold may be paid), or refuse it:
    a hold already committed or released, more than the hold held."""
    hold = stock.find_hold(hold_id)
    if channel is not None and hold["channel"] != channel:
        raise ForbiddenError(f"hold {hold_id} belongs to another channel")
    if hold["state"] not in (HELD, EXPIRED):
        raise HoldResolvedError(hold_id, hold["state"])
    if quantity > hold["quantity"]:
        raise InvalidInputError("quantity", f"must be 1 to {hold['quantity']} (the hold)")
    if hold["state"] == HELD and format_timestamp(now) < hold["expires_at"]:
        return HoldPayment.ON_TIME
    freed = hold["quantity"] if hold["state"] == HELD else 0  # its expiry, still to record
    try:
        stock.sources(hold["channel"], quantity, freed=freed)  # its pool first, as any sale
    except SoldOutError:
        return HoldPayment.REFUND_OWED
    return HoldPayment.LATE


def settle_hold(
    stock: TierStock,
    payment: HoldPayment,
    hold_id: str,
    *,
    sale_id: str,
    quantity: int,
    now: datetime,
) -> None:
    """What a decided payment does to its hold (the sale, or the refund
    owed, is recorded next): paid on time, ``quantity`` of it is committed
    and the rest returns; paid late, its expiry is recorded if the sweeper
    has not yet."""
    if payment is HoldPayment.ON_TIME:
        stock.commit_hold(hold_id=hold_id, sale_id=sale_id, quantity=quantity, now=now)
    elif stock.find_hold(hold_id)["state"] == HELD:
        stock.release_hold(hold_id, now=now, expired=True)
