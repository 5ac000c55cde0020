"""``ledger proof``: provenance bundles, written and checked offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import (
    DbOption,
    _fail,
    _load_policy,
    _store_url,
    console,
    errors,
)


def proof_export(
    unit: Annotated[str, typer.Option("--unit", help="The unit's id.")],
    out: Annotated[Path, typer.Option("--out", help="Bundle file to write (JSON).")],
    db: DbOption = None,
) -> None:
    """Write a unit's provenance bundle: every event with its tlog-proof."""
    from uuid import UUID

    from ledger.domain.errors import LedgerError
    from ledger.service.proofs import ProofStoreError
    from ledger.service.provenance import NotYetSealedError, provenance_bundle
    from ledger.store.eventstore import EventStore
    from ledger.store.logstore import LogStore

    url = _store_url(db)
    try:
        unit_id = UUID(unit)
    except ValueError:
        raise _fail(f"--unit {unit!r} is not a UUID") from None
    store = EventStore(url)
    try:
        bundle = provenance_bundle(store, LogStore(store.recorder), unit_id)
    except (LedgerError, NotYetSealedError, ProofStoreError) as error:
        raise _fail(str(error)) from None
    finally:
        store.close()
    out.write_text(json.dumps(bundle, indent=2) + "\n")
    console.print(f"wrote {len(bundle['events'])} event proof(s) to {out}")


def proof_verify(
    bundle: Annotated[Path, typer.Argument(help="A provenance bundle file.")],
    policy: Annotated[Path, typer.Option("--policy", help="The tlog-policy to trust.")],
) -> None:
    """Check a provenance bundle offline against a policy; print the history."""
    from ledger.verify.provenance import ProvenanceError, verify_provenance

    try:
        data = json.loads(bundle.read_text())
    except FileNotFoundError:
        raise _fail(f"no bundle at {bundle}") from None
    except ValueError as error:
        raise _fail(f"{bundle} is not JSON: {error}") from None
    try:
        checked = verify_provenance(data, _load_policy(policy))
    except ProvenanceError as error:
        errors.print(f"[bold red]FAILED[/] {error}", highlight=False)
        raise typer.Exit(8) from None
    console.print(
        f"unit {checked.unit_id}: {len(checked.history)} event(s) included in the "
        f"log of size {checked.tree_size}, cosigned by "
        f"{', '.join(checked.cosigners) or 'no one'}"
    )
    if checked.edition is not None:
        size = checked.edition
        cap = " (a lifetime cap restocks may reach)" if size["basis"] == "lifetime-cap" else ""
        console.print(f"  No. {size['serial']} of {size['of']}{cap}", highlight=False)
    for entry in checked.history:
        console.print(
            f"  v{entry['version']} {entry['at']} {entry['type']:<14} holder "
            f"{entry['holder']} price {entry['price']}",
            highlight=False,
        )
    console.print("verdict [bold green]OK[/]")
