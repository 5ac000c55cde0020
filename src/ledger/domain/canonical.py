"""Canonical JSON (RFC 8785, JCS) and the hashes built on it.

Every hashed byte in the ledger is produced here. The encoder is orjson with
sorted keys, which emits exactly the RFC 8785 form for the values the domain
allows:

* strings: UTF-8, escaping only ``"``, ``\\`` and control characters (the
  short forms ``\\b \\t \\n \\f \\r`` and lowercase ``\\u00xx`` otherwise), as
  RFC 8785 section 3.2.2.2 requires;
* integers only, within the I-JSON safe range ``|n| <= 2**53 - 1`` (no floats
  anywhere in hashed data);
* object keys sorted. RFC 8785 sorts by UTF-16 code units and orjson by code
  points; the two orders agree unless a key holds a character at or above
  U+E000, which :func:`check_key` forbids for every key the domain accepts.

``tests/unit/test_canonical.py`` cross-checks this against the reference
``rfc8785`` package, and the golden vectors freeze the output.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson

from ledger.domain.errors import InvalidInputError

SAFE_INTEGER_MAX = 2**53 - 1
ZERO_HASH = "0" * 64

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def encode(value: Any) -> bytes:
    """Return the RFC 8785 canonical bytes of a JSON value built by the domain."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def decode(data: bytes) -> Any:
    """Parse JSON bytes (no canonical check; see :func:`is_canonical`)."""
    return orjson.loads(data)


def is_canonical(data: bytes) -> bool:
    """True if ``data`` is exactly the canonical encoding of what it parses to."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return _json_safe(value) and encode(value) == data


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str, *, field: str) -> None:
    """Keys supplied from outside (metadata) must be short ASCII identifiers."""
    if not isinstance(key, str) or not _KEY_PATTERN.match(key):
        msg = f"key {key!r} must match {_KEY_PATTERN.pattern}"
        raise InvalidInputError(field, msg)


def check_json_value(value: Any, *, field: str, depth_max: int, path: str = "") -> None:
    """Reject anything that is not JSON the ledger can hash: floats, big
    integers, non-string keys, keys outside the safe alphabet, deep nesting."""
    where = f"{field}{path}"
    if depth_max < 0:
        raise InvalidInputError(field, f"{where} is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > SAFE_INTEGER_MAX:
            raise InvalidInputError(field, f"{where} integer {value} is outside ±(2**53-1)")
        return
    if isinstance(value, float):
        raise InvalidInputError(field, f"{where} is a float; use integers or strings")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_json_value(item, field=field, depth_max=depth_max - 1, path=f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_key(key, field=field)
            check_json_value(item, field=field, depth_max=depth_max - 1, path=f"{path}.{key}")
        return
    raise InvalidInputError(field, f"{where} has unsupported type {type(value).__name__}")


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return abs(value) <= SAFE_INTEGER_MAX
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(_KEY_SAFE(k) and _json_safe(v) for k, v in value.items())
    return False  # floats and anything else


def _KEY_SAFE(key: str) -> bool:  # noqa: N802 - reads as a predicate constant
    return all(ord(ch) < 0xE000 for ch in key)


def fingerprint(value: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical encoding of a mapping."""
    return sha256_hex(encode(value))
