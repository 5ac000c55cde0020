"""What holders and authority cost a sale: the same in-process sale to
buyers the ledger does not know yet (each sale opens the buyer's account,
one more event in its transaction) and to buyers onboarded before the sale
(``open_account``, untimed: the sale only reads the account and checks the
channel serves it), alternated in one process (issue 14).

    .venv/bin/python -m bench.holders [--backend sqlite|postgres|both]
        [--sales 3000] [--threads 1] [--rounds 4]

Every attempt acts as a channel's API key with a request id of its own (as
the HTTP edge does). Reported per mode, the median over rounds: sales/s
(wall) and the process's CPU time per sale, which another process's load
moves much less than the wall clock. The cost of the rules before accounts
existed is measured across trees (docs/benchmarks.md). Figures only.
"""

from __future__ import annotations

import argparse
import time

from bench.actors import alternate
from bench.common import Figure, main_of
from bench.flash import BENCH_KEY_ID, PRICE, SPEC, drive
from ledger.domain.actor import Actor, acting, reset_actor, set_actor
from ledger.service import Ledger
from ledger.store.database import DatabaseURL

MODES = ("buyers onboarded before", "buyers new (the sale opens the account)")


def one_sale(url: DatabaseURL, sales: int, threads: int, onboarded: bool) -> tuple[float, float]:
    """(sales/s, CPU µs per sale) of ``sales`` single-unit sales."""
    spec = SPEC | {"tiers": [SPEC["tiers"][0] | {"quota": sales}]}
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = str(ledger.mint(spec, idempotency_key="mint")["good_id"])
        if onboarded:
            with acting(Actor.of_key(BENCH_KEY_ID, "channel", "shop", "onboarding")):
                for buyer in range(sales):
                    ledger.open_account(f"b{buyer}", channel="shop", idempotency_key=f"a{buyer}")

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

        cpu = time.process_time()
        seconds, sold, _ = drive(attempt, sales, threads)
        cpu = time.process_time() - cpu
    return sold / seconds, cpu / sold * 1e6


def run(options: argparse.Namespace) -> list[Figure]:
    return alternate(
        options,
        MODES,
        "holders",
        lambda url, mode: one_sale(url, options.sales, options.threads, mode == MODES[0]),
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
