"""The auditor's verification: ``ledger verify --db`` over a million events.

    .venv/bin/python -m bench.verify [--events 1000000] [--rss-events 10000000 | --skip-slow]
        [--keep DIR] [--repeat 1]

It builds a valid ledger store of ``--events`` events on SQLite without the
service: the domain aggregates run in memory exactly as the service drives
them (``Ledger._sell_units`` and friends: the same aggregates, the same
events in the same order within each command), and their stored events are
bulk-inserted into the event store's own table (``stored_events``, created
by :class:`~ledger.store.eventstore.EventStore`), a command per transaction
in the log's order. The mix: three channels; goods minted with two tiers
(``own``: transferable, no per-buyer limit; ``view``: not transferable, at
most 4 a buyer, so with allowances), a third of them variants of a master;
primary sales of 1 to 3 units to 200,000 buyers through the channels (stock,
allowance, unit and command record events); resales of recently sold units;
refunds of primary sales (their serials come back and are reissued) and of
resales. The log's Merkle tree is computed as the events are made, and a
checkpoint signed with a fresh log key every 100,000 events and at the end;
the log tables hold what a server's sealer writes -- a ``tlog_leaves`` row
per event, every completed subtree in ``tlog_nodes``, the frontier in
``tlog_state`` -- which the verifier checks against the events
(:mod:`ledger.verify.prooftree`).

Then it measures, each in a child process so that its peak RSS is its own:

* **raw baseline**: the least any verifier must do, on the same file: read
  every row in commit order, splice its record, SHA-256 it (the chain's event
  hash) and fold its leaf hash into an RFC 6962 Merkle root. Events/s.
* **verify**: :func:`ledger.verify.verify_store` with the log key (every
  event's bytes, chain and rules, every checkpoint's root and signature),
  the cyclic collector tuned as ``ledger verify`` tunes it (ledger.tuning):
  events/s and peak RSS, as it runs by default on a large store (two
  processes: :mod:`ledger.verify.pipeline`; the RSS is the two peaks summed)
  and with ``parallel=False`` (one process). Target >= 100,000 events/s and
  <= 256 MB. ``--repeat N`` runs each N times, interleaved; the fastest counts.
* with ``--rss-events M`` (default 10,000,000; ``--skip-slow`` or 0 leaves it
  out): the default verification of a store of M events, for its peak RSS
  (<= 256 MB) and rate.

``--keep DIR`` keeps the built stores there (and reuses them when they are
already there with the same size), so that a rerun measures without
rebuilding. Figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Figure, main_of, wait_quiet
from ledger.domain.channel import Channel
from ledger.domain.command import CommandRecord, request_hash
from ledger.domain.edition import edition
from ledger.domain.good import Good, GoodSpec
from ledger.domain.ids import command_id_for
from ledger.domain.model import Aggregate, Event, format_timestamp
from ledger.domain.money import split
from ledger.domain.stock import BuyerAllowance, TierStock
from ledger.domain.unit import PRIMARY, Unit
from ledger.store.database import DatabaseURL
from ledger.store.eventstore import EventStore
from ledger.store.logstore import LogStore
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Signer
from ledger.tlog.signed_note import sign_note

TARGET_RATE = 100_000  # events/s
TARGET_RSS_MB = 256
ORIGIN = "bench.ledger.example/log"
CHECKPOINT_EVERY = 100_000
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

CHANNELS = (("shop", "The shop", 500), ("live", "Live room", 800), ("partner", "Partner", 300))
BUYERS = 200_000
QUOTA = 20_000  # units per tier of each good
ACTIVE_GOODS = 6  # goods on sale at once
RECENT_UNITS = 20_000  # units a resale or refund picks from
CURRENCY = "EUR"


# ---------------------------------------------------------------------------
# Building a store
# ---------------------------------------------------------------------------
@dataclass
class Built:
    path: Path
    events: int
    commands: int
    seconds: float
    by_type: dict[str, int]
    log_vkey: str
    checkpoints: int


class _Writer:
    """Stored events in, a command (one transaction) at a time, flushed to
    SQLite in big batches; the Merkle tree and checkpoints as they come."""

    def __init__(self, path: Path, signer: Signer) -> None:
        url = DatabaseURL.parse(f"sqlite:///{path}")
        store = EventStore(url)  # the library's own tables (and the log's)
        LogStore(store.recorder, create=True)
        store.close()
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._rows: list[tuple[str, int, str, bytes]] = []
        self._leaves: list[tuple[int, int, str, int]] = []
        self._nodes: list[tuple[int, int, bytes]] = []
        self._tree = merkle.CompactRange()
        self._signer = signer
        self.events = 0
        self.commands = 0
        self.checkpoints = 0
        self.by_type: dict[str, int] = {}

    def command(self, *aggregates: Aggregate) -> None:
        """One command's events, aggregate by aggregate in first-touch order."""
        self.commands += 1
        for aggregate in aggregates:
            for event in aggregate.collect_events():
                self._add(event)

    def _add(self, event: Event) -> None:
        state = event.state
        self._rows.append((event.originator_id.hex, event.originator_version, event.TYPE, state))
        # Leaf i is the event at position i + 1 (rowids from 1, in order).
        self._leaves.append(
            (
                self._tree.size,
                self._tree.size + 1,
                str(event.originator_id),
                event.originator_version,
            )
        )
        self._nodes.extend(self._tree.append(merkle.leaf_hash(event.record)))
        self.events += 1
        self.by_type[event.TYPE] = self.by_type.get(event.TYPE, 0) + 1
        if len(self._rows) >= 50_000:
            self._flush()
        if self.events % CHECKPOINT_EVERY == 0:
            self._checkpoint()

    def _flush(self) -> None:
        with self._db:
            self._db.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", self._rows)
            self._db.executemany(
                "INSERT INTO tlog_leaves (leaf_index, position, aggregate_id, "
                "version) VALUES (?, ?, ?, ?)",
                self._leaves,
            )
            self._db.executemany(
                "INSERT INTO tlog_nodes (level, idx, hash) VALUES (?, ?, ?)", self._nodes
            )
            self._db.execute("DELETE FROM tlog_state")
            self._db.execute(
                "INSERT INTO tlog_state (id, size, last_position, frontier) VALUES (1, ?, ?, ?)",
                (self._tree.size, self._tree.size, json.dumps(self._tree.to_json())),
            )
        self._rows, self._leaves, self._nodes = [], [], []

    def _checkpoint(self) -> None:
        self._flush()
        size, root = self._tree.size, self._tree.root()
        note = sign_note(Checkpoint(ORIGIN, size, root).body(), [self._signer])
        with self._db:
            self._db.execute(
                "INSERT INTO tlog_checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?)",
                (size, root, note, format_timestamp(START)),
            )
        self.checkpoints += 1

    def close(self) -> None:
        if self._tree.size % CHECKPOINT_EVERY:
            self._checkpoint()
        self._flush()
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()


