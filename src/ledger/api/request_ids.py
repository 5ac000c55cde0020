"""Request ids: one per HTTP request, accepted from the client or made here.

A client may send ``X-Request-Id`` (1 to 128 characters of
``A-Z a-z 0-9 . _ : + / = @ -``: what tracing systems and UUIDs use, and
nothing a log line or a header could be tricked by); any other value is a
400 problem naming the header, and nothing is done. Without one, the server
makes one (32 hex digits). Either way the id is

* returned in ``X-Request-Id`` on every answer, problems and 500s included;
* this request's :data:`REQUEST_ID` (a context variable) and
  ``request.state.request_id``, for log lines and for the events the
  request causes (their ``recorded_by``, docs/format.md section 2).
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.api.problems import MEDIA_TYPE, PROBLEM_BASE, REQUEST_ID_HEADER

HEADER = REQUEST_ID_HEADER
MAX_LENGTH = 128
PATTERN = re.compile(rf"[A-Za-z0-9._:+/=@-]{{1,{MAX_LENGTH}}}")
_HEADER_KEY = HEADER.lower().encode()

REQUEST_ID: ContextVar[str | None] = ContextVar("ledger_request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def check_request_id(value: str) -> str | None:
    """What is wrong with a client's request id, or None if it is fine."""
    if len(value) > MAX_LENGTH:
        return f"{HEADER} has {len(value)} characters; at most {MAX_LENGTH}"
    if not PATTERN.fullmatch(value):
        return (
            f"{HEADER} may hold only letters, digits and . _ : + / = @ - "
            f"(1 to {MAX_LENGTH} characters)"
        )
    return None


class RequestIds:
    """ASGI middleware (the outermost of the app's own): see the module doc."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = _given(scope)
        problem = None if sent is None else check_request_id(sent)
        request_id = sent if sent is not None and problem is None else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_HEADER_KEY, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != _HEADER_KEY]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        if problem is not None:
            await _refuse(scope, send_with_id, problem)
            return
        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def _given(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name.lower() == _HEADER_KEY:
            return str(value.decode("latin-1"))
    return None


async def _refuse(scope: Scope, send: Send, detail: str) -> None:
    body = orjson.dumps(
        {
            "type": PROBLEM_BASE + "invalid-request-id",
            "title": "Invalid request id",
            "status": 400,
            "detail": detail,
            "instance": scope.get("path", ""),
            "errors": [{"location": ["header", HEADER], "message": detail}],
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
