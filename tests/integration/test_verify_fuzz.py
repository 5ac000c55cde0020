"""The verifier on damaged copies of a real export: it never crashes, and
it catches every deletion, reordering and edit that the chain can see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.verify import Report, Verifier, export_store
from ledger.verify.codec import encode
from tests.integration.test_verify_ledger import build_busy
from tests.strategies import json_values

Lines = list[bytes]


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> Lines:
    base = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{base / 'ledger.db'}"
    build_busy(url)
    from ledger.store.database import DatabaseURL

    out = base / "ledger.jsonl"
    export_store(DatabaseURL.parse(url), out)
    return Path(out).read_bytes().split(b"\n")[:-1]


def verify_lines(lines: Lines) -> Report:
    verifier = Verifier()
    for number, line in enumerate(lines, 1):
        verifier.feed_record(number, line)
    return verifier.finish("fuzz")


def verify_rows(lines: Lines, damage: int, state: bytes) -> Report:
    """As if read from the store, with line ``damage``'s state replaced."""
    verifier = Verifier()
    for number, line in enumerate(lines, 1):
        record = orjson.loads(line)
        stored = encode({k: record[k] for k in ("payload", "prev_hash", "timestamp")})
        verifier.feed(
            number,
            record["aggregate_id"],
            record["version"],
            record["type"],
            state if number == damage else stored,
        )
    return verifier.finish("fuzz")


def last_of_its_aggregate(lines: Lines, index: int) -> bool:
    aggregate = orjson.loads(lines[index])["aggregate_id"]
    return all(orjson.loads(line)["aggregate_id"] != aggregate for line in lines[index + 1 :])


def no_crash(report: Report) -> None:
    assert "unverifiable" not in {f.check for f in report.findings}, [
        str(f) for f in report.findings if f.check == "unverifiable"
    ]


def test_clean(lines: Lines) -> None:
    report = verify_lines(lines)
    assert report.ok, [str(f) for f in report.findings]


def test_every_deleted_line_is_caught_unless_last_of_its_aggregate(lines: Lines) -> None:
    """Deleting an event breaks its successor's link; deleting an aggregate's
    last event is the Merkle log's to catch (section 2), though the rules
    often catch it too (a sale without units, a refund without its return)."""
    caught_last = 0
    for index in range(len(lines)):
        report = verify_lines(lines[:index] + lines[index + 1 :])
        no_crash(report)
        if not last_of_its_aggregate(lines, index):
            assert not report.ok, f"deleting line {index + 1} went unnoticed"
        elif not report.ok:
            caught_last += 1
    assert caught_last > 0


def test_every_swap_within_an_aggregate_is_caught(lines: Lines) -> None:
    aggregates = [orjson.loads(line)["aggregate_id"] for line in lines]
    for i in range(len(lines)):
        for j in range(i + 1, min(i + 4, len(lines))):
            damaged = list(lines)
            damaged[i], damaged[j] = damaged[j], damaged[i]
            report = verify_lines(damaged)
            no_crash(report)
            if aggregates[i] == aggregates[j]:
                assert not report.ok, f"swapping lines {i + 1} and {j + 1} went unnoticed"


@settings(max_examples=60)
@given(st.data())
def test_flipped_bytes(lines: Lines, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(lines) - 1))
    line = bytearray(lines[index])
    at = data.draw(st.integers(0, len(line) - 1))
    line[at] ^= data.draw(st.integers(1, 255))
    damaged = [*lines[:index], bytes(line), *lines[index + 1 :]]
    report = verify_lines(damaged)
    no_crash(report)
    if not last_of_its_aggregate(lines, index):
        assert not report.ok


@settings(max_examples=60)
@given(st.data())
def test_flipped_state_bytes_in_the_store(lines: Lines, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(lines) - 1))
    record = orjson.loads(lines[index])
    state = bytearray(encode({k: record[k] for k in ("payload", "prev_hash", "timestamp")}))
    at = data.draw(st.integers(0, len(state) - 1))
    state[at] ^= data.draw(st.integers(1, 255))
    report = verify_rows(lines, index + 1, bytes(state))
    no_crash(report)
    if not last_of_its_aggregate(lines, index):
        assert not report.ok


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


@settings(max_examples=100)
@given(st.data())
def test_any_payload_value_replaced(lines: Lines, data: st.DataObject) -> None:
    """Well-formed JSON with the wrong thing anywhere: reported, never raised."""
    index = data.draw(st.integers(0, len(lines) - 1))
    record = orjson.loads(lines[index])
    path = data.draw(st.sampled_from(_paths(record["payload"])[1:] or [()]))
    value = data.draw(json_values)
    if path:
        target = record["payload"]
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    else:
        record["payload"] = value
    damaged = [*lines[:index], encode(record), *lines[index + 1 :]]
    no_crash(verify_lines(damaged))
