"""What the Commerce II rules cost a sale (issue 18: pause/resume/delist,
unlock tiers, price rules by sell-through): the same in-process single-unit
sale on a tier with none of them, and on a tier that was paused and resumed,
unlocked by another tier's sale, and priced by a schedule (each sale checks
that it is listed, open, and at the price in force), alternated in one
process, each round on fresh stores.

    .venv/bin/python -m bench.commerce [--backend sqlite|postgres|both]
        [--sales 3000] [--threads 1] [--rounds 4]

Reported per mode, the median over rounds: sales/s (wall) and the process's
CPU time per sale, the second mode against the first. Figures only.
"""

from __future__ import annotations

import argparse
import time

from bench.actors import alternate
from bench.common import Figure, main_of
from bench.flash import BENCH_KEY_ID, PRICE, SPEC, drive
from ledger.domain.actor import Actor, reset_actor, set_actor
from ledger.service import Ledger
from ledger.store.database import DatabaseURL

MODES = ("a tier with no rules", "a tier resumed, unlocked and price-scheduled")


def one_sale(url: DatabaseURL, sales: int, threads: int, ruled: bool) -> tuple[float, float]:
    """(sales/s, CPU µs per sale) of ``sales`` single-unit sales."""
    drop = SPEC["tiers"][0] | {"quota": sales}
    tiers = [drop]
    if ruled:
        tiers = [drop | {"unlock": {"tier": "gate", "sold": 1}}, {"name": "gate", "quota": 1}]
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = str(ledger.mint(SPEC | {"tiers": tiers}, idempotency_key="mint")["good_id"])
        if ruled:  # untimed: the rules set up, and the tier opened
            ledger.pause(good, "drop", reason="bench", idempotency_key="p")
            ledger.resume(good, "drop", reason="bench", idempotency_key="r")
            steps = [{"price": PRICE.to_json()}]
            steps.append({"after_sold": sales + 1, "price": {"amount": 1, "currency": "EUR"}})
            ledger.set_prices(good, "drop", steps=steps, idempotency_key="prices")
            ledger.sell(
                good, "gate", buyer="g", channel="shop", quantity=1, unit_price=PRICE,
                idempotency_key="gate",
            )  # fmt: skip
            ledger.sell(
                good,
                "drop",
                buyer="o",
                channel="shop",
                quantity=1,
                unit_price=PRICE,
                idempotency_key="opening",
            )  # fmt: skip (records the unlocking; the timed sales find the tier open)

        def attempt(buyer: int) -> bool:
            token = set_actor(Actor.of_key(BENCH_KEY_ID, "channel", "shop", f"req-{buyer}"))
            try:
                ledger.sell(
                    good,
                    "drop",
                    buyer=f"b{buyer}",
                    channel="shop",
                    quantity=1,
                    unit_price=PRICE,
                    idempotency_key=f"order-{buyer}",
                )
            finally:
                reset_actor(token)
            return True

        timed = sales - 1 if ruled else sales
        cpu = time.process_time()
        seconds, sold, _ = drive(attempt, timed, threads)
        cpu = time.process_time() - cpu
    return sold / seconds, cpu / sold * 1e6


def run(options: argparse.Namespace) -> list[Figure]:
    return alternate(
        options,
        MODES,
        "commerce",
        lambda url, mode: one_sale(url, options.sales, options.threads, mode == MODES[1]),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sales", type=int, default=3_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
