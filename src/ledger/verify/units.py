"""Units (rule 8.3): a unit event answers for one serial of an earlier
``stock.sold``, on that sale's terms; a unit is resold by its holder, if its
tier is transferable, at section 7's split; a refund undoes the holder's
latest unrefunded acquisition (a primary sale's then awaits its serial back
in stock and the buyer's count back down)."""

from __future__ import annotations

import hashlib

from ledger.verify import codec
from ledger.verify.accounts import AccountRules
from ledger.verify.codes import CodeRules
from ledger.verify.facts import Event, Facts, Payload, Refund, Sale, edition, short
from ledger.verify.goods import Splits
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.packing import Acquisition, Unit
from ledger.verify.records import OPEN, Answer, CommandRecords, stock_answer

_sha256 = hashlib.sha256


def acquisition(
    acquisition_id: str,
    kind: str,
    holder: str,
    source: str | None,
    p: Payload,
    terms: bytes | None = None,
) -> Acquisition:
    """What a refund must name and give back; its price and split hashed
    (``terms``, if already known to be those of ``p``), and the channel it
    was made through (none named: a refund's account of it)."""
    return Acquisition(
        acquisition_id,
        kind,
        holder,
        source,
        terms or _terms(p["price"], p["split"]),
        p.get("channel", ""),
    )


def _terms(price: Payload, split: list[Payload]) -> bytes:
    return _sha256(codec.encode([price, split])).digest()


