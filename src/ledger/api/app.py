"""The FastAPI application: assembly only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from ledger import __version__
from ledger.api import (
    audit_routes,
    channel_routes,
    command_edge,
    command_routes,
    log_routes,
    metrics,
    page_routes,
    problems,
    provenance_routes,
    query_routes,
    readiness,
    webhook_routes,
    witness_routes,
)
from ledger.api.auth import require
from ledger.api.limits import BodyLimit, HeaderLimit, HeaderLimits
from ledger.api.metrics import ServerMetrics
from ledger.api.observe import AccessLog, Observed
from ledger.api.readiness import OPEN_PATHS, NotReady
from ledger.api.request_ids import RequestIds
from ledger.api.runtime import Runtime, RuntimeOpener
from ledger.domain import limits
from ledger.domain.errors import InvariantError
from ledger.store.apikeys import Principal, Role

DESCRIPTION = """\
A verifiable, event-sourced ledger of digital goods.

* **Authentication**: an API key in `Authorization: Bearer <key>` (or
  `X-API-Key`). Each key has one role -- admin, creator, channel, auditor,
  verifier -- and creators and channels are scoped to their own id.
  `ledger api-keys issue` makes keys. The log endpoints (`/log/...`) are
  public, as a transparency log's are.
* **Idempotency**: every POST needs an `Idempotency-Key` header. The same
  key and body give the first response again, byte for byte, also after a
  restart (`Idempotent-Replayed: true`); another body is a 409.
* **Availability**: every 503 carries `Retry-After`; `/readyz` says when
  the server is ready (database, views, sealer), `/healthz` that it is alive.
* **Operations**: `X-Request-Id` (sent, or made by the server) on every
  answer; Prometheus metrics on `/metrics`.
* **Errors**: RFC 9457 `application/problem+json`; `type` is stable per
  error, e.g. `https://ledger.dev/problems/sold-out`.
* **Lists**: keyset pages; pass `next_cursor` back as `cursor`.
"""


def create_app(
    runtime: Runtime | None = None,
    *,
    opener: Callable[[Callable[[Runtime], object]], RuntimeOpener] | None = None,
    header_limits: HeaderLimits | None = None,
    access_log: AccessLog | None = None,
    metrics_open: bool = True,
) -> FastAPI:
    """The app on ``runtime``; or, given ``opener`` instead, an app that
    listens at once and serves once ``opener(on_open)``'s thread has opened
    the runtime (``ledger serve`` on a database that may be down); for
    ``access_log`` and ``metrics_open`` see :func:`_install`."""
    if (runtime is None) == (opener is None):
        raise ValueError("give a runtime or an opener")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            runtime.start()
        else:
            if opener is None:
                raise InvariantError("opener unset")

            def on_open(opened: Runtime) -> None:
                opened.start()
                app.state.runtime = opened  # now every route is served

            app.state.opener = opener(on_open)
            app.state.opener.start()
        try:
            yield
        finally:
            if app.state.opener is not None:
                app.state.opener.stop()
            if app.state.runtime is not None:
                app.state.runtime.stop()

    # /docs and /redoc are page_routes' (FastAPI's own load their assets from a CDN).
    app = FastAPI(
        title="ledger",
        version=__version__,
        lifespan=lifespan,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.opener = None
    _install(app, header_limits or HeaderLimits(), access_log, metrics_open=metrics_open)
    problems.install(app)
    _routes(app)
    return app


def _routes(app: FastAPI) -> None:
    """The API's routes, the web pages and their assets."""
    app.include_router(readiness.router)
    app.include_router(command_routes.router)
    app.include_router(query_routes.router)
    app.include_router(channel_routes.router)
    app.include_router(provenance_routes.router)
    app.include_router(log_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(webhook_routes.router)
    app.include_router(witness_routes.router)
    app.include_router(page_routes.router)
    app.add_exception_handler(page_routes.NotAnIdError, page_routes.not_found)
    app.mount(page_routes.STATIC_PATH, page_routes.static_files(), name="static")
    app.mount(page_routes.DOCS_ASSETS_PATH, page_routes.docs_assets(), name="docs-assets")

    @app.get("/me", tags=["ops"], summary="Who this API key is")
    def me(who: Annotated[Principal, require(*Role)]) -> dict[str, Any]:
        return {
            "key_id": who.key_id,
            "role": who.role.value,
            "subject": who.subject,
            "label": who.label,
        }


def _install(
    app: FastAPI, header_limits: HeaderLimits, access_log: AccessLog | None, *, metrics_open: bool
) -> None:
    """The metrics, ``/metrics`` (needing no key if ``metrics_open``, else an
    auditor's or admin's) and the middleware (the last added runs first);
    ``access_log``: one ``ledger.access`` line per request (``ledger serve
    --log-format json``)."""
    app.state.metrics = ServerMetrics(app.state, _commands())
    app.add_middleware(BodyLimit, max_bytes=limits.REQUEST_BODY_BYTES_MAX)
    open_paths = OPEN_PATHS | {"/metrics"} if metrics_open else OPEN_PATHS
    # The pages and their assets hold no data: they load while the server
    # waits for its database (their API calls then say why not).
    app.add_middleware(
        NotReady,
        state=app.state,
        open_paths=open_paths | {"/"},
        open_prefixes=(
            f"{page_routes.STATIC_PATH}/",
            f"{page_routes.DOCS_ASSETS_PATH}/",
            "/dashboard",
            "/explore",
            "/auditor",
        ),
    )
    app.add_middleware(HeaderLimit, bounds=header_limits)
    app.add_middleware(RequestIds)  # (every answer carries the id)
    # (runs first: measures and logs every request, refused ones included)
    app.add_middleware(Observed, metrics=app.state.metrics, access=access_log)
    app.include_router(metrics.open_router if metrics_open else metrics.auditor_router)


def _commands() -> dict[str, str]:
    """The commands' route templates, each with its command's name."""
    return {
        route.path: route.name
        for route in command_edge.router.routes
        if isinstance(route, APIRoute) and "POST" in (route.methods or ())
    }
