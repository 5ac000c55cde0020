"""A real webhook receiver for the tests: an HTTP/1.1 server on 127.0.0.1 in
a thread of the test process, which checks every request the way a
subscriber should (docs/webhooks.md, "Verifying in a receiver").

* **Verifies every signature**: ``v1`` with the Standard Webhooks reference
  library (``standardwebhooks.Webhook(secret).verify``), ``v1a`` with
  ``cryptography``'s Ed25519 -- against the secrets (``whsec_``) or public
  keys (``whpk_``) it was given, for every path or for one path (one
  subscription each). A request whose signature does not verify is answered
  401 and recorded with ``verified=False``; one that arrives before any
  secret is known is answered as scripted and verified when
  :meth:`WebhookReceiver.check` runs (a test learns a subscription's secret
  only when registering it, and the dispatcher may be quicker).
* **Records** each request: ``webhook-id``, headers, body, path, when it
  was received, what was answered.
* **Can be told to fail**: a scripted answer (status, ``Retry-After``, a
  body, a delay) for the next *n* requests or from now on; :meth:`down`
  stops listening (connections refused) and :meth:`up` listens again on
  the same port.
* **De-duplicates** by ``webhook-id`` as the specification tells receivers
  to (:meth:`unique`, :meth:`duplicates`).

Use::

    with WebhookReceiver() as receiver:
        receiver.add_secret(secret)          # or add_secret(secret, path="/a")
        ... register receiver.url("/a") ...
        receiver.wait_for(lambda r: len(r.unique()) == 10)
        receiver.check()                     # every signature verified
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

HOST = "127.0.0.1"
TOLERANCE_S = 300  # the reference library's: a timestamp within 5 minutes


@dataclass(frozen=True)
class Reply:
    """What the receiver answers: a status, optional ``Retry-After``, a body
    (``body_size`` pads it with that many bytes, sent in 64 KiB chunks),
    extra headers, after ``delay`` seconds."""

    status: int = 200
    retry_after: str | None = None
    body: bytes = b""
    body_size: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as received: ``id`` is its ``webhook-id`` header."""

    id: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.time()
    status: int  # what was answered
    verified: bool | None  # None: no secret known yet (see WebhookReceiver.check)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Script:
    default: Reply = field(default_factory=Reply)
    queued: list[Reply] = field(default_factory=list)

    def next(self) -> Reply:
        return self.queued.pop(0) if self.queued else self.default


class SignatureMismatch(Exception):  # noqa: N818 - named for what a test reads
    pass


