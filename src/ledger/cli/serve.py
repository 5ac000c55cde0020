"""``ledger serve``: the HTTP API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import (
    DbOption,
    _check_reachable,
    _fail,
    _load_keyring,
    _load_policy,
    _load_signer,
    _url,
)
from ledger.config import Settings
from ledger.store.database import DatabaseURL
from ledger.tuning import tune_gc

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ledger.api.runtime import Runtime
    from ledger.tlog.keys import Signer


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65_535)] = 8000,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="Private key file(s) of the log, comma-separated (default: $LEDGER_LOG_KEY_FILE).",
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="C2SP tlog-policy file "
            "naming the verifiers whose cosignatures "
            "the ledger accepts.",
        ),
    ] = None,
) -> None:
    """Run the HTTP API on the store: commands and reads (with API keys; make one
    with `ledger api-keys issue`), live views, and signed checkpoints of the log."""
    import uvicorn

    from ledger.api.runtime import open_runtime
    from ledger.api.server import http_protocol

    settings = _settings()
    url = _url(db, reachable=False)  # a server that is down is waited for (below)
    if url.backend == "postgresql":
        _check_reachable(url, lasting_only=True)  # no such database or role: no wait helps
    signers = _signers(log_key or settings.log_key_file)
    try:
        settings.band_policy()
    except ValueError as error:
        raise _fail(f"display band settings: {error}") from None
    code_keyring = (
        _load_keyring(Path(settings.code_keyring_file)) if settings.code_keyring_file else None
    )
    trust = _load_policy(policy) if policy else None

    def opened() -> Runtime:
        return open_runtime(url, settings, signers=signers, policy=trust, code_keyring=code_keyring)

    _log_to_console(polling=settings.access_log_polling)
    api = _app(url, settings, opened)
    tune_gc()  # (ledger.tuning: the cyclic collector cost ~15 % of a flash sale)
    try:
        # (ledger.api.server: the request head bounded, refusals as problems)
        uvicorn.run(
            api,
            host=host,
            port=port,
            log_level="info",
            http=http_protocol(settings.headers_bytes_max),
        )
    finally:
        if api.state.runtime is not None:
            api.state.runtime.ledger.close()


def _settings() -> Settings:
    """The LEDGER_* settings, or a one-line failure naming each bad one."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        raise _fail(f"settings (LEDGER_*): {problems}") from None


def _signers(key_files: str | None) -> list[Signer]:
    """The log's signers, from comma-separated key files (one at least)."""
    if not key_files:
        raise _fail(
            "the server signs checkpoints: give --log-key FILE "
            "(make one with: ledger keys generate --name ORIGIN --out FILE)"
        )
    return [_load_signer(Path(part.strip()), cosigner=False) for part in key_files.split(",")]


def _log_to_console(*, polling: bool) -> None:
    """The ledger's own messages (waiting for the database, outages) beside
    uvicorn's; without ``polling``, the access log leaves out the answered
    polls of verifier nodes, witnesses and probes."""
    import logging

    if not polling:
        logging.getLogger("uvicorn.access").addFilter(_not_a_poll)

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logging.getLogger("ledger").addHandler(handler)
    logging.getLogger("ledger").setLevel(logging.INFO)
    # During an outage the pool warns of each reconnection attempt (twenty a
    # second); ledger.store says it once, when the database goes and comes.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def _app(url: DatabaseURL, settings: Settings, opened: Callable[[], Runtime]) -> FastAPI:
    """The application: on SQLite with its runtime open (ready at once, or a
    clear refusal); on PostgreSQL listening at once, serving when the
    database answers (RuntimeOpener)."""
    import dataclasses

    from ledger.api.app import create_app
    from ledger.api.limits import HeaderLimits
    from ledger.api.runtime import RuntimeOpener

    header_limits = HeaderLimits(
        header_bytes_max=settings.header_bytes_max,
        headers_bytes_max=settings.headers_bytes_max,
        count_max=settings.headers_count_max,
    )
    if url.backend == "sqlite":
        try:
            return create_app(opened(), header_limits=header_limits)
        except Exception as error:
            raise _fail(f"cannot open {url.display()}: {error}") from None
    return create_app(
        opener=lambda on_open: RuntimeOpener(
            dataclasses.replace(url, timeout=settings.database_timeout), opened, on_open
        ),
        header_limits=header_limits,
    )


_POLLED = ("/log/", "/healthz", "/readyz")


def _not_a_poll(record: logging.LogRecord) -> bool:
    """uvicorn.access records carry (client, method, path, version, status)."""
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return True
    _, method, path, _, status = args
    answered = isinstance(status, int) and status < 400
    return not (method == "GET" and str(path).startswith(_POLLED) and answered)
