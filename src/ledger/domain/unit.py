"""Units: one issued item of a tier, with its serial, holder and history.

A unit is created by the primary sale that first issues its serial. Its
*acquisitions* are the sales and resales that made someone its holder; a
refund undoes the current holder's acquisition:

* refunding a primary sale returns the unit to stock (holder ``None``; the
  tier's serial becomes free and the next sale re-issues this same unit);
* refunding a resale gives the unit back to the seller.

Either way the refund is a new event; nothing is edited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.domain.errors import (
    InvalidInputError,
    NotHolderError,
    NotInCustodyError,
    NotTransferableError,
    RuleViolation,
    SelfTradeError,
    UnitNotHeldError,
)
from ledger.domain.ids import unit_id_for
from ledger.domain.model import OMIT_IF_NONE, Aggregate, Created, Event

PRIMARY = "sale"
SECONDARY = "resale"
TRANSFER = "transfer"  # a change of holder without a price
TRANSFER_KINDS = ("gift", "inheritance", "own-accounts")
HAND_OFF = "hand-off"  # consents to a move
HOLDER_SIGNATURE = "holder-signature"


class Unit(Aggregate):
    good_id: str
    tier: str
    serial: int
    transferable: bool
    holder: str | None
    acquisitions: list[dict[str, Any]]
    code: str | None  # the ref of its redemption code, while its primary sale stands
    custody: str | None  # the channel it is held through (None: back in stock)

    @classmethod
    def issue(
        cls,
        *,
        good_id: Any,
        tier: str,
        serial: int,
        transferable: bool,
        buyer: str,
        sale_id: str,
        channel: str,
        price: dict[str, Any],
        split: list[dict[str, Any]],
        now: datetime,
        code: str | None = None,
    ) -> Unit:
        return cls._create(
            cls.Issued,
            unit_id_for(good_id, tier, serial),
            now,
            good_id=str(good_id),
            tier=tier,
            serial=serial,
            transferable=transferable,
            holder=buyer,
            sale_id=sale_id,
            channel=channel,
            price=price,
            split=split,
            code=code,
        )

    def reissue(
        self,
        *,
        buyer: str,
        sale_id: str,
        channel: str,
        price: dict[str, Any],
        split: list[dict[str, Any]],
        now: datetime,
        code: str | None = None,
    ) -> None:
        if self.holder is not None:
            raise AssertionError(f"unit {self.id} is held; its serial is not free")
        self._trigger(
            Unit.Reissued,
            now,
            holder=buyer,
            sale_id=sale_id,
            channel=channel,
            price=price,
            split=split,
            code=code,
        )

    def check_custody(self, channel: str) -> None:
        """A channel acts on a unit only while it is held through it."""
        if self.holder is None or self.custody != channel:
            raise NotInCustodyError(self.id, channel, self.custody)

    def check_resale(self, seller: str, buyer: str) -> None:
        if not self.transferable:
            raise NotTransferableError(self.tier)
        if self.holder is None:
            raise UnitNotHeldError(self.id)
        if self.holder != seller:
            raise NotHolderError(self.id, seller)
        if seller == buyer:
            raise SelfTradeError(seller)

    def resell(
        self,
        *,
        resale_id: str,
        seller: str,
        buyer: str,
        channel: str,
        price: dict[str, Any],
        split: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        self.check_resale(seller, buyer)
        self._trigger(
            Unit.Resold,
            now,
            resale_id=resale_id,
            seller=seller,
            buyer=buyer,
            channel=channel,
            price=price,
            split=split,
        )

    def move(
        self,
        *,
        move_id: str,
        to_channel: str,
        consent: str,
        authorization: dict[str, str] | None,
        now: datetime,
    ) -> None:
        """The holder takes the unit to ``to_channel``: ``consent`` is a
        ``hand-off`` recorded by the channel holding it, or the holder's
        signed ``authorization`` (checked by :mod:`ledger.domain.consent`)."""
        if self.holder is None or self.custody is None:
            raise UnitNotHeldError(self.id)
        if to_channel == self.custody:
            raise RuleViolation(f"unit {self.id} is already held through {to_channel!r}")
        if (consent == HOLDER_SIGNATURE) != (authorization is not None):
            raise AssertionError("a holder's signature comes with its authorization, only")
        self._trigger(
            Unit.Moved,
            now,
            move_id=move_id,
            holder=self.holder,
            from_channel=self.custody,
            to_channel=to_channel,
            consent=consent,
            authorization=authorization,
        )

    def check_transfer(self, giver: str, recipient: str, channel: str) -> None:
        self.check_resale(giver, recipient)  # held by the giver, transferable, no self-gift
        self.check_custody(channel)

    def transfer(
        self,
        *,
        transfer_id: str,
        giver: str,
        recipient: str,
        channel: str,
        kind: str,
        now: datetime,
    ) -> None:
        """A change of holder without a price (a gift, an inheritance, a
        move between one's own accounts): no money, so no royalty."""
        if kind not in TRANSFER_KINDS:
            raise InvalidInputError("kind", f"must be one of {', '.join(TRANSFER_KINDS)}")
        self.check_transfer(giver, recipient, channel)
        self._trigger(
            Unit.Transferred,
            now,
            transfer_id=transfer_id,
            giver=giver,
            recipient=recipient,
            channel=channel,
            kind=kind,
        )

    def current_acquisition(self) -> dict[str, Any]:
        if self.holder is None:
            raise UnitNotHeldError(self.id)
        for acquisition in reversed(self.acquisitions):
            if not acquisition["refunded"]:
                current: dict[str, Any] = acquisition
                if current["kind"] == TRANSFER:
                    raise RuleViolation(
                        f"{self.holder!r} received unit {self.id} by a transfer: nothing was "
                        "paid, so nothing is refunded (a transfer back undoes it)"
                    )
                return current
        raise RuleViolation(f"unit {self.id} has nothing left to refund")

    def refund(self, *, refund_id: str, reason: str, now: datetime) -> dict[str, Any]:
        acquisition = self.current_acquisition()
        self._trigger(
            Unit.Refunded,
            now,
            refund_id=refund_id,
            acquisition_id=acquisition["id"],
            kind=acquisition["kind"],
            holder=acquisition["holder"],
            returned_to=acquisition["from"],
            price=acquisition["price"],
            split=acquisition["split"],
            reason=reason,
        )
        return acquisition

    # -- events -----------------------------------------------------------
    @dataclass(frozen=True)
    class Issued(Created):
        TYPE = "unit.issued"
        good_id: str
        tier: str
        serial: int
        transferable: bool
        holder: str
        sale_id: str
        channel: str
        price: dict[str, Any]
        split: list[dict[str, Any]]
        code: str | None = field(default=None, metadata=OMIT_IF_NONE)

        def apply(self, aggregate: Unit) -> None:
            aggregate.good_id = self.good_id
            aggregate.tier = self.tier
            aggregate.serial = self.serial
            aggregate.transferable = self.transferable
            aggregate.acquisitions = []
            aggregate.code = self.code
            _acquire(
                aggregate,
                self.sale_id,
                PRIMARY,
                self.holder,
                None,
                self.channel,
                self.price,
                self.split,
            )

    @dataclass(frozen=True)
    class Reissued(Event):
        TYPE = "unit.reissued"
        holder: str
        sale_id: str
        channel: str
        price: dict[str, Any]
        split: list[dict[str, Any]]
        code: str | None = field(default=None, metadata=OMIT_IF_NONE)

        def apply(self, aggregate: Unit) -> None:
            aggregate.code = self.code
            _acquire(
                aggregate,
                self.sale_id,
                PRIMARY,
                self.holder,
                None,
                self.channel,
                self.price,
                self.split,
            )

    @dataclass(frozen=True)
    class Resold(Event):
        TYPE = "unit.resold"
        resale_id: str
        seller: str
        buyer: str
        channel: str
        price: dict[str, Any]
        split: list[dict[str, Any]]

        def apply(self, aggregate: Unit) -> None:
            _acquire(
                aggregate,
                self.resale_id,
                SECONDARY,
                self.buyer,
                self.seller,
                self.channel,
                self.price,
                self.split,
            )

    @dataclass(frozen=True)
    class Refunded(Event):
        TYPE = "unit.refunded"
        refund_id: str
        acquisition_id: str
        kind: str
        holder: str
        returned_to: str | None
        price: dict[str, Any]
        split: list[dict[str, Any]]
        reason: str

        def apply(self, aggregate: Unit) -> None:
            for acquisition in aggregate.acquisitions:
                if acquisition["id"] == self.acquisition_id:
                    acquisition["refunded"] = True
            aggregate.holder = self.returned_to
            if self.kind == PRIMARY:  # back to stock: its code was settled apart
                aggregate.code = None
                aggregate.custody = None
            else:  # back to the seller, where they sold it
                aggregate.custody = next(
                    a["channel"] for a in aggregate.acquisitions if a["id"] == self.acquisition_id
                )

    @dataclass(frozen=True)
    class Moved(Event):
        TYPE = "unit.moved"
        move_id: str
        holder: str
        from_channel: str
        to_channel: str
        consent: str
        authorization: dict[str, str] | None = field(default=None, metadata=OMIT_IF_NONE)

        def apply(self, aggregate: Unit) -> None:
            aggregate.custody = self.to_channel

    @dataclass(frozen=True)
    class Transferred(Event):
        TYPE = "unit.transferred"
        transfer_id: str
        giver: str
        recipient: str
        channel: str
        kind: str

        def apply(self, aggregate: Unit) -> None:
            _acquire(
                aggregate,
                self.transfer_id,
                TRANSFER,
                self.recipient,
                self.giver,
                self.channel,
                None,
                [],
            )


Unit.Issued.AGGREGATE = Unit


def _acquire(
    unit: Unit,
    acquisition_id: str,
    kind: str,
    holder: str,
    previous: str | None,
    channel: str,
    price: dict[str, Any] | None,
    split: list[dict[str, Any]],
) -> None:
    unit.holder = holder
    unit.custody = channel
    unit.acquisitions.append(
        {
            "id": acquisition_id,
            "kind": kind,
            "holder": holder,
            "from": previous,
            "channel": channel,
            "price": price,
            "split": split,
            "refunded": False,
        }
    )