def _spec(number: int, *, master: bool) -> GoodSpec:
    data: dict[str, Any] = {
        "title": f"Good No. {number}",
        "creators": [
            {"id": f"creator-{number % 97}", "share_bps": 7_000},
            {"id": f"creator-{(number + 1) % 97}", "share_bps": 3_000},
        ],
        "content_digest": "sha256:" + hashlib.sha256(str(number).encode()).hexdigest(),
        "kind": "collectible",
        "currency": CURRENCY,
        "edition": {"policy": "absolute"},
        "royalty": {"resale_bps": 1_000},
        "tiers": [
            {"name": "own", "quota": QUOTA, "transferable": True},
            {"name": "view", "quota": QUOTA, "transferable": False, "per_buyer_limit": 4},
        ],
        "metadata": {"series": f"s{number % 10}", "number": number},
    }
    if master:
        data["variant_rules"] = {
            "max_variants": 1_000,
            "max_supply_per_variant": QUOTA,
            "master_primary_bps": 1_000,
            "master_resale_bps": 500,
        }
    return GoodSpec.from_json(data)


class _Generator:
    """Commands as the service runs them, on in-memory aggregates."""

    def __init__(self, writer: _Writer, seed: int) -> None:
        self.w = writer
        self.rng = random.Random(seed)
        self.clock = START
        self.keys = 0
        self.goods_minted = 0
        self.channels: dict[str, Channel] = {}
        self.master: Good | None = None
        self.on_sale: list[tuple[Good, TierStock]] = []  # (good, stock) with units left
        self.allowances: dict[tuple[Any, str], BuyerAllowance] = {}
        self.recent: deque[Unit] = deque(maxlen=RECENT_UNITS)
        self.returned: dict[tuple[Any, int], Unit] = {}  # refunded primary units, by serial
        self.splits: dict[tuple[Any, str, int, str | None], list[dict[str, Any]]] = {}

    def now(self) -> datetime:
        self.clock += timedelta(microseconds=self.rng.randrange(50, 900))
        return self.clock

    def key(self) -> str:
        self.keys += 1
        return f"bench-{self.keys}"

    def record(
        self, command: str, key: str, args: dict[str, Any], result: dict[str, Any], now: datetime
    ) -> CommandRecord:
        return CommandRecord.record(
            scope="",
            key=key,
            command=command,
            request_hash=request_hash(command, args),
            result=result,
            now=now,
        )

    # -- commands -------------------------------------------------------------
    def register_channels(self) -> None:
        for channel, name, fee in CHANNELS:
            now = self.now()
            registered = Channel.register(channel, name, fee, now)
            self.channels[channel] = registered
            args = {"channel": channel, "name": name, "fee_bps": fee}
            result = {"channel": channel, "channel_id": str(registered.id), "fee_bps": fee}
            self.w.command(
                registered, self.record("register-channel", self.key(), args, result, now)
            )

    def mint(self) -> None:
        now = self.now()
        number = self.goods_minted
        self.goods_minted += 1
        key = self.key()
        derived_from = self.master if number % 3 == 2 else None
        spec = _spec(number, master=derived_from is None and number % 3 == 0)
        if derived_from is not None:
            good = derived_from.derive_variant(spec, now)
            args: dict[str, Any] = {"master_id": str(derived_from.id), "spec": spec.to_json()}
            command = "derive-variant"
        else:
            good = Good.mint(spec, now)
            args = {"spec": spec.to_json()}
            command = "mint"
            if spec.variant_rules is not None:
                self.master = good
        stocks = [TierStock.open(good, tier.name, now) for tier in good.spec.tiers]
        result: dict[str, Any] = {
            "good_id": str(good.id),
            "fingerprint": good.fingerprint,
            "minted_at": good.definition["minted_at"],
            "tiers": [{"tier": s.tier, "stock_id": str(s.id), "supply": s.supply} for s in stocks],
        }
        if derived_from is not None:
            result["master_id"] = str(derived_from.id)
        touched: list[Aggregate] = [derived_from] if derived_from is not None else []
        self.w.command(*touched, good, *stocks, self.record(command, key, args, result, now))
        self.on_sale += [(good, stock) for stock in stocks]

    def _split(
        self, good: Good, channel: Channel, amount: int, seller: str | None
    ) -> list[dict[str, Any]]:
        cache_key = (good.id, channel.channel, amount, seller)
        parts = self.splits.get(cache_key)
        if parts is None:
            if len(self.splits) > 50_000:
                self.splits.clear()
            shares = (
                good.primary_shares(channel.channel, channel.fee_bps)
                if seller is None
                else good.resale_shares(channel.channel, channel.fee_bps, seller)
            )
            parts = self.splits[cache_key] = split(amount, shares)
        return [dict(part) for part in parts]

    def sell(self) -> None:
        while len(self.on_sale) < 2 * ACTIVE_GOODS:
            self.mint()
        index = self.rng.randrange(len(self.on_sale))
        good, stock = self.on_sale[index]
        quantity = self.rng.choice((1, 1, 1, 1, 1, 1, 1, 2, 2, 3))
        if stock.remaining < quantity:
            self.on_sale.pop(index)
            self.allowances = {k: v for k, v in self.allowances.items() if k[0] != stock.id}
            return
        buyer = f"buyer-{self.rng.randrange(BUYERS)}"
        via = self.channels[self.rng.choice(CHANNELS)[0]]
        amount = self.rng.choice((990, 1_500, 2_500, 4_900, 12_000))
        price = {"amount": amount, "currency": CURRENCY}
        allowance = None
        if stock.per_buyer_limit is not None:
            allowance = self.allowances.get((stock.id, buyer))
            if allowance is not None and allowance.bought + quantity > stock.per_buyer_limit:
                return  # refused: nothing is written
        now = self.now()
        key = self.key()
        sale_id = str(command_id_for("", key))
        parts = self._split(good, via, amount, None)
        first_fresh = stock.next_serial
        serials = stock.sell(
            sale_id=sale_id,
            buyer=buyer,
            channel=via.channel,
            quantity=quantity,
            unit_price=price,
            split=parts,
            now=now,
        )
        touched: list[Aggregate] = [stock]
        if stock.per_buyer_limit is not None:
            if allowance is None:
                allowance = BuyerAllowance.start(stock, buyer, now)
                self.allowances[(stock.id, buyer)] = allowance
            allowance.count(quantity, sale_id, now)
            touched.append(allowance)
        units = []
        for serial in serials:
            unit = self.returned.pop((stock.id, serial), None) if serial < first_fresh else None
            if unit is None:
                unit = Unit.issue(
                    good_id=good.id,
                    tier=stock.tier,
                    serial=serial,
                    transferable=stock.transferable,
                    buyer=buyer,
                    sale_id=sale_id,
                    channel=via.channel,
                    price=price,
                    split=parts,
                    now=now,
                )
            else:
                unit.reissue(
                    buyer=buyer,
                    sale_id=sale_id,
                    channel=via.channel,
                    price=price,
                    split=parts,
                    now=now,
                )
            units.append(unit)
        args = {
            "good_id": str(good.id),
            "tier": stock.tier,
            "buyer": buyer,
            "channel": via.channel,
            "quantity": quantity,
            "unit_price": price,
        }
        size = good.edition_size(stock.tier)
        result = {
            "sale_id": sale_id,
            "good_id": str(good.id),
            "tier": stock.tier,
            "buyer": buyer,
            "channel": via.channel,
            "quantity": quantity,
            "unit_price": price,
            "split_per_unit": parts,
            "units": [
                {"unit_id": str(u.id), "serial": u.serial, "edition": edition(u.serial, size)}
                for u in units
            ],
            "sold_at": format_timestamp(now),
        }
        self.w.command(*touched, *units, self.record("sell", key, args, result, now))
        self.recent.extend(units)

    def _pick_held(self) -> Unit | None:
        for _ in range(4):
            if not self.recent:
                return None
            unit = self.recent[self.rng.randrange(len(self.recent))]
            if unit.holder is not None:
                return unit
        return None

    def resell(self) -> None:
        unit = self._pick_held()
        if unit is None or not unit.transferable:
            return
        seller = unit.holder
        assert seller is not None
        buyer = f"buyer-{self.rng.randrange(BUYERS)}"
        if buyer == seller:
            return
        good = self._good_of(unit)
        if good is None:
            return
        via = self.channels[self.rng.choice(CHANNELS)[0]]
        amount = self.rng.choice((1_200, 3_000, 5_000, 20_000))
        price = {"amount": amount, "currency": CURRENCY}
        now = self.now()
        key = self.key()
        resale_id = str(command_id_for("", key))
        parts = self._split(good, via, amount, seller)
        unit.resell(
            resale_id=resale_id,
            seller=seller,
            buyer=buyer,
            channel=via.channel,
            price=price,
            split=parts,
            now=now,
        )
        args = {
            "unit_id": str(unit.id),
            "seller": seller,
            "buyer": buyer,
            "channel": via.channel,
            "price": price,
        }
        result = {
            "resale_id": resale_id,
            "unit_id": str(unit.id),
            "good_id": unit.good_id,
            "tier": unit.tier,
            "serial": unit.serial,
            "edition": edition(unit.serial, good.edition_size(unit.tier)),
            "seller": seller,
            "buyer": buyer,
            "channel": via.channel,
            "price": price,
            "split": parts,
            "resold_at": format_timestamp(now),
        }
        self.w.command(unit, self.record("resell", key, args, result, now))
        self.recent.append(unit)

    def _good_of(self, unit: Unit) -> Good | None:
        for good, _stock in self.on_sale:
            if str(good.id) == unit.good_id:
                return good
        return None

    def _stock_of(self, unit: Unit) -> TierStock | None:
        for good, stock in self.on_sale:
            if str(good.id) == unit.good_id and stock.tier == unit.tier:
                return stock
        return None

    def refund(self) -> None:
        unit = self._pick_held()
        if unit is None:
            return
        stock = self._stock_of(unit)
        if stock is None:  # its tier is sold out and retired here: leave it
            return
        current = unit.current_acquisition()
        allowance = None
        if current["kind"] == PRIMARY and stock.per_buyer_limit is not None:
            allowance = self.allowances.get((stock.id, current["holder"]))
            if allowance is None:
                return
        now = self.now()
        key = self.key()
        refund_id = str(command_id_for("", key))
        reason = "changed their mind"
        acquisition = unit.refund(refund_id=refund_id, reason=reason, now=now)
        touched: list[Aggregate] = [unit]
        if current["kind"] == PRIMARY:
            stock.take_back(serial=unit.serial, refund_id=refund_id, now=now)
            touched.append(stock)
            self.returned[(stock.id, unit.serial)] = unit
            if allowance is not None:
                allowance.count(-1, refund_id, now)
                touched.append(allowance)
        args = {"unit_id": str(unit.id), "reason": reason}
        result = {
            "refund_id": refund_id,
            "unit_id": str(unit.id),
            "kind": acquisition["kind"],
            "refunded_acquisition": acquisition["id"],
            "holder": acquisition["holder"],
            "returned_to": acquisition["from"],
            "amount": acquisition["price"],
            "refunded_at": format_timestamp(now),
        }
        self.w.command(*touched, self.record("refund", key, args, result, now))

    def run(self, events: int) -> None:
        self.register_channels()
        rng = self.rng
        while self.w.events < events:
            r = rng.random()
            if r < 0.78:
                self.sell()
            elif r < 0.95:
                self.resell()
            else:
                self.refund()


