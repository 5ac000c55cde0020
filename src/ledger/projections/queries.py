"""Reading the views: what the API's GET endpoints answer.

Lists are paged by keyset: a page ends with an opaque ``next_cursor`` that
encodes the last row's sort key, so a page is one indexed range read however
deep the client has paged, and rows committed meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ledger.domain import limits
from ledger.domain.edition import edition, edition_size
from ledger.domain.errors import InvalidInputError
from ledger.domain.model import format_timestamp
from ledger.domain.pricing import price_in_force
from ledger.projections.bands import display
from ledger.projections.store import ProjectionStore

PAGE_SIZE_DEFAULT = limits.PAGE_SIZE_DEFAULT
PAGE_SIZE_MAX = limits.PAGE_SIZE_MAX


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None or cursor == "":
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidInputError("cursor", "not a cursor this server issued") from None
    if (
        not isinstance(key, list)
        or len(key) != arity
        or not all(
            isinstance(k, str)
            or (
                isinstance(k, int) and not isinstance(k, bool) and abs(k) <= limits.JSON_INTEGER_MAX
            )
            for k in key
        )
    ):
        raise InvalidInputError("cursor", "not a cursor this server issued")
    return key


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInputError("limit", f"must be between 1 and {PAGE_SIZE_MAX}")
    return limit


def _check_day(day: str, field: str) -> str:
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise InvalidInputError(field, "must be a date, YYYY-MM-DD") from None
    return day


def _equal(**columns: Any) -> tuple[list[str], list[Any]]:
    """``column = ?`` for each filter given (``None``: not filtered on)."""
    given = [(column, value) for column, value in columns.items() if value is not None]
    return [f"{column} = ?" for column, _ in given], [value for _, value in given]


def _days(where: list[str], params: list[Any], from_day: str | None, to_day: str | None) -> None:
    """An inclusive range of UTC days, checked."""
    if from_day is not None:
        where.append("day >= ?")
        params.append(_check_day(from_day, "from"))
    if to_day is not None:
        where.append("day <= ?")
        params.append(_check_day(to_day, "to"))


def _after(columns: list[str], key: list[Any] | None) -> tuple[str, list[Any]]:
    """A keyset condition ``(c1, c2, …) > (k1, k2, …)`` written portably."""
    if key is None:
        return "", []
    clauses, params = [], []
    for i, column in enumerate(columns):
        eq = [f"{c} = ?" for c in columns[:i]]
        clauses.append("(" + " AND ".join([*eq, f"{column} > ?"]) + ")")
        params.extend([*key[:i], key[i]])
    return "(" + " OR ".join(clauses) + ")", params


class Views:
    """Read-only queries over the views."""

    def __init__(self, store: ProjectionStore) -> None:
        self.store = store

    def _rows(self, statement: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        with self.store.cursor(commit=False) as cursor:
            cursor.execute(self.store.tables.sql(statement), tuple(params))
            return [dict(row) for row in cursor.fetchall()]

    def _page(
        self,
        select: str,
        where: list[str],
        params: list[Any],
        order: list[str],
        cursor: str | None,
        limit: int,
        shape: Any,
    ) -> Page:
        _check_limit(limit)
        condition, extra = _after(order, decode_cursor(cursor, len(order)))
        clauses = [*where, condition] if condition else where
        text = select + (" WHERE " + " AND ".join(clauses) if clauses else "")
        text += " ORDER BY " + ", ".join(order) + f" LIMIT {limit + 1}"
        rows = self._rows(text, [*params, *extra])
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = (
            encode_cursor([rows[-1][c.split(".")[-1]] for c in order]) if more and rows else None
        )
        return Page([shape(r) for r in rows], next_cursor)

    # -- goods, stock, lineage ----------------------------------------------
    def goods(
        self,
        *,
        creator: str | None = None,
        cursor: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page:
        if creator is None:
            return self._page("SELECT * FROM {goods}", [], [], ["good_id"], cursor, limit, _good)
        return self._page(
            "SELECT g.* FROM {goods} g JOIN {good_creators} c ON c.good_id = g.good_id",
            ["c.creator = ?"],
            [creator],
            ["g.good_id"],
            cursor,
            limit,
            _good,
        )

    def good(self, good_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM {goods} WHERE good_id = ?", (good_id,))
        return _good(rows[0]) if rows else None

    def channels(self, *, cursor: str | None = None, limit: int = PAGE_SIZE_DEFAULT) -> Page:
        """The registered channels, by id, with the fee each sells at."""
        return self._page("SELECT * FROM {channels}", [], [], ["channel"], cursor, limit, _channel)

    def channel(self, channel: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM {channels} WHERE channel = ?", (channel,))
        return _channel(rows[0]) if rows else None

    def stock(self, good_id: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM {stock} WHERE good_id = ? ORDER BY tier", (good_id,))
        return [_stock(r) for r in rows]

    def lineage(self, good_id: str) -> dict[str, Any] | None:
        good = self.good(good_id)
        if good is None:
            return None
        ancestors: list[dict[str, Any]] = []
        master = good["master_id"]
        while master is not None and len(ancestors) < 64:
            found = self.good(master)
            if found is None:
                break
            ancestors.append(
                {
                    "good_id": found["good_id"],
                    "title": found["title"],
                    "fingerprint": found["fingerprint"],
                }
            )
            master = found["master_id"]
        variants = self._rows(
            "SELECT l.variant_id, l.idx, l.derived_at, g.title, g.fingerprint FROM {lineage} l "
            "JOIN {goods} g ON g.good_id = l.variant_id WHERE l.master_id = ? ORDER BY l.idx",
            (good_id,),
        )
        return {
            "good_id": good_id,
            "title": good["title"],
            "fingerprint": good["fingerprint"],
            "masters": ancestors,
            "variants": [
                {
                    "good_id": v["variant_id"],
                    "index": int(v["idx"]),
                    "title": v["title"],
                    "fingerprint": v["fingerprint"],
                    "derived_at": v["derived_at"],
                }
                for v in variants
            ],
        }

    # -- units ---------------------------------------------------------------
    def units(
        self,
        good_id: str,
        *,
        tier: str | None = None,
        holder: str | None = None,
        cursor: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page:
        where, params = _equal(**{"u.good_id": good_id, "u.tier": tier, "u.holder": holder})
        return self._page(_UNITS, where, params, ["u.tier", "u.serial"], cursor, limit, _unit)

    def unit(self, unit_id: str) -> dict[str, Any] | None:
        rows = self._rows(_UNITS + " WHERE u.unit_id = ?", (unit_id,))
        if not rows:
            return None
        history = self._rows(
            "SELECT * FROM {unit_events} WHERE unit_id = ? ORDER BY version", (unit_id,)
        )
        unit = _unit(rows[0])
        # Its custody: the channel of the last change (a sale, resale, move or
        # gift; a refunded resale's own channel), while someone holds it.
        held_through = history[-1]["channel"] if history and unit["holder"] else None
        return unit | {
            "held_through": held_through,
            "history": [_unit_event(h) for h in history],
        }

    # -- reservations -----------------------------------------------------------
    def holds(
        self,
        good_id: str,
        *,
        channel: str | None = None,
        state: str | None = None,
        cursor: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page:
        where, params = _equal(good_id=good_id, channel=channel, state=state)
        return self._page("SELECT * FROM {holds}", where, params, ["hold_id"], cursor, limit, _hold)

    def pools(self, good_id: str, *, channel: str | None = None) -> list[dict[str, Any]]:
        """Per tier and channel: unsold units set aside, and what became of them."""
        where, params = _equal(good_id=good_id, channel=channel)
        rows = self._rows(
            "SELECT * FROM {pools} WHERE "  # noqa: S608
            + " AND ".join(where)
            + " ORDER BY tier, channel",
            params,
        )
        return [
            {
                "tier": r["tier"],
                "channel": r["channel"],
                "free": int(r["free"]),
                "overflow": bool(r["overflow"]),
                "allotted": int(r["allotted"]),
                "returned": int(r["returned"]),
                "sold": int(r["sold"]),
                "updated_at": r["updated_at"],
            }
            for r in rows
        ]

    def waitlist(self, good_id: str, *, channel: str | None = None) -> list[dict[str, Any]]:
        """Entries still waiting, per tier in the order they joined, with each
        one's place in line (counted over every channel's entries)."""
        rows = self._rows(
            "SELECT * FROM {waitlist} WHERE good_id = ? AND state = 'waiting' "
            "ORDER BY tier, position",
            (good_id,),
        )
        out, place, tier = [], 0, None
        for r in rows:
            place = place + 1 if r["tier"] == tier else 1
            tier = r["tier"]
            if channel is None or r["channel"] == channel:
                out.append(
                    {
                        "entry_id": r["entry_id"],
                        "tier": r["tier"],
                        "buyer": r["buyer"],
                        "channel": r["channel"],
                        "quantity": int(r["quantity"]),
                        "place": place,
                        "joined_at": r["joined_at"],
                    }
                )
        return out

    def hold(self, hold_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM {holds} WHERE hold_id = ?", (hold_id,))
        return _hold(rows[0]) if rows else None

    def due_holds(self, now: datetime, limit: int = 1_000) -> list[tuple[str, str]]:
        """(good_id, tier) of every tier with a live hold whose time is up."""
        rows = self._rows(
            "SELECT DISTINCT good_id, tier FROM {holds} WHERE state = 'held' AND expires_at <= ? "
            "ORDER BY good_id, tier",
            (format_timestamp(now),),
        )
        return [(str(r["good_id"]), str(r["tier"])) for r in rows[:limit]]

    # -- money ----------------------------------------------------------------
    def statement(
        self,
        creator: str,
        *,
        good_id: str | None = None,
        from_day: str | None = None,
        to_day: str | None = None,
        kinds: tuple[str, ...] | None = None,
        cursor: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> dict[str, Any]:
        """A creator's royalty statement: each payment line and the totals."""
        where, params = _equal(recipient=creator, good_id=good_id)
        _days(where, params, from_day, to_day)
        if kinds:
            where.append("kind IN (" + ", ".join("?" * len(kinds)) + ")")
            params.extend(kinds)
        page = self._page(
            "SELECT * FROM {royalties}",
            where,
            params,
            ["at", "reference", "unit_id", "role"],
            cursor,
            limit,
            _royalty,
        )
        totals = self._rows(
            "SELECT good_id, kind, currency, COUNT(*) AS lines, SUM(amount) AS amount "
            "FROM {royalties} WHERE "
            + " AND ".join(where)
            + " GROUP BY good_id, kind, currency ORDER BY good_id, kind, currency",
            params,
        )
        return {
            "creator": creator,
            "from": from_day,
            "to": to_day,
            "good_id": good_id,
            "totals": [
                {
                    "good_id": t["good_id"],
                    "kind": t["kind"],
                    "lines": int(t["lines"]),
                    # Money, as in the items: amount and currency together.
                    "amount": {"amount": int(t["amount"]), "currency": t["currency"]},
                }
                for t in totals
            ],
            **page.to_json(),
        }

    def settlement(
        self, channel: str, *, from_day: str | None = None, to_day: str | None = None
    ) -> list[dict[str, Any]]:
        where, params = _equal(channel=channel)
        _days(where, params, from_day, to_day)
        rows = self._rows(
            "SELECT * FROM {settlement} WHERE "  # noqa: S608
            + " AND ".join(where)
            + " ORDER BY day, currency",
            params,
        )
        return [{k: (int(v) if k in _MONEY_COLUMNS else v) for k, v in r.items()} for r in rows]

    # -- velocity -------------------------------------------------------------
    def velocity(
        self, good_id: str, *, now: datetime, window_minutes: int = 60
    ) -> list[dict[str, Any]]:
        """Units sold per hour over the window, and when each tier would sell out
        at that rate (``None`` when nothing sold in the window)."""
        if not 1 <= window_minutes <= 7 * 24 * 60:
            raise InvalidInputError("window_minutes", "must be between 1 and 10080")
        since = format_timestamp(now - timedelta(minutes=window_minutes))[:16]
        out = []
        for tier in self.stock(good_id):
            sold = self._rows(
                "SELECT COALESCE(SUM(units), 0) AS n FROM {velocity} "
                "WHERE stock_id = ? AND minute >= ?",
                (tier["stock_id"], since),
            )[0]["n"]
            per_hour = int(sold) * 60 / window_minutes
            estimate = None
            if per_hour > 0 and tier["available"] > 0:
                estimate = format_timestamp(now + timedelta(hours=tier["available"] / per_hour))
            elif tier["available"] == 0:
                estimate = tier["last_sale_at"]
            out.append(
                {
                    "tier": tier["tier"],
                    "available": tier["available"],
                    "sold_in_window": int(sold),
                    "window_minutes": window_minutes,
                    "units_per_hour": round(per_hour, 3),
                    "sold_out": tier["sold_out"],
                    "sell_out_estimate": estimate,
                }
            )
        return out


