"""One webhook delivery attempt: sign, dial a checked address, POST, read a
bounded answer (docs/webhooks.md, "Delivery, signatures and safety").

The :class:`Sender` is the only code that talks to subscribers' endpoints.
It follows the Standard Webhooks specification -- headers ``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; ``v1`` signatures made by the
reference library ``standardwebhooks``, ``v1a`` (Ed25519) by
``cryptography`` -- and guards the server it runs in:

* **No server-side request forgery.** The host is resolved once per new
  connection, by the connection pool itself (``webhooks.http1``); every
  address it resolves to must be public (``domain.webhook.address_refusal``),
  and the connection is made to that checked address -- a DNS answer that
  changes between the check and the dial (rebinding) cannot send a request
  inward. The URL keeps its host name, so the ``Host`` header, TLS's SNI
  and the certificate check are the name's, and a kept-alive connection is
  only reused for the same name.
* **Bounded.** One deadline per attempt (``timeout``) covers connecting,
  TLS, sending and reading -- a receiver trickling bytes cannot hold an
  attempt longer; at most ``max_response_bytes`` of the answer are read.
* **No redirects**: a 3xx is a failed attempt, never followed.

It decides nothing about retries: the caller (the dispatcher) reads the
:class:`Attempt` and asks ``domain.webhook.retry_delay``.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import math
import secrets
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks import Webhook

from ledger import __version__
from ledger.domain.webhook import (
    UnsafeUrlError,
    WebhookUrl,
    address_refusal,
    outcome,
    parse_retry_after,
    parse_url,
)
from ledger.webhooks.http1 import Answer, Origin, Pool, TransportError

__all__ = [
    "Attempt",
    "Sender",
    "SigningKey",
    "UnsafeUrlError",
    "new_asymmetric_secret",
    "new_secret",
    "public_key",
    "signature_header",
]

USER_AGENT: Final = f"ledger-webhooks/{__version__}"
SECRET_BYTES: Final = 32  # the specification asks for 24 to 64 random bytes
EXCERPT_BYTES: Final = 1024  # of an answer, kept for the delivery log

SYMMETRIC_PREFIX: Final = "whsec_"
ASYMMETRIC_PREFIX: Final = "whsk_"
PUBLIC_PREFIX: Final = "whpk_"


# -- signing --------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A subscription's signing secret: ``v1`` -- HMAC-SHA256, ``whsec_``
    plus base64; ``v1a`` -- Ed25519, ``whsk_`` plus base64 of the 32-byte
    seed (or of libsodium's 64 bytes, seed then public key)."""

    kind: Literal["v1", "v1a"]
    secret: str

    def __repr__(self) -> str:  # a secret is never printed or logged
        return f"SigningKey(kind={self.kind!r}, secret=...)"


