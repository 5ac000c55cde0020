"""What naming the actor costs a sale: the same in-process sale with and
without an actor, alternated in one process (issue 14 item 5).

    .venv/bin/python -m bench.actors [--backend sqlite|postgres|both]
        [--sales 3000] [--threads 1] [--rounds 4]

Each round runs the sale twice on fresh stores, in turn: *without* an actor
(events carry no ``recorded_by``: the bytes and the work of the ledger
before actors) and *with* one (each attempt acts as a channel's API key with
a request id of its own, as a request to the server does). Reported per
mode, the median over rounds: sales/s (wall) and the process's CPU time per
sale -- which another process's load on the machine moves much less than
the wall clock. Figures only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench.common import Figure, ensure_postgres, fresh_store, main_of
from bench.flash import BENCH_KEY_ID, PRICE, SPEC, drive
from ledger.domain.actor import Actor, reset_actor, set_actor
from ledger.service import Ledger
from ledger.store.database import DatabaseURL

MODES = ("without actor", "with actor")


def one_sale(url: DatabaseURL, sales: int, threads: int, actor: bool) -> tuple[float, float]:
    """(sales/s, CPU µs per sale) of ``sales`` single-unit sales."""
    spec = SPEC | {"tiers": [SPEC["tiers"][0] | {"quota": sales}]}
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = str(ledger.mint(spec, idempotency_key="mint")["good_id"])

        def attempt(buyer: int) -> bool:
            token = (
                set_actor(Actor.of_key(BENCH_KEY_ID, "channel", "shop", f"req-{buyer}"))
                if actor
                else None
            )
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
                if token is not None:
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
        "actors",
        lambda url, mode: one_sale(url, options.sales, options.threads, mode == MODES[1]),
    )


def alternate(
    options: argparse.Namespace,
    modes: tuple[str, str],
    name: str,
    sale: Callable[[DatabaseURL, str], tuple[float, float]],
) -> list[Figure]:
    """Each round, ``sale(url, mode)`` -- (sales/s, CPU µs per sale) -- once
    per mode, each on a fresh store; the medians, the second mode against
    the first (``bench.holders`` uses it too)."""
    backends = ["sqlite", "postgres"] if options.backend == "both" else [options.backend]
    figures: list[Figure] = []
    for backend in backends:
        if backend == "postgres":
            ensure_postgres()
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        cpus: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(options.rounds):
            for mode in modes:
                with fresh_store(backend, name) as url:
                    rate, cpu = sale(url, mode)
                rates[mode].append(rate)
                cpus[mode].append(cpu)
        group = f"sale, {backend}, {options.sales:,} sales, {options.threads} thread(s)"
        figures += _figures(group, modes, rates, cpus)
    return figures


def _figures(
    group: str,
    modes: tuple[str, str],
    rates: dict[str, list[float]],
    cpus: dict[str, list[float]],
) -> list[Figure]:
    median: Callable[[list[float]], float] = statistics.median
    figures: list[Figure] = []
    for kind, values, unit in (("sales/s", rates, "sales/s"), ("CPU", cpus, "µs/sale")):
        notes = {m: ", ".join(f"{v:,.0f}" for v in values[m]) for m in modes}
        base = Figure(group, f"{modes[0]} {kind}", median(values[modes[0]]), unit)
        base.note = notes[modes[0]]
        figures += [
            base,
            Figure(
                group,
                f"{modes[1]} {kind}",
                median(values[modes[1]]),
                unit,
                base,
                note=notes[modes[1]],
            ),
        ]
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sales", type=int, default=3_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