def build_store(path: Path, events: int, *, seed: int = 6) -> Built:
    """A valid store of at least ``events`` events (the last command is whole)."""
    started = time.perf_counter()
    signer = Signer.generate(ORIGIN)
    writer = _Writer(path, signer)
    generator = _Generator(writer, seed)
    generator.run(events)
    writer.close()
    built = Built(
        path,
        writer.events,
        writer.commands,
        time.perf_counter() - started,
        dict(sorted(writer.by_type.items())),
        signer.verifier_key(),
        writer.checkpoints,
    )
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "events": built.events,
                "commands": built.commands,
                "by_type": built.by_type,
                "log_vkey": built.log_vkey,
                "checkpoints": built.checkpoints,
                "seed": seed,
            }
        )
    )
    return built


def stored(path: Path, events: int) -> Built | None:
    """A store built earlier at ``path`` with ``events`` asked for, if any."""
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return None
    data = json.loads(meta.read_text())
    if data["events"] < events or data["events"] > events + 16:
        return None
    return Built(
        path,
        data["events"],
        data["commands"],
        0.0,
        data["by_type"],
        data["log_vkey"],
        data["checkpoints"],
    )


# ---------------------------------------------------------------------------
# Measuring (in child processes)
# ---------------------------------------------------------------------------
# Each measurement runs in a child process of its own, importing only what
# it needs (so that its peak RSS is the verifier's, not this script's): the
# child's code is passed with -c and prints one JSON line.
_PEAK_RSS = """
def peak_rss_mb():  # VmHWM: unlike ru_maxrss, not inherited through fork and exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

CHILD_VERIFY = (
    _PEAK_RSS
    + """
