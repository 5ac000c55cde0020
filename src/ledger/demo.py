"""``ledger demo``: a flash sale on a fresh store, start to verified finish.

Mints a good with two tiers (10,000 ``own``, transferable, at most 2 per
buyer; 1,000 ``view``, not transferable) and one variant (500 ``own``),
fires the purchase attempts at all three from many threads at once through
the service layer, takes a few hundred units to a resale market (the shop
hands them off) and resells them there, then prints what was sold,
refused and (never) oversold, the serials, the royalties per recipient, and
the verdict of a full chain verification.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ledger.domain.actor import Actor, acting, current_actor, set_actor
from ledger.domain.errors import BuyerLimitError, LedgerError, SoldOutError
from ledger.domain.money import Money
from ledger.projections import ProjectionRunner, ProjectionStore, Views
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.store.apikeys import ApiKeyStore
from ledger.store.database import DatabaseURL
from ledger.tlog.keys import Signer
from ledger.verify import verify_store

CURRENCY = "EUR"
MASTER_SPEC: dict[str, Any] = {
    "title": "Aurora",
    "creators": [{"id": "alice", "share_bps": 7000}, {"id": "bob", "share_bps": 3000}],
    "content_digest": "sha256:" + "ab" * 32,
    "kind": "collectible",
    "currency": CURRENCY,
    "edition": {"policy": "absolute"},
    "tiers": [
        {"name": "own", "quota": 10_000, "transferable": True, "per_buyer_limit": 2},
        {"name": "view", "quota": 1_000, "transferable": False},
    ],
    "royalty": {"resale_bps": 1_000},
    "variant_rules": {
        "max_variants": 3,
        "max_supply_per_variant": 500,
        "master_primary_bps": 1_500,
        "master_resale_bps": 300,
    },
    "metadata": {"series": "northern-lights", "edition": 1},
}
VARIANT_SPEC: dict[str, Any] = {
    "title": "Aurora Crimson",
    "creators": [{"id": "carmen", "share_bps": 10_000}],
    "content_digest": "sha256:" + "cd" * 32,
    "kind": "collectible",
    "currency": CURRENCY,
    "edition": {"policy": "absolute"},
    "tiers": [{"name": "own", "quota": 500, "transferable": True}],
    "royalty": {"resale_bps": 800},
}
PRICES = {"own": 2_500, "view": 300, "variant": 4_000}

# The demo writes straight to a store, as an operator at the command line would.
OPERATOR = Actor.operator()


class DemoError(Exception):
    """The demo cannot run (e.g. its store is not empty)."""


@dataclass
class TierTally:
    label: str
    supply: int
    attempts: int = 0
    sold: int = 0
    sold_out: int = 0
    limited: int = 0
    other: int = 0
    replays: int = 0
    serials: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Attempt:
    tally: str
    good_id: str
    tier: str
    buyer: str
    key: str
    price: int
    channel: str
    replay: bool = False


def run_demo(
    url: DatabaseURL,
    *,
    replace: bool,
    attempts: int,
    threads: int,
    resales: int,
    console: Console,
) -> int:
    _prepare(url, replace)
    started = time.perf_counter()
    rng = random.Random(15342)
    console.print(f"[bold]ledger demo[/] on {url.display()}")
    with Ledger(url) as ledger, acting(OPERATOR):
        views = ProjectionStore(ledger.event_store.recorder)
        runner = ProjectionRunner(views)  # the views follow the sale live
        runner.start()
        master, variant = _mint(ledger)
        tallies = {
            "own": TierTally("Aurora/own", 10_000),
            "view": TierTally("Aurora/view", 1_000),
            "variant": TierTally("Crimson/own", 500),
        }
        plan = _plan(attempts, master, variant, rng)
        sale_started = time.perf_counter()
        sales = _flash_sale(ledger, plan, tallies, threads)
        sale_seconds = time.perf_counter() - sale_started
        resold = _resales(ledger, sales, resales, rng)
        tokens = _page_keys(ledger)  # (before the views catch up: they show them too)
        head = views.store_position()
        caught_up = time.perf_counter()
        runner.wait_for(head, timeout=120)
        catch_up_s = time.perf_counter() - caught_up
        runner.stop()
        _print_sale(console, tallies, attempts, threads, sale_seconds, ledger)
        _print_royalties(console, sales, resold)
        _print_views(console, runner, Views(views), master, variant, catch_up_s)
        if _oversold(console, ledger, master, variant):
            return 1
    checked = _check(console, url)
    elapsed = time.perf_counter() - started
    console.print(f"elapsed             {elapsed:.1f} s in total")
    if checked:
        _browse(console, url, tokens)
    return 0 if checked else 1


def demo_files(url: DatabaseURL) -> tuple[Path, Path]:
    """The log's signing key and the pages' API keys the demo leaves beside
    its store (``ledger-demo.log.key``, ``ledger-demo.keys.json``)."""
    store = Path(url.path)
    stem = store.with_suffix("") if store.suffix == ".db" else store
    return Path(f"{stem}.log.key"), Path(f"{stem}.keys.json")


def _page_keys(ledger: Ledger) -> dict[str, str]:
    """An API key each for the creator dashboard, a channel and the auditor console."""
    keys = ApiKeyStore(ledger.event_store.recorder, events=ledger)
    return {
        "creator alice": keys.issue("creator", "alice", "demo: creator dashboard")[1],
        "channel shop": keys.issue("channel", "shop", "demo: the shop")[1],
        "auditor": keys.issue("auditor", None, "demo: auditor console")[1],
    }


def _browse(console: Console, url: DatabaseURL, tokens: dict[str, str]) -> None:
    """Leave what the web pages need: a log key for ``ledger serve`` (kept if
    there is one: a signing key is never overwritten) and the pages' API keys;
    say how to use them."""
    log_key, keys_file = demo_files(url)
    if not log_key.exists():
        log_key.touch(mode=0o600)
        log_key.write_text(Signer.generate("ledger.demo/log").to_private_text() + "\n")
    keys_file.unlink(missing_ok=True)
    keys_file.touch(mode=0o600)
    keys_file.write_text(json.dumps(tokens, indent=2) + "\n")
    console.print(
        f"\n[bold]See it in a browser[/]: ledger serve --db {url.path} --log-key {log_key}\n"
        "then open http://127.0.0.1:8000/ -- the explorer needs no key; sign in with",
        highlight=False,
    )
    for who, token in tokens.items():
        console.print(f"  {who:<14} {token}", highlight=False, soft_wrap=True)
    console.print(f"(also in {keys_file}, readable by you only)", highlight=False)


def _oversold(console: Console, ledger: Ledger, master: str, variant: str) -> bool:
    """Whether a tier issued more than its supply (said so if it did)."""
    for key, good_id, tier in (
        ("own", master, "own"),
        ("view", master, "view"),
        ("variant", variant, "own"),
    ):
        stock = ledger.stock(good_id, tier)
        if stock.issued > stock.supply:
            console.print(f"[bold red]{key}: issued {stock.issued} > supply {stock.supply}")
            return True
    return False


def _check(console: Console, url: DatabaseURL) -> bool:
    """The independent verifier over the chain, and the views against a
    fresh replay: whether both pass (each said)."""
    report = verify_store(url)
    verdict = "[bold green]OK[/]" if report.ok else f"[bold red]FAILED[/]: {report.first}"
    console.print(
        f"\nchain verification  {verdict} — {report.events:,} events, "
        f"{report.aggregates:,} aggregates, {report.elapsed_s:.2f} s"
    )
    with Ledger(url) as ledger:
        replay_started = time.perf_counter()
        replay = compare_with_replay(ProjectionStore(ledger.event_store.recorder, create=False))
        replay_s = time.perf_counter() - replay_started
    same = "[bold green]OK[/]" if replay.ok else "[bold red]DIFFER[/]"
    console.print(
        f"views check         {same} — {sum(replay.rows.values()):,} rows equal a "
        f"fresh replay of {replay.events:,} events, {replay_s:.2f} s"
    )
    return report.ok and replay.ok


def _print_views(
    console: Console,
    runner: ProjectionRunner,
    views: Views,
    master: str,
    variant: str,
    catch_up_s: float,
) -> None:
    lag = runner.lag.summary()

    def ms(value: object) -> str:
        return f"{float(value) * 1_000:.0f} ms" if isinstance(value, int | float) else "-"

    console.print(
        f"\nlive views: followed the sale in {lag['batches']:,} batches; "
        f"commit-to-view lag p50 {ms(lag['p50_seconds'])}, p99 "
        f"{ms(lag['p99_seconds'])}, max {ms(lag['max_seconds'])}; caught up "
        f"{catch_up_s * 1_000:.0f} ms after the last resale"
    )
    for good_id, title in ((master, "Aurora"), (variant, "Crimson")):
        for tier in views.stock(good_id):
            left = f"{tier['available']:,} left"
            shown = "" if tier["display"] == left else f" (buyers see: {tier['display']})"
            console.print(
                f"  {title}/{tier['tier']:<5} {tier['issued']:>6,} of "
                f"{tier['quota']:,} issued, {left}{shown}",
                highlight=False,
            )


def _prepare(url: DatabaseURL, replace: bool) -> None:
    if url.backend != "sqlite":
        raise DemoError("the demo runs on a fresh SQLite file; give --db a .db path")
    path = Path(url.path)
    if path.exists():
        if not replace:
            raise DemoError(f"{path} exists; pass --replace to start the demo afresh")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        demo_files(url)[1].unlink(missing_ok=True)  # keys of the store just deleted


def _mint(ledger: Ledger) -> tuple[str, str]:
    ledger.register_channel("shop", "Aurora web shop", 500, idempotency_key="demo-channel-shop")
    ledger.register_channel("live", "Livestream room 7", 800, idempotency_key="demo-channel-live")
    ledger.register_channel("market", "Resale market", 250, idempotency_key="demo-channel-market")
    master = ledger.mint(MASTER_SPEC, idempotency_key="demo-mint-aurora")
    variant = ledger.derive_variant(
        master["good_id"], VARIANT_SPEC, idempotency_key="demo-variant-crimson"
    )
    return master["good_id"], variant["good_id"]


def _plan(attempts: int, master: str, variant: str, rng: random.Random) -> list[Attempt]:
    """Most attempts go to ``own``; ~12% to ``view``; ~4.5% to the variant.
    About 1% are a client retrying a request it already sent (same key), and
    some buyers try a third ``own`` unit past the per-buyer limit of 2."""
    plan = []
    for i in range(attempts):
        roll = rng.random()
        if roll < 0.045:
            spot = ("variant", variant, "own", "live")
        elif roll < 0.165:
            spot = ("view", master, "view", "shop")
        else:
            spot = ("own", master, "own", "shop" if roll < 0.6 else "live")
        tally, good_id, tier, channel = spot
        buyer = f"buyer-{i:05d}"
        if tally == "own" and i % 50 == 0:
            # Twenty greedy buyers come back for more than the limit of 2
            # (at the shop, whose customers they are: a channel sells only to
            # the accounts it serves).
            buyer, channel = f"greedy-{i % 20:02d}", "shop"
        plan.append(Attempt(tally, good_id, tier, buyer, f"demo-{i}", PRICES[tally], channel))
    for original in rng.sample(plan, k=attempts // 100):
        plan.append(Attempt(**{**original.__dict__, "replay": True}))
    rng.shuffle(plan)
    return plan


def _flash_sale(
    ledger: Ledger, plan: list[Attempt], tallies: dict[str, TierTally], threads: int
) -> list[Mapping[str, Any]]:
    actor = current_actor()  # the pool's threads act as the demo's caller

    def attempt(item: Attempt) -> tuple[Attempt, Mapping[str, Any] | Exception, float]:
        began = time.perf_counter()
        try:
            set_actor(actor)
            outcome: Mapping[str, Any] | Exception = ledger.sell(
                item.good_id,
                item.tier,
                buyer=item.buyer,
                channel=item.channel,
                quantity=1,
                unit_price=Money(item.price, CURRENCY),
                idempotency_key=item.key,
            )
        except LedgerError as error:
            outcome = error
        return item, outcome, time.perf_counter() - began

    results: dict[str, Mapping[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for item, outcome, seconds in pool.map(attempt, plan):
            tally = tallies[item.tally]
            tally.latencies.append(seconds)
            if item.replay:
                tally.replays += 1
                continue
            tally.attempts += 1
            if isinstance(outcome, SoldOutError):
                tally.sold_out += 1
            elif isinstance(outcome, BuyerLimitError):
                tally.limited += 1
            elif isinstance(outcome, Exception):
                tally.other += 1
            else:
                tally.sold += 1
                tally.serials.extend(u["serial"] for u in outcome["units"])
                results[item.key] = outcome
    return list(results.values())


def _resales(
    ledger: Ledger, sales: list[Mapping[str, Any]], count: int, rng: random.Random
) -> list[Mapping[str, Any]]:
    transferable = [s for s in sales if s["tier"] == "own"]
    resold: list[Mapping[str, Any]] = []
    for n, sale in enumerate(rng.sample(transferable, k=min(count, len(transferable)))):
        unit = sale["units"][0]["unit_id"]
        price = Money(rng.randrange(3_000, 12_000), CURRENCY)
        # The holder takes the unit to the market: the shop hands it off.
        ledger.move_unit(
            unit,
            holder=sale["buyer"],
            to_channel="market",
            channel=sale["channel"],
            idempotency_key=f"demo-move-{n}",
        )
        resold.append(
            ledger.resell(
                unit,
                seller=sale["buyer"],
                buyer=f"collector-{n:04d}",
                channel="market",
                price=price,
                idempotency_key=f"demo-resale-{n}",
            )
        )
    return resold


def _print_sale(
    console: Console,
    tallies: dict[str, TierTally],
    attempts: int,
    threads: int,
    seconds: float,
    ledger: Ledger,
) -> None:
    console.print(
        f"\nflash sale: {attempts:,} purchase attempts from {threads} concurrent buyers "
        f"in {seconds:.1f} s ({attempts / seconds:,.0f} attempts/s, "
        f"{ledger.transactions:,} transactions, {ledger.conflicts_retried} conflicts retried)"
    )
    table = Table(show_edge=False)
    for column in (
        "tier",
        "supply",
        "attempts",
        "sold",
        "sold out",
        "over limit",
        "oversold",
        "serials",
    ):
        table.add_column(column, justify="left" if column in ("tier", "serials") else "right")
    latencies: list[float] = []
    replays = other = 0
    for tally in tallies.values():
        serials = sorted(tally.serials)
        dense = serials == list(range(1, len(serials) + 1))
        serial_text = f"1..{serials[-1]} {'dense' if dense else 'GAPS'}" if serials else "-"
        if len(set(serials)) != len(serials):
            serial_text += " DUPLICATES"
        table.add_row(
            tally.label,
            f"{tally.supply:,}",
            f"{tally.attempts:,}",
            f"{tally.sold:,}",
            f"{tally.sold_out:,}",
            f"{tally.limited:,}",
            f"{max(0, tally.sold - tally.supply):,}",
            serial_text,
        )
        latencies.extend(tally.latencies)
        replays += tally.replays
        other += tally.other
    console.print(table)
    latencies.sort()
    console.print(
        f"latency per attempt: p50 {_ms(latencies, 0.50)} ms, p99 {_ms(latencies, 0.99)} ms; "
        f"{replays:,} repeated requests (same idempotency key) got their first answer back; "
        f"other refusals: {other}"
    )


def _ms(sorted_seconds: list[float], q: float) -> str:
    if not sorted_seconds:
        return "-"
    return f"{sorted_seconds[min(len(sorted_seconds) - 1, int(q * len(sorted_seconds)))] * 1e3:.1f}"


def _print_royalties(
    console: Console, sales: list[Mapping[str, Any]], resales: list[Mapping[str, Any]]
) -> None:
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    gross: Counter[str] = Counter()
    for sale in sales:
        for part in sale["split_per_unit"]:
            amount = part["amount"] * sale["quantity"]
            totals[(part["recipient"], part["role"])]["primary"] += amount
        gross["primary"] += sale["unit_price"]["amount"] * sale["quantity"]
    for resale in resales:
        for part in resale["split"]:
            totals[(part["recipient"], part["role"])]["resale"] += part["amount"]
        gross["resale"] += resale["price"]["amount"]
    console.print(f"\nresales: {len(resales):,} through 'market'")
    table = Table(title=f"money per recipient ({CURRENCY}, cents)", show_edge=False)
    for column in ("recipient", "role", "primary", "resales", "total"):
        table.add_column(column, justify="left" if column in ("recipient", "role") else "right")

    def shown(row: tuple[tuple[str, str], Counter[str]]) -> int:
        return -sum(row[1].values())

    seller_rows = Counter[str]()
    for (recipient, role), amounts in sorted(totals.items(), key=shown):
        if role == "seller":
            seller_rows["resale"] += amounts["resale"]
            continue
        table.add_row(
            recipient,
            role,
            f"{amounts['primary']:,}",
            f"{amounts['resale']:,}",
            f"{amounts['primary'] + amounts['resale']:,}",
        )
    table.add_row(
        "(sellers)", "seller", "0", f"{seller_rows['resale']:,}", f"{seller_rows['resale']:,}"
    )
    paid = sum(sum(a.values()) for a in totals.values())
    table.add_row(
        "[bold]all", "", f"{gross['primary']:,}", f"{gross['resale']:,}", f"[bold]{paid:,}"
    )
    console.print(table)
    balanced = paid == gross["primary"] + gross["resale"]
    console.print(f"parts sum to the prices paid: {'yes' if balanced else '[bold red]NO'}")