def new_secret() -> str:
    """A new ``v1`` secret: ``whsec_`` and base64 of 32 random bytes."""
    return SYMMETRIC_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_asymmetric_secret() -> str:
    """A new ``v1a`` secret: ``whsk_`` and base64 of an Ed25519 seed."""
    return ASYMMETRIC_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def public_key(secret: str) -> str:
    """The ``whpk_`` public key receivers verify a ``v1a`` secret's
    signatures with."""
    raw = _ed25519(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


@functools.lru_cache(maxsize=256)
def _ed25519(secret: str) -> Ed25519PrivateKey:
    if not secret.startswith(ASYMMETRIC_PREFIX):
        raise ValueError(f"a v1a secret starts with {ASYMMETRIC_PREFIX}")
    raw = base64.b64decode(secret.removeprefix(ASYMMETRIC_PREFIX), validate=True)
    if len(raw) not in (32, 64):
        raise ValueError("a v1a secret is a 32-byte seed or 64 bytes (seed, public key)")
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if len(raw) == 64 and key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != raw[32:]:
        raise ValueError("a 64-byte v1a secret's public half does not match its seed")
    return key


@functools.lru_cache(maxsize=256)
def _hmac(secret: str) -> Webhook:
    if not secret.startswith(SYMMETRIC_PREFIX):
        raise ValueError(f"a v1 secret starts with {SYMMETRIC_PREFIX}")
    return Webhook(secret)


def signature_header(
    msg_id: str, timestamp: datetime, body: bytes, keys: Sequence[SigningKey]
) -> str:
    """The ``webhook-signature`` header: one signature per key, space
    separated (during a rotation the old and the new key both sign, so a
    receiver holding either verifies). ``timestamp`` must be timezone-aware:
    it is the ``webhook-timestamp`` signed, in whole seconds."""
    if timestamp.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware (UTC)")
    if not keys:
        raise ValueError("at least one signing key")
    if (
        not msg_id
        or not (msg_id.isascii() and msg_id.isprintable())
        or "." in msg_id
        or " " in msg_id
    ):
        raise ValueError("a webhook-id is printable ASCII, not empty, with no '.' or space")
    signatures = []
    for key in keys:
        if key.kind == "v1":
            signatures.append(_hmac(key.secret).sign(msg_id, timestamp, body))
        else:
            signed = f"{msg_id}.{math.floor(timestamp.timestamp())}.".encode() + body
            signature = _ed25519(key.secret).sign(signed)
            signatures.append("v1a," + base64.b64encode(signature).decode())
    return " ".join(signatures)


# -- one attempt ----------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt found. ``status`` is ``None`` when no
    answer came; ``error`` then starts with why: ``timeout:``,
    ``connection:``, ``protocol:`` (an unreadable answer) or
    ``webhook-url-unsafe:`` (after a 3xx it says redirects are not
    followed). ``delivered``: a 2xx; ``gone``: 410 (stop sending);
    ``retry_after``: the receiver's ``Retry-After`` in seconds; ``excerpt``:
    the start of the answer's body, for the delivery log."""

    status: int | None
    latency_ms: float
    error: str | None
    retry_after: float | None
    excerpt: str
    delivered: bool
    gone: bool


def checked_addresses(
    host: str, port: int, allow_private: bool
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """``host``'s addresses, resolved once, each allowed -- or
    :class:`UnsafeUrlError` naming the first that is not (one private
    address among public ones refuses the host: which one a later
    connection would get is not ours to choose)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise UnsafeUrlError(f"host {host!r} does not resolve ({error})") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
    for address in addresses:
        refusal = address_refusal(address, allow_private)
        if refusal is not None:
            raise UnsafeUrlError(f"{host} resolves to {address}, which is {refusal}")
    if not addresses:
        raise UnsafeUrlError(f"host {host!r} has no address")
    return addresses


def _ascii_host(parsed: WebhookUrl) -> str:
    try:
        return parsed.host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeUrlError(f"host {parsed.host!r} is not a valid name") from None


@dataclass(frozen=True)
class _Target:
    """A URL as the sender dials it: its origin and the request's head up
    to the per-delivery headers."""

    origin: Origin
    head: bytes


# The request target's characters kept as they are (an existing %XX too);
# anything else -- non-ASCII -- is percent-encoded.
_TARGET_SAFE: Final = "!#$%&'()*+,/:;=?@[]~"


@functools.lru_cache(maxsize=1024)
def _target(url: str, user_agent: bytes) -> _Target:
    """``url`` parsed, checked for shape and turned into a request head,
    once per URL (the dispatcher sends to few URLs many times)."""
    parsed = parse_url(url)
    host = _ascii_host(parsed)
    head = (
        b"POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nContent-Type: application/json\r\n"
        % (
            quote(parsed.target, safe=_TARGET_SAFE).encode("ascii"),
            _host_header(parsed, host).encode("ascii"),
            user_agent,
        )
    )
    return _Target((parsed.scheme, host, parsed.port), head)


def _host_header(parsed: WebhookUrl, host: str) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if parsed.scheme == "https" else 80
    return name if parsed.port == default else f"{name}:{parsed.port}"


class Sender:
    """Sends signed webhook requests (thread-safe: the dispatcher may send
    from several threads; connections are kept alive per scheme, host and
    port -- ``ledger.webhooks.http1``)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: float = 15.0,
        max_response_bytes: int = 65536,
        user_agent: str = USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: the CAs trusted for https endpoints (default:
        the system's, with hostnames checked)."""
        if timeout <= 0 or max_response_bytes < 0:
            raise ValueError("timeout > 0 and max_response_bytes >= 0")
        if not (user_agent.isascii() and user_agent.isprintable()):
            raise ValueError("a user agent is printable ASCII")
        self.allow_private = allow_private
        self._timeout, self._max_response_bytes = timeout, max_response_bytes
        self._user_agent = user_agent.encode()
        self._pool = Pool(self._resolve, ssl_context or ssl.create_default_context())

    def _resolve(self, host: str, port: int) -> list[str]:
        return [str(address) for address in checked_addresses(host, port, self.allow_private)]

    def check_url(self, url: str) -> None:
        """At registration: refuse (:class:`UnsafeUrlError`) a URL that is
        not http(s), is malformed, carries credentials, or whose host does
        not resolve or resolves to any address not allowed. Sending checks
        again on each new connection (a name may move)."""
        parsed = parse_url(url)
        checked_addresses(_ascii_host(parsed), parsed.port, self.allow_private)

    def send(
        self,
        url: str,
        *,
        msg_id: str,
        body: bytes,
        keys: Sequence[SigningKey],
        now: datetime,
    ) -> Attempt:
        """POST ``body`` to ``url``, signed with ``keys`` at ``now`` (the
        ``webhook-timestamp``; timezone-aware). Never raises for the
        receiver's or the network's trouble: that is an :class:`Attempt`
        that was not delivered. Raises ``ValueError`` for a caller's
        mistake (no key; an id that is empty, not printable ASCII, or holds
        a '.' or a space; a naive ``now``)."""
        signature = signature_header(msg_id, now, body, keys)
        started = time.monotonic()
        try:
            target = _target(url, self._user_agent)
        except UnsafeUrlError as error:
            return _failed(started, f"{error.code}: {error.message}")
        request = b"".join(
            (
                target.head,
                b"Content-Length: %d\r\nwebhook-id: %s\r\nwebhook-timestamp: %d\r\n"
                b"webhook-signature: %s\r\n\r\n"
                % (len(body), msg_id.encode(), math.floor(now.timestamp()), signature.encode()),
                body,
            )
        )
        try:
            answer = self._pool.post(
                target.origin,
                request,
                deadline=started + self._timeout,
                max_bytes=self._max_response_bytes,
            )
        except UnsafeUrlError as error:
            return _failed(started, f"{error.code}: {error.message}")
        except TransportError as error:
            return _failed(started, f"{error.kind}: {error}")
        return _answered(started, answer, now)

    def close(self) -> None:
        """Close every idle connection."""
        self._pool.close()


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


def _failed(started: float, error: str) -> Attempt:
    return Attempt(None, _elapsed_ms(started), error, None, "", delivered=False, gone=False)


def _answered(started: float, answer: Answer, now: datetime) -> Attempt:
    status = answer.status
    result = outcome(status)
    retry_after_header = next(
        (value for name, value in answer.headers if name.lower() == b"retry-after"), None
    )
    retry_after = parse_retry_after(
        None if retry_after_header is None else retry_after_header.decode("latin-1"), now
    )
    error = "redirects are not followed" if 300 <= status <= 399 else None
    return Attempt(
        status=status,
        latency_ms=_elapsed_ms(started),
        error=error,
        retry_after=retry_after,
        excerpt=answer.body[:EXCERPT_BYTES].decode("utf-8", "replace"),
        delivered=result == "delivered",
        gone=result == "gone",
    )