import json, sys, time
from ledger.store.database import DatabaseURL
from ledger.tlog.keys import Verifier
from ledger.verify import pipeline, verify_store

path, vkey, origin, mode = sys.argv[1:5]
from ledger.tuning import tune_gc
tune_gc()  # as ledger verify does
# The second process's peak RSS, read just before it is closed.
second = []
close = pipeline.Prechecker.close
def closing(checker):
    for line in open(f"/proc/{checker._process.pid}/status"):
        if line.startswith("VmHWM:"):
            second.append(int(line.split()[1]) / 1024)
    close(checker)
pipeline.Prechecker.close = closing
started = time.perf_counter()
report = verify_store(DatabaseURL.parse(f"sqlite:///{path}"),
                      log_keys=[Verifier.from_vkey(vkey)], origin=origin,
                      parallel={"auto": None, "one": False, "two": True}[mode])
seconds = time.perf_counter() - started
print(json.dumps({"events": report.events, "seconds": seconds, "ok": report.ok,
                  "findings": report.findings_total,
                  "first": str(report.first) if report.first else None,
                  "checkpoints": (report.log or {}).get("verified"),
                  "processes": 1 + len(second),
                  "rss_mb": peak_rss_mb() + sum(second), "rss_main_mb": peak_rss_mb()}))
