"""Each request measured once as its answer leaves: the HTTP metrics
(:mod:`ledger.api.metrics`), the commands' outcomes, and -- with
``ledger serve --log-format json`` -- one access line.

:class:`Observed` is the app's outermost middleware. It puts the request's
ASGI ``state`` in :data:`ledger.api.logs.REQUEST_STATE` (so every log line
of the request can name its id and caller), times the request, notes the
answer's status (and, for a problem, its code; for a command, whether it
was replayed), and after the answer reads the route's template from the
scope (Starlette leaves the matched route there). The cost per request is a
few microseconds: two dictionary look-ups and three increments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.api.logs import REQUEST_STATE, actor_of
from ledger.api.metrics import UNMATCHED, ServerMetrics
from ledger.api.problems import MEDIA_TYPE, PROBLEM_BASE

access_logger = logging.getLogger("ledger.access")
_PROBLEM_TYPE = MEDIA_TYPE.encode()


@dataclass(frozen=True)
class AccessLog:
    """One ``ledger.access`` line per request; ``skip(method, path,
    status)`` leaves some out (``access_log_polling`` false: answered polls)."""

    skip: Callable[[str, str, int], bool] | None = None


class _Answer:
    """What the middleware saw of the answer."""

    __slots__ = ("code", "problem", "replayed", "status")

    def __init__(self) -> None:
        self.status = 0  # none sent yet
        self.problem = False
        self.replayed = False
        self.code: str | None = None

    def start(self, message: Message) -> None:
        self.status = message["status"]
        if self.status < 300:
            for name, value in message.get("headers", ()):
                if name.lower() == b"idempotent-replayed":
                    self.replayed = value == b"true"
        elif self.status >= 400:
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-type":
                    self.problem = value.startswith(_PROBLEM_TYPE)

    def body(self, message: Message) -> None:
        self.problem = False  # read the first body message only
        try:
            kind = orjson.loads(message.get("body", b""))["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if isinstance(kind, str):
            self.code = kind.removeprefix(PROBLEM_BASE)

    def outcome(self) -> str:
        if self.status < 300:
            return "replayed" if self.replayed else "ok"
        return self.code or str(self.status)


class Observed:
    """ASGI middleware: see the module's doc."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, access: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Not reset afterwards: the request's task ends with it, and the app's
        # last-resort error handler (outside this middleware) logs after it.
        REQUEST_STATE.set(scope.setdefault("state", {}))
        answer = _Answer()

        async def observing(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.start(message)
            elif answer.problem:
                answer.body(message)
            await send(message)

        try:
            await self.app(scope, receive, observing)
        finally:
            self._done(scope, answer, time.perf_counter() - started)

    def _done(self, scope: Scope, answer: _Answer, seconds: float) -> None:
        status = answer.status or 500  # raised before answering: a 500 follows
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method: str = scope["method"]
        self.metrics.record(method, template, status, seconds)
        if method == "POST":
            command = self.metrics.commands_by_route.get(template)
            if command is not None:
                self.metrics.record_command(command, answer.outcome())
        if self.access is not None:
            path: str = scope["path"]
            if self.access.skip is None or not self.access.skip(method, path, status):
                _access_line(scope, method, template, path, status, answer, seconds)


def _access_line(
    scope: Scope,
    method: str,
    route: str,
    path: str,
    status: int,
    answer: _Answer,
    seconds: float,
) -> None:
    state: dict[str, Any] = scope.get("state", {})
    query = scope.get("query_string", b"")
    full = path + ("?" + query.decode("latin-1") if query else "")
    client = scope.get("client")
    if not access_logger.isEnabledFor(logging.INFO):
        return
    # Made here rather than by .info(): logging would walk the stack to find
    # the caller, a third of the line's cost, for a file and line known anyway.
    record = access_logger.makeRecord(
        access_logger.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d",
        (method, full, status),
        None,
        extra={
            "request_id": state.get("request_id"),
            "actor": actor_of(state.get("principal")),
            "method": method,
            "route": route,
            "path": full,
            "status": status,
            "problem": answer.code,
            "latency": round(seconds, 6),
            "client": f"{client[0]}:{client[1]}" if client else None,
        },
    )
    access_logger.handle(record)
