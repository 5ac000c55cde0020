"""The sender's HTTP/1.1 client: one POST over a checked, kept-alive
connection, bounded by one deadline, its answer parsed by ``httptools``
(llhttp, the parser ``ledger serve`` itself uses through uvicorn).

Why not httpx or httpcore: the dispatcher runs in the server's process, so
every delivery's CPU is taken from the sales' share of the GIL. A delivery
cost the sender ~350 µs of CPU over httpcore (h11 under it; httpx's own
``Client.post`` ~510 µs) and costs ~100 µs over this client, signing
included (measured against a receiver in another process). What it needs
of HTTP is small -- one request shape, answers read up to a bound -- and
the parsing, where the protocol's edge cases are (chunked bodies,
keep-alive, interim 1xx answers), is llhttp's.

* **Dialling** (:meth:`Pool.connect`): the host is resolved once per new
  connection and every address checked (``sender.checked_addresses``);
  the socket is opened to a checked address, then TLS is started with the
  URL's name as SNI and for the certificate check.
* **Keep-alive**: idle connections are kept per (scheme, host, port) for
  30 s; one found readable (closed by the receiver) or expired is dropped
  before use. A request that fails on a reused connection before any
  byte of an answer came -- the receiver closed it as we sent -- is sent
  once more on a new connection (receivers de-duplicate by
  ``webhook-id``).
* **Bounded**: every socket wait gets what is left of the attempt's
  deadline; at most ``max_bytes`` of the body and 64 KiB of the head are
  read, and a connection whose answer was cut is closed, never reused.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import httptools

HEAD_MAX_BYTES: Final = 65536
READ_BYTES: Final = 65536
KEEPALIVE_S: Final = 30.0
IDLE_PER_ORIGIN_MAX: Final = 32

Origin = tuple[str, str, int]  # scheme, host (ASCII), port
Address = str  # an IP address, as socket.create_connection takes it


class TransportError(Exception):
    """No answer: ``kind`` says which step failed (``timeout``,
    ``connection``, ``protocol``)."""

    kind = "connection"


class TransportTimeoutError(TransportError):
    kind = "timeout"


class TransportProtocolError(TransportError):
    kind = "protocol"


class _StaleConnectionError(TransportError):
    """A reused connection was found closed before any answer came."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes  # at most the bound asked for


def left(deadline: float) -> float:
    """Seconds left before ``deadline`` (``time.monotonic``), or :class:`TransportTimeoutError`."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TransportTimeoutError("the attempt's deadline passed")
    return remaining


class _Reading:
    """llhttp's callbacks: the answer's head and body as they are parsed.
    Interim answers (1xx) are skipped: their head is forgotten."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.status = 0
        self.complete = False
        self.keep_alive = False  # read while parsing: llhttp forgets it after the message

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.size += len(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status <= 199:  # interim: the final answer follows
            self.headers, self.status = [], 0
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True


def exchange(
    sock: socket.socket, request: bytes, deadline: float, max_bytes: int, *, reused: bool
) -> tuple[Answer, bool]:
    """Send ``request``, read its answer: ``(answer, keep)`` -- whether the
    connection may carry another request."""
    reading = _Reading()
    received = 0
    try:
        sock.settimeout(left(deadline))
        sock.sendall(request)
        while not reading.complete and reading.size < max_bytes:
            sock.settimeout(left(deadline))
            data = sock.recv(READ_BYTES)
            if not data:
                if reading.status:  # a body delimited by the connection's end
                    return _answer(reading, max_bytes), False
                if reused and received == 0:
                    raise _StaleConnectionError("closed before answering")
                raise TransportError("the receiver closed the connection without an answer")
            received += len(data)
            reading.parser.feed_data(data)
            if not reading.status and received > HEAD_MAX_BYTES:
                raise TransportProtocolError(f"an answer's head over {HEAD_MAX_BYTES} bytes")
    except (TimeoutError, TransportTimeoutError) as error:
        raise TransportTimeoutError(str(error) or "timed out") from None
    except httptools.HttpParserUpgrade:
        raise TransportProtocolError("the receiver switched protocols") from None
    except httptools.HttpParserError as error:
        raise TransportProtocolError(f"unreadable answer: {error}") from None
    except (ConnectionError, OSError) as error:
        if reused and received == 0:
            raise _StaleConnectionError(str(error)) from None
        raise TransportError(str(error) or type(error).__name__) from None
    keep = reading.complete and reading.keep_alive
    return _answer(reading, max_bytes), keep


def _answer(reading: _Reading, max_bytes: int) -> Answer:
    return Answer(reading.status, reading.headers, b"".join(reading.body)[:max_bytes])


def _unusable(sock: socket.socket) -> bool:
    """An idle connection that is readable has been closed by the receiver
    (or holds bytes no request asked for): either way, not reusable."""
    poller = select.poll()  # not select.select: no limit on descriptor numbers
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class Pool:
    """Kept-alive connections per origin (thread-safe: a connection is
    used by one request at a time). ``resolve(host, port)`` gives the
    checked addresses to dial, or raises."""

    def __init__(
        self,
        resolve: Callable[[str, int], Sequence[Address]],
        ssl_context: ssl.SSLContext,
    ) -> None:
        self._resolve, self._ssl = resolve, ssl_context
        self._idle: dict[Origin, list[tuple[socket.socket, float]]] = {}
        self._lock = threading.Lock()

    def post(self, origin: Origin, request: bytes, *, deadline: float, max_bytes: int) -> Answer:
        """Send ``request`` (head and body) to ``origin``; its answer."""
        sock = self._take(origin)
        if sock is not None:
            try:
                return self._use(origin, sock, request, deadline, max_bytes, reused=True)
            except _StaleConnectionError:
                pass  # closed by the receiver as we sent: once more, on a new connection
        sock = self.connect(origin, deadline)
        return self._use(origin, sock, request, deadline, max_bytes, reused=False)

    def _use(
        self,
        origin: Origin,
        sock: socket.socket,
        request: bytes,
        deadline: float,
        max_bytes: int,
        *,
        reused: bool,
    ) -> Answer:
        try:
            answer, keep = exchange(sock, request, deadline, max_bytes, reused=reused)
        except BaseException:
            sock.close()
            raise
        if keep:
            self._give(origin, sock)
        else:
            sock.close()
        return answer

    def connect(self, origin: Origin, deadline: float) -> socket.socket:
        """A new connection to one of the host's checked addresses (tried
        in the resolver's order), with TLS for https."""
        scheme, host, port = origin
        failure: OSError | None = None
        for address in self._resolve(host, port):
            try:
                sock = socket.create_connection((address, port), timeout=left(deadline))
            except TimeoutError:
                raise TransportTimeoutError(f"connecting to {address}") from None
            except OSError as error:
                failure = error
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme != "https":
                return sock
            try:
                sock.settimeout(left(deadline))
                return self._ssl.wrap_socket(sock, server_hostname=host)
            except TimeoutError:
                sock.close()
                raise TransportTimeoutError("TLS handshake") from None
            except (ssl.SSLError, OSError) as error:
                sock.close()
                raise TransportError(f"TLS: {error}") from None
        raise TransportError(f"{host}: {failure or 'no address'}")

    def _take(self, origin: Origin) -> socket.socket | None:
        now = time.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                sock, since = idle.pop()
            if now - since < KEEPALIVE_S and not _unusable(sock):
                return sock
            sock.close()

    def _give(self, origin: Origin, sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < IDLE_PER_ORIGIN_MAX:
                idle.append((sock, time.monotonic()))
                return
        sock.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for sock, _ in connections:
                sock.close()
