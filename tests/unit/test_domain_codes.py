"""Redemption codes' states and the code-import rules, decided by the domain
alone (no store, no vault)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.code import BOUND, DELIVERED, FREE, REDEEMED, VOIDED, Code
from ledger.domain.code_import import (
    check_batch_repeats,
    check_coded,
    check_new,
    check_repeats,
    first_repeat,
    plan_lines,
    plan_range,
)
from ledger.domain.errors import (
    CodeStateError,
    DuplicateCodeError,
    DuplicateImportError,
    InvalidInputError,
    TierNotFoundError,
)
from ledger.domain.good import Good, GoodSpec
from tests.strategies import good_spec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REF = "0123456789abcdef" * 2
UNIT = "unit-1"


def code_in(state: str) -> Code:
    """A code brought to ``state`` (voided: after its delivered sale's refund)."""
    code = Code.import_(ref=REF, good_id="g", tier="key", batch_id="b", now=NOW)
    if state == FREE:
        return code
    code.bind(unit_id=UNIT, sale_id="s", now=NOW)
    if state in (DELIVERED, REDEEMED, VOIDED):
        code.deliver(unit_id=UNIT, holder="ann", now=NOW)
    if state == REDEEMED:
        code.redeem(redeemer="shop", now=NOW)
    if state == VOIDED:
        code.settle_refund(unit_id=UNIT, refund_id="r", now=NOW)
    assert code.state == state
    return code


# -- code states -------------------------------------------------------------------------
def test_only_a_unit_whose_code_is_unrevealed_is_resold() -> None:
    code_in(BOUND).check_resale(UNIT)
    for state in (DELIVERED, REDEEMED):
        with pytest.raises(CodeStateError, match="can no longer be resold"):
            code_in(state).check_resale(UNIT)


@pytest.mark.parametrize(
    ("state", "primary", "allowed"),
    [
        (BOUND, True, True),
        (BOUND, False, True),
        (DELIVERED, True, True),  # its primary sale's refund voids it
        (DELIVERED, False, False),  # no other refund undoes a reveal
        (REDEEMED, True, False),
        (REDEEMED, False, False),
    ],
)
def test_which_refunds_a_codes_state_allows(state: str, primary: bool, allowed: bool) -> None:
    code = code_in(state)
    if allowed:
        code.check_refund(UNIT, primary=primary)
    else:
        with pytest.raises(CodeStateError, match=f"was {state}: this acquisition"):
            code.check_refund(UNIT, primary=primary)


def test_a_refund_returns_an_unrevealed_code_and_voids_a_delivered_one() -> None:
    bound = code_in(BOUND)
    assert bound.settle_refund(unit_id=UNIT, refund_id="r", now=NOW) is True
    assert (bound.state, bound.unit_id) == (FREE, None)
    delivered = code_in(DELIVERED)
    assert delivered.settle_refund(unit_id=UNIT, refund_id="r", now=NOW) is False
    assert delivered.state == VOIDED
    with pytest.raises(CodeStateError):
        code_in(REDEEMED).settle_refund(unit_id=UNIT, refund_id="r", now=NOW)


def test_a_code_is_delivered_to_its_holder_once_and_redeemed_once() -> None:
    code = code_in(BOUND)
    with pytest.raises(CodeStateError, match="only a code delivered"):
        code.redeem(redeemer="shop", now=NOW)
    assert code.deliver(unit_id=UNIT, holder="ann", now=NOW) is True
    assert code.deliver(unit_id=UNIT, holder="ann", now=NOW) is False  # nothing recorded
    with pytest.raises(CodeStateError, match="cannot be delivered"):
        code.deliver(unit_id=UNIT, holder="bob", now=NOW)
    code.redeem(redeemer="shop", now=NOW)
    with pytest.raises(CodeStateError, match="redeemed already"):
        code.redeem(redeemer="shop", now=NOW)


# -- code import -------------------------------------------------------------------------
def test_a_files_codes_are_checked_and_cut_into_batches() -> None:
    texts = [f"C{n:05d}" for n in range(2_345)]
    plan = plan_lines(texts, range(3, 2_348), "codes.txt")
    assert [len(b.codes) for b in plan.batches] == [1_000, 1_000, 345]
    assert all(b.range is None for b in plan.batches)
    assert plan.codes == texts
    assert plan.digest == hashlib.sha256(("\n".join(texts) + "\n").encode()).hexdigest()
    assert plan.where(0) == "line 3 of codes.txt"
    assert list(plan.positions(2)) == list(range(2_000, 2_345))
    with pytest.raises(InvalidInputError, match=r"codes\.txt line 2: must be printable"):
        plan_lines(["OK", "NOT OK"], [1, 2], "codes.txt")


def test_a_range_is_one_range_a_batch_and_laid_out_canonically() -> None:
    plan = plan_range("GAME-", 6, 1, 1_500)
    assert [b.range for b in plan.batches] == [
        {"prefix": "GAME-", "width": 6, "start": 1, "end": 1_000},
        {"prefix": "GAME-", "width": 6, "start": 1_001, "end": 1_500},
    ]
    assert plan.codes[0] == "GAME-000001"
    assert plan.where(1_499) == "code #1500 of the range"
    with pytest.raises(InvalidInputError, match="does not fit in 2"):
        plan_range("A", 2, 1, 100)


def test_the_same_input_has_the_same_keys_for_the_same_tier_only() -> None:
    one = plan_lines(["A", "B"], [1, 2], "a.txt")
    laid_out_otherwise = plan_lines(["A", "B"], [4, 9], "b.txt")
    assert one.keys("g", "key") == laid_out_otherwise.keys("g", "key")
    assert one.keys("g", "key") != one.keys("g", "other")
    assert one.keys("g", "key") == [f"codes-g-key-{one.digest[:32]}-0"]


@given(refs=st.lists(st.sampled_from("abcdefgh"), max_size=12))
def test_first_repeat_finds_the_first_ref_listed_before(refs: list[str]) -> None:
    repeat = first_repeat(refs)
    if len(set(refs)) == len(refs):
        assert repeat is None
    else:
        assert repeat is not None
        position, earlier = repeat
        assert refs[position] == refs[earlier]
        assert earlier < position
        assert len(set(refs[:position])) == position  # nothing repeats before it


def test_a_repeat_refuses_the_batch_or_the_whole_input() -> None:
    with pytest.raises(DuplicateCodeError, match="code #3 of the batch was listed before, as #1"):
        check_batch_repeats(["a", "b", "a"])
    plan = plan_lines(["X", "Y", "Z"], [1, 4, 7], "f")
    with pytest.raises(DuplicateImportError, match="line 7 of f repeats line 1 of f; nothing"):
        check_repeats(plan, ["a", "b", "a"])
    check_repeats(plan, ["a", "b", "c"])


def test_codes_imported_before_refuse_the_whole_input() -> None:
    plan = plan_range("Z-", 4, 5, 2_000)
    check_new(plan, [])
    with pytest.raises(DuplicateImportError) as refused:
        check_new(plan, [7, 3])
    assert refused.value.message == (
        "2 code(s) were imported before, the first at code #4 of the range; nothing imported"
    )
    assert isinstance(refused.value, DuplicateCodeError)
    assert refused.value.code == "duplicate-code"


def test_only_a_redemption_code_goods_tiers_take_codes() -> None:
    coded = Good.mint(GoodSpec.from_json(good_spec(kind="redemption-code")), NOW)
    check_coded(coded, "own")
    with pytest.raises(TierNotFoundError):
        check_coded(coded, "nope")
    plain = Good.mint(GoodSpec.from_json(good_spec()), NOW)
    with pytest.raises(CodeStateError, match="not a redemption-code"):
        check_coded(plain, "own")
