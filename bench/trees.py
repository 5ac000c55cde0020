"""The in-process flash sale of two source trees, alternated: how much a
change costs the write path, measured in one run.

    .venv/bin/python -m bench.trees --before ../old-checkout [--rounds 2]
        [--backend sqlite|postgres|both] [--buyers 15342] [--units 10000]

``--before`` is another checkout of this repository (``git worktree add
../old-checkout <commit>``); each round runs ``bench.flash``'s
``ledger_sale`` from that tree and then from this one, each in a fresh
process (its own ``PYTHONPATH``) on a fresh store, and reports sales/s and
the process's CPU time per sale sold -- the figure another process's load
moves least. Figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import Figure, main_of

HERE = Path(__file__).resolve().parents[1]
ONE = """
import json, sys, time
from bench.common import ensure_postgres, fresh_store
from bench.flash import ledger_sale
backend, buyers, units = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if backend == "postgres":
    ensure_postgres()
with fresh_store(backend, "trees") as url:
    cpu = time.process_time()
    sale = ledger_sale(url, buyers, units, 64)
    cpu = time.process_time() - cpu
print(json.dumps({"rate": sale.sold / sale.seconds, "cpu": cpu / sale.sold * 1e6}))
"""


def one(tree: Path, backend: str, buyers: int, units: int) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}
    done = subprocess.run(
        [sys.executable, "-c", ONE, backend, str(buyers), str(units)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(options: argparse.Namespace) -> list[Figure]:
    trees = {"before": Path(options.before).resolve(), "this tree": HERE}
    backends = ["sqlite", "postgres"] if options.backend == "both" else [options.backend]
    figures: list[Figure] = []
    for backend in backends:
        seen: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(options.rounds):
            for name, tree in trees.items():
                seen[name].append(one(tree, backend, options.buyers, options.units))
        group = f"flash sale {options.buyers:,}/{options.units:,}, {backend}, 64 threads"
        for key, unit in (("rate", "sales/s"), ("cpu", "µs/sale")):
            base: Figure | None = None
            for name in trees:
                values = [r[key] for r in seen[name]]
                figure = Figure(
                    group,
                    f"{name} {'sales/s' if key == 'rate' else 'CPU'}",
                    statistics.median(values),
                    unit,
                    base,
                    note=", ".join(f"{v:,.0f}" for v in values),
                )
                base = base or figure
                figures.append(figure)
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--before", required=True, help="another checkout to compare with")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--buyers", type=int, default=15_342)
    parser.add_argument("--units", type=int, default=10_000)


def main() -> None:
    main_of(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
