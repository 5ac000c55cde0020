"""How ``ledger serve`` speaks HTTP/1.1: uvicorn's httptools protocol, with
the request head bounded and the server layer's own refusals written as
problem documents.

Some requests never reach the application: bytes that are not HTTP/1.1
(a control character in a header, a header line without a colon, a bad
request line or version, a bad chunk size, ``Content-Length`` with
``Transfer-Encoding``...). uvicorn answers those itself with a
``text/plain`` 400; here they get a 400 ``malformed-request`` problem. A
request head (request line and headers) that grows past
``headers_bytes_max`` is refused as soon as it does, with a 431
``headers-too-large`` problem, before the rest is read or buffered
(httptools has no such bound: a 1 MB header was read whole). The finer
limits (one header's size, the number of headers) are checked by
:class:`ledger.api.limits.HeaderLimit` in the application, so they hold
under any server.

After such an answer the connection is closed. The server first stops
writing and reads (and drops) what the client is still sending for a
moment, so the client reads the answer instead of a reset connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ledger.api.problems import MEDIA_TYPE, PROBLEM_BASE
from ledger.domain import limits

LINGER_SECONDS = 1.0  # how long a refused connection's input is drained before closing


def problem_response(status: int, code: str, title: str, detail: str) -> bytes:
    """A complete HTTP/1.1 answer carrying a problem document; closes the connection."""
    body = orjson.dumps(
        {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    )
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: ",
            MEDIA_TYPE.encode(),
            b"\r\n",
            b"content-length: ",
            str(len(body)).encode(),
            b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class LedgerHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounding the request head and answering
    what it refuses with problem documents."""

    head_bytes_max = limits.HEADERS_BYTES_MAX

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request line and headers
        self._head_bytes = 0
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # draining what the client still sends after the answer
        super().data_received(data)
        if self._refused or not self._in_head:
            return
        # Still inside a head after this read: all of it was head (or the
        # end of the previous request, on a kept-alive connection).
        self._head_bytes += len(data)
        if self._head_bytes > self.head_bytes_max:
            self.logger.warning("Request head over %d bytes refused.", self.head_bytes_max)
            self.refuse(
                431,
                "headers-too-large",
                "Headers too large",
                f"the request line and headers are limited to {self.head_bytes_max} bytes together",
            )

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to bytes that are not HTTP/1.1 (text/plain there).
        del msg
        self.refuse(
            400,
            "malformed-request",
            "Malformed request",
            "the request is not valid HTTP/1.1 (for example a control character "
            "or a line without a colon in a header, a bad request line, or a bad "
            "chunk size); the connection is closed",
        )

    def refuse(self, status: int, code: str, title: str, detail: str) -> None:
        """Answer with a problem document, then close once the client's input drains."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            # A request being handled (e.g. its body was malformed): its
            # answer must not follow this one.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.pipeline.clear()
        self.transport.write(problem_response(status, code, title, detail))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()  # the client has finished sending: done

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)


def http_protocol(head_bytes_max: int) -> type[LedgerHttpProtocol]:
    """The protocol class for ``uvicorn.run(http=...)``, with this head bound."""
    return type("LedgerHttpProtocol", (LedgerHttpProtocol,), {"head_bytes_max": head_bytes_max})
