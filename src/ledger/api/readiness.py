"""Liveness, readiness, and the answer while the server is not ready.

* ``GET /healthz`` -- the process is alive: always 200 (with the log's size
  when the database answers).
* ``GET /readyz`` -- 200 ``{"status": "ready", "database": true, "views":
  true, "sealer": true}`` once the database answers, the views have caught
  up and the sealer's last round sealed; until then (and again while the
  database is down) a 503 ``not-ready`` problem with ``Retry-After``, saying
  what is not ready.
* ``GET /metrics`` (:mod:`ledger.api.metrics`), when open (the default),
  answers before the runtime is open too: the HTTP figures, build info
  and ``ledger_ready`` all 0.
* Every other route answers 503 ``not-ready`` (with ``Retry-After``) until
  the runtime is open: ``ledger serve`` listens at once, even while the
  database is down, and opens it when the database answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.api.problems import ApiProblem, problem
from ledger.store.availability import unavailable_reason

router = APIRouter(tags=["ops"])
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"})


class NotReady:
    """503 not-ready for every route but ``open_paths`` (by default
    :data:`OPEN_PATHS`) and paths starting with one of ``open_prefixes``,
    until the app's ``state.runtime`` is set."""

    def __init__(
        self,
        app: ASGIApp,
        state: State,
        open_paths: frozenset[str] = OPEN_PATHS,
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.state = state
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] not in self.open_paths
            and not scope["path"].startswith(self.open_prefixes)
            and getattr(self.state, "runtime", None) is None
        ):
            response = problem(503, "not-ready", "Not ready", _waiting(self.state), scope["path"])
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _waiting(state: State) -> str:
    opener = getattr(state, "opener", None)
    reason = getattr(opener, "reason", None)
    return "the server is starting: waiting for the database" + (f" ({reason})" if reason else "")


@router.get("/healthz", summary="Liveness: the process answers")
def health(request: Request) -> dict[str, object]:
    body: dict[str, object] = {"status": "ok"}
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None and runtime.readiness()["database"]:
        try:
            body["log_size"] = runtime.log.size()
        except Exception as error:
            if unavailable_reason(error) is None:
                raise
    return body


@router.get(
    "/readyz",
    summary="Readiness: database, views and sealer are ready",
    responses={503: {"description": "not-ready (with Retry-After): what is not"}},
)
def ready(request: Request) -> dict[str, Any]:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ApiProblem(
            503, "not-ready", _waiting(request.app.state), database=False, views=False, sealer=False
        )
    readiness: dict[str, Any] = runtime.readiness()
    missing = [name for name, ok in readiness.items() if not ok]
    if missing:
        raise ApiProblem(503, "not-ready", f"not ready yet: {', '.join(missing)}", **readiness)
    return {"status": "ready", **readiness}
