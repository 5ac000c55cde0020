"""The provenance cross-check vectors (tests/golden/provenance/vectors.json)
still say what ``ledger.verify.provenance`` says: the same verdict, the same
place of failure, the same history. The browser's verifier is held to the
same file by tests/browser/test_tlog_js.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.golden.provenance.generate import expected

VECTORS = Path(__file__).resolve().parents[1] / "golden" / "provenance" / "vectors.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text())


def _verdict(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "error"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_python_verifier_still_says_what_the_vectors_say(case: dict[str, Any]) -> None:
    assert _verdict(expected(case["bundle"], case["policy"])) == _verdict(case["expected"])


def test_the_vectors_cover_the_cases_the_browser_must_get_right() -> None:
    names = {c["name"] for c in CASES}
    for needed in (
        "valid",
        "tampered record byte",
        "wrong index",
        "wrong root",
        "missing cosignature below quorum",
        "unknown signer ignored",
        "bad log signature",
        "empty path at size > 1",
        "policy from another log",
    ):
        assert needed in names
    assert sum(c["expected"]["ok"] for c in CASES) >= 4
    assert {c["expected"].get("where") for c in CASES} >= {
        "bundle", "policy", "checkpoint", "event 1", "event 2", "event 3", "stock", "edition",
    }  # fmt: skip


def test_a_gift_makes_its_recipient_the_verified_holder() -> None:
    """unit.transferred changes the holder (docs/format.md): the verified
    history ends with the gift's recipient, at no price."""
    valid = next(c for c in CASES if c["name"] == "valid")
    history = expected(valid["bundle"], valid["policy"])["history"]
    assert [h["holder"] for h in history] == ["carol", "dave", "erin", "frank"]
    assert history[-1]["type"] == "unit.transferred"
    assert history[-1]["price"] is None
