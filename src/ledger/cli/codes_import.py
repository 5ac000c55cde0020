"""``ledger codes import``: reads a file or a range, runs the import
(:mod:`ledger.service.code_import`, rules in :mod:`ledger.domain.code_import`)
and prints what it did."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.codes import (
    GoodOption,
    KeyringOption,
    TierOption,
    _check_ring_fits,
    _keyring_path,
    _print_code_counts,
)
from ledger.cli.common import (
    DbOption,
    _fail,
    _first_line,
    _load_keyring,
    _progress,
    _store_url,
    console,
)

if TYPE_CHECKING:
    from ledger.domain.code_import import ImportPlan
    from ledger.service.code_import import ImportReport
    from ledger.store.codevault import Keyring
    from ledger.store.database import DatabaseURL


def codes_import(
    good: GoodOption,
    tier: TierOption,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="One code per line (blank lines ignored, surrounding spaces stripped)."
        ),
    ] = None,
    code_range: Annotated[
        str | None,
        typer.Option(
            "--range",
            help="PREFIX:WIDTH:START-END: PREFIX then the counter from START to END, "
            "zero-padded to WIDTH digits (e.g. GAME-:6:1-5000).",
        ),
    ] = None,
    keyring: KeyringOption = None,
    db: DbOption = None,
) -> None:
    """Import redemption codes into a tier, in chunks of 1,000. Each chunk's
    idempotency key comes from the good, the tier, the SHA-256 of the input
    and the chunk's index: running the same import again (after an
    interruption, say) imports nothing twice. The input is checked whole
    first: one bad or already imported code refuses all of it."""
    from ledger.domain.code_import import CODES_PER_BATCH
    from ledger.domain.errors import LedgerError

    if (file is None) == (code_range is None):
        raise _fail("give either --file PATH or --range PREFIX:WIDTH:START-END")
    try:
        plan = _plan(file, code_range)
    except LedgerError as error:
        raise _fail(error.message) from None
    ring_path = _keyring_path(keyring)
    ring = _load_keyring(ring_path)
    url = _store_url(db)
    report = _run(url, ring, ring_path, plan, good, tier)
    console.print(
        f"imported {report.imported:,} code(s) in {report.batches:,} chunk(s) of up to "
        f"{CODES_PER_BATCH:,}"
        + (
            f"; {report.replayed:,} were imported already by an earlier run of this import"
            if report.replayed
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    _print_code_counts(report.counts)


def _plan(file: Path | None, code_range: str | None) -> ImportPlan:
    """The input, checked and cut into chunks."""
    from ledger.domain.code_import import plan_lines, plan_range

    if file is not None:
        texts, lines = _read_codes(file)
        return plan_lines(texts, lines, str(file))
    if code_range is None:
        raise _fail("give either --file PATH or --range PREFIX:WIDTH:START-END")
    return plan_range(*_parse_range(code_range))


def _run(
    url: DatabaseURL, ring: Keyring, ring_path: Path, plan: ImportPlan, good: str, tier: str
) -> ImportReport:
    """Run the import with a progress bar; one line on failure (saying how
    many codes were imported first, if any)."""
    from ledger.domain.actor import Actor, acting
    from ledger.domain.errors import LedgerError
    from ledger.service import Ledger
    from ledger.service.code_import import check_import, run_import
    from ledger.store.codevault import VaultError

    imported = 0
    try:
        with Ledger(url, code_keyring=ring) as ledger, acting(Actor.operator()):
            _check_ring_fits(ledger.vault.key_usage(), ring, ring_path)
            checked = check_import(ledger, plan, good, tier)
            with _progress() as progress:
                task = progress.add_task("importing codes", total=len(plan.codes))

                def on_batch(count: int, replayed: bool) -> None:
                    nonlocal imported
                    imported += 0 if replayed else count
                    progress.update(task, advance=count)

                return run_import(ledger, checked, on_batch)
    except typer.Exit:
        raise
    except (LedgerError, VaultError) as error:
        text = error.message if isinstance(error, LedgerError) else str(error)
        partly = (
            f" ({imported:,} code(s) imported first; run the same import again to finish it)"
            if imported
            else ""
        )
        raise _fail(f"{text}{partly}") from None
    except Exception as error:
        raise _fail(f"cannot import codes at {url.display()}: {_first_line(error)}") from None


def _read_codes(path: Path) -> tuple[list[str], list[int]]:
    """A file's codes (stripped, blank lines skipped) and the line of each."""
    from ledger.domain.errors import InvalidInputError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(f"no codes file at {path}") from None
    except OSError as error:
        raise _fail(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(str(path), "is not text (UTF-8)") from None
    codes, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if stripped := line.strip():
            codes.append(stripped)
            lines.append(number)
    if not codes:
        raise InvalidInputError(str(path), "holds no codes")
    return codes, lines


def _parse_range(text: str) -> tuple[str, int, int, int]:
    from ledger.domain import limits
    from ledger.domain.errors import InvalidInputError

    parts = text.rsplit(":", 2)
    bounds = parts[-1].split("-")
    numbers = [parts[1], *bounds] if len(parts) == 3 else []
    if len(bounds) != 2 or not numbers or not all(n.isascii() and n.isdigit() for n in numbers):
        raise InvalidInputError(
            "--range", f"{text!r} is not PREFIX:WIDTH:START-END (e.g. GAME-:6:1-5000)"
        )
    start, end = int(bounds[0]), int(bounds[1])
    if start > end:
        raise InvalidInputError("--range", "END must not be below START")
    if end - start + 1 > limits.TIER_QUOTA_MAX:
        raise InvalidInputError("--range", f"at most {limits.TIER_QUOTA_MAX:,} codes at once")
    return parts[0], int(parts[1]), start, end
