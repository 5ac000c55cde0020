"""The FastAPI application: assembly only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI

from ledger import __version__
from ledger.api import (
    audit_routes,
    channel_routes,
    command_routes,
    log_routes,
    problems,
    provenance_routes,
    query_routes,
    readiness,
)
from ledger.api.auth import require
from ledger.api.limits import BodyLimit, HeaderLimit, HeaderLimits
from ledger.api.readiness import NotReady
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
* **Errors**: RFC 9457 `application/problem+json`; `type` is stable per
  error, e.g. `https://ledger.dev/problems/sold-out`.
* **Lists**: keyset pages; pass `next_cursor` back as `cursor`.
"""


def create_app(
    runtime: Runtime | None = None,
    *,
    opener: Callable[[Callable[[Runtime], object]], RuntimeOpener] | None = None,
    header_limits: HeaderLimits | None = None,
) -> FastAPI:
    """The app on ``runtime``; or, given ``opener`` instead, an app that
    listens at once and serves once ``opener(on_open)``'s thread has opened
    the runtime (``ledger serve`` on a database that may be down)."""
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

    app = FastAPI(title="ledger", version=__version__, lifespan=lifespan, description=DESCRIPTION)
    app.state.runtime = runtime
    app.state.opener = None
    app.add_middleware(BodyLimit, max_bytes=limits.REQUEST_BODY_BYTES_MAX)
    app.add_middleware(NotReady, state=app.state)
    app.add_middleware(HeaderLimit, bounds=header_limits or HeaderLimits())
    app.add_middleware(RequestIds)  # (runs first: every answer carries the id)
    problems.install(app)
    app.include_router(readiness.router)
    app.include_router(command_routes.router)
    app.include_router(query_routes.router)
    app.include_router(channel_routes.router)
    app.include_router(provenance_routes.router)
    app.include_router(log_routes.router)
    app.include_router(audit_routes.router)

    @app.get("/me", tags=["ops"], summary="Who this API key is")
    def me(who: Annotated[Principal, require(*Role)]) -> dict[str, Any]:
        return {
            "key_id": who.key_id,
            "role": who.role.value,
            "subject": who.subject,
            "label": who.label,
        }

    return app
