"""Events in, view rows out: the one function every view is built by.

``Projector.apply`` takes stored records in position order and updates the
views through a DB-API cursor. It reads nothing but the events and the
views themselves (no clock, no settings other than the band policy), so a
live run and a replay from zero produce the same rows -- which
``ledger.projections.replay`` checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.domain.model import record_bytes
from ledger.projections.bands import BandPolicy
from ledger.projections.tables import Dialect

CREATOR_ROLES = ("creator", "master-creator")


@dataclass(frozen=True, slots=True)
class Record:
    """One stored event, as the views need it."""

    position: int
    aggregate_id: str
    version: int
    type: str
    state: bytes


@dataclass
class Changes:
    """What one batch changed, for live listeners (stock streams)."""

    events: int = 0
    position: int = 0
    first_event_at: str | None = None
    last_event_at: str | None = None
    goods: set[str] = field(default_factory=set)  # goods whose stock changed


class Projector:
    def __init__(self, dialect: Dialect, bands: BandPolicy | None = None) -> None:
        self.dialect = dialect
        self.bands = bands or BandPolicy()
        self._handlers: dict[str, Callable[[Any, Record, dict[str, Any], Changes], None]] = {
            "good.minted": self._good_minted,
            "good.variant-derived": self._variant_derived,
            "stock.opened": self._stock_opened,
            "stock.sold": self._stock_sold,
            "stock.restocked": self._stock_restocked,
            "stock.returned": self._stock_returned,
            "unit.issued": self._unit_acquired,
            "unit.reissued": self._unit_acquired,
            "unit.resold": self._unit_acquired,
            "unit.refunded": self._unit_refunded,
        }

    def _q(self, statement: str) -> str:
        return self.dialect.sql(statement)

    def apply(self, cursor: Any, records: Iterable[Record], changes: Changes) -> None:
        for record in records:
            handler = self._handlers.get(record.type)
            if handler is not None:
                event = orjson.loads(record.state)
                handler(cursor, record, event, changes)
            changes.events += 1
            changes.position = record.position

    # -- goods ------------------------------------------------------------
    def _good_minted(self, cur: Any, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        definition = p["definition"]
        spec = definition["spec"]
        creators = [c["id"] for c in spec["creators"]]
        master = definition.get("master")
        cur.execute(self._q(
            "INSERT INTO {goods} (good_id, fingerprint, title, kind, currency, creators, "
            "master_id, minted_at, variants, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"),
            (r.aggregate_id, p["fingerprint"], spec["title"], spec["kind"], spec["currency"],
             orjson.dumps(creators).decode(), master["good_id"] if master else None,
             e["timestamp"], r.position))
        for creator in dict.fromkeys(creators):
            cur.execute(self._q("INSERT INTO {good_creators} (creator, good_id) VALUES (?, ?)"),
                        (creator, r.aggregate_id))

    def _variant_derived(self, cur: Any, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        cur.execute(self._q("UPDATE {goods} SET variants = variants + 1 WHERE good_id = ?"),
                    (r.aggregate_id,))
        cur.execute(self._q(
            "INSERT INTO {lineage} (master_id, variant_id, idx, derived_at) VALUES (?, ?, ?, ?)"),
            (r.aggregate_id, p["variant_id"], p["index"], e["timestamp"]))

    # -- stock ------------------------------------------------------------
    def _stock_opened(self, cur: Any, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        supply = int(p["supply"])
        cur.execute(self._q(
            "INSERT INTO {stock} (stock_id, good_id, tier, supply, lifetime_cap, restockable, "
            "transferable, issued, reserved, available, sold_total, returned_total, band, "
            "first_sale_at, last_sale_at, updated_at, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, 0, 0, ?, NULL, NULL, ?, ?)"),
            (r.aggregate_id, p["good_id"], p["tier"], supply, int(p["lifetime_cap"]),
             int(bool(p["restockable"])), int(bool(p["transferable"])), supply,
             self.bands.band(None, supply, supply), e["timestamp"], r.position))
        ch.goods.add(p["good_id"])

    def _change_stock(self, cur: Any, r: Record, at: str, ch: Changes, *,
                      issued: int = 0, supply: int | None = None, sold: int = 0,
                      returned: int = 0) -> None:
        cur.execute(self._q(
            "SELECT good_id, supply, issued, reserved, band, first_sale_at FROM {stock} "
            "WHERE stock_id = ?"), (r.aggregate_id,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"stock {r.aggregate_id} changed before it was opened")
        new_supply = int(row["supply"]) if supply is None else supply
        new_issued = int(row["issued"]) + issued
        available = new_supply - new_issued - int(row["reserved"])
        band = self.bands.band(str(row["band"]), available, new_supply)
        first = row["first_sale_at"] if row["first_sale_at"] is not None or not sold else at
        cur.execute(self._q(
            "UPDATE {stock} SET supply = ?, issued = ?, available = ?, "
            "sold_total = sold_total + ?, returned_total = returned_total + ?, band = ?, "
            "first_sale_at = ?, last_sale_at = COALESCE(?, last_sale_at), updated_at = ?, "
            "position = ? WHERE stock_id = ?"),
            (new_supply, new_issued, available, sold, returned, band, first,
             at if sold else None, at, r.position, r.aggregate_id))
        ch.goods.add(str(row["good_id"]))

    def _stock_sold(self, cur: Any, r: Record, e: dict[str, Any], ch: Changes) -> None:
        n = len(e["payload"]["serials"])
        at = e["timestamp"]
        self._change_stock(cur, r, at, ch, issued=n, sold=n)
        cur.execute(self._q(
            "INSERT INTO {velocity} AS v (stock_id, minute, units) VALUES (?, ?, ?) "
            "ON CONFLICT (stock_id, minute) DO UPDATE SET units = v.units + excluded.units"),
            (r.aggregate_id, at[:16], n))

    def _stock_restocked(self, cur: Any, r: Record, e: dict[str, Any], ch: Changes) -> None:
        self._change_stock(cur, r, e["timestamp"], ch, supply=int(e["payload"]["supply"]))

    def _stock_returned(self, cur: Any, r: Record, e: dict[str, Any], ch: Changes) -> None:
        self._change_stock(cur, r, e["timestamp"], ch, issued=-1, returned=1)

    # -- units, royalties, settlement --------------------------------------
    def _unit_event(self, cur: Any, r: Record, e: dict[str, Any], *, reference: str,
                    before: str | None, after: str | None, channel: str | None,
                    price: dict[str, Any], split: list[dict[str, Any]]) -> None:
        event_hash = hashlib.sha256(
            record_bytes(r.aggregate_id, r.version, r.type, r.state)).hexdigest()
        cur.execute(self._q(
            "INSERT INTO {unit_events} (unit_id, version, position, type, at, reference, "
            "holder_before, holder_after, channel, amount, currency, split, event_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (r.aggregate_id, r.version, r.position, r.type, e["timestamp"], reference, before,
             after, channel, int(price["amount"]), price["currency"],
             orjson.dumps(split).decode(), event_hash))

    def _unit_acquired(self, cur: Any, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        at = e["timestamp"]
        if r.type == "unit.issued":
            good_id, tier = p["good_id"], p["tier"]
            cur.execute(self._q(
                "INSERT INTO {units} (unit_id, good_id, tier, serial, holder, transferable, "
                "events, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)"),
                (r.aggregate_id, good_id, tier, int(p["serial"]), p["holder"],
                 int(bool(p["transferable"])), at))
            before, after, reference, kind = None, p["holder"], p["sale_id"], "primary"
        else:
            good_id = self._unit_good(cur, r.aggregate_id)
            if r.type == "unit.reissued":
                before, after, reference, kind = None, p["holder"], p["sale_id"], "primary"
            else:
                before, after, reference, kind = p["seller"], p["buyer"], p["resale_id"], "resale"
            cur.execute(self._q(
                "UPDATE {units} SET holder = ?, events = events + 1, updated_at = ? "
                "WHERE unit_id = ?"), (after, at, r.aggregate_id))
        self._unit_event(cur, r, e, reference=reference, before=before, after=after,
                         channel=p["channel"], price=p["price"], split=p["split"])
        self._pay(cur, r, at, good_id, kind, reference, p["channel"], p["price"], p["split"], 1)

    def _unit_refunded(self, cur: Any, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        at = e["timestamp"]
        good_id = self._unit_good(cur, r.aggregate_id)
        cur.execute(self._q(
            "SELECT channel FROM {unit_events} WHERE unit_id = ? AND reference = ?"),
            (r.aggregate_id, p["acquisition_id"]))
        row = cur.fetchone()
        channel = str(row["channel"]) if row is not None else None
        cur.execute(self._q(
            "UPDATE {units} SET holder = ?, events = events + 1, updated_at = ? "
            "WHERE unit_id = ?"), (p["returned_to"], at, r.aggregate_id))
        self._unit_event(cur, r, e, reference=p["refund_id"], before=p["holder"],
                         after=p["returned_to"], channel=channel, price=p["price"],
                         split=p["split"])
        kind = "primary-refund" if p["kind"] == "sale" else "resale-refund"
        self._pay(cur, r, at, good_id, kind, p["refund_id"], channel, p["price"], p["split"], -1)

    def _unit_good(self, cur: Any, unit_id: str) -> str:
        cur.execute(self._q("SELECT good_id FROM {units} WHERE unit_id = ?"), (unit_id,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"unit {unit_id} changed before it was issued")
        return str(row["good_id"])

    def _pay(self, cur: Any, r: Record, at: str, good_id: str, kind: str, reference: str,
             channel: str | None, price: dict[str, Any], split: list[dict[str, Any]],
             sign: int) -> None:
        currency = price["currency"]
        amount = int(price["amount"])
        fees = royalties = sellers = 0
        for part in split:
            role, value = part["role"], int(part["amount"])
            if role in CREATOR_ROLES:
                royalties += value
                cur.execute(self._q(
                    "INSERT INTO {royalties} AS y (recipient, role, good_id, unit_id, kind, "
                    "reference, at, day, amount, price, currency, channel, position) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (recipient, role, reference, unit_id) "
                    "DO UPDATE SET amount = y.amount + excluded.amount"),
                    (part["recipient"], role, good_id, r.aggregate_id, kind, reference, at,
                     at[:10], sign * value, sign * amount, currency, channel, r.position))
            elif role == "channel":
                fees += value
            else:
                sellers += value
        if channel is None:
            return
        cur.execute(self._q(
            "INSERT INTO {settlement} AS s (channel, day, currency, units, gross, fees, "
            "royalties, seller_proceeds, net) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (channel, day, currency) DO UPDATE SET units = s.units + excluded.units, "
            "gross = s.gross + excluded.gross, fees = s.fees + excluded.fees, "
            "royalties = s.royalties + excluded.royalties, "
            "seller_proceeds = s.seller_proceeds + excluded.seller_proceeds, "
            "net = s.net + excluded.net"),
            (channel, at[:10], currency, sign, sign * amount, sign * fees, sign * royalties,
             sign * sellers, sign * (amount - fees)))
