"""The benchmark suite: every figure of issue 6 in one run, one table.

    .venv/bin/pip install -q -e '.[bench]' && .venv/bin/python -m bench
        [--only flash,http,verify,proofs] [--markdown FILE] [--skip-slow]

Runs, in order, each module's ``run`` with its default options (see each
module's docstring: ``python -m bench.<name> --help``) and prints one table
of every figure with its ratio to the baseline measured in the same run and
its target. It finds (or starts) the PostgreSQL server and installs wrk
when it is missing. ``--markdown FILE`` also writes the table as Markdown,
with the date and the command, for ``docs/benchmarks.md``. Figures only:
nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, table

MODULES = ("flash", "http", "verify", "proofs")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(MODULES), help="comma-separated modules to run (default: all)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table here as Markdown")
    parser.add_argument(
        "--skip-slow",
        action="store_true",
        help="leave out the slowest figures (e.g. RSS at 10 M events)",
    )
    options = parser.parse_args()
    chosen = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    started = time.perf_counter()
    figures: list[Figure] = []
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        module_parser = argparse.ArgumentParser(prog=f"bench.{name}")
        module.add_arguments(module_parser)
        module_options = module_parser.parse_args([])
        if options.skip_slow and hasattr(module_options, "slow"):
            module_options.slow = False
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        found = module.run(module_options)
        print(table(found), flush=True)
        print(f"({name}: {time.perf_counter() - began:.0f} s)\n", flush=True)
        figures += found
    print("== all figures")
    print(table(figures))
    elapsed = time.perf_counter() - started
    print(f"\n{len(figures)} figures in {elapsed / 60:.1f} min")
    if options.markdown:
        command = "python -m bench " + " ".join(sys.argv[1:])
        header = (
            f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
            f"({platform.machine()}, Python {platform.python_version()}), "
            f"{elapsed / 60:.1f} min: `{command.strip()}`\n\n"
        )
        options.markdown.write_text(header + table(figures, markdown=True) + "\n")
        print(f"wrote {options.markdown}")


if __name__ == "__main__":
    main()
