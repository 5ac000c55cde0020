"""The FastAPI application: assembly only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger import __version__
from ledger.api import log_routes, problems, provenance_routes
from ledger.api.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(title="ledger", version=__version__, lifespan=lifespan,
                  description="A verifiable, event-sourced ledger of digital goods.")
    app.state.runtime = runtime
    problems.install(app)
    app.include_router(log_routes.router)
    app.include_router(provenance_routes.router)

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, object]:
        return {"status": "ok", "log_size": runtime.log.size()}

    return app
