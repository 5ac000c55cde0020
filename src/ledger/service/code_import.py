"""The code-import use case: a whole input of codes (a file's, or a range),
imported batch by batch, each batch one ``import-codes`` command.

The rules (checking and cutting the input, repeats, codes imported before)
are in :mod:`ledger.domain.code_import`; this finds what the store holds
already and runs the commands. Everything is checked before the first batch
is stored: a repeated code, or one imported before (by another import),
refuses the whole input. A batch an earlier run of the same import recorded
is replayed by its idempotency key, so running an interrupted import again
finishes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.domain.code_import import ImportPlan, check_coded, check_new, check_repeats
from ledger.domain.ids import code_id_for, command_id_for
from ledger.service.answers import Replayed
from ledger.service.ledger import Ledger

OnBatch = Callable[[int, bool], object]  # (codes in the batch, replayed?)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: codes imported now, codes whose batch an earlier
    run had imported (replayed), batches, and the tier's code counts after."""

    imported: int
    replayed: int
    batches: int
    counts: dict[str, Any]


@dataclass(frozen=True)
class CheckedImport:
    """An import whose every code was found new (or in a batch an earlier run
    recorded), ready to run: the plan, the good, the tier, each batch's key."""

    plan: ImportPlan
    good_id: UUID
    tier: str
    keys: list[str]


def check_import(ledger: Ledger, plan: ImportPlan, good_id: str, tier: str) -> CheckedImport:
    """Check ``plan`` against the store before anything is stored: the good
    and tier take codes, no code repeats, none was imported before except in
    a batch an earlier run of this same import recorded (that is replayed)."""
    good = ledger.good(good_id)
    check_coded(good, tier)
    keys = plan.keys(str(good.id), tier)
    refs = ledger.vault.refs(plan.codes)
    check_repeats(plan, refs)
    done = ledger.event_store.existing([command_id_for("", key) for key in keys])
    fresh = [
        position
        for index, key in enumerate(keys)
        if command_id_for("", key) not in done
        for position in plan.positions(index)
    ]
    taken = ledger.event_store.existing([code_id_for(refs[p]) for p in fresh])
    check_new(plan, [p for p in fresh if code_id_for(refs[p]) in taken])
    return CheckedImport(plan, good.id, tier, keys)


def run_import(ledger: Ledger, checked: CheckedImport, on_batch: OnBatch) -> ImportReport:
    """Import the batches in order, one command each; ``on_batch`` hears of
    each once stored (a failure midway leaves the batches before it stored:
    running the same import again finishes it)."""
    imported = replayed = 0
    for batch, key in zip(checked.plan.batches, checked.keys, strict=True):
        answer = ledger.import_codes(
            checked.good_id,
            checked.tier,
            codes=None if batch.range else list(batch.codes),
            code_range=batch.range,
            idempotency_key=key,
        )
        again = isinstance(answer, Replayed)
        if again:
            replayed += len(batch.codes)
        else:
            imported += len(batch.codes)
        on_batch(len(batch.codes), again)
    counts = ledger.code_counts(checked.good_id, checked.tier)
    return ImportReport(imported, replayed, len(checked.plan.batches), counts)