def verify(secret: str, body: bytes, headers: dict[str, str], *, late: bool = False) -> None:
    """Verify a request as a subscriber would: ``whsec_`` secrets with the
    reference library; ``whpk_`` public keys against the ``v1a`` signatures
    (the same id, timestamp and tolerance). Raises :class:`SignatureMismatch`.

    ``late``: checked long after it arrived, so the timestamp is not held to
    the 5-minute window around now (the window is about replays at receipt);
    a ``v1`` signature is then recomputed with the library's ``sign``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "").split(" ")
    if secret.startswith("whsec_"):
        if late:
            if not msg_id or not stamp.isdigit():
                raise SignatureMismatch("missing headers")
            at = datetime.fromtimestamp(int(stamp), UTC)
            if Webhook(secret).sign(msg_id, at, body) not in signatures:
                raise SignatureMismatch("no v1 signature verifies")
            return
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError as error:
            raise SignatureMismatch(str(error)) from None
        return
    if not msg_id or not stamp.isdigit():
        raise SignatureMismatch("missing headers")
    if not late and abs(time.time() - int(stamp)) > TOLERANCE_S:
        raise SignatureMismatch("timestamp out of tolerance")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(secret.removeprefix("whpk_")))
    signed = f"{msg_id}.{stamp}.".encode() + body
    for candidate in signatures:
        version, _, signature = candidate.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), signed)
        except (InvalidSignature, ValueError):
            continue
        return
    raise SignatureMismatch("no v1a signature verifies")


class WebhookReceiver:
    """A receiver on 127.0.0.1 (a free port unless given), started at once;
    thread-safe; stop it with :meth:`close` or as a context manager."""

    def __init__(self, port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._secrets: dict[str | None, list[str]] = {}
        self._script = _Script()
        self._received: list[Received] = []
        self._connections: set[socket.socket] = set()
        self.connections_accepted = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.tls = tls
        self.server_names: list[str | None] = []  # SNI seen in TLS handshakes
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self.up()

    # -- the server ---------------------------------------------------------------

    def up(self) -> None:
        """Listen (again, on the same port after :meth:`down`)."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer((HOST, self.port), _handler(self))
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening: new connections are refused and kept-alive ones
        are shut, as when a receiver's process dies."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # kept-alive connections end too
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.down()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def url(self, path: str = "/hooks", host: str = HOST) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://{host}:{self.port}{path}"

    # -- what it verifies and answers -------------------------------------------------

    def add_secret(self, secret: str, path: str | None = None) -> None:
        """Verify requests with ``secret`` (``whsec_``) or public key
        (``whpk_``): on ``path`` only, or on every path without its own."""
        with self._lock:
            self._secrets.setdefault(path, []).append(secret)

    def answer(self, reply: Reply, times: int | None = None) -> None:
        """Answer the next ``times`` requests with ``reply`` (``None``: from
        now on, until told otherwise)."""
        with self._lock:
            if times is None:
                self._script.default = reply
                self._script.queued.clear()
            else:
                self._script.queued.extend([reply] * times)

    def fail(
        self, status: int = 503, *, retry_after: str | None = None, times: int | None = None
    ) -> None:
        """Answer ``status`` (and ``Retry-After``) to the next ``times``
        requests, or from now on."""
        self.answer(Reply(status=status, retry_after=retry_after), times)

    def succeed(self) -> None:
        self.answer(Reply())

    # -- what it saw ---------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every request, in arrival order (retries and duplicates too)."""
        with self._lock:
            return list(self._received)

    def delivered(self, path: str | None = None) -> list[Received]:
        """The requests answered 2xx (on ``path``, if given)."""
        return [
            r for r in self.received if 200 <= r.status <= 299 and (path is None or r.path == path)
        ]

    def unique(self, path: str | None = None) -> list[Received]:
        """The delivered requests de-duplicated by ``webhook-id`` (per path:
        two subscriptions get the same event under the same id), first
        arrival kept, in arrival order."""
        seen: set[tuple[str, str]] = set()
        kept = []
        for r in self.delivered(path):
            if (r.path, r.id) not in seen:
                seen.add((r.path, r.id))
                kept.append(r)
        return kept

    def duplicates(self, path: str | None = None) -> int:
        return len(self.delivered(path)) - len(self.unique(path))

    def wait_for(self, condition: Callable[[WebhookReceiver], bool], timeout: float = 30.0) -> None:
        """Wait until ``condition(self)`` holds (checked on each arrival and
        every 0.1 s); ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"receiver: condition not met in {timeout} s")
            with self._arrived:
                self._arrived.wait(min(left, 0.1))

    def unverified(self) -> list[Received]:
        """The requests whose signature did not verify (those that came
        before their secret was known are verified now)."""
        failures = []
        for r in self.received:
            ok = r.verified
            if ok is None:
                ok = self._verify(r.path, r.body, r.headers, at_receipt=False)
            if not ok:
                failures.append(r)
        return failures

    def check(self) -> list[Received]:
        """Every request's signature verified, or ``AssertionError`` naming
        the failures; returns the requests."""
        failures = self.unverified()
        if failures:
            raise AssertionError(f"signatures not verified: {[(r.path, r.id) for r in failures]}")
        return self.received

    # -- inside ----------------------------------------------------------------------

    def _verify(
        self, path: str, body: bytes, headers: dict[str, str], *, at_receipt: bool
    ) -> bool | None:
        with self._lock:
            secrets = list(self._secrets.get(path) or self._secrets.get(None) or [])
        if not secrets:
            return None if at_receipt else False
        for secret in secrets:
            try:
                verify(secret, body, headers, late=not at_receipt)
            except SignatureMismatch:
                continue
            return True
        return False

    def _take(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Reply, bool | None]:
        verified = self._verify(path, body, headers, at_receipt=True)
        with self._lock:
            reply = Reply(status=401) if verified is False else self._script.next()
        return reply, verified

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            self.connections_accepted += 1

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _record(self, r: Received) -> None:
        with self._arrived:
            self._received.append(r)
            self._arrived.notify_all()


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the sender pools connections

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply, verified = receiver._take(self.path, headers, body)
            if reply.delay:
                time.sleep(reply.delay)
            receiver._record(
                Received(
                    id=headers.get("webhook-id", ""),
                    path=self.path,
                    headers=headers,
                    body=body,
                    received_at=time.time(),
                    status=reply.status,
                    verified=verified,
                )
            )
            self._reply(reply)

        def _reply(self, reply: Reply) -> None:
            if reply.status in (204, 304):  # no body, by definition (RFC 9110)
                reply = Reply(reply.status, reply.retry_after, headers=reply.headers)
            size = len(reply.body) + reply.body_size
            try:
                self.send_response(reply.status)
                if reply.retry_after is not None:
                    self.send_header("Retry-After", reply.retry_after)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.write(reply.body)
                chunk = b"x" * 65536
                left = reply.body_size
                while left > 0:
                    self.wfile.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the sender stopped reading: allowed

        def setup(self) -> None:
            super().setup()
            receiver._opened(self.connection)

        def finish(self) -> None:
            receiver._closed(self.connection)
            super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests read the records

    return Handler
