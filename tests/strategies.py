"""Hypothesis strategies for the ledger's inputs, in one place."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from ledger.domain import limits

identifiers = st.from_regex(r"[a-z][a-z0-9\-]{0,11}", fullmatch=True)
amounts = st.integers(min_value=0, max_value=limits.AMOUNT_MAX)
bps = st.integers(min_value=0, max_value=limits.BPS_DENOMINATOR)

json_keys = st.from_regex(r"[A-Za-z0-9_.:\-]{1,12}", fullmatch=True)
json_scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=20)
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def share_lists(draw: st.DrawFn, max_size: int = 6) -> list[int]:
    """Creator shares in basis points summing to 10,000."""
    n = draw(st.integers(min_value=1, max_value=max_size))
    cuts = sorted(
        draw(st.lists(st.integers(0, limits.BPS_DENOMINATOR), min_size=n - 1, max_size=n - 1))
    )
    edges = [0, *cuts, limits.BPS_DENOMINATOR]
    return [b - a for a, b in itertools.pairwise(edges)]


def good_spec(
    *,
    title: str = "Dawn",
    tiers: list[dict[str, Any]] | None = None,
    policy: str = "absolute",
    creators: list[dict[str, Any]] | None = None,
    resale_bps: int = 1_000,
    variant_rules: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid spec to start from in tests."""
    return {
        "title": title,
        "creators": creators
        or [{"id": "alice", "share_bps": 7_000}, {"id": "bob", "share_bps": 3_000}],
        "content_digest": "sha256:" + "a" * 64,
        "kind": "collectible",
        "currency": "EUR",
        "edition": {"policy": policy},
        "tiers": tiers
        or [
            {"name": "own", "quota": 10, "transferable": True},
            {"name": "view", "quota": 20, "transferable": False},
        ],
        "royalty": {"resale_bps": resale_bps},
        "variant_rules": variant_rules,
        "metadata": {},
        **extra,
    }


def open_shop_and_sell(
    ledger: Any, sales: int, *, quota: int = 100, price: int = 100
) -> tuple[str, list[dict[str, Any]]]:
    """Register channel ``shop``, mint a one-tier good and sell ``sales``
    single units to buyers b0, b1, …; returns the good id and the sales."""
    from ledger.domain.money import Money

    ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
    good = str(
        ledger.mint(good_spec(tiers=[{"name": "own", "quota": quota}]), idempotency_key="m")[
            "good_id"
        ]
    )
    sold = [
        ledger.sell(
            good,
            "own",
            buyer=f"b{i}",
            channel="shop",
            quantity=1,
            unit_price=Money(price, "EUR"),
            idempotency_key=f"s{i}",
        )
        for i in range(sales)
    ]
    return good, sold
