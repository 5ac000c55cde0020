"""The verifier's own byte rules (``ledger.verify.codec`` and ``splits``),
checked against the golden vectors and the reference RFC 8785 encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.verify import codec
from ledger.verify.splits import Weight, largest_remainder, primary_weights, resale_weights
from tests.strategies import json_values

VECTORS_PATH = Path(__file__).parents[1] / "golden" / "vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text()) if VECTORS_PATH.exists() else {}
needs_vectors = pytest.mark.skipif(not VECTORS, reason="tests/golden/vectors.json is missing")


@needs_vectors
@pytest.mark.parametrize("vector", VECTORS.get("events", []), ids=lambda v: v["type"])
def test_record_splice_and_hash_match_the_vectors(vector: dict[str, Any]) -> None:
    state = vector["state"].encode()
    value, problem = codec.parse(state)
    assert problem is None
    assert value["prev_hash"] == vector["prev_hash"]
    record = codec.splice(vector["aggregate_id"], vector["version"], vector["type"], state)
    assert record.decode() == vector["record"]
    assert codec.sha256_hex(record) == vector["hash"]
    assert codec.parse(record) == (json.loads(vector["record"]), None)


@needs_vectors
def test_ids_and_fingerprint_match_the_vectors() -> None:
    assert str(codec.NAMESPACE) == VECTORS["namespace"]
    ids = VECTORS["ids"]
    assert codec.derive_id("good", ids["good"][0]) == ids["good"][1]
    assert codec.derive_id("stock", *ids["stock"][:2]) == ids["stock"][2]
    assert codec.derive_id("unit", *ids["unit"][:3]) == ids["unit"][3]
    assert codec.derive_id("channel", ids["channel"][0]) == ids["channel"][1]
    assert codec.derive_id("command", *ids["command"][:2]) == ids["command"][2]
    fp = VECTORS["fingerprint"]
    assert codec.sha256_hex(codec.encode(fp["definition"])) == fp["fingerprint"]


@needs_vectors
@pytest.mark.parametrize("vector", VECTORS.get("splits", []), ids=lambda v: str(v["amount"]))
def test_splits_match_the_vectors(vector: dict[str, Any]) -> None:
    weights = [Weight(r, role, w) for r, role, w in vector["weights"]]
    assert largest_remainder(vector["amount"], weights) == vector["parts"]


@needs_vectors
@pytest.mark.parametrize("vector", VECTORS.get("canonical", []), ids=lambda v: v["bytes"][:20])
def test_canonical_vectors(vector: dict[str, Any]) -> None:
    data = vector["bytes"].encode()
    assert codec.encode(vector["value"]) == data
    assert codec.parse(data) == (vector["value"], None)


@given(json_values)
def test_encoding_is_rfc8785(value: Any) -> None:
    data = rfc8785.dumps(value)
    assert codec.encode(value) == data
    assert codec.parse(data) == (value, None)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"b":1,"a":2}', "differs"),
        (b'{"a": 1}', "differs"),
        (b' {"a":1}', "differs"),
        (b'{"a":1}\n', "differs"),
        (b'"\\/"', "differs"),
        (b'"\\u00e9"', "differs"),
        (b'"\\u001F"', "differs"),
        (b'"\\u0008"', "differs"),
        (b"1.0", "not an integer"),
        (b"1e3", "not an integer"),
        (b"-0", "differs"),
        (b"9007199254740992", "outside"),
        (b"-9007199254740992", "outside"),
        (b"123456789012345678901234567890", "not an integer"),
        ('{"\u00e9":1}'.encode(), "not ASCII"),
        (b'{"a":1,"a":1}', "differs"),
    ],
)
def test_non_canonical_forms_are_named(data: bytes, why: str) -> None:
    _, problem = codec.parse(data)
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize(
    "data", [b"", b"{", b"nul", b"\xff", b'"\\ud800"', b"NaN", b"[" * 2000 + b"]" * 2000]
)
def test_not_json(data: bytes) -> None:
    with pytest.raises(codec.NotJSONError):
        codec.parse(data)


def test_safe_integers_are_canonical() -> None:
    for n in (2**53 - 1, -(2**53 - 1), 0):
        assert codec.parse(str(n).encode()) == (n, None)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-11-22T07:25:02.179930Z", True),
        ("2026-11-22T07:25:02Z", False),
        ("2026-11-22T07:25:02.17993Z", False),
        ("2026-11-22T07:25:02.179930+00:00", False),
        ("2026-11-22 07:25:02.179930Z", False),
        ("2026-02-30T07:25:02.179930Z", False),
        ("2026-11-22T25:25:02.179930Z", False),
        ("2026-11-22T07:25:02.179930Z\n", False),
        ("\uff12\uff1026-11-22T07:25:02.179930Z", False),  # full-width digits
    ],
)
def test_timestamps(text: str, ok: bool) -> None:
    assert codec.is_timestamp(text) is ok


def test_ids_and_hashes_are_lowercase() -> None:
    assert codec.is_uuid("6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60")
    assert not codec.is_uuid("6F1C2A4E-58B3-5D7E-9A0C-3B8E4F2D1A60")
    assert not codec.is_uuid("6f1c2a4e58b35d7e9a0c3b8e4f2d1a60")
    assert not codec.is_uuid("6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60\n")
    assert codec.is_hex64("a" * 64)
    assert not codec.is_hex64("A" * 64)
    assert not codec.is_hex64("a" * 63)


def test_largest_remainder_ties_go_to_the_earlier_part() -> None:
    parts = largest_remainder(
        10, [Weight("a", "creator", 1), Weight("b", "creator", 1), Weight("c", "creator", 1)]
    )
    assert [p["amount"] for p in parts or []] == [4, 3, 3]


def test_zero_weights_are_left_out_and_negative_refused() -> None:
    parts = largest_remainder(7, [Weight("a", "creator", 0), Weight("b", "channel", 5)])
    assert parts == [{"recipient": "b", "role": "channel", "amount": 7}]
    assert largest_remainder(7, [Weight("a", "creator", -1), Weight("b", "channel", 5)]) is None
    assert largest_remainder(7, [Weight("a", "creator", 0)]) is None


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**8), min_size=1, max_size=8))
def test_splits_sum_to_the_price(price: int, weights: list[int]) -> None:
    parts = largest_remainder(price, [Weight(str(i), "creator", w) for i, w in enumerate(weights)])
    if sum(weights) == 0:
        assert parts is None
    else:
        assert parts is not None
        assert sum(p["amount"] for p in parts) == price
        assert len(parts) == sum(1 for w in weights if w > 0)


def test_weights_of_section_7() -> None:
    creators = [("alice", 7000), ("bob", 3000)]
    master = [("mia", 10000)]
    primary = primary_weights(creators, master, 1000, "shop", 500)
    assert [(w.recipient, w.role, w.weight) for w in primary] == [
        ("alice", "creator", 8500 * 7000),
        ("bob", "creator", 8500 * 3000),
        ("mia", "master-creator", 1000 * 10000),
        ("shop", "channel", 500 * 10000),
    ]
    resale = resale_weights(creators, 1000, master, 200, "shop", 500, "carol")
    assert [(w.recipient, w.role, w.weight) for w in resale] == [
        ("alice", "creator", 1000 * 7000),
        ("bob", "creator", 1000 * 3000),
        ("mia", "master-creator", 200 * 10000),
        ("shop", "channel", 500 * 10000),
        ("carol", "seller", 8300 * 10000),
    ]
