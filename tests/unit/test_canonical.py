"""Our canonical JSON is RFC 8785 for every value the domain can hold."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given

from ledger.domain import canonical
from ledger.domain.errors import InvalidInputError
from tests.strategies import json_values


@given(json_values)
def test_matches_the_reference_rfc8785_implementation(value: Any) -> None:
    assert canonical.encode(value) == rfc8785.dumps(value)


@given(json_values)
def test_canonical_bytes_are_recognised_and_round_trip(value: Any) -> None:
    data = canonical.encode(value)
    assert canonical.is_canonical(data)
    assert canonical.decode(data) == value


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',  # unsorted keys
        b'{"a": 1}',  # whitespace
        b'{"a":1.5}',  # a float
        b'{"a":9007199254740992}',  # beyond 2**53 - 1
        b'"\\u0041"',  # needless escape
        b'{"a":1',  # not JSON
    ],
)
def test_non_canonical_bytes_are_refused(data: bytes) -> None:
    assert not canonical.is_canonical(data)


@pytest.mark.parametrize(
    "value", [1.0, 2**53, {"k": [float("nan")]}, {"bad key": 1}, {"k\ue000": 1}, object()]
)
def test_values_the_ledger_cannot_hash_are_rejected(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        canonical.check_json_value(value, field="metadata", depth_max=4)


def test_nesting_is_bounded() -> None:
    deep: Any = 1
    for _ in range(6):
        deep = [deep]
    with pytest.raises(InvalidInputError, match="nested too deeply"):
        canonical.check_json_value(deep, field="metadata", depth_max=4)
