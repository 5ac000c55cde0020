"""``ledger verifier``: an independent verifier node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import (
    _fail,
    _load_signer,
)


def verifier_run(
    ledger_url: Annotated[str, typer.Option("--ledger", help="The ledger's base URL.")],
    key: Annotated[
        Path,
        typer.Option("--key", help="This node's cosigning key (ledger keys generate --cosigner)."),
    ],
    log_key: Annotated[
        str,
        typer.Option(
            "--log-key", help="The log's verifier key (vkey text or file); its name is the origin."
        ),
    ],
    state: Annotated[Path, typer.Option("--state", help="This node's state directory.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65_535)] = 8100,
    peer: Annotated[
        list[str] | None,
        typer.Option("--peer", help="Another verifier's base URL, to compare checkpoints with."),
    ] = None,
    poll: Annotated[
        float, typer.Option(help="Seconds between polls of the ledger.", min=0.05, max=60)
    ] = 0.5,
) -> None:
    """Follow the ledger, re-verify every entry, cosign what checks out."""
    import logging

    import uvicorn

    from ledger.tlog.c2sp import NoteError
    from ledger.tlog.keys import Verifier
    from ledger.verifier_node.app import create_node_app
    from ledger.verifier_node.node import VerifierNode

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    text = Path(log_key).read_text().strip() if Path(log_key).is_file() else log_key
    try:
        log_verifier = Verifier.from_vkey(text)
    except (NoteError, ValueError) as error:
        raise _fail(f"--log-key: {error}") from None
    node = VerifierNode(
        ledger_url=ledger_url,
        signer=_load_signer(key),
        log_keys=[log_verifier],
        origin=log_verifier.name,
        state_dir=state,
        peers=peer or [],
    )
    uvicorn.run(create_node_app(node, poll), host=host, port=port, log_level="warning")
