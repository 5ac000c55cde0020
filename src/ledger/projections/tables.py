"""The views' tables.

The views live beside the events (same SQLite file, same PostgreSQL schema)
so a view update and the position it has reached commit in one transaction.
SQL is written once, in the subset SQLite and PostgreSQL share, with ``?``
placeholders and ``{table}`` names filled in per dialect
(:mod:`ledger.store.dialect`): ``proj_<table>`` on SQLite,
``"<schema>".ledger_proj_<table>`` on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.store.dialect import Dialect, Tables

# The views' layout. A store whose views were built by another version is
# rebuilt from zero when a server opens it (the views are derived data).
VIEWS_VERSION = 6

TABLES: dict[str, str] = {
    "meta": "id INTEGER PRIMARY KEY, version INTEGER NOT NULL",
    # One row: how far the views have read the store, and when.
    "position": "id INTEGER PRIMARY KEY, position BIGINT NOT NULL, events BIGINT NOT NULL, "
    "last_event_at TEXT, applied_at TEXT",
    "goods": "good_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, title TEXT NOT NULL, "
    "kind TEXT NOT NULL, currency TEXT NOT NULL, creators TEXT NOT NULL, "
    "master_id TEXT, minted_at TEXT NOT NULL, variants INTEGER NOT NULL, "
    "position BIGINT NOT NULL",
    # The registered channels (a channel's fee never changes once registered).
    "channels": "channel TEXT PRIMARY KEY, channel_id TEXT NOT NULL, name TEXT NOT NULL, "
    "fee_bps BIGINT NOT NULL, registered_at TEXT NOT NULL, position BIGINT NOT NULL",
    "good_creators": "creator TEXT NOT NULL, good_id TEXT NOT NULL, PRIMARY KEY (creator, good_id)",
    "stock": "stock_id TEXT PRIMARY KEY, good_id TEXT NOT NULL, tier TEXT NOT NULL, "
    "supply BIGINT NOT NULL, lifetime_cap BIGINT NOT NULL, restockable INTEGER NOT NULL, "
    "transferable INTEGER NOT NULL, issued BIGINT NOT NULL, reserved BIGINT NOT NULL, "
    "available BIGINT NOT NULL, pooled BIGINT NOT NULL, sold_total BIGINT NOT NULL, "
    "returned_total BIGINT "
    "NOT NULL, band TEXT NOT NULL, first_sale_at TEXT, last_sale_at TEXT, "
    "sale_state TEXT NOT NULL, paused TEXT NOT NULL, delisted TEXT, unlock TEXT, "
    "unlocked_at TEXT, prices TEXT, "
    "updated_at TEXT NOT NULL, position BIGINT NOT NULL, UNIQUE (good_id, tier)",
    "units": "unit_id TEXT PRIMARY KEY, good_id TEXT NOT NULL, tier TEXT NOT NULL, "
    "serial BIGINT NOT NULL, holder TEXT, transferable INTEGER NOT NULL, "
    "events INTEGER NOT NULL, updated_at TEXT NOT NULL, UNIQUE (good_id, tier, serial)",
    # Every event of a unit's life: who held it before and after, at what price.
    "unit_events": "unit_id TEXT NOT NULL, version INTEGER NOT NULL, position BIGINT NOT NULL, "
    "type TEXT NOT NULL, at TEXT NOT NULL, reference TEXT NOT NULL, "
    "holder_before TEXT, holder_after TEXT, channel TEXT, amount BIGINT, "
    "currency TEXT, split TEXT NOT NULL, event_hash TEXT NOT NULL, "
    "PRIMARY KEY (unit_id, version)",
    "lineage": "master_id TEXT NOT NULL, variant_id TEXT NOT NULL, idx INTEGER NOT NULL, "
    "derived_at TEXT NOT NULL, PRIMARY KEY (master_id, variant_id)",
    # Each payment to a creator (or a master's creator): primary proceeds,
    # resale royalties, and their reversals on refund (negative amounts).
    "royalties": "recipient TEXT NOT NULL, role TEXT NOT NULL, good_id TEXT NOT NULL, "
    "unit_id TEXT NOT NULL, kind TEXT NOT NULL, reference TEXT NOT NULL, "
    "at TEXT NOT NULL, day TEXT NOT NULL, amount BIGINT NOT NULL, "
    "price BIGINT NOT NULL, currency TEXT NOT NULL, channel TEXT, "
    "position BIGINT NOT NULL, "
    "PRIMARY KEY (recipient, role, reference, unit_id)",
    "settlement": "channel TEXT NOT NULL, day TEXT NOT NULL, currency TEXT NOT NULL, "
    "units BIGINT NOT NULL, gross BIGINT NOT NULL, fees BIGINT NOT NULL, "
    "royalties BIGINT NOT NULL, seller_proceeds BIGINT NOT NULL, "
    "net BIGINT NOT NULL, PRIMARY KEY (channel, day, currency)",
    # Every reservation and how it ended (held, committed, released, expired).
    "holds": "hold_id TEXT PRIMARY KEY, stock_id TEXT NOT NULL, good_id TEXT NOT NULL, "
    "tier TEXT NOT NULL, channel TEXT NOT NULL, quantity BIGINT NOT NULL, "
    "expires_at TEXT NOT NULL, state TEXT NOT NULL, committed BIGINT NOT NULL, "
    "sale_id TEXT, refunds_owed BIGINT NOT NULL, reserved_at TEXT NOT NULL, "
    "updated_at TEXT NOT NULL",
    # Buyers waiting for a restock, in the order they joined.
    "waitlist": "entry_id TEXT PRIMARY KEY, stock_id TEXT NOT NULL, good_id TEXT NOT NULL, "
    "tier TEXT NOT NULL, buyer TEXT NOT NULL, channel TEXT NOT NULL, "
    "quantity BIGINT NOT NULL, state TEXT NOT NULL, joined_at TEXT NOT NULL, "
    "updated_at TEXT NOT NULL, position BIGINT NOT NULL",
    # Channels' pools per stock: unsold units set aside for a channel.
    "pools": "stock_id TEXT NOT NULL, channel TEXT NOT NULL, good_id TEXT NOT NULL, "
    "tier TEXT NOT NULL, free BIGINT NOT NULL, overflow INTEGER NOT NULL, "
    "allotted BIGINT NOT NULL, returned BIGINT NOT NULL, sold BIGINT NOT NULL, "
    "updated_at TEXT NOT NULL, PRIMARY KEY (stock_id, channel)",
    # Primary units sold per stock per minute (refunds subtract).
    "velocity": "stock_id TEXT NOT NULL, minute TEXT NOT NULL, units BIGINT NOT NULL, "
    "PRIMARY KEY (stock_id, minute)",
    # The audit trail: one row per event, who recorded it (its recorded_by;
    # NULLs when it names no one), the good and unit it concerns, and its
    # log leaf's hash (RFC 9162: SHA-256(0x00 || record bytes)).
    "audit": "position BIGINT PRIMARY KEY, aggregate_id TEXT NOT NULL, version BIGINT NOT NULL, "
    "type TEXT NOT NULL, at TEXT NOT NULL, key_id TEXT, role TEXT, subject TEXT, "
    "request_id TEXT, good_id TEXT, unit_id TEXT, leaf_hash TEXT NOT NULL",
}

# (index, table, columns)
INDEXES = [
    ("royalties_by_good", "royalties", "good_id, at"),
    ("royalties_by_recipient_at", "royalties", "recipient, at"),
    ("unit_events_by_ref", "unit_events", "reference"),
    ("units_by_holder", "units", "holder"),
    ("holds_live", "holds", "state, expires_at"),
    ("waitlist_line", "waitlist", "stock_id, state, position"),
    # The audit trail's filters, each in the trail's order (position). Every
    # event adds a row, so each index costs the projector (docs/benchmarks.md):
    # a role has too many rows to gain from one (it narrows the others), and
    # the rows naming no key, good or unit are left out of those indexes.
    ("audit_by_key", "audit", "key_id, position"),
    ("audit_by_subject", "audit", "subject, position"),
    ("audit_by_request", "audit", "request_id, position"),
    ("audit_by_good", "audit", "good_id, position"),
    ("audit_by_unit", "audit", "unit_id, position"),
    ("audit_by_at", "audit", "at"),
]
# Partial indexes: only the rows the condition holds for (a filter
# ``column = ?`` implies it, on SQLite as on PostgreSQL).
PARTIAL = {
    "audit_by_key": "key_id IS NOT NULL",
    "audit_by_good": "good_id IS NOT NULL",
    "audit_by_unit": "unit_id IS NOT NULL",
}


def view_tables(dialect: Dialect) -> Tables:
    """The views' tables in a store of ``dialect``: ``{stock}`` and so on."""
    return Tables.named(dialect, **{name: f"proj_{name}" for name in TABLES})