_MONEY_COLUMNS = {"units", "gross", "fees", "royalties", "seller_proceeds", "net"}
SETTLEMENT_CSV_COLUMNS = [
    "channel",
    "day",
    "currency",
    "units",
    "gross",
    "fees",
    "royalties",
    "seller_proceeds",
    "net",
]


def settlement_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SETTLEMENT_CSV_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in SETTLEMENT_CSV_COLUMNS])
    return out.getvalue()


def _channel(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "channel": r["channel"],
        "channel_id": r["channel_id"],
        "name": r["name"],
        # Fixed at registration (the split of every sale through it uses it).
        "fee_bps": int(r["fee_bps"]),
        "registered_at": r["registered_at"],
    }


def _good(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "good_id": r["good_id"],
        "fingerprint": r["fingerprint"],
        "title": r["title"],
        "kind": r["kind"],
        "currency": r["currency"],
        "creators": orjson.loads(r["creators"]),
        "master_id": r["master_id"],
        "minted_at": r["minted_at"],
        "variants": int(r["variants"]),
    }


def good_listing(tiers: list[dict[str, Any]]) -> dict[str, Any]:
    """A good's own sale state, from its tiers' (as :meth:`Views.stock` gives them):
    ``delisted`` when every tier is, ``paused`` while the good's pause is in
    force (each tier carries it), else ``on-sale`` -- a tier may still be
    paused or delisted on its own."""
    pauses = [t["paused"]["good"] for t in tiers if "good" in t["paused"]]
    if tiers and all(t["delisted"] is not None for t in tiers):
        delisted = [t["delisted"] for t in tiers if t["delisted"]["scope"] == "good"]
        return {"sale_state": "delisted", "paused": None, "delisted": (delisted or [None])[0]}
    state = "paused" if pauses else "on-sale"
    return {"sale_state": state, "paused": pauses[0] if pauses else None, "delisted": None}


