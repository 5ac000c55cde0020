"""Outbound webhooks' pure rules: when to retry, where we may send, what a
receiver's answer means (docs/webhooks.md, "Delivery, signatures and safety").

The sender (``ledger.webhooks.sender``) does the I/O -- resolving, dialling,
signing -- and asks this module every question whose answer is a rule:

* :func:`retry_delay` -- the retry schedule (Svix's: ~5 s, 5 min, 30 min,
  2 h, 5 h, 10 h, 10 h, each with jitter), honouring a receiver's
  ``Retry-After`` up to a cap, and giving up after :data:`MAX_ATTEMPTS`.
* :func:`address_refusal` / :func:`address_allowed` -- whether a resolved
  address may be dialled: only globally routable unicast addresses, unless
  the operator allows private ones (the tests' receiver on 127.0.0.1).
* :func:`parse_url` -- a URL's shape: http(s), a host, no credentials.
* :func:`outcome` and :func:`parse_retry_after` -- what a status means.

Subscriptions (their aggregate and events) are ``domain.subscription``.
"""

from __future__ import annotations

import ipaddress
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, Literal
from urllib.parse import urlsplit

from ledger.domain.errors import InvalidInputError

# -- retries --------------------------------------------------------------------------

# Seconds to wait after failed attempt No. 1, 2, ... (the first attempt is
# immediate): Svix's schedule, which the Standard Webhooks specification's
# example follows. After the last, the subscription is marked failing.
RETRY_SCHEDULE_S: Final = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS: Final = len(RETRY_SCHEDULE_S) + 1
# Each delay is drawn from [(1 - JITTER) d, (1 + JITTER) d]: receivers that
# failed together (an outage) are not all retried in the same second. With
# 20 % the ranges of two different steps never overlap, so the schedule
# still grows.
JITTER: Final = 0.2
# A receiver's Retry-After is honoured (never retried sooner) up to the
# schedule's longest step, so no answer can stretch the whole schedule
# beyond MAX_ATTEMPTS steps of 10 hours.
RETRY_AFTER_MAX_S: Final = max(RETRY_SCHEDULE_S)


def retry_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
    """Seconds to wait before attempt No. ``attempt + 1``, after attempt No.
    ``attempt`` (1-based) failed; ``None``: give up, the bound is reached.

    ``retry_after`` (seconds, from :func:`parse_retry_after`) is honoured
    when it asks for longer than the schedule, capped at
    :data:`RETRY_AFTER_MAX_S`; a negative or non-finite one is ignored.
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, not {attempt}")
    if attempt >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE_S[attempt - 1]
    delay = base * rng.uniform(1.0 - JITTER, 1.0 + JITTER)
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX_S))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (RFC 9110 section 10.2.3: delay-seconds or an
    HTTP-date) as seconds from ``now``; ``None`` if absent or unreadable. A
    date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


Outcome = Literal["delivered", "gone", "failed"]

GONE: Final = 410


def outcome(status: int | None) -> Outcome:
    """What a receiver's answer means: 2xx delivered; 410 Gone -- stop
    sending to this endpoint; anything else (3xx: redirects are not
    followed; 4xx, 5xx, no answer) failed, retried by :func:`retry_delay`."""
    if status is not None and 200 <= status <= 299:
        return "delivered"
    if status == GONE:
        return "gone"
    return "failed"


# -- where we may send --------------------------------------------------------------

SCHEMES: Final = ("http", "https")
URL_MAX_LENGTH: Final = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges refused beside what the standard library calls non-global, named so
# the rule does not move with the Python version (3.11's ``is_global`` takes
# 224.0.0.0/4 and ff00::/8 for global, for one).
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK: Final = ipaddress.ip_network("0.0.0.0/8")
_RESERVED_V4: Final = ipaddress.ip_network("240.0.0.0/4")
_ULA: Final = ipaddress.ip_network("fc00::/7")
_SITE_LOCAL: Final = ipaddress.ip_network("fec0::/10")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to reach it: v4-mapped
    (``::ffff:127.0.0.1``), 6to4 (``2002:7f00:1::``) or NAT64
    (``64:ff9b::7f00:1``); ``None`` for plain addresses."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, allow_private: bool) -> str | None:
    """Why ``ip`` may not be dialled (``"loopback"``, ``"private"``...), or
    ``None`` if it may. An IPv6 address carrying an IPv4 one is judged by
    both. Multicast and unspecified addresses are refused even when the
    operator allows private ones: they are never one receiver."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        refusal = address_refusal(inner, allow_private)
        if refusal is not None:
            return f"{refusal} (embedded in {ip})"
        mapped = isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None
        if mapped or ip in _NAT64:
            return None  # mapped or translated, it reaches exactly its IPv4 one
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified"
    if allow_private:
        return None
    return _private_kind(ip)


def _private_kind(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip in _CGNAT:
        return "shared (CGNAT)"
    if ip in _ULA:
        return "unique-local"
    if ip in _SITE_LOCAL:
        return "site-local"
    if ip in _RESERVED_V4 or ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def address_allowed(ip: IPAddress, allow_private: bool) -> bool:
    """Whether the sender may dial ``ip`` (:func:`address_refusal`)."""
    return address_refusal(ip, allow_private) is None


@dataclass(frozen=True)
class WebhookUrl:
    """A webhook URL's parts the sender dials: scheme, host (an IP literal
    unbracketed), port (the scheme's default if none) and the request target
    (path and query)."""

    scheme: str
    host: str
    port: int
    target: str


class UnsafeUrlError(InvalidInputError):
    """A webhook URL the sender will not call: not http(s), malformed,
    carrying credentials, or naming (or resolving to) an address that is not
    public. Nothing was sent or registered."""

    code = "webhook-url-unsafe"

    def __init__(self, message: str) -> None:
        super().__init__("url", message)


def parse_url(url: str) -> WebhookUrl:
    """``url``'s parts, or :class:`UnsafeUrlError`. Credentials are refused:
    the URL is recorded in the subscription's events, which hold no secret."""
    if len(url) > URL_MAX_LENGTH:
        raise UnsafeUrlError(f"longer than {URL_MAX_LENGTH} characters")
    if " " in url or not url.isprintable():  # other spaces and controls are not printable
        raise UnsafeUrlError("contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrlError(f"not a URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeUrlError(f"scheme must be http or https, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("credentials in the URL are not allowed (they would be recorded)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrlError("no host")
    if port == 0:
        raise UnsafeUrlError("port 0")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return WebhookUrl(scheme, host, port or (443 if scheme == "https" else 80), target)