def create_statements(tables: Tables) -> list[str]:
    """CREATE TABLE and CREATE INDEX for every view (IF NOT EXISTS)."""
    names = tables.names
    return [
        f"CREATE TABLE IF NOT EXISTS {names[name]} ({columns})" for name, columns in TABLES.items()
    ] + [
        f"CREATE INDEX IF NOT EXISTS {tables.dialect.index('proj_' + index)} "
        f"ON {names[table]} ({columns})" + (f" WHERE {PARTIAL[index]}" if index in PARTIAL else "")
        for index, table, columns in INDEXES
    ]


def drop_statements(tables: Tables) -> list[str]:
    return [f"DROP TABLE IF EXISTS {tables.names[name]}" for name in TABLES]


# The columns of the views the projector keeps current row by row, in the
# order it writes them.
STOCK_COLUMNS = (
    "stock_id",
    "good_id",
    "tier",
    "supply",
    "lifetime_cap",
    "restockable",
    "transferable",
    "issued",
    "reserved",
    "available",
    "pooled",
    "sold_total",
    "returned_total",
    "band",
    "first_sale_at",
    "last_sale_at",
    "sale_state",
    "paused",
    "delisted",
    "unlock",
    "unlocked_at",
    "prices",
    "updated_at",
    "position",
)
UNIT_COLUMNS = (
    "unit_id",
    "good_id",
    "tier",
    "serial",
    "holder",
    "transferable",
    "events",
    "updated_at",
)
POOL_COLUMNS = (
    "stock_id",
    "channel",
    "good_id",
    "tier",
    "free",
    "overflow",
    "allotted",
    "returned",
    "sold",
    "updated_at",
)
WAITLIST_COLUMNS = (
    "entry_id",
    "stock_id",
    "good_id",
    "tier",
    "buyer",
    "channel",
    "quantity",
    "state",
    "joined_at",
    "updated_at",
    "position",
)
HOLD_COLUMNS = (
    "hold_id",
    "stock_id",
    "good_id",
    "tier",
    "channel",
    "quantity",
    "expires_at",
    "state",
    "committed",
    "sale_id",
    "refunds_owed",
    "reserved_at",
    "updated_at",
)
ROYALTY_COLUMNS = (
    "recipient",
    "role",
    "good_id",
    "unit_id",
    "kind",
    "reference",
    "at",
    "day",
    "amount",
    "price",
    "currency",
    "channel",
    "position",
)
AUDIT_COLUMNS = (
    "position",
    "aggregate_id",
    "version",
    "type",
    "at",
    "key_id",
    "role",
    "subject",
    "request_id",
    "good_id",
    "unit_id",
    "leaf_hash",
)
SETTLEMENT_SUMS = ("units", "gross", "fees", "royalties", "seller_proceeds", "net")


# Column lists are ours, never input: building the statements is safe.
ADD_ROYALTIES = (
    "INSERT INTO {royalties} AS y ("  # noqa: S608
    + ", ".join(ROYALTY_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * len(ROYALTY_COLUMNS))
    + ") "
    "ON CONFLICT (recipient, role, reference, unit_id) "
    "DO UPDATE SET amount = y.amount + excluded.amount"
)
ADD_AUDIT = (
    "INSERT INTO {audit} ("  # noqa: S608
    + ", ".join(AUDIT_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * len(AUDIT_COLUMNS))
    + ")"
)
ADD_SETTLEMENT = (
    "INSERT INTO {settlement} AS s (channel, day, currency, "  # noqa: S608
    + ", ".join(SETTLEMENT_SUMS)
    + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (channel, day, currency) DO UPDATE SET "
    + ", ".join(f"{c} = s.{c} + excluded.{c}" for c in SETTLEMENT_SUMS)
)


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """INSERT a whole row, or replace every other column of the one there."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {{{table}}} ({', '.join(columns)}) "  # noqa: S608 - our columns
        f"VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
