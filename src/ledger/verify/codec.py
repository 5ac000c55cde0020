"""The byte-level rules of ``docs/format.md`` sections 1, 2 and 4, written
from the spec alone: canonical JSON, the record splice, hashes, derived ids
and the timestamp form.

Nothing here imports the write path; an outsider with ``orjson``,
``hashlib`` and ``uuid`` would write the same.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson

SAFE_INTEGER_MAX = 2**53 - 1
ZERO_HASH = "0" * 64
NAMESPACE = UUID("6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60")
_NAMESPACE_BYTES = NAMESPACE.bytes

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX64_PATTERN = re.compile(r"[0-9a-f]{64}")
TIMESTAMP_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
USER_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
# A float token as orjson writes one: digits with a fraction and/or an
# exponent, then a delimiter (timestamps' "02.179930Z" do not qualify). Text in
# a string can look like this too; a match only means "walk the value to be
# sure", so the common case costs one regex scan.
_MAYBE_FLOAT = re.compile(rb"[0-9](?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)(?:[,}\]]|\Z)")


class NotJSONError(ValueError):
    """The bytes do not parse as JSON at all."""


def encode(value: Any) -> bytes:
    """Canonical bytes (RFC 8785 for the values section 1 allows)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def parse(data: bytes) -> tuple[Any, str | None]:
    """Parse ``data``; return the value and why it is not canonical (or None).

    Raises :class:`NotJSONError` if it is not JSON.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise NotJSONError(str(error)) from None
    try:
        # STRICT_INTEGER refuses integers beyond ±(2**53-1).
        again = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        return value, unsafe_value(value) or "holds a value that cannot be re-encoded"
    if again != data:
        return value, unsafe_value(value) or _first_difference(again, data)
    # Canonical bytes; they may still hold a float (orjson writes 1.0 back as
    # 1.0) or a non-ASCII key. Look for either cheaply before walking.
    if not data.isascii() or _MAYBE_FLOAT.search(data) is not None:
        return value, unsafe_value(value)
    return value, None


def unsafe_value(value: Any) -> str | None:
    """Why ``value`` holds something section 1 forbids: a float, an integer
    outside ±(2**53-1), a non-ASCII key. Iterative, so deep nesting is fine."""
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        item, where = stack.pop()
        if item is None or isinstance(item, (bool, str)):
            continue
        if isinstance(item, int):
            if abs(item) > SAFE_INTEGER_MAX:
                return f"integer at {where} is outside ±(2**53-1)"
            continue
        if isinstance(item, float):
            return f"number at {where} is not an integer"
        if isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
            continue
        if isinstance(item, dict):
            for key, v in item.items():
                if not key.isascii():
                    return f"key {key!r} at {where} is not ASCII"
                stack.append((v, f"{where}.{key}"))
            continue
        return f"unexpected value at {where}"  # pragma: no cover - orjson yields JSON types
    return None


def _first_difference(expected: bytes, actual: bytes) -> str:
    n = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    got = actual[max(0, n - 8) : n + 8]
    want = expected[max(0, n - 8) : n + 8]
    return f"differs from its canonical form at byte {n}: has {got!r}, canonical {want!r}"


def splice(aggregate_id: str, version: int, event_type: str, state: bytes) -> bytes:
    """Record bytes from the stored columns (section 2): the state's members
    with ``aggregate_id`` before and ``type``, ``version`` after."""
    inner = state[1:-1] if len(state) >= 2 else state
    tail = TYPE_TAILS.get(event_type) if type(event_type) is str else None
    if tail is None:
        tail = type_tail(event_type)
    return b"".join(
        (
            b'{"aggregate_id":"',
            aggregate_id.encode("utf-8", "surrogatepass"),
            b'",',
            inner,
            tail,
            str(version).encode(),
            b"}",
        )
    )


def type_tail(event_type: object) -> bytes:
    """What comes between a record's state members and its version number:
    ``,"type":<JSON string>,"version":`` (remembered for the first types)."""
    tail = b',"type":' + encode(event_type) + b',"version":'
    if type(event_type) is str and len(TYPE_TAILS) < 1_024:
        TYPE_TAILS[event_type] = tail
    return tail


# Event type -> its record tail (a log's types are few: encoded once each).
TYPE_TAILS: dict[str, bytes] = {}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def derive_id(kind: str, *parts: object) -> str:
    """Section 4: UUIDv5 of ``kind/part/part…`` under the ledger namespace
    (RFC 9562 section 5.5: SHA-1 of namespace bytes + UTF-8 name, first 16
    bytes, version and variant bits set)."""
    hasher = _NAMESPACE_SHA1.copy()
    hasher.update("/".join((kind, *map(str, parts))).encode("utf-8", "surrogatepass"))
    h = hasher.hexdigest()
    # Hex digit 12 is the version (5); digit 16's two high bits the variant (10).
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def derive_ids(kind: str, parts: tuple[object, ...], lasts: Iterable[object]) -> list[str]:
    """``[derive_id(kind, *parts, last) for last in lasts]``, the common
    prefix hashed once (a sale's units: the same good and tier, one serial
    each)."""
    prefix = _PREFIXES.get((kind, parts))
    if prefix is None:
        if len(_PREFIXES) >= 1_024:
            _PREFIXES.clear()
        prefix = _NAMESPACE_SHA1.copy()
        prefix.update("/".join((kind, *map(str, parts), "")).encode("utf-8", "surrogatepass"))
        _PREFIXES[(kind, parts)] = prefix
    ids = []
    for last in lasts:
        hasher = prefix.copy()
        hasher.update(str(last).encode("utf-8", "surrogatepass"))
        h = hasher.hexdigest()
        ids.append(f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}")
    return ids


_PREFIXES: dict[tuple[str, tuple[object, ...]], Any] = {}
_NAMESPACE_SHA1 = hashlib.sha1(_NAMESPACE_BYTES, usedforsecurity=False)
_VARIANT = {digit: "%x" % (int(digit, 16) & 0x3 | 0x8) for digit in "0123456789abcdef"}


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and UUID_PATTERN.fullmatch(value) is not None


def is_hex64(value: object) -> bool:
    return isinstance(value, str) and HEX64_PATTERN.fullmatch(value) is not None


def is_timestamp(value: object) -> bool:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``, and a real instant."""
    return isinstance(value, str) and is_timestamp_text(value)


@lru_cache(maxsize=4096)  # the events of one transaction share their timestamp
def is_timestamp_text(value: str) -> bool:
    """:func:`is_timestamp` for a string."""
    if TIMESTAMP_PATTERN.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
