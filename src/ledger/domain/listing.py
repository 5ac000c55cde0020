"""Pausing, resuming and delisting a tier, or a whole good (issue 18, item 5).

A tier's listing state lives on its stock (:class:`ledger.domain.stock.TierStock`),
so a pause and a sale race on one aggregate version: no sale is decided on a
stock that a committed pause has stopped. Pausing a good pauses each of its
tiers in one transaction with ``scope: "good"``; a tier can also be paused on
its own (``scope: "tier"``). The two pauses are independent: resuming the good
lifts only the good's pause, so a tier paused on its own stays paused.

While any pause is in force, sales (direct, from a pool, a hold's payment),
new holds and restocks are refused; holds already made keep running and
expire as usual, refunds, releases, pools and rate rules are unaffected.

Delisting is final: no sale, hold, restock, waitlist entry, pause or resume
ever again. Units already sold stay valid; they may still be resold,
transferred, redeemed and refunded (a refunded unit goes back to a stock that
never sells again).
"""

from __future__ import annotations

from typing import Any

from ledger.domain import limits, validate
from ledger.domain.errors import DelistedError, InvalidInputError, ListingStateError, PausedError

SCOPES = ("good", "tier")  # the good's pause comes first when both are in force


def check_scope(scope: Any) -> str:
    if scope not in SCOPES:
        raise InvalidInputError("scope", f"must be one of {', '.join(SCOPES)}")
    return str(scope)


def check_reason(reason: Any) -> str:
    return validate.text(reason, field="reason", max_chars=limits.REASON_CHARS_MAX)


def check_listed(
    tier: str, paused: dict[str, dict[str, Any]], delisted: dict[str, Any] | None
) -> None:
    """Refuse what a pause or a delisting stops (the delisting first: it is final)."""
    if delisted is not None:
        raise DelistedError(tier, delisted["scope"], delisted["reason"], delisted["since"])
    for scope in SCOPES:
        pause = paused.get(scope)
        if pause is not None:
            raise PausedError(tier, scope, pause["reason"], pause["since"])


def check_pause(
    tier: str, scope: str, paused: dict[str, dict[str, Any]], delisted: dict[str, Any] | None
) -> None:
    """A pause of a listed tier that this scope has not paused already."""
    _check_not_delisted(tier, delisted)
    pause = paused.get(scope)
    if pause is not None:
        raise ListingStateError(
            f"{_what(tier, scope)} is paused already (since {pause['since']}: {pause['reason']})"
        )


def check_resume(
    tier: str, scope: str, paused: dict[str, dict[str, Any]], delisted: dict[str, Any] | None
) -> None:
    """A resume lifts a pause of its own scope, of a tier not delisted."""
    _check_not_delisted(tier, delisted)
    if scope not in paused:
        other = [s for s in paused if s != scope]
        raise ListingStateError(
            f"{_what(tier, scope)} is not paused"
            + (f" (it is paused by its {other[0]}: resume that)" if other else "")
        )


def check_delist(tier: str, delisted: dict[str, Any] | None) -> None:
    _check_not_delisted(tier, delisted)


def sale_state(
    paused: dict[str, Any], delisted: dict[str, Any] | None, *, locked: bool = False
) -> str:
    """``on-sale``, ``locked`` (an unlock tier not open yet), ``paused`` or
    ``delisted`` (as the views show it)."""
    if delisted is not None:
        return "delisted"
    if paused:
        return "paused"
    return "locked" if locked else "on-sale"


def _check_not_delisted(tier: str, delisted: dict[str, Any] | None) -> None:
    if delisted is not None:
        raise DelistedError(tier, delisted["scope"], delisted["reason"], delisted["since"])


def _what(tier: str, scope: str) -> str:
    return f"tier {tier!r}" if scope == "tier" else f"the good of tier {tier!r}"