"""
)

CHILD_RAW = (
    _PEAK_RSS
    + r"""
import hashlib, json, sqlite3, sys, time

sha256 = hashlib.sha256
path = sys.argv[1]
started = time.perf_counter()
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
frontier, size, last, heads = [], 0, 0, 0
while True:
    rows = db.execute("SELECT rowid, originator_id, originator_version, topic, state "
                      "FROM stored_events WHERE rowid > ? ORDER BY rowid LIMIT 10000",
                      (last,)).fetchall()
    if not rows:
        break
    for _rowid, h, version, topic, state in rows:
        record = b"".join((b'{"aggregate_id":"',
                           f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode(),
                           b'",', state[1:-1], b',"type":"', topic.encode(), b'","version":',
                           str(version).encode(), b"}"))
        heads ^= hash(sha256(record).digest())  # each event's hash, as its chain needs
        node = sha256(b"\x00" + record).digest()  # and its leaf in the tree
        n = size
        while n & 1:
            node = sha256(b"\x01" + frontier.pop() + node).digest()
            n >>= 1
        frontier.append(node)
        size += 1
    last = rows[-1][0]
root = frontier[-1] if frontier else sha256(b"").digest()
for h in reversed(frontier[:-1]):
    root = sha256(b"\x01" + h + root).digest()
