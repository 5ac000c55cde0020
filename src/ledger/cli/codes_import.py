"""``ledger codes import``: the code-import use case.

It still lives in the CLI (issue 13 item 1 moves it into the domain and the
service); here it is apart from the other code commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from ledger.domain.errors import InvariantError

CODES_PER_CHUNK = 1_000  # codes in one import command (one transaction)


def codes_import(  # noqa: C901, PLR0912, PLR0915 - the use case issue 13 step 1 moves into the service
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
    import hashlib

    from ledger.domain.code import check_code
    from ledger.domain.code import code_range as code_range_of
    from ledger.domain.errors import LedgerError
    from ledger.domain.ids import code_id_for, command_id_for
    from ledger.service import Ledger, Replayed
    from ledger.store.codevault import VaultError

    if (file is None) == (code_range is None):
        raise _fail("give either --file PATH or --range PREFIX:WIDTH:START-END")
    batches: list[tuple[list[str], dict[str, object] | None]] = []  # (codes, sub-range)
    lines: list[int] = []  # each code's line in the file (a range: its place)
    try:
        if file is not None:
            texts, lines = _read_codes(file)
            source = "\n".join(texts) + "\n"
            for index, text in enumerate(texts):
                check_code(text, field=f"{file} line {lines[index]}")
            batches = [
                (texts[i : i + CODES_PER_CHUNK], None)
                for i in range(0, len(texts), CODES_PER_CHUNK)
            ]
        else:
            if code_range is None:
                raise InvariantError("codes import: neither --file nor --range after the check")
            prefix, width, start, end = _parse_range(code_range)
            source = f"range {prefix}:{width}:{start}-{end}\n"
            for low in range(start, end + 1, CODES_PER_CHUNK):
                piece: dict[str, object] = {
                    "prefix": prefix,
                    "width": width,
                    "start": low,
                    "end": min(low + CODES_PER_CHUNK - 1, end),
                }
                batches.append((code_range_of(**piece), piece))
            lines = list(range(1, end - start + 2))
    except LedgerError as error:
        raise _fail(error.message) from None
    every = [text for chunk, _ in batches for text in chunk]
    digest = hashlib.sha256(source.encode()).hexdigest()
    ring_path = _keyring_path(keyring)
    ring = _load_keyring(ring_path)
    url = _store_url(db)

    def where(place: int) -> str:
        return f"line {place} of {file}" if file is not None else f"code #{place} of the range"

    imported = replayed = 0
    try:
        with Ledger(url, code_keyring=ring) as ledger:
            _check_ring_fits(ledger.vault.key_usage(), ring, ring_path)
            stored = ledger.good(good)  # refused before anything is stored
            stored.tier(tier)
            if stored.spec.kind != "redemption-code":
                raise _fail(
                    f"good {stored.id} is a {stored.spec.kind}, not a redemption-code: "
                    "its units carry no codes"
                )
            keys = [
                f"codes-{stored.id}-{tier}-{digest[:32]}-{index}" for index in range(len(batches))
            ]
            refs = ledger.vault.refs(every)
            seen: dict[str, int] = {}
            for position, ref in enumerate(refs):
                if (earlier := seen.setdefault(ref, position)) != position:
                    raise _fail(
                        f"{where(lines[position])} repeats {where(lines[earlier])}; "
                        "nothing imported"
                    )
            # A chunk already recorded (an earlier run of this import) is
            # replayed; any other chunk's codes must all be new.
            done = ledger.event_store.existing([command_id_for("", key) for key in keys])
            fresh = [
                position
                for index, (chunk, _) in enumerate(batches)
                if command_id_for("", keys[index]) not in done
                for position in range(index * CODES_PER_CHUNK, index * CODES_PER_CHUNK + len(chunk))
            ]
            taken = ledger.event_store.existing([code_id_for(refs[p]) for p in fresh])
            if taken:
                first = next(p for p in fresh if code_id_for(refs[p]) in taken)
                raise _fail(
                    f"{len(taken):,} code(s) were imported before, the first at "
                    f"{where(lines[first])}; nothing imported"
                )
            with _progress() as progress:
                task = progress.add_task("importing codes", total=len(every))
                for index, (chunk, part) in enumerate(batches):
                    answer = ledger.import_codes(
                        stored.id,
                        tier,
                        codes=None if part else chunk,
                        code_range=part,
                        idempotency_key=keys[index],
                    )
                    if isinstance(answer, Replayed):
                        replayed += len(chunk)
                    else:
                        imported += len(chunk)
                    progress.update(task, advance=len(chunk))
            counts = ledger.code_counts(stored.id, tier)
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
    chunks = len(batches)
    console.print(
        f"imported {imported:,} code(s) in {chunks:,} chunk(s) of up to "
        f"{CODES_PER_CHUNK:,}"
        + (
            f"; {replayed:,} were imported already by an earlier run of this import"
            if replayed
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    _print_code_counts(counts)


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
