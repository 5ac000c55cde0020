"""Importing redemption codes in batches: the rules, without a store.

An import's input (the lines of a file, or a consecutive range) is checked
whole, then cut into batches of ``CODES_PER_BATCH``: each batch is one
command, one transaction. Each batch's idempotency key comes from the good,
the tier, the SHA-256 of the input and the batch's index, so running the
same import again (after an interruption, say) imports nothing twice.
One bad, repeated or already imported code refuses all of it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.domain.code import check_code, code_range
from ledger.domain.errors import CodeStateError, DuplicateCodeError, DuplicateImportError
from ledger.domain.good import Good
from ledger.domain.stock import REDEMPTION_CODE

CODES_PER_BATCH = 1_000  # codes in one import command (one transaction)


@dataclass(frozen=True)
class Batch:
    """One import command: a list of codes, or the range they were made from
    (``prefix``, ``width``, ``start``, ``end``), which the command is given instead."""

    codes: tuple[str, ...]
    range: dict[str, Any] | None = None


@dataclass(frozen=True)
class ImportPlan:
    """An import's input, checked and cut into batches. ``places`` names each
    code's place in the input (a file's line, or a place in the range) for
    messages; ``digest`` is the SHA-256 of the input, laid out canonically."""

    batches: tuple[Batch, ...]
    places: tuple[int, ...]
    digest: str
    file: str | None = None  # the file's name (None: a range)

    @property
    def codes(self) -> list[str]:
        """Every code of the input, in order."""
        return [code for batch in self.batches for code in batch.codes]

    def where(self, position: int) -> str:
        """Where the code at ``position`` (from 0) sits in the input."""
        place = self.places[position]
        if self.file is not None:
            return f"line {place} of {self.file}"
        return f"code #{place} of the range"

    def keys(self, good_id: str, tier: str) -> list[str]:
        """Each batch's idempotency key."""
        return [
            f"codes-{good_id}-{tier}-{self.digest[:32]}-{index}"
            for index in range(len(self.batches))
        ]

    def positions(self, index: int) -> range:
        """The positions (in :attr:`codes`) of batch ``index``'s codes."""
        start = index * CODES_PER_BATCH
        return range(start, start + len(self.batches[index].codes))


def plan_lines(texts: Sequence[str], lines: Sequence[int], file: str) -> ImportPlan:
    """An import of a file's codes (``texts``, each on line ``lines[i]``)."""
    for text, line in zip(texts, lines, strict=True):
        check_code(text, field=f"{file} line {line}")
    source = "\n".join(texts) + "\n"
    batches = tuple(
        Batch(tuple(texts[i : i + CODES_PER_BATCH])) for i in range(0, len(texts), CODES_PER_BATCH)
    )
    return ImportPlan(batches, tuple(lines), _sha256(source), file)


def plan_range(prefix: str, width: int, start: int, end: int) -> ImportPlan:
    """An import of ``prefix`` then the counter from ``start`` to ``end``,
    zero-padded to ``width`` digits: one range per batch."""
    batches = []
    for low in range(start, end + 1, CODES_PER_BATCH):
        piece: dict[str, Any] = {
            "prefix": prefix,
            "width": width,
            "start": low,
            "end": min(low + CODES_PER_BATCH - 1, end),
        }
        batches.append(Batch(tuple(code_range(**piece)), piece))
    source = f"range {prefix}:{width}:{start}-{end}\n"
    return ImportPlan(tuple(batches), tuple(range(1, end - start + 2)), _sha256(source))


def check_coded(good: Good, tier: str) -> None:
    """Refuse codes for a tier the good lacks, or a good whose units carry none."""
    good.tier(tier)
    if good.spec.kind != REDEMPTION_CODE:
        raise CodeStateError(
            f"good {good.id} is a {good.spec.kind}, not a "
            f"{REDEMPTION_CODE}: its units carry no codes"
        )


def first_repeat(refs: Sequence[str]) -> tuple[int, int] | None:
    """The first position whose ref was listed before, and that earlier
    position (None: every ref is new)."""
    first_at: dict[str, int] = {}
    for position, ref in enumerate(refs):
        if (earlier := first_at.setdefault(ref, position)) != position:
            return position, earlier
    return None


def check_batch_repeats(refs: Sequence[str]) -> None:
    """Refuse one batch (one command) that lists a code twice."""
    repeat = first_repeat(refs)
    if repeat is not None:
        position, earlier = repeat
        raise DuplicateCodeError(position, f"listed before, as #{earlier + 1}")


def check_repeats(plan: ImportPlan, refs: Sequence[str]) -> None:
    """Refuse an input that lists one code twice."""
    repeat = first_repeat(refs)
    if repeat is not None:
        position, earlier = repeat
        raise DuplicateImportError(
            position, f"{plan.where(position)} repeats {plan.where(earlier)}; nothing imported"
        )


def check_new(plan: ImportPlan, taken: Sequence[int]) -> None:
    """Refuse an input of which some codes were imported before: ``taken``,
    their positions (of batches an earlier run of the same import did not
    record: those are replayed, not imported again)."""
    if taken:
        first = min(taken)
        raise DuplicateImportError(
            first,
            f"{len(taken):,} code(s) were imported before, the first at "
            f"{plan.where(first)}; nothing imported",
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
