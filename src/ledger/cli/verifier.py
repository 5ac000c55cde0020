"""``ledger verifier``: an independent verifier node."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import (
    _fail,
    _load_signer,
    _load_vkey,
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
    import uvicorn

    from ledger.verifier_node.app import create_node_app
    from ledger.verifier_node.node import VerifierNode

    ledger_url = _base_url(ledger_url, "--ledger")
    peers = [_base_url(each, "--peer") for each in peer or []]
    log_verifier = _load_vkey(log_key)
    signer = _load_signer(key, cosigner=True)
    _quiet_logging()
    node = VerifierNode(
        ledger_url=ledger_url,
        signer=signer,
        log_keys=[log_verifier],
        origin=log_verifier.name,
        state_dir=state,
        peers=peers,
    )
    logging.getLogger("ledger.verifier").info(
        "verifier %s listening on http://%s:%d, following %s at %s every %gs "
        "(state %s; %d peer(s); cosigned so far: size %d)",
        *(signer.name, host, port, log_verifier.name, ledger_url, poll),
        *(state, len(peers), node.state.size),
    )
    uvicorn.run(create_node_app(node, poll), host=host, port=port, log_level="warning")


def _quiet_logging() -> None:
    """One line at start, one per cosigned checkpoint, one when following
    stops or resumes: not the HTTP client's line for every poll."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def _base_url(text: str, option: str) -> str:
    """An http(s) base URL, without a trailing slash; else one line, exit 2."""
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(f"{option} {text!r} is not an http:// or https:// URL")
    return text.strip().rstrip("/")
