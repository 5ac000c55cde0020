"""A short soak (bench/soak.py) through a real ``ledger serve`` on SQLite:
sales, resales and mints, each read back at once. What the client has just
created is never a 404, and nothing answers 5xx."""

from __future__ import annotations

import argparse

import pytest
from bench import soak

pytestmark = pytest.mark.slow


def test_a_short_soak_reads_every_write_back_and_never_fails() -> None:
    parser = argparse.ArgumentParser()
    soak.add_arguments(parser)
    options = parser.parse_args(
        ["--minutes", "0.5", "--rate", "40", "--mint-every", "1", "--rss-every", "15"]
    )
    tally, log_file = soak.soak_once(options)
    served = sum(tally.statuses.values())
    assert tally.journeys > 200, f"the soak hardly ran ({tally.journeys} journeys)"
    assert served >= 4 * tally.journeys  # a sale and its three reads, at least
    failures = "\n".join(
        f"{f.method} {f.path} -> {f.status} ({f.since_write_ms} ms after "
        f"the write; views then {f.views_status}; again {f.later}): "
        f"{f.detail[:200]}"
        for f in tally.failures
    )
    assert not tally.errors, f"{dict(tally.errors)}\n{failures}\nserver log: {log_file}"
    # The server was measured: memory at the start and the end.
    assert len(tally.rss) >= 2
    assert all(mb > 0 for _, mb in tally.rss)