def _stock(r: dict[str, Any]) -> dict[str, Any]:
    available = int(r["available"])
    prices = orjson.loads(r["prices"]) if r["prices"] is not None else None
    return {
        "stock_id": r["stock_id"],
        "good_id": r["good_id"],
        "tier": r["tier"],
        "quota": int(r["supply"]),
        "lifetime_cap": int(r["lifetime_cap"]),
        "restockable": bool(r["restockable"]),
        "transferable": bool(r["transferable"]),
        "issued": int(r["issued"]),
        "reserved": int(r["reserved"]),
        "pooled": int(r["pooled"]),
        "available": available,
        "sold_out": available <= 0,
        "band": r["band"],
        "display": display(r["band"], available),
        "sold_total": int(r["sold_total"]),
        "returned_total": int(r["returned_total"]),
        "first_sale_at": r["first_sale_at"],
        "last_sale_at": r["last_sale_at"],
        "sale_state": r["sale_state"],
        "paused": orjson.loads(r["paused"]),
        "delisted": orjson.loads(r["delisted"]) if r["delisted"] is not None else None,
        "unlock": orjson.loads(r["unlock"]) if r["unlock"] is not None else None,
        "unlocked_at": r["unlocked_at"],
        "prices": prices,
        "price_now": None
        if prices is None
        else price_in_force(prices, int(r["sold_total"]), datetime.now(UTC)),
        "updated_at": r["updated_at"],
        "position": int(r["position"]),
    }


