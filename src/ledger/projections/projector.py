"""Events in, view rows out: the one function every view is built by.

``Projector.apply`` takes stored records in position order and updates the
views through a DB-API cursor. It reads nothing but the events and the
views themselves (no clock, no settings other than the band policy), so a
live run and a replay from zero produce the same rows -- which
``ledger.projections.replay`` checks.

A batch is worked out in memory: the view rows it touches are read in a
few bulk ``SELECT … IN (…)`` statements, every event is applied in order
to those rows, and the results are written back with one ``executemany``
per table. On PostgreSQL that is a handful of round trips per batch rather
than several per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from ledger.domain.model import record_bytes
from ledger.projections.audit_rows import PAYLOAD_NAMES, audit_row
from ledger.projections.bands import BandPolicy
from ledger.projections.batch import Batch, Changes, Record
from ledger.projections.tables import (
    ADD_AUDIT,
    ADD_ROYALTIES,
    ADD_SETTLEMENT,
    HOLD_COLUMNS,
    POOL_COLUMNS,
    STOCK_COLUMNS,
    UNIT_COLUMNS,
    WAITLIST_COLUMNS,
    upsert,
)
from ledger.store.dialect import Tables

__all__ = ["Changes", "Projector", "Record"]

CREATOR_ROLES = ("creator", "master-creator")
# The events of a unit after its issue (the batch reads the unit's row first).
UNIT_CHANGES = frozenset(
    {"unit.reissued", "unit.resold", "unit.refunded", "unit.moved", "unit.transferred"}
)
IN_CHUNK = 500  # ids per bulk SELECT


class Projector:
    def __init__(self, tables: Tables, bands: BandPolicy | None = None) -> None:
        self.tables = tables
        self.bands = bands or BandPolicy()
        self._handlers: dict[str, Callable[[Batch, Record, dict[str, Any], Changes], None]] = {
            "good.minted": self._good_minted,
            "channel.registered": self._channel_registered,
            "good.variant-derived": self._variant_derived,
            "stock.opened": self._stock_opened,
            "stock.sold": self._stock_sold,
            "stock.restocked": self._stock_restocked,
            "stock.returned": self._stock_returned,
            "stock.reserved": self._stock_reserved,
            "stock.hold-committed": self._hold_committed,
            "stock.hold-released": self._hold_released,
            "stock.refund-owed": self._refund_owed,
            "stock.allotted": self._allotted,
            "stock.waitlisted": self._waitlisted,
            "stock.waitlist-left": self._waitlist_left,
            "stock.pool-returned": self._pool_returned,
            "stock.pool-drawn": self._pool_drawn,
            "stock.unlocked": self._listing,
            "stock.price-set": self._listing,
            "stock.paused": self._listing,
            "stock.resumed": self._listing,
            "stock.delisted": self._listing,
            "unit.issued": self._unit_acquired,
            "unit.reissued": self._unit_acquired,
            "unit.resold": self._unit_acquired,
            "unit.refunded": self._unit_refunded,
            "unit.moved": self._unit_changed_hands,
            "unit.transferred": self._unit_changed_hands,
        }

    def _q(self, statement: str) -> str:
        return self.tables.sql(statement)

    def apply(self, cursor: Any, records: Iterable[Record], changes: Changes) -> None:
        decoded = []
        every: list[tuple[Record, dict[str, Any] | None]] = []  # the audit trail's
        for record in records:
            changes.events += 1
            changes.position = record.position
            event = None
            if record.type in self._handlers:
                event = orjson.loads(record.state)
                decoded.append((record, event))
            elif record.type in PAYLOAD_NAMES:
                event = orjson.loads(record.state)
            every.append((record, event))
        batch = Batch()
        self._prefetch(cursor, batch, decoded, [r for r, _ in every])
        for record, event in decoded:
            self._handlers[record.type](batch, record, event, changes)
        batch.audit = [audit_row(batch, record, event) for record, event in every]
        self._write(cursor, batch)

    # -- reading what the batch touches --------------------------------------
    def _select_in(self, cursor: Any, statement: str, keys: Sequence[Any]) -> list[Any]:
        rows: list[Any] = []
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            cursor.execute(
                self._q(statement.replace("(?)", "(" + ", ".join("?" * len(chunk)) + ")")),
                tuple(chunk),
            )
            rows.extend(cursor.fetchall())
        return rows

    def _prefetch(
        self,
        cursor: Any,
        batch: Batch,
        decoded: list[tuple[Record, dict[str, Any]]],
        records: list[Record],
    ) -> None:
        """Read every view row the batch's events touch (a few bulk SELECTs,
        once per batch)."""
        self._prefetch_reservations(cursor, batch, decoded)
        self._prefetch_stock_and_units(cursor, batch, decoded, records)

    def _prefetch_reservations(
        self, cursor: Any, batch: Batch, decoded: list[tuple[Record, dict[str, Any]]]
    ) -> None:
        """Holds, waitlist entries and channels' pools."""
        hold_ids = sorted(
            {
                e["payload"]["hold_id"]
                for r, e in decoded
                if r.type in ("stock.hold-committed", "stock.hold-released", "stock.refund-owed")
            }
        )
        for row in self._select_in(cursor, "SELECT * FROM {holds} WHERE hold_id IN (?)", hold_ids):
            batch.holds[str(row["hold_id"])] = {c: row[c] for c in HOLD_COLUMNS}
        entries = sorted(
            {
                e["payload"].get("entry_id") or e["payload"]["hold_id"]
                for r, e in decoded
                if r.type in ("stock.reserved", "stock.waitlist-left")
            }
        )
        for row in self._select_in(
            cursor, "SELECT * FROM {waitlist} WHERE entry_id IN (?)", entries
        ):
            batch.waitlist[str(row["entry_id"])] = {c: row[c] for c in WAITLIST_COLUMNS}
        pooled = sorted(
            {
                r.aggregate_id
                for r, _ in decoded
                if r.type in ("stock.allotted", "stock.pool-returned", "stock.pool-drawn")
            }
        )
        for row in self._select_in(cursor, "SELECT * FROM {pools} WHERE stock_id IN (?)", pooled):
            batch.pools[(str(row["stock_id"]), str(row["channel"]))] = {
                c: row[c] for c in POOL_COLUMNS
            }

    def _prefetch_stock_and_units(
        self,
        cursor: Any,
        batch: Batch,
        decoded: list[tuple[Record, dict[str, Any]]],
        records: list[Record],
    ) -> None:
        """Stock rows (of every stock event: the audit trail names their
        good), unit rows, and the channel of each acquisition refunded."""
        stock_ids = sorted(
            {
                r.aggregate_id
                for r in records
                if r.type.startswith("stock.") and r.type != "stock.opened"
            }
        )
        unit_ids = sorted({r.aggregate_id for r, _ in decoded if r.type in UNIT_CHANGES})
        refunds = sorted(
            {
                (r.aggregate_id, e["payload"]["acquisition_id"])
                for r, e in decoded
                if r.type == "unit.refunded"
            }
        )
        for row in self._select_in(
            cursor, "SELECT * FROM {stock} WHERE stock_id IN (?)", stock_ids
        ):
            batch.stock[str(row["stock_id"])] = {c: row[c] for c in STOCK_COLUMNS}
        for row in self._select_in(cursor, "SELECT * FROM {units} WHERE unit_id IN (?)", unit_ids):
            batch.units[str(row["unit_id"])] = {c: row[c] for c in UNIT_COLUMNS}
        if refunds:
            for row in self._select_in(
                cursor,
                "SELECT unit_id, reference, channel FROM {unit_events} WHERE reference IN (?)",
                sorted({ref for _, ref in refunds}),
            ):
                batch.acquisitions[(str(row["unit_id"]), str(row["reference"]))] = row["channel"]

    # -- goods ------------------------------------------------------------
    def _good_minted(self, b: Batch, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        definition = p["definition"]
        spec = definition["spec"]
        creators = [c["id"] for c in spec["creators"]]
        master = definition.get("master")
        b.goods.append(
            (
                r.aggregate_id,
                p["fingerprint"],
                spec["title"],
                spec["kind"],
                spec["currency"],
                orjson.dumps(creators).decode(),
                master["good_id"] if master else None,
                e["timestamp"],
                r.position,
            )
        )
        b.good_creators.extend((creator, r.aggregate_id) for creator in dict.fromkeys(creators))

    def _channel_registered(self, b: Batch, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        b.channels.append(
            (p["channel"], r.aggregate_id, p["name"], p["fee_bps"], e["timestamp"], r.position)
        )

    def _variant_derived(self, b: Batch, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        b.variants[r.aggregate_id] += 1
        b.lineage.append((r.aggregate_id, p["variant_id"], p["index"], e["timestamp"]))

    # -- stock ------------------------------------------------------------
    def _stock_opened(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        supply = int(p["supply"])
        b.stock[r.aggregate_id] = {
            "stock_id": r.aggregate_id,
            "good_id": p["good_id"],
            "tier": p["tier"],
            "supply": supply,
            "lifetime_cap": int(p["lifetime_cap"]),
            "restockable": int(bool(p["restockable"])),
            "transferable": int(bool(p["transferable"])),
            "issued": 0,
            "reserved": 0,
            "available": supply,
            "pooled": 0,
            "sold_total": 0,
            "returned_total": 0,
            "band": self.bands.band(None, supply, supply),
            "first_sale_at": None,
            "last_sale_at": None,
            "sale_state": "locked" if p.get("unlock") else "on-sale",
            "paused": "{}",
            "delisted": None,
            "unlock": orjson.dumps(p["unlock"]).decode() if p.get("unlock") else None,
            "unlocked_at": None,
            "prices": None,
            "updated_at": e["timestamp"],
            "position": r.position,
        }
        b.touched_stock.add(r.aggregate_id)
        ch.goods.add(p["good_id"])

    def _change_stock(
        self,
        b: Batch,
        r: Record,
        at: str,
        ch: Changes,
        *,
        issued: int = 0,
        supply: int | None = None,
        sold: int = 0,
        returned: int = 0,
        reserved: int = 0,
        pooled: int = 0,
    ) -> None:
        row = b.stock.get(r.aggregate_id)
        if row is None:
            raise LookupError(f"stock {r.aggregate_id} changed before it was opened")
        if supply is not None:
            row["supply"] = supply
        row["issued"] = int(row["issued"]) + issued
        row["reserved"] = int(row["reserved"]) + reserved
        row["pooled"] = int(row["pooled"]) + pooled
        row["available"] = (
            int(row["supply"]) - int(row["issued"]) - int(row["reserved"]) - int(row["pooled"])
        )
        row["band"] = self.bands.band(str(row["band"]), int(row["available"]), int(row["supply"]))
        row["sold_total"] = int(row["sold_total"]) + sold
        row["returned_total"] = int(row["returned_total"]) + returned
        if sold:
            row["first_sale_at"] = row["first_sale_at"] or at
            row["last_sale_at"] = at
        row["updated_at"] = at
        row["position"] = r.position
        b.touched_stock.add(r.aggregate_id)
        ch.goods.add(str(row["good_id"]))

    def _stock_sold(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        n = len(e["payload"]["serials"])
        at = e["timestamp"]
        self._change_stock(b, r, at, ch, issued=n, sold=n)
        b.velocity[(r.aggregate_id, at[:16])] += n

    def _stock_restocked(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        self._change_stock(b, r, e["timestamp"], ch, supply=int(e["payload"]["supply"]))

    def _stock_returned(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        self._change_stock(b, r, e["timestamp"], ch, issued=-1, returned=1)

    def _listing(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        """An unlocking, price schedule, pause, resume or delisting: the tier's
        sale state, why and since when, and its prices."""
        self._change_stock(b, r, e["timestamp"], ch)
        row, p = b.stock[r.aggregate_id], e["payload"]
        paused = orjson.loads(str(row["paused"]))
        if r.type == "stock.unlocked":
            row["unlocked_at"] = e["timestamp"]
        elif r.type == "stock.price-set":
            steps = p["steps"]
            row["prices"] = None if steps is None else orjson.dumps(steps).decode()
        elif r.type == "stock.paused":
            paused[p["scope"]] = {"reason": p["reason"], "since": e["timestamp"]}
        elif r.type == "stock.resumed":
            paused.pop(p["scope"], None)
        else:
            told = {"scope": p["scope"], "reason": p["reason"], "since": e["timestamp"]}
            row["delisted"] = orjson.dumps(told).decode()
        row["paused"] = orjson.dumps(paused, option=orjson.OPT_SORT_KEYS).decode()
        locked = row["unlock"] is not None and row["unlocked_at"] is None
        row["sale_state"] = (
            "delisted"
            if row["delisted"] is not None
            else "paused"
            if paused
            else "locked"
            if locked
            else "on-sale"
        )

    # -- reservations -------------------------------------------------------
    def _stock_reserved(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        at = e["timestamp"]
        self._change_stock(b, r, at, ch, reserved=int(p["quantity"]))
        stock = b.stock[r.aggregate_id]
        b.holds[p["hold_id"]] = {
            "hold_id": p["hold_id"],
            "stock_id": r.aggregate_id,
            "good_id": stock["good_id"],
            "tier": stock["tier"],
            "channel": p["channel"],
            "quantity": int(p["quantity"]),
            "expires_at": p["expires_at"],
            "state": "held",
            "committed": 0,
            "sale_id": None,
            "refunds_owed": 0,
            "reserved_at": at,
            "updated_at": at,
        }
        entry = b.waitlist.get(p["hold_id"])
        if entry is not None:  # a restock's offer to a waiting buyer
            entry.update(state="offered", updated_at=at)

    def _waitlisted(self, b: Batch, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        stock = b.stock.get(r.aggregate_id)
        if stock is None:
            raise LookupError(f"stock {r.aggregate_id} changed before it was opened")
        b.waitlist[p["entry_id"]] = {
            "entry_id": p["entry_id"],
            "stock_id": r.aggregate_id,
            "good_id": stock["good_id"],
            "tier": stock["tier"],
            "buyer": p["buyer"],
            "channel": p["channel"],
            "quantity": int(p["quantity"]),
            "state": "waiting",
            "joined_at": e["timestamp"],
            "updated_at": e["timestamp"],
            "position": r.position,
        }

    def _waitlist_left(self, b: Batch, _r: Record, e: dict[str, Any], _ch: Changes) -> None:
        entry = b.waitlist.get(e["payload"]["entry_id"])
        if entry is None:
            raise LookupError(f"waitlist entry {e['payload']['entry_id']} left before joining")
        entry.update(state="left", updated_at=e["timestamp"])

    def _hold(self, b: Batch, hold_id: str) -> dict[str, Any]:
        hold = b.holds.get(hold_id)
        if hold is None:
            raise LookupError(f"hold {hold_id} changed before it was made")
        return hold

    def _hold_committed(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        hold = self._hold(b, p["hold_id"])
        self._change_stock(b, r, e["timestamp"], ch, reserved=-int(hold["quantity"]))
        hold.update(
            state="committed",
            committed=int(p["quantity"]),
            sale_id=p["sale_id"],
            updated_at=e["timestamp"],
        )

    def _hold_released(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        hold = self._hold(b, p["hold_id"])
        self._change_stock(b, r, e["timestamp"], ch, reserved=-int(hold["quantity"]))
        hold.update(state=p["reason"], updated_at=e["timestamp"])

    def _refund_owed(self, b: Batch, _r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        hold = self._hold(b, p["hold_id"])
        hold.update(
            refunds_owed=int(hold["refunds_owed"]) + int(p["amount"]["amount"]),
            updated_at=e["timestamp"],
        )

    # -- channels' pools -------------------------------------------------------
    def _pool(self, b: Batch, r: Record, channel: str, at: str) -> dict[str, Any]:
        key = (r.aggregate_id, channel)
        pool = b.pools.get(key)
        if pool is None:
            stock = b.stock[r.aggregate_id]
            pool = b.pools[key] = {
                "stock_id": r.aggregate_id,
                "channel": channel,
                "good_id": stock["good_id"],
                "tier": stock["tier"],
                "free": 0,
                "overflow": 0,
                "allotted": 0,
                "returned": 0,
                "sold": 0,
                "updated_at": at,
            }
        pool["updated_at"] = at
        return pool

    def _allotted(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        self._change_stock(b, r, e["timestamp"], ch, pooled=int(p["quantity"]))
        pool = self._pool(b, r, p["channel"], e["timestamp"])
        pool["free"] = int(pool["free"]) + int(p["quantity"])
        pool["allotted"] = int(pool["allotted"]) + int(p["quantity"])
        pool["overflow"] = int(bool(p["overflow"]))

    def _pool_returned(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        self._change_stock(b, r, e["timestamp"], ch, pooled=-int(p["quantity"]))
        pool = self._pool(b, r, p["channel"], e["timestamp"])
        pool["free"] = int(pool["free"]) - int(p["quantity"])
        pool["returned"] = int(pool["returned"]) + int(p["quantity"])

    def _pool_drawn(self, b: Batch, r: Record, e: dict[str, Any], ch: Changes) -> None:
        p = e["payload"]
        self._change_stock(b, r, e["timestamp"], ch, pooled=-int(p["quantity"]))
        pool = self._pool(b, r, p["channel"], e["timestamp"])
        pool["free"] = int(pool["free"]) - int(p["quantity"])
        pool["sold"] = int(pool["sold"]) + int(p["quantity"])

    # -- units, royalties, settlement --------------------------------------
    def _unit_event(
        self,
        b: Batch,
        r: Record,
        e: dict[str, Any],
        *,
        reference: str,
        before: str | None,
        after: str | None,
        channel: str | None,
        price: dict[str, Any] | None,
        split: list[dict[str, Any]],
    ) -> None:
        event_hash = hashlib.sha256(
            record_bytes(r.aggregate_id, r.version, r.type, r.state)
        ).hexdigest()
        b.unit_events.append(
            (
                r.aggregate_id,
                r.version,
                r.position,
                r.type,
                e["timestamp"],
                reference,
                before,
                after,
                channel,
                None if price is None else int(price["amount"]),
                None if price is None else price["currency"],
                orjson.dumps(split).decode(),
                event_hash,
            )
        )
        b.acquisitions[(r.aggregate_id, reference)] = channel

    def _unit(self, b: Batch, unit_id: str) -> dict[str, Any]:
        row = b.units.get(unit_id)
        if row is None:
            raise LookupError(f"unit {unit_id} changed before it was issued")
        return row

    def _unit_acquired(self, b: Batch, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        at = e["timestamp"]
        if r.type == "unit.issued":
            b.units[r.aggregate_id] = {
                "unit_id": r.aggregate_id,
                "good_id": p["good_id"],
                "tier": p["tier"],
                "serial": int(p["serial"]),
                "holder": p["holder"],
                "transferable": int(bool(p["transferable"])),
                "events": 1,
                "updated_at": at,
            }
            before, after, reference, kind = None, p["holder"], p["sale_id"], "primary"
        else:
            unit = self._unit(b, r.aggregate_id)
            if r.type == "unit.reissued":
                before, after, reference, kind = None, p["holder"], p["sale_id"], "primary"
            else:
                before, after, reference, kind = p["seller"], p["buyer"], p["resale_id"], "resale"
            unit["holder"] = after
            unit["events"] = int(unit["events"]) + 1
            unit["updated_at"] = at
        b.touched_units.add(r.aggregate_id)
        self._unit_event(
            b,
            r,
            e,
            reference=reference,
            before=before,
            after=after,
            channel=p["channel"],
            price=p["price"],
            split=p["split"],
        )
        good_id = str(b.units[r.aggregate_id]["good_id"])
        self._pay(b, r, at, good_id, kind, reference, p["channel"], p["price"], p["split"], 1)

    def _unit_changed_hands(self, b: Batch, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        """A move to another channel (same holder) or a transfer without a
        price (a new holder): history, and nothing paid to anyone."""
        p = e["payload"]
        unit = self._unit(b, r.aggregate_id)
        if r.type == "unit.moved":
            before = after = p["holder"]
            reference, channel = p["move_id"], p["to_channel"]
        else:
            before, after = p["giver"], p["recipient"]
            reference, channel = p["transfer_id"], p["channel"]
        unit["holder"] = after
        unit["events"] = int(unit["events"]) + 1
        unit["updated_at"] = e["timestamp"]
        b.touched_units.add(r.aggregate_id)
        self._unit_event(
            b,
            r,
            e,
            reference=reference,
            before=before,
            after=after,
            channel=channel,
            price=None,
            split=[],
        )

    def _unit_refunded(self, b: Batch, r: Record, e: dict[str, Any], _ch: Changes) -> None:
        p = e["payload"]
        at = e["timestamp"]
        unit = self._unit(b, r.aggregate_id)
        channel = b.acquisitions.get((r.aggregate_id, p["acquisition_id"]))
        unit["holder"] = p["returned_to"]
        unit["events"] = int(unit["events"]) + 1
        unit["updated_at"] = at
        b.touched_units.add(r.aggregate_id)
        self._unit_event(
            b,
            r,
            e,
            reference=p["refund_id"],
            before=p["holder"],
            after=p["returned_to"],
            channel=channel,
            price=p["price"],
            split=p["split"],
        )
        kind = "primary-refund" if p["kind"] == "sale" else "resale-refund"
        self._pay(
            b,
            r,
            at,
            str(unit["good_id"]),
            kind,
            p["refund_id"],
            channel,
            p["price"],
            p["split"],
            -1,
        )

    def _pay(
        self,
        b: Batch,
        r: Record,
        at: str,
        good_id: str,
        kind: str,
        reference: str,
        channel: str | None,
        price: dict[str, Any],
        split: list[dict[str, Any]],
        sign: int,
    ) -> None:
        currency = price["currency"]
        amount = int(price["amount"])
        fees = royalties = sellers = 0
        for part in split:
            role, value = part["role"], int(part["amount"])
            if role in CREATOR_ROLES:
                royalties += value
                key = (part["recipient"], role, reference, r.aggregate_id)
                line = b.royalties.get(key)
                if line is None:
                    b.royalties[key] = [
                        part["recipient"],
                        role,
                        good_id,
                        r.aggregate_id,
                        kind,
                        reference,
                        at,
                        at[:10],
                        sign * value,
                        sign * amount,
                        currency,
                        channel,
                        r.position,
                    ]
                else:
                    line[8] += sign * value
            elif role == "channel":
                fees += value
            else:
                sellers += value
        if channel is None:
            return
        sums = b.settlement.setdefault((channel, at[:10], currency), [0] * 6)
        for i, value in enumerate((1, amount, fees, royalties, sellers, amount - fees)):
            sums[i] += sign * value

    # -- writing the batch back ------------------------------------------------
    def _many(self, cursor: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor.executemany(self._q(statement), rows)

    def _write(self, cursor: Any, b: Batch) -> None:
        """Write the batch's rows back: one ``executemany`` per table."""
        self._write_goods(cursor, b)
        self._write_rows(cursor, b)
        self._write_lines(cursor, b)

    def _write_goods(self, cursor: Any, b: Batch) -> None:
        """Goods, their creators and lineage, channels: inserted once, variants
        counted."""
        self._many(
            cursor,
            "INSERT INTO {channels} (channel, channel_id, name, fee_bps, registered_at, position) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            b.channels,
        )
        self._many(
            cursor,
            "INSERT INTO {goods} (good_id, fingerprint, title, kind, currency, "
            "creators, master_id, minted_at, variants, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            b.goods,
        )
        self._many(
            cursor, "INSERT INTO {good_creators} (creator, good_id) VALUES (?, ?)", b.good_creators
        )
        self._many(
            cursor,
            "INSERT INTO {lineage} (master_id, variant_id, idx, derived_at) VALUES (?, ?, ?, ?)",
            b.lineage,
        )
        self._many(
            cursor,
            "UPDATE {goods} SET variants = variants + ? WHERE good_id = ?",
            [(n, good) for good, n in sorted(b.variants.items())],
        )

    def _write_rows(self, cursor: Any, b: Batch) -> None:
        """The rows kept current: stock, units, waitlist, pools, holds."""
        self._many(
            cursor,
            upsert("stock", STOCK_COLUMNS, ("stock_id",)),
            [tuple(b.stock[s][c] for c in STOCK_COLUMNS) for s in sorted(b.touched_stock)],
        )
        self._many(
            cursor,
            upsert("units", UNIT_COLUMNS, ("unit_id",)),
            [tuple(b.units[u][c] for c in UNIT_COLUMNS) for u in sorted(b.touched_units)],
        )
        self._many(
            cursor,
            upsert("waitlist", WAITLIST_COLUMNS, ("entry_id",)),
            [tuple(b.waitlist[k][c] for c in WAITLIST_COLUMNS) for k in sorted(b.waitlist)],
        )
        self._many(
            cursor,
            upsert("pools", POOL_COLUMNS, ("stock_id", "channel")),
            [tuple(b.pools[k][c] for c in POOL_COLUMNS) for k in sorted(b.pools)],
        )
        self._many(
            cursor,
            upsert("holds", HOLD_COLUMNS, ("hold_id",)),
            [tuple(b.holds[h][c] for c in HOLD_COLUMNS) for h in sorted(b.holds)],
        )

    def _write_lines(self, cursor: Any, b: Batch) -> None:
        """The rows that only grow or add up: unit events, royalties,
        settlement, velocity."""
        self._many(
            cursor,
            "INSERT INTO {unit_events} (unit_id, version, position, type, at, "
            "reference, holder_before, holder_after, channel, amount, currency, split, "
            "event_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            b.unit_events,
        )
        self._many(cursor, ADD_AUDIT, b.audit)
        self._many(cursor, ADD_ROYALTIES, [tuple(line) for _, line in sorted(b.royalties.items())])
        self._many(
            cursor, ADD_SETTLEMENT, [(*key, *sums) for key, sums in sorted(b.settlement.items())]
        )
        self._many(
            cursor,
            "INSERT INTO {velocity} AS v (stock_id, minute, units) "
            "VALUES (?, ?, ?) ON CONFLICT (stock_id, minute) "
            "DO UPDATE SET units = v.units + excluded.units",
            [(*key, n) for key, n in sorted(b.velocity.items())],
        )
