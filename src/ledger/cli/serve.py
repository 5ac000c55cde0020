"""``ledger serve``: the HTTP API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

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


LogFormatOption = Annotated[
    Literal["text", "json"] | None,
    typer.Option(
        "--log-format",
        help="Log lines as text (uvicorn's) or json (one object a line, with the "
        "request id, caller, route, status and latency; default: $LEDGER_LOG_FORMAT "
        "or text).",
    ),
]


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
    log_format: LogFormatOption = None,
) -> None:
    """Run the HTTP API on the store: commands and reads (with API keys; make one
    with `ledger api-keys issue`), live views, and signed checkpoints of the log."""
    from ledger.api.runtime import open_runtime

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

    if log_format is not None:  # (the views' process logs as the server does)
        settings = settings.model_copy(update={"log_format": log_format})
    as_json = settings.log_format == "json"
    if as_json:
        from ledger.api.logs import log_as_json

        log_as_json()
        _quiet_pool()
    else:
        _log_to_console(polling=settings.access_log_polling)
    api = _app(url, settings, opened, as_json=as_json)
    tune_gc()  # (ledger.tuning: the cyclic collector cost ~15 % of a flash sale)
    try:
        _run(api, host, port, settings.headers_bytes_max, as_json=as_json)
    finally:
        if api.state.runtime is not None:
            api.state.runtime.ledger.close()


def _run(api: FastAPI, host: str, port: int, head_bytes_max: int, *, as_json: bool) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from ledger.api.server import http_protocol

    # (ledger.api.server: the request head bounded, refusals as problems)
    uvicorn.run(
        api,
        host=host,
        port=port,
        log_level="info",
        http=http_protocol(head_bytes_max),
        # JSON: the root logger's handler writes every line, and the app's
        # own access line (with route, caller, latency) replaces uvicorn's.
        log_config=None if as_json else LOGGING_CONFIG,
        access_log=not as_json,
    )


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
    _quiet_pool()


def _quiet_pool() -> None:
    # During an outage the pool warns of each reconnection attempt (twenty a
    # second); ledger.store says it once, when the database goes and comes.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def _app(
    url: DatabaseURL, settings: Settings, opened: Callable[[], Runtime], *, as_json: bool
) -> FastAPI:
    """The application: on SQLite with its runtime open (ready at once, or a
    clear refusal); on PostgreSQL listening at once, serving when the
    database answers (RuntimeOpener)."""
    import dataclasses
    import functools

    from ledger.api.app import create_app
    from ledger.api.limits import HeaderLimits
    from ledger.api.observe import AccessLog
    from ledger.api.runtime import RuntimeOpener

    make = functools.partial(
        create_app,
        header_limits=HeaderLimits(
            header_bytes_max=settings.header_bytes_max,
            headers_bytes_max=settings.headers_bytes_max,
            count_max=settings.headers_count_max,
        ),
        access_log=(
            AccessLog(skip=None if settings.access_log_polling else is_poll) if as_json else None
        ),
        metrics_open=settings.metrics_access == "open",
    )
    if url.backend == "sqlite":
        try:
            return make(opened())
        except Exception as error:
            raise _fail(f"cannot open {url.display()}: {error}") from None
    return make(
        opener=lambda on_open: RuntimeOpener(
            dataclasses.replace(url, timeout=settings.database_timeout), opened, on_open
        )
    )


_POLLED = ("/log/", "/healthz", "/readyz", "/metrics")


def is_poll(method: str, path: str, status: int) -> bool:
    """An answered poll of a verifier node, witness, probe or scraper."""
    return method == "GET" and path.startswith(_POLLED) and status < 400


def _not_a_poll(record: logging.LogRecord) -> bool:
    """uvicorn.access records carry (client, method, path, version, status)."""
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return True
    _, method, path, _, status = args
    return not (isinstance(status, int) and is_poll(str(method), str(path), status))