# A unit with its tier's edition size (the stock's, opened with the good,
# so always there): "No. k of N" (ledger.domain.edition).
_UNITS = (
    "SELECT u.*, s.lifetime_cap AS edition_of, s.restockable AS edition_restockable "
    "FROM {units} u JOIN {stock} s ON s.good_id = u.good_id AND s.tier = u.tier"
)


def _unit(r: dict[str, Any]) -> dict[str, Any]:
    serial = int(r["serial"])
    return {
        "unit_id": r["unit_id"],
        "good_id": r["good_id"],
        "tier": r["tier"],
        "serial": serial,
        "edition": edition(
            serial, edition_size(int(r["edition_of"]), bool(r["edition_restockable"]))
        ),
        "holder": r["holder"],
        "transferable": bool(r["transferable"]),
        "events": int(r["events"]),
        "updated_at": r["updated_at"],
    }


def _unit_event(r: dict[str, Any]) -> dict[str, Any]:
    price = None if r["amount"] is None else {"amount": int(r["amount"]), "currency": r["currency"]}
    return {
        "version": int(r["version"]),
        "position": int(r["position"]),
        "type": r["type"],
        "at": r["at"],
        "reference": r["reference"],
        "from": r["holder_before"],
        "to": r["holder_after"],
        "channel": r["channel"],
        "price": price,
        "split": orjson.loads(r["split"]),
        "event_hash": r["event_hash"],
    }


def _hold(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "hold_id": r["hold_id"],
        "good_id": r["good_id"],
        "tier": r["tier"],
        "channel": r["channel"],
        "quantity": int(r["quantity"]),
        "expires_at": r["expires_at"],
        "state": r["state"],
        "committed": int(r["committed"]),
        "sale_id": r["sale_id"],
        "refunds_owed": int(r["refunds_owed"]),
        "reserved_at": r["reserved_at"],
        "updated_at": r["updated_at"],
    }


def _royalty(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": r["at"],
        "day": r["day"],
        "kind": r["kind"],
        "reference": r["reference"],
        "good_id": r["good_id"],
        "unit_id": r["unit_id"],
        "role": r["role"],
        "amount": {"amount": int(r["amount"]), "currency": r["currency"]},
        "price": {"amount": int(r["price"]), "currency": r["currency"]},
        "channel": r["channel"],
    }
