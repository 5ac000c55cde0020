"""``ledger keys``: Ed25519 signed-note keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import (
    _fail,
    _load_signer,
    console,
)


def keys_generate(
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="Key name: the log's origin (e.g. ledger.example/log) or the verifier's name.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Private key file to create.")],
    cosigner: Annotated[
        bool,
        typer.Option(
            "--cosigner", help="A verifier's cosigning key (tlog-cosignature, type 0x04)."
        ),
    ] = False,
) -> None:
    """Create a private key file (mode 0600) and print its public verifier key."""
    from ledger.tlog.c2sp import NoteError
    from ledger.tlog.keys import Signer

    if out.exists():
        raise _fail(f"{out} exists; keys are never overwritten")
    try:
        signer = Signer.generate(name, key_type=0x04 if cosigner else 0x01)
    except (NoteError, ValueError) as error:
        raise _fail(str(error)) from None
    try:
        out.touch(mode=0o600)
        out.write_text(signer.to_private_text() + "\n")
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror}") from None
    console.print(signer.verifier_key(), highlight=False, soft_wrap=True)


def keys_show(key: Annotated[Path, typer.Argument(help="A private key file.")]) -> None:
    """Print the public verifier key of a private key file."""
    console.print(_load_signer(key, cosigner=None).verifier_key(), highlight=False, soft_wrap=True)
