"""``ledger codes`` keyring, rotate and status, and what the code commands
share (the options, the keyring file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import (
    DbOption,
    _fail,
    _first_line,
    _load_keyring,
    _store_url,
    console,
    errors,
)
from ledger.config import Settings

if TYPE_CHECKING:
    from ledger.store.codevault import CodeVault, Keyring


KeyringOption = Annotated[
    Path | None,
    typer.Option("--keyring", help="The code keyring file (default: $LEDGER_CODE_KEYRING_FILE)."),
]


GoodOption = Annotated[str, typer.Option("--good", help="The good's id (a redemption-code good).")]


TierOption = Annotated[str, typer.Option("--tier", help="The tier's name.")]


def codes_keyring(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="The keyring file to create (mode 0600; keep it apart from the database)."
        ),
    ],
) -> None:
    """Create a new code keyring and print its active key id."""
    import os

    from ledger.store.codevault import Keyring

    try:  # claim the name first: an existing file is never overwritten
        os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise _fail(f"{out} exists; keyrings are never overwritten") from None
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror}") from None
    ring = Keyring.generate()
    try:
        _save_keyring(ring, out)
    except typer.Exit:
        out.unlink(missing_ok=True)
        raise
    console.print(ring.active, highlight=False, soft_wrap=True)
    errors.print(
        f"wrote the code keyring {out} (mode 0600); keep it apart from the database "
        "and back it up: without it no sealed code opens",
        highlight=False,
        soft_wrap=True,
    )


def codes_rotate(
    keyring: KeyringOption = None,
    db: DbOption = None,
    retire: Annotated[
        bool,
        typer.Option(
            "--retire", help="Then remove from the ring every key no sealed code uses any more."
        ),
    ] = False,
) -> None:
    """Add a new key to the ring, make it active and re-seal every code in the
    vault under it. Servers reading the same keyring file pick it up by themselves."""
    from ledger.store.codevault import VaultError, open_vault

    path = _keyring_path(keyring)
    ring = _load_keyring(path)
    url = _store_url(db)
    try:
        with open_vault(url, ring, create=False) as vault:
            _check_ring_fits(vault.key_usage(), ring, path)  # before the ring is touched
            new_id, resealed, unused = _rotate(vault, ring, path, retire=retire)
            usage = vault.key_usage()
    except typer.Exit:
        raise
    except VaultError as error:
        raise _fail(str(error)) from None
    except Exception as error:  # no vault table, no server...
        raise _fail(
            f"cannot rotate the code vault at {url.display()}: {_first_line(error)}"
        ) from None
    console.print(
        f"added key {new_id} to {path}, now active; re-sealed {resealed:,} code(s) under it",
        highlight=False,
        soft_wrap=True,
    )
    for key in sorted(set(usage) | {new_id}):
        console.print(
            f"  {key}  {usage.get(key, 0):,} code(s){'  (active)' if key == new_id else ''}",
            highlight=False,
            soft_wrap=True,
        )
    if retire:
        console.print(
            f"retired {', '.join(unused)}"
            if unused
            else "retired no key (every key is still in use)",
            highlight=False,
            soft_wrap=True,
        )
    elif unused:
        console.print(
            f"no code uses {', '.join(unused)} any more: `ledger codes rotate "
            "--retire` removes them from the ring",
            highlight=False,
            soft_wrap=True,
        )


def _rotate(
    vault: CodeVault, ring: Keyring, path: Path, *, retire: bool
) -> tuple[str, int, list[str]]:
    """Add a key, make it active, re-seal every code under it; with ``retire``,
    drop the keys no code uses any more. Returns the new key's id, the codes
    re-sealed, and the old keys no code uses any more."""
    old = sorted(ring.keys)
    new_id = ring.add_key()
    _save_keyring(ring, path)  # first: no row is ever sealed under an unsaved key
    resealed = vault.reencrypt(ring)
    usage = vault.key_usage()
    unused = [key for key in old if not usage.get(key)]
    if retire and unused:
        kept = type(ring)(
            ring.ref_key,
            {k: v for k, v in ring.keys.items() if k not in unused},
            ring.active,
        )
        _save_keyring(kept, path)
        # A process still on the old ring may have sealed a code since the
        # count: re-seal it under the new key (this ring still opens it).
        resealed += vault.reencrypt(ring)
    return new_id, resealed, unused


def codes_status(
    good: GoodOption,
    tier: TierOption,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """A tier's redemption codes: imported, available, lent to holds, bound to units."""
    from ledger.domain.errors import LedgerError
    from ledger.service import Ledger

    url = _store_url(db)
    try:
        with Ledger(url) as ledger:
            counts = ledger.code_counts(good, tier)
    except LedgerError as error:
        raise _fail(error.message) from None
    except Exception as error:
        raise _fail(f"cannot read {url.display()}: {_first_line(error)}") from None
    if not counts["coded"]:
        raise _fail(f"tier {tier!r} of good {counts['good_id']} carries no redemption codes")
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    k: counts[k]
                    for k in ("good_id", "tier", "imported", "available", "held", "bound")
                }
            )
            + "\n"
        )
        return
    _print_code_counts(counts)


def _print_code_counts(counts: dict[str, object]) -> None:
    console.print(
        f"good {counts['good_id']} tier {counts['tier']}: {counts['imported']:,} "
        f"imported, {counts['available']:,} available, {counts['held']:,} held, "
        f"{counts['bound']:,} bound",
        highlight=False,
        soft_wrap=True,
    )


def _keyring_path(given: Path | None) -> Path:
    if given is not None:
        return given
    configured = Settings().code_keyring_file
    if not configured:
        raise _fail(
            "no code keyring: give --keyring FILE or set LEDGER_CODE_KEYRING_FILE "
            "(`ledger codes keyring --out FILE` makes one)"
        )
    return Path(configured)


def _check_ring_fits(usage: dict[str, int], ring: Keyring, path: Path) -> None:
    """Refuse a keyring that lacks a key the vault's codes are sealed under:
    most likely another store's ring (whose refs would not find this store's
    codes), or a copy from before a rotation."""
    strangers = sorted(set(usage) - set(ring.keys))
    if strangers:
        raise _fail(
            f"the vault holds codes sealed under key(s) {', '.join(strangers)}, which "
            f"{path} does not hold: is it this store's current keyring?"
        )


def _save_keyring(ring: Keyring, path: Path) -> None:
    import os

    from ledger.store.codevault import VaultError

    try:
        ring.save(path)
        os.chmod(path, 0o600)  # even if a stale temporary file had looser rights
    except VaultError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(f"cannot write the code keyring {path}: {error.strerror}") from None
