"""Several OS processes selling one good at once, on both backends.

Correctness must come from the database: each process has its own cache,
locks and combiner, so only the event store's unique (aggregate, version)
key stands between them and an oversell.
"""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from typing import Any

import pytest

from ledger.domain.errors import LedgerError, SoldOutError
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

QUOTA = 300
PROCESSES = 3
THREADS = 8
ATTEMPTS_PER_PROCESS = 160  # 480 attempts, up to 2 units each, on 300 units
DUPLICATED_KEYS = 20  # every process also sends these same requests

pytestmark = pytest.mark.slow


def _buyer_process(url: str, good_id: str, worker: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(worker)
    requests = [
        (f"p{worker}-{i}", f"buyer-{worker}-{i}", rng.choice([1, 1, 2]))
        for i in range(ATTEMPTS_PER_PROCESS)
    ]
    requests += [(f"dup-{i}", f"dup-buyer-{i}", 1) for i in range(DUPLICATED_KEYS)]
    rng.shuffle(requests)
    with Ledger(url) as ledger:

        def buy(request: tuple[str, str, int]) -> tuple[str, Any]:
            key, buyer, quantity = request
            try:
                return key, ledger.sell(
                    good_id,
                    "own",
                    buyer=buyer,
                    channel="shop",
                    quantity=quantity,
                    unit_price=Money(500, "EUR"),
                    idempotency_key=key,
                )
            except SoldOutError:
                return key, "sold-out"
            except LedgerError as error:
                return key, f"{type(error).__name__}: {error}"

        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = dict(pool.map(buy, requests))
        return {"outcomes": outcomes, "retried": ledger.conflicts_retried}


def test_processes_racing_for_one_tier_sell_exactly_the_quota(store_url: DatabaseURL) -> None:
    url = store_url.display()
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="channel")
        good = ledger.mint(
            good_spec(tiers=[{"name": "own", "quota": QUOTA}]), idempotency_key="mint"
        )["good_id"]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        reports = pool.starmap(_buyer_process, [(url, good, w) for w in range(PROCESSES)])

    sold: dict[str, dict[str, Any]] = {}
    refusals: Counter[str] = Counter()
    for report in reports:
        for key, outcome in report["outcomes"].items():
            if isinstance(outcome, dict):
                # A duplicated key must get the same answer in every process.
                assert sold.setdefault(key, outcome) == outcome
            else:
                refusals[outcome.split(":")[0]] += 1
    assert set(refusals) <= {"sold-out"}, f"unexpected refusals: {refusals}"
    serials = sorted(u["serial"] for sale in sold.values() for u in sale["units"])
    assert serials == list(range(1, QUOTA + 1)), "serials must be unique and dense"
    with Ledger(store_url, cache_size=0) as fresh:
        stock = fresh.stock(good, "own")
        assert (stock.issued, stock.available) == (QUOTA, 0)
        for sale in sold.values():
            for unit in sale["units"]:
                assert fresh.unit(unit["unit_id"]).holder == sale["buyer"]
    # The processes really did contend (else this test proves little).
    print("conflicts retried per process:", [r["retried"] for r in reports])
    assert sum(r["retried"] for r in reports) > 0