print(json.dumps({"events": size, "seconds": time.perf_counter() - started,
                  "root": root.hex(), "rss_mb": peak_rss_mb()}))
"""
)


def _in_child(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode:
        raise RuntimeError(f"a measuring child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def _store_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="ledger-bench-verify-") as directory:
        yield Path(directory)


def _store(directory: Path, events: int, seed: int) -> Built:
    path = directory / f"verify-{events}.db"
    found = stored(path, events)
    if found is not None:
        print(f"  reusing {path} ({found.events:,} events)", flush=True)
        return found
    for stale in (path, path.with_suffix(".json"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    print(f"  building {events:,} events in {path} ...", flush=True)
    built = build_store(path, events, seed=seed)
    print(
        f"  built {built.events:,} events ({built.commands:,} commands, "
        f"{built.checkpoints} checkpoints) in {built.seconds:.1f} s "
        f"({built.events / built.seconds:,.0f} events/s)",
        flush=True,
    )
    return built


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: float(r["seconds"]))


def _verify_figures(
    group: str,
    result: dict[str, Any],
    baseline: Figure | None,
    name: str,
    busy: float | None = None,
) -> list[Figure]:
    rate = result["events"] / result["seconds"]
    note = (
        f"{result['seconds']:.2f} s; ok={result['ok']}, findings {result['findings']}, "
        f"{result['checkpoints']} checkpoints verified"
    )
    if busy is not None:
        note += f"; machine {busy:.0%} busy before"
    if not result["ok"]:
        note += f"; first: {result['first']}"
    processes = result["processes"]
    rss_note = (
        "1 process"
        if processes == 1
        else f"{processes} processes, summed (the verifier's {result['rss_main_mb']:.0f} MB)"
    )
    return [
        Figure(
            group,
            name,
            rate,
            "events/s",
            baseline=baseline,
            target=f">= {TARGET_RATE:,} events/s",
            met=rate >= TARGET_RATE,
            note=note,
        ),
        Figure(
            group,
            f"{name} peak RSS",
            result["rss_mb"],
            "MB",
            target=f"<= {TARGET_RSS_MB} MB",
            met=result["rss_mb"] <= TARGET_RSS_MB,
            note=rss_note,
        ),
    ]


def run(options: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    with _store_dir(options.keep) as directory:
        built = _store(directory, options.events, options.seed)
        busy = wait_quiet()
        raws, ones, twos = [], [], []
        for _ in range(options.repeat):  # interleaved: each sees the machine as the others
            raws.append(_in_child(CHILD_RAW, str(built.path)))
            twos.append(_in_child(CHILD_VERIFY, str(built.path), built.log_vkey, ORIGIN, "two"))
            ones.append(_in_child(CHILD_VERIFY, str(built.path), built.log_vkey, ORIGIN, "one"))
        raw = _best(raws)
        group = f"verify --db, SQLite, {built.events:,} events"
        baseline = Figure(
            group,
            "raw read + SHA-256 + Merkle root",
            raw["events"] / raw["seconds"],
            "events/s",
            note=f"{raw['seconds']:.2f} s, peak RSS {raw['rss_mb']:.0f} MB",
        )
        figures.append(baseline)
        figures += _verify_figures(
            group, _best(twos), baseline, "ledger verify_store (2 processes, the default)", busy
        )
        figures += _verify_figures(
            group, _best(ones), baseline, "ledger verify_store (parallel=False)"
        )
        if options.slow and options.rss_events:
            big = _store(directory, options.rss_events, options.seed)
            busy = wait_quiet()
            group = f"verify --db, SQLite, {big.events:,} events"
            figures += _verify_figures(
                group,
                _in_child(CHILD_VERIFY, str(big.path), big.log_vkey, ORIGIN, "auto"),
                None,
                "ledger verify_store (default)",
                busy,
            )
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        help="events in the store verified for speed (default 1,000,000)",
    )
    parser.add_argument(
        "--rss-events",
        type=int,
        default=10_000_000,
        help="events in the store verified for peak RSS (0: none)",
    )
    parser.add_argument(
        "--skip-slow", dest="slow", action="store_false", help="leave out the --rss-events store"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each measurement (interleaved); the fastest counts",
    )
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--keep", type=Path, default=None, help="build (or reuse) the stores in this directory"
    )


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
