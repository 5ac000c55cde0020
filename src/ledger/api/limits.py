"""Request limits, enforced before any handler runs.

The body: a declared ``Content-Length`` over the limit is refused at once;
a chunked body is counted as it arrives and refused when it passes the
limit. Either way the answer is a 413 problem and no handler runs.
Requests without a body (GET, the SSE stream) pass straight through.

The headers: more than ``count_max`` header lines, one header (name and
value) over ``header_bytes_max`` bytes, or all of them over
``headers_bytes_max``, is a 431 problem. (Under ``ledger serve`` the
server's protocol also cuts off a request head that grows past
``headers_bytes_max`` before it is read whole: ``ledger.api.server``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.api.problems import MEDIA_TYPE, PROBLEM_BASE
from ledger.domain import limits


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False  # the server rejects a malformed length itself
            if too_big:
                await self._refuse(scope, send)
                return
        # Bodies are small (the limit is tens of KiB): read it whole, then
        # hand it on, so an oversized chunked body never reaches a handler.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + "body-too-large",
            "title": "Body too large",
            "status": 413,
            "detail": f"request bodies are limited to {self.max_bytes} bytes",
            "instance": scope.get("path", ""),
        }
        data = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


@dataclass(frozen=True)
class HeaderLimits:
    header_bytes_max: int = limits.HEADER_BYTES_MAX
    headers_bytes_max: int = limits.HEADERS_BYTES_MAX
    count_max: int = limits.HEADERS_COUNT_MAX


class HeaderLimit:
    def __init__(self, app: ASGIApp, bounds: HeaderLimits) -> None:
        self.app = app
        self.bounds = bounds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self._check(scope.get("headers") or [])
            if refused is not None:
                await _refuse(scope, send, 431, *refused)
                return
        await self.app(scope, receive, send)

    def _check(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
        bounds = self.bounds
        if len(headers) > bounds.count_max:
            return "too-many-headers", (
                f"{len(headers)} header lines; a request may send at most {bounds.count_max}"
            )
        total = 0
        for name, value in headers:
            size = len(name) + len(value)
            if size > bounds.header_bytes_max:
                shown = name[:64].decode("latin-1")
                return "header-too-large", (
                    f"header {shown!r} has {size} bytes (name and "
                    f"value); at most {bounds.header_bytes_max}"
                )
            total += size
        if total > bounds.headers_bytes_max:
            return "headers-too-large", (
                f"the headers have {total} bytes together; at most {bounds.headers_bytes_max}"
            )
        return None


async def _refuse(scope: Scope, send: Send, status: int, code: str, detail: str) -> None:
    body = orjson.dumps(
        {
            "type": PROBLEM_BASE + code,
            "title": code.replace("-", " ").capitalize(),
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
