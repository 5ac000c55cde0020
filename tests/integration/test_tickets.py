"""Flash-sale admission: a place in the queue is a ticket, and the tickets
never promise more units than are left. Also: a process that last saw a
tier sold out still sells what another process freed since."""

from __future__ import annotations

import random
import threading
import time
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain import errors
from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.combiner import Combiner, NoTicket, Request
from ledger.store.database import DatabaseURL
from tests.audit import audit
from tests.strategies import good_spec

EUR = Money(1_000, "EUR")


class FakeStock:
    """A stock the combiner's batches sell from, all or nothing per request."""

    def __init__(self, units: int) -> None:
        self.left = units
        self.lock = threading.Lock()

    def run_batch(self, batch: list[Request]) -> int:
        time.sleep(random.uniform(0, 0.003))  # a transaction's worth of time
        with self.lock:
            for request in batch:
                if request.units <= self.left:
                    self.left -= request.units
                    request.succeed({"units": request.units})
                else:
                    request.fail(errors.SoldOutError("t", request.units, self.left))
            return self.left


@settings(max_examples=25)
@given(
    units=st.integers(0, 40),
    wants=st.lists(st.integers(1, 4), min_size=1, max_size=60),
    threads=st.integers(2, 24),
    batch_max=st.integers(1, 16),
)
def test_a_ticket_behind_others_is_always_backed_by_a_unit(
    units: int, wants: list[int], threads: int, batch_max: int
) -> None:
    """Whoever is queued behind others holds a ticket the stock can honour:
    those requests never end sold out. And no unit is lost to the tickets:
    what is left at the end serves none of those refused."""
    stock = FakeStock(units)
    combiner = Combiner(batch_max)
    key = uuid4()
    results: list[tuple[int, str, int]] = []  # (quantity, outcome, position)
    lock = threading.Lock()
    work = list(wants)

    def buyer() -> None:
        while True:
            with lock:
                if not work:
                    return
                quantity = work.pop()
            request = Request(run=None, units=quantity)
            try:
                combiner.submit(key, request, stock.run_batch, refresh=lambda _key: stock.left)
                outcome = "sold"
            except NoTicket:
                outcome = "no-ticket"
            except errors.SoldOutError:
                outcome = "sold-out"
            with lock:
                results.append((quantity, outcome, request.position))

    pool = [threading.Thread(target=buyer) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len(results) == len(wants)
    assert not [r for r in results if r[1] == "sold-out" and r[2] > 0]
    sold = sum(q for q, outcome, _ in results if outcome == "sold")
    assert sold + stock.left == units
    assert combiner.tickets(key)[1] == 0  # nothing left queued
    if all(q == 1 for q in wants):  # single units: nobody refused while one was left
        assert sold == min(units, len(wants))


@pytest.fixture
def tier(store_url: DatabaseURL) -> Any:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "shop", 500, idempotency_key="c")
        spec = good_spec(
            tiers=[{"name": "own", "quota": 25, "lifetime_cap": 100}], policy="restockable"
        )
        good = str(ledger.mint(spec, idempotency_key="m")["good_id"])
        yield ledger, good


def test_a_flash_sale_hands_out_no_ticket_beyond_the_stock(tier: Any) -> None:
    ledger, good = tier
    outcomes: list[tuple[str, int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(48)

    def buyer(i: int) -> None:
        position = [-1]
        start.wait()
        try:
            ledger.sell(
                good,
                "own",
                buyer=f"b{i}",
                channel="shop",
                quantity=1,
                unit_price=EUR,
                idempotency_key=f"s{i}",
                on_queued=lambda p: position.__setitem__(0, p),
            )
            outcome = "sold"
        except errors.SoldOutError:
            outcome = "sold-out"
        with lock:
            outcomes.append((outcome, position[0], i))

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(96)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for o, _, _ in outcomes if o == "sold") == 25
    # Nobody waited behind others only to hear "sold out" ...
    assert not [p for o, p, _ in outcomes if o == "sold-out" and p > 0]
    # ... those too late were told at once, without a place.
    assert sum(1 for o, p, _ in outcomes if o == "sold-out" and p < 0) > 0
    # A buyer who got a unit and repeats the request (a lost answer) gets it
    # again, though no ticket is left for anyone new.
    lucky = next(i for o, _, i in outcomes if o == "sold")
    replay = ledger.sell(
        good,
        "own",
        buyer=f"b{lucky}",
        channel="shop",
        quantity=1,
        unit_price=EUR,
        idempotency_key=f"s{lucky}",
    )
    assert replay["buyer"] == f"b{lucky}"
    audit(ledger)


def test_units_freed_by_another_process_are_sold_again(store_url: DatabaseURL) -> None:
    """Process A sold the tier out and remembers it so; process B then
    refunds a unit and restocks. A's next buyers must get those units."""
    with Ledger(store_url) as a, Ledger(store_url) as b:
        a.register_channel("shop", "shop", 500, idempotency_key="c")
        spec = good_spec(
            tiers=[{"name": "own", "quota": 3, "lifetime_cap": 10}], policy="restockable"
        )
        good = str(a.mint(spec, idempotency_key="m")["good_id"])
        units = [
            a.sell(
                good,
                "own",
                buyer=f"x{i}",
                channel="shop",
                quantity=1,
                unit_price=EUR,
                idempotency_key=f"s{i}",
            )["units"][0]["unit_id"]
            for i in range(3)
        ]
        with pytest.raises(errors.SoldOutError):
            a.sell(
                good,
                "own",
                buyer="late",
                channel="shop",
                quantity=1,
                unit_price=EUR,
                idempotency_key="late-1",
            )
        b.refund(units[0], reason="r", idempotency_key="rf")
        assert (
            a.sell(
                good,
                "own",
                buyer="late",
                channel="shop",
                quantity=1,
                unit_price=EUR,
                idempotency_key="late-2",
            )["units"][0]["serial"]
            == 1
        )
        b.restock(good, "own", 2, idempotency_key="rs")
        sold = a.sell(
            good,
            "own",
            buyer="later",
            channel="shop",
            quantity=2,
            unit_price=EUR,
            idempotency_key="late-3",
        )
        assert [u["serial"] for u in sold["units"]] == [4, 5]
        audit(a)
