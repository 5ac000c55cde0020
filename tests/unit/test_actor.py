"""``recorded_by``'s shape (docs/format.md section 2): the write path's
check (ledger.domain.actor) and the verifier's own (ledger.verify.actors),
written apart, agree on every member, good or bad."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain import actor as domain
from ledger.verify import actors as verifier

GOOD: list[dict[str, Any]] = [
    {"key_id": "0123456789ab", "request_id": "r", "role": "admin", "subject": None},
    {"key_id": "0123456789ab", "request_id": "a" * 128, "role": "auditor", "subject": None},
    {"key_id": "ffffffffffff", "request_id": "x:y/z=+@-._", "role": "channel", "subject": "shop"},
    {"key_id": "0123456789ab", "request_id": "r", "role": "creator", "subject": "a1_.:@-Z"},
    {"request_id": "sweep-1", "role": "server", "subject": "ledger"},
    {"request_id": "cli-1", "role": "operator", "subject": "cli"},
]
BAD: list[Any] = [
    None,
    [],
    "admin",
    {},
    {"key_id": "0123456789ab", "request_id": "r", "role": "root", "subject": None},
    {"key_id": "0123456789ab", "request_id": "r", "role": "verifier", "subject": None},
    {"key_id": "0123456789AB", "request_id": "r", "role": "admin", "subject": None},
    {"key_id": "0123456789a", "request_id": "r", "role": "admin", "subject": None},
    {"key_id": "0123456789ab", "request_id": "", "role": "admin", "subject": None},
    {"key_id": "0123456789ab", "request_id": "a" * 129, "role": "admin", "subject": None},
    {"key_id": "0123456789ab", "request_id": "a b", "role": "admin", "subject": None},
    {"key_id": "0123456789ab", "request_id": "r", "role": "admin", "subject": "x"},
    {"key_id": "0123456789ab", "request_id": "r", "role": "channel", "subject": None},
    {"key_id": "0123456789ab", "request_id": "r", "role": "channel", "subject": "a/b"},
    {"key_id": "0123456789ab", "request_id": "r", "role": "channel", "subject": "_x"},
    {"key_id": "0123456789ab", "request_id": "r", "role": "admin"},
    {"key_id": "0123456789ab", "request_id": "r", "role": "admin", "subject": None, "x": 1},
    {"key_id": "0123456789ab", "request_id": "r", "role": "server", "subject": "ledger"},
    {"request_id": "r", "role": "server", "subject": None},
    {"request_id": "r", "role": "channel", "subject": "shop"},
    {"request_id": 1, "role": "server", "subject": "ledger"},
    {"request_id": ["r"], "role": "server", "subject": "ledger"},
]


@pytest.mark.parametrize("member", GOOD)
def test_good_members(member: dict[str, Any]) -> None:
    assert domain.actor_problem(member) is None
    assert verifier.actor_problem(member) is None
    assert domain.Actor.from_member(member).member == member


@pytest.mark.parametrize("member", BAD)
def test_bad_members(member: Any) -> None:
    assert domain.actor_problem(member) is not None
    assert verifier.actor_problem(member) is not None
    with pytest.raises(ValueError, match="recorded_by"):
        domain.Actor.from_member(member)


values = st.one_of(
    st.none(),
    st.integers(),
    st.sampled_from(["", "r", "0123456789ab", "shop", "a/b", "cli", "ledger", "_x", "A" * 129]),
    st.sampled_from(sorted(domain.ROLES | {"verifier", "root"})),
)
names = st.sampled_from(["key_id", "request_id", "role", "subject", "x"])


@given(st.dictionaries(names, values, max_size=5))
def test_both_checks_agree(member: dict[str, Any]) -> None:
    assert (domain.actor_problem(member) is None) == (verifier.actor_problem(member) is None)


def test_acting_nests_and_restores() -> None:
    outer, inner = domain.Actor.operator("o"), domain.Actor.server("edge", "s")
    assert domain.current_actor() is None
    with domain.acting(outer):
        with domain.acting(inner):
            assert domain.current_actor() is inner
        assert domain.current_actor() is outer
    assert domain.current_actor() is None
