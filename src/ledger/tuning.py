"""Interpreter settings for the processes ``ledger`` runs itself: the
server, the auditor's ``ledger verify`` and their helper processes. The
library never applies them to a process that merely imports it."""

from __future__ import annotations

import gc

# Young collections every 50,000 net allocations instead of the default 700.
# These processes keep many long-lived objects (hot aggregates, caches, the
# verifier's state) and make many short-lived ones, nearly all freed by
# reference counting; at the default the cyclic collector took ~15 % of an
# HTTP flash sale and ~7 % of a verification (docs/benchmarks.md).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Apply :data:`GC_THRESHOLDS` to this process."""
    gc.set_threshold(*GC_THRESHOLDS)
