"""Outbound webhooks' pure rules (issue 17 items 3 and 4): the retry schedule
is bounded and grows, Retry-After is honoured within a cap, and no address
that is not public is ever allowed unless the operator allows private ones."""

from __future__ import annotations

import ipaddress
import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import InvalidInputError
from ledger.domain.webhook import (
    JITTER,
    MAX_ATTEMPTS,
    RETRY_AFTER_MAX_S,
    RETRY_SCHEDULE_S,
    UnsafeUrlError,
    address_allowed,
    address_refusal,
    embedded_ipv4,
    outcome,
    parse_retry_after,
    parse_url,
    retry_delay,
)

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
seeds = st.integers(min_value=0, max_value=2**32)
retry_afters = st.none() | st.floats(allow_nan=True, allow_infinity=True)


# -- the retry schedule -----------------------------------------------------------------


def test_the_schedule_is_svix_s_about_5s_5min_30min_2h_5h_10h_10h() -> None:
    assert RETRY_SCHEDULE_S == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert MAX_ATTEMPTS == 8  # the immediate attempt and seven retries
    rng = random.Random(1)
    for attempt, base in enumerate(RETRY_SCHEDULE_S, start=1):
        delay = retry_delay(attempt, None, rng)
        assert delay is not None
        assert base * (1 - JITTER) <= delay <= base * (1 + JITTER)
    assert retry_delay(MAX_ATTEMPTS, None, rng) is None


@given(seeds, retry_afters)
def test_the_schedule_is_bounded_and_gives_up(seed: int, retry_after: float | None) -> None:
    rng = random.Random(seed)
    delays = [retry_delay(n, retry_after, rng) for n in range(1, MAX_ATTEMPTS + 3)]
    kept = [d for d in delays if d is not None]
    assert len(kept) == MAX_ATTEMPTS - 1  # then None, for good
    assert all(d is None for d in delays[MAX_ATTEMPTS - 1 :])
    assert all(0 < d <= max(RETRY_SCHEDULE_S) * (1 + JITTER) for d in kept)
    assert sum(kept) <= len(kept) * RETRY_AFTER_MAX_S * (1 + JITTER)


@given(seeds)
def test_without_retry_after_each_step_waits_at_least_as_long_as_the_last(seed: int) -> None:
    """Jitter never reorders two different steps (20 % each side); the two
    10-hour steps may come either way round within their range."""
    rng = random.Random(seed)
    delays = [retry_delay(n, None, rng) for n in range(1, MAX_ATTEMPTS)]
    for n, (before, after) in enumerate(itertools.pairwise(delays), start=1):
        assert before is not None
        assert after is not None
        if RETRY_SCHEDULE_S[n] > RETRY_SCHEDULE_S[n - 1]:
            assert after > before


@given(seeds, st.integers(min_value=1, max_value=MAX_ATTEMPTS - 1), st.floats(0.001, 1e9))
def test_retry_after_is_honoured_up_to_the_cap(seed: int, attempt: int, asked: float) -> None:
    delay = retry_delay(attempt, asked, random.Random(seed))
    assert delay is not None
    assert delay >= min(asked, RETRY_AFTER_MAX_S)  # never sooner than asked (within the cap)
    assert delay <= max(RETRY_AFTER_MAX_S, RETRY_SCHEDULE_S[attempt - 1] * (1 + JITTER))


@pytest.mark.parametrize("nonsense", [-5.0, 0.0, float("nan"), float("inf"), float("-inf")])
def test_a_nonsense_retry_after_is_ignored(nonsense: float) -> None:
    assert retry_delay(1, nonsense, random.Random(7)) == retry_delay(1, None, random.Random(7))


def test_attempts_are_counted_from_one() -> None:
    with pytest.raises(ValueError, match="1-based"):
        retry_delay(0, None, random.Random(1))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Tue, 08 Dec 2026 12:01:30 GMT", 90.0),
        ("Tue, 08 Dec 2026 11:00:00 GMT", 0.0),  # in the past: now
        ("soon", None),
        ("-3", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


@given(st.integers(min_value=0, max_value=10**6))
def test_retry_after_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == seconds
    date = (NOW + timedelta(seconds=seconds)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(date, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (410, "gone"),
        (301, "failed"),  # redirects are never followed
        (304, "failed"),
        (404, "failed"),
        (429, "failed"),
        (500, "failed"),
        (503, "failed"),
        (None, "failed"),  # no answer: timeout, refused, reset
    ],
)
def test_only_2xx_delivers_and_410_means_gone(status: int | None, expected: str) -> None:
    assert outcome(status) == expected


# -- where we may send --------------------------------------------------------------------

NOT_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("fe80::1", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("100.127.255.255", "shared (CGNAT)"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "private"),  # documentation
    ("198.18.0.1", "private"),  # benchmarking
    ("2001:db8::1", "private"),  # documentation
    ("::ffff:127.0.0.1", "loopback (embedded in ::ffff:7f00:1)"),
    ("::ffff:10.0.0.1", "private (embedded in ::ffff:a00:1)"),
    ("::ffff:169.254.169.254", "link-local (embedded in ::ffff:a9fe:a9fe)"),
    ("2002:7f00:1::", "loopback (embedded in 2002:7f00:1::)"),  # 6to4
    ("2002:c0a8:101::", "private (embedded in 2002:c0a8:101::)"),
    ("64:ff9b::7f00:1", "loopback (embedded in 64:ff9b::7f00:1)"),  # NAT64
]
NEVER = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("::ffff:224.0.0.1", "multicast (embedded in ::ffff:e000:1)"),
    ("::ffff:0.0.0.0", "unspecified (embedded in ::ffff:0:0)"),
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8",
          "2002:808:808::", "64:ff9b::808:808"]  # fmt: skip