class UnitRules:
    """``unit.issued``, ``unit.reissued``, ``unit.resold``, ``unit.refunded``."""

    def __init__(
        self,
        facts: Facts,
        records: CommandRecords,
        codes: CodeRules,
        splits: Splits,
        accounts: AccountRules,
    ) -> None:
        self._facts = facts
        self._accounts = accounts
        self._flag = facts.flag
        self._unit = facts.packed.unit
        self._keep_unit = facts.packed.keep_unit
        self._check_own_id = facts.check_own_id
        self._name_command = records.name
        self._goods = facts.goods
        self._stocks = facts.stocks
        self._unreadable = facts.unreadable
        self._awaited_units = facts.awaited_units
        self._settle_sale = facts.settle_sale
        self._records = records
        self._answers = records.answers
        self._codes = codes
        self._splits = splits
        self._stock_ids: dict[tuple[str, str], str] = {}  # remembered derivations

    def on_issued(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._awaited_units.get(ev.aggregate_id)
        if awaited is None or (awaited[0].good_id, awaited[0].tier, awaited[1]) != (
            p["good_id"],
            p["tier"],
            p["serial"],
        ):
            # (Else the sale derived this very id from these very parts.)
            self._check_own_id(ev, p)
        stock_id = self._stock_id(p["good_id"], p["tier"])
        stock = self._stocks.get(stock_id)
        if stock is None:
            if stock_id not in self._unreadable:
                self._flag(
                    ev,
                    "unknown-ref",
                    f"no stock.opened for tier {short(p['tier'])} of good {p['good_id']}",
                )
        elif p["transferable"] != stock.transferable:
            self._flag(
                ev,
                "unit-mismatch",
                f"transferable is {p['transferable']}, the tier's is {stock.transferable}",
            )
        self._accounts.check_actor(ev, p["channel"])
        terms = self._match_sale(ev, stock_id, p, issued=True)
        self._codes.unit_sold(ev, ev.aggregate_id, p)
        if self._unit(ev.key) is None:
            self._keep_unit(
                ev.key,
                Unit(
                    stock_id=stock_id,
                    serial=p["serial"],
                    transferable=p["transferable"],
                    holder=p["holder"],
                    acquisitions=[acquisition(p["sale_id"], "sale", p["holder"], None, p, terms)],
                    custody=p["channel"],
                ),
            )
        self._accounts.act(ev, p["holder"], p["channel"])

    def _stock_id(self, good_id: str, tier: str) -> str:
        key = (good_id, tier)
        found = self._stock_ids.get(key)
        if found is None:
            if len(self._stock_ids) >= 4_096:
                self._stock_ids.clear()
            found = self._stock_ids[key] = codec.derive_id("stock", good_id, tier)
        return found

    def on_reissued(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        unit = self._unit(ev.key)
        if unit is None:
            return
        if unit.holder is not None:
            self._flag(
                ev,
                "unit-held",
                f"the unit is held by {unit.holder}; only a returned unit is sold again",
            )
        self._accounts.check_actor(ev, p["channel"])
        terms = self._match_sale(ev, unit.stock_id, p, issued=False)
        self._codes.unit_sold(ev, ev.aggregate_id, p)
        unit.holder = p["holder"]
        unit.acquisitions = [acquisition(p["sale_id"], "sale", p["holder"], None, p, terms)]
        unit.custody = p["channel"]
        self._keep_unit(ev.key, unit)
        self._accounts.act(ev, p["holder"], p["channel"])

    def _match_sale(self, ev: Event, stock_id: str, p: Payload, *, issued: bool) -> bytes | None:
        """A unit event answers for one serial of an earlier ``stock.sold``,
        on that sale's terms. Returns the acquisition terms of the unit if
        they are the sale's (which then computes them once for its units)."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._awaited_units.pop(ev.aggregate_id, None)
        if awaited is None:
            if stock_id not in self._unreadable:
                self._flag(
                    ev,
                    "unit-mismatch",
                    f"no stock.sold awaits this unit (sale_id {p['sale_id']}): its "
                    "serial was not sold, or is already issued",
                )
            return None
        sale, serial = awaited
        sale.waiting.discard(serial)
        if not (
            p["sale_id"] == sale.sale_id
            and p["holder"] == sale.buyer
            and p["channel"] == sale.channel
            and p["price"] == sale.price
            and p["split"] == sale.split
            and (serial in sale.fresh) == issued
        ):
            # (As the sale says, the general comparison would find nothing.)
            diffs = _sale_diffs(p, sale, serial, issued=issued)
            if diffs:
                self._flag(
                    ev,
                    "unit-mismatch",
                    f"the unit event does not match the sale at position "
                    f"{sale.event.position}: " + "; ".join(diffs),
                )
            if p["price"] != sale.price or p["split"] != sale.split:
                self._settle_sale(sale)
                return None
        self._settle_sale(sale)
        if not sale.terms:
            sale.terms = _terms(sale.price, sale.split)
        return sale.terms

    def on_resold(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        awaited = self._name_command(ev, p["resale_id"], "resell", "resale_id")
        unit = self._unit(ev.key)
        if awaited:
            stock = self._stocks.get(unit.stock_id) if unit is not None else None
            self._answers[p["resale_id"]] = stock_answer(
                stock,
                ev,
                "resold_at",
                resale_id=p["resale_id"],
                unit_id=ev.aggregate_id,
                serial=unit.serial if unit is not None else OPEN,
                edition=edition(unit.serial, stock) if unit is not None and stock else OPEN,
                seller=p["seller"],
                buyer=p["buyer"],
                channel=p["channel"],
                price=p["price"],
                split=p["split"],
            )
        self._accounts.act(ev, p["buyer"], p["channel"])
        self._accounts.check_actor(ev, p["channel"])
        if unit is None:
            return
        self._check_resale(ev, unit, p)
        self._accounts.check_custody(ev, unit, p["channel"])
        self._codes.resold(ev, ev.aggregate_id)
        unit.holder = p["buyer"]
        unit.acquisitions.append(acquisition(p["resale_id"], "resale", p["buyer"], p["seller"], p))
        unit.custody = p["channel"]
        self._keep_unit(ev.key, unit)

    def _check_resale(self, ev: Event, unit: Unit, p: Payload) -> None:
        """The seller holds the unit, its tier is transferable, and the price
        is in the good's currency at section 7's split."""
        seller = p["seller"]
        if unit.holder is None:
            self._flag(
                ev,
                "not-holder",
                f"the unit is not held (it is back in stock); {seller} cannot resell it",
            )
        elif unit.holder != seller:
            self._flag(
                ev,
                "not-holder",
                f"seller {seller} is not the holder {unit.holder}",
                expected=unit.holder,
                actual=seller,
            )
        stock = self._stocks.get(unit.stock_id)
        if not unit.transferable:
            tier = repr(stock.tier) if stock is not None else "of this unit"
            self._flag(
                ev,
                "not-transferable",
                f"tier {tier} is not transferable; its units cannot be resold",
            )
        good = self._goods.get(stock.good_id) if stock is not None else None
        price = p["price"]
        if good is not None:
            self._facts.check_currency(ev, price, good)
            fee = self._facts.fee(ev, p["channel"])
            if fee is not None:
                self._facts.check_split(
                    ev,
                    p["split"],
                    price["amount"],
                    self._splits.resale(stock, good, p["channel"], fee, price["amount"], seller),
                )

    def on_transferred(self, ev: Event, p: Payload) -> None:
        """A change of holder without a price: from the holder, of a
        transferable unit, through the channel holding it; no royalty."""
        self._accounts.act(ev, p["recipient"], p["channel"])
        self._accounts.check_actor(ev, p["channel"])
        unit = self._unit(ev.key)
        if unit is None or ev.aggregate_id is None:
            return
        giver = p["giver"]
        if unit.holder != giver:
            self._flag(ev, "not-holder", f"giver {short(giver)} is not the holder {unit.holder}")
        if not unit.transferable:
            self._flag(ev, "not-transferable", "the tier is not transferable")
        if p["recipient"] == giver:
            self._flag(ev, "self-transfer", f"{short(giver)} gives the unit to themself")
        self._accounts.check_custody(ev, unit, p["channel"])
        self._codes.resold(ev, ev.aggregate_id)
        unit.holder = p["recipient"]
        unit.acquisitions.append(
            Acquisition(p["transfer_id"], "transfer", p["recipient"], giver, b"", p["channel"])
        )
        self._keep_unit(ev.key, unit)

    def on_refunded(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        if self._name_command(ev, p["refund_id"], "refund", "refund_id"):
            self._answers[p["refund_id"]] = Answer(
                {
                    "refund_id": p["refund_id"],
                    "unit_id": ev.aggregate_id,
                    "kind": p["kind"],
                    "refunded_acquisition": p["acquisition_id"],
                    "holder": p["holder"],
                    "returned_to": p["returned_to"],
                    "amount": p["price"],
                    "refunded_at": ev.timestamp or OPEN,
                }
            )
        unit = self._unit(ev.key)
        if unit is None:
            return
        self._accounts.check_actor(ev, unit.custody)  # a refund names no channel
        undone = acquisition(p["acquisition_id"], p["kind"], p["holder"], p["returned_to"], p)
        self._check_undo(ev, unit, undone)
        self._codes.refunded(ev, ev.aggregate_id, p)
        # Resynchronise: undo the acquisition the refund names, if known.
        ids = [a.id for a in unit.acquisitions]
        if undone.id in ids:
            # Custody: back in stock (a sale's), or with the seller, through
            # the channel they sold it through (a resale's).
            unit.custody = unit.acquisitions[ids.index(undone.id)].channel
            del unit.acquisitions[ids.index(undone.id) :]
        if p["kind"] == "sale":
            unit.custody = None
        unit.holder = p["returned_to"]
        self._keep_unit(ev.key, unit)
        if p["kind"] == "sale":
            # Awaiting: the serial back in stock, and the buyer's count back down.
            stock = self._stocks.get(unit.stock_id)
            self._facts.refunds[p["refund_id"]] = Refund(
                event=ev.ref(),
                stock_id=unit.stock_id,
                serial=unit.serial,
                holder=p["holder"],
                limited=stock is not None and stock.per_buyer_limit is not None,
            )

    def _check_undo(self, ev: Event, unit: Unit, undone: Acquisition) -> None:
        """A refund undoes the holder's latest unrefunded acquisition."""
        latest = unit.acquisitions[-1] if unit.holder is not None and unit.acquisitions else None
        if latest is None:
            self._flag(
                ev,
                "refund-mismatch",
                "the unit is not held, so there is no acquisition to refund"
                if unit.holder is None
                else f"{unit.holder} holds the unit with no unrefunded acquisition left",
            )
            return
        if latest.kind == "transfer":
            self._flag(
                ev,
                "refund-mismatch",
                f"{latest.holder} received the unit by a transfer ({latest.id}): "
                "nothing was paid, so nothing is refunded",
            )
            return
        diffs = []
        for name, value, want in (
            ("acquisition_id", undone.id, latest.id),
            ("kind", undone.kind, latest.kind),
            ("holder", undone.holder, latest.holder),
            ("returned_to", undone.source, latest.source),
        ):
            if value != want:
                diffs.append(f"{name} {short(value)} (expected {short(want)})")
        if undone.terms != latest.terms:
            diffs.append("price or split differ from the acquisition's")
        if diffs:
            self._flag(
                ev,
                "refund-mismatch",
                f"the refund does not undo the holder's latest unrefunded "
                f"acquisition ({latest.kind} {latest.id}): " + "; ".join(diffs),
            )


def _sale_diffs(p: Payload, sale: Sale, serial: int, *, issued: bool) -> list[str]:
    """How a unit event differs from the sale that awaits it."""
    diffs = []
    for name, value in (
        ("sale_id", sale.sale_id),
        ("holder", sale.buyer),
        ("channel", sale.channel),
        ("price", sale.price),
    ):
        if p[name] != value:
            diffs.append(f"{name} {short(p[name])} (sale: {short(value)})")
    if p["split"] != sale.split:
        diffs.append("split differs from the sale's")
    if issued and serial not in sale.fresh:
        diffs.append(
            f"serial {serial} was returned before, so the sale reissues its unit (unit.reissued)"
        )
    if not issued and serial in sale.fresh:
        diffs.append(f"serial {serial} is new, so the sale issues it (unit.issued)")
    return diffs
