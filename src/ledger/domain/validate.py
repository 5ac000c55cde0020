"""Small, strict readers for command input (JSON-like mappings)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ledger.domain import limits
from ledger.domain.errors import InvalidInputError
from ledger.domain.model import format_timestamp

_IDENTIFIER = re.compile(limits.IDENTIFIER_PATTERN)


def mapping(value: Any, *, field: str, keys: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, "must be an object")
    unknown = set(value) - keys
    if unknown:
        raise InvalidInputError(field, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    missing = required - set(value)
    if missing:
        raise InvalidInputError(field, f"missing field(s): {', '.join(sorted(missing))}")
    return value


def text(value: Any, *, field: str, max_chars: int, pattern: str | None = None) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(field, "must be a string")
    if not 1 <= len(value) <= max_chars:
        raise InvalidInputError(field, f"must be 1 to {max_chars} characters")
    if value != value.strip():
        raise InvalidInputError(field, "must not start or end with whitespace")
    if any(ord(ch) < 0x20 for ch in value):
        raise InvalidInputError(field, "must not contain control characters")
    if pattern is not None and not re.match(pattern, value):
        raise InvalidInputError(field, f"must match {pattern}")
    return value


def identifier(value: Any, *, field: str) -> str:
    """Creator, buyer and channel ids: short, printable, no spaces."""
    checked = text(value, field=field, max_chars=limits.ID_CHARS_MAX)
    if not _IDENTIFIER.match(checked):
        raise InvalidInputError(field, f"must match {limits.IDENTIFIER_PATTERN}")
    return checked


def integer(value: Any, *, field: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(field, "must be an integer")
    if not low <= value <= high:
        raise InvalidInputError(field, f"must be between {low} and {high}")
    return value


def boolean(value: Any, *, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(field, "must be true or false")
    return value


def timestamp(value: Any, *, field: str) -> str | None:
    """An optional ISO 8601 instant with a zone; returned in canonical form."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(field, "must be an ISO 8601 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(field, f"{value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise InvalidInputError(field, "must include a time zone (e.g. Z)")
    return format_timestamp(moment)