@pytest.mark.parametrize(("address", "why"), NOT_PUBLIC)
def test_addresses_that_are_not_public_are_refused_unless_allowed(address: str, why: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip, allow_private=False) == why
    assert not address_allowed(ip, allow_private=False)
    assert address_allowed(ip, allow_private=True)  # the operator's setting (the tests')


@pytest.mark.parametrize(("address", "why"), NEVER)
def test_multicast_and_unspecified_are_refused_even_when_private_is_allowed(
    address: str, why: str
) -> None:
    ip = ipaddress.ip_address(address)
    for allow_private in (False, True):
        assert address_refusal(ip, allow_private) == why


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address), allow_private=False)


PRIVATE_NETS = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "240.0.0.0/4", "224.0.0.0/4",
    "::1/128", "fe80::/10", "fc00::/7", "ff00::/8",
]  # fmt: skip
v4_in_private = st.sampled_from([n for n in PRIVATE_NETS if "." in n]).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda k: ipaddress.ip_network(net)[k]
    )
)
v6_in_private = st.sampled_from([n for n in PRIVATE_NETS if ":" in n]).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda k: ipaddress.ip_network(net)[k]
    )
)


def _wrappings(ip: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """``ip`` as IPv6 addresses carrying it: v4-mapped, 6to4, NAT64."""
    n = int(ip)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | n),
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | n),
    ]


@given(v4_in_private)
def test_every_private_ipv4_address_is_refused_however_it_is_wrapped(
    ip: ipaddress.IPv4Address,
) -> None:
    assert not address_allowed(ip, allow_private=False)
    for wrapped in _wrappings(ip):
        assert embedded_ipv4(wrapped) == ip
        assert not address_allowed(wrapped, allow_private=False)


@given(v6_in_private)
def test_every_private_ipv6_address_is_refused(ip: ipaddress.IPv6Address) -> None:
    assert not address_allowed(ip, allow_private=False)


@given(st.ip_addresses())
def test_allowing_private_refuses_only_multicast_and_unspecified(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    refusal = address_refusal(ip, allow_private=True)
    assert refusal is None or refusal.startswith(("multicast", "unspecified"))
    if address_allowed(ip, allow_private=False):
        assert ip.is_global or embedded_ipv4(ip) is not None
        assert not ip.is_multicast


# -- a URL's shape ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("https://hooks.example.com/in", ("https", "hooks.example.com", 443, "/in")),
        ("http://example.com", ("http", "example.com", 80, "/")),
        ("HTTPS://Example.COM:8443/a/b?x=1&y=2", ("https", "example.com", 8443, "/a/b?x=1&y=2")),
        ("http://[2606:4700::1]:8080/h", ("http", "2606:4700::1", 8080, "/h")),
        ("http://127.0.0.1:9/h#frag", ("http", "127.0.0.1", 9, "/h")),
        ("https://example.com./h", ("https", "example.com", 443, "/h")),
    ],
)
def test_a_url_s_parts(url: str, parts: tuple[str, str, int, str]) -> None:
    parsed = parse_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.target) == parts


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com", "scheme"),
        ("example.com/x", "scheme"),
        ("https://user:pass@example.com/x", "credentials"),
        ("https://token@example.com/x", "credentials"),
        ("https:///x", "no host"),
        ("http://example.com:99999/", "not a URL"),
        ("http://example.com:0/", "port 0"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nX-Injected: 1", "whitespace"),
        ("https://example.com/" + "a" * 2100, "longer than"),
    ],
)
def test_a_url_that_is_not_http_s_or_carries_credentials_is_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrlError, match=why) as refused:
        parse_url(url)
    assert refused.value.code == "webhook-url-unsafe"
    assert refused.value.field == "url"
    assert isinstance(refused.value, InvalidInputError)  # a 422 problem at the edge
