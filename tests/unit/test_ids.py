"""Derived ids: the fast derivation equals the standard library's uuid5."""

from __future__ import annotations

import pickle
from uuid import UUID, uuid5

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.ids import LEDGER_NAMESPACE, _derive, unit_id_for


@given(kind=st.text(max_size=20), parts=st.lists(st.text(max_size=60), max_size=4))
def test_derive_is_uuid5_of_the_joined_name(kind: str, parts: list[str]) -> None:
    derived = _derive(kind, *parts)
    expected = uuid5(LEDGER_NAMESPACE, "/".join((kind, *parts)))
    assert derived == expected
    assert (str(derived), hash(derived), derived.version, derived.variant) == (
        str(expected),
        hash(expected),
        expected.version,
        expected.variant,
    )
    assert UUID(str(derived)) == derived
    assert pickle.loads(pickle.dumps(derived)) == derived


def test_a_known_id_never_changes() -> None:
    # Pinned: ids are part of the stored history.
    good = UUID("6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60")
    assert unit_id_for(good, "own", 37) == uuid5(LEDGER_NAMESPACE, f"unit/{good}/own/37")
