"""Every error the domain raises, each with a stable ``code``.

The code names the problem type: the HTTP edge maps it to an RFC 9457
``type`` URI and a status, the CLI prints ``error[code]: message``. A domain
error always means *nothing was written*.

The hierarchy groups errors by what a caller can do about them:

* :class:`InvalidInputError` -- the request is malformed; fix it.
* :class:`NotFoundError` -- it names something that does not exist.
* :class:`ConflictError` -- it clashes with what exists (duplicate mint,
  an idempotency key reused with another body).
* :class:`RuleViolation` -- well-formed, but a business rule refuses it
  (sold out, not the holder, edition is absolute...).
* :class:`ConcurrencyError` -- contention outlasted the retries; retry later
  with the same idempotency key.
* :class:`ChainError` -- stored history does not verify; an operator matter.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every domain error."""

    code = "ledger-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(LedgerError, ValueError):
    """A field of a command is malformed or out of its bounds."""

    code = "invalid-input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFoundError(LedgerError, LookupError):
    code = "not-found"


class AccountNotFoundError(NotFoundError):
    code = "account-not-found"

    def __init__(self, account: str, field: str = "account") -> None:
        super().__init__(f"no account {account!r}: a channel opens it by serving it first")
        self.account, self.field = account, field


class KeyNotFoundError(NotFoundError):
    code = "holder-key-not-found"

    def __init__(self, account: str, key_id: str) -> None:
        super().__init__(f"account {account!r} has no key {key_id} in force")


class GoodNotFoundError(NotFoundError):
    code = "good-not-found"

    def __init__(self, good_id: object) -> None:
        super().__init__(f"good {good_id} does not exist")


class TierNotFoundError(NotFoundError):
    code = "tier-not-found"

    def __init__(self, good_id: object, tier: str) -> None:
        super().__init__(f"good {good_id} has no tier {tier!r}")


class UnitNotFoundError(NotFoundError):
    code = "unit-not-found"

    def __init__(self, unit_id: object) -> None:
        super().__init__(f"unit {unit_id} does not exist")


class ChannelNotFoundError(NotFoundError):
    code = "channel-not-found"

    def __init__(self, channel: str) -> None:
        super().__init__(f"channel {channel!r} is not registered")


class HoldNotFoundError(NotFoundError):
    code = "hold-not-found"

    def __init__(self, hold_id: object, tier: str) -> None:
        super().__init__(f"tier {tier!r} has no hold {hold_id}")


class ConflictError(LedgerError):
    code = "conflict"


class AccountExistsError(ConflictError):
    code = "account-exists"

    def __init__(self, account: str) -> None:
        super().__init__(f"account {account!r} is open already, served by this channel")


class GoodAlreadyExistsError(ConflictError):
    code = "good-exists"

    def __init__(self, good_id: object) -> None:
        super().__init__(f"good {good_id} already exists")


class ChannelAlreadyExistsError(ConflictError):
    code = "channel-exists"

    def __init__(self, channel: str) -> None:
        super().__init__(f"channel {channel!r} is already registered")


class IdempotencyKeyReusedError(ConflictError):
    """The key was used before for a different command or body."""

    code = "idempotency-key-reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used with a different request")


class RuleViolation(LedgerError):  # noqa: N818 - a violation, not an "error"
    code = "rule-violation"


class SoldOutError(RuleViolation):
    code = "sold-out"

    def __init__(self, tier: str, requested: int, available: int) -> None:
        super().__init__(f"tier {tier!r} has {available} unit(s) available, {requested} requested")
        self.requested = requested
        self.available = available


class BuyerLimitError(RuleViolation):
    code = "buyer-limit"

    def __init__(self, buyer: str, tier: str, limit: int, held: int) -> None:
        super().__init__(
            f"buyer {buyer!r} may buy at most {limit} of tier {tier!r} and has bought {held}"
        )


class SaleWindowError(RuleViolation):
    code = "sale-window"


class EarlyBirdPriceError(RuleViolation):
    """An early-bird sale at another price than the allotment's."""

    code = "early-bird-price"

    def __init__(self, tier: str, price: dict[str, object]) -> None:
        super().__init__(
            f"tier {tier!r} is selling its early-bird allotment: the unit price "
            f"is {price['amount']} {price['currency']}"
        )


class NotTransferableError(RuleViolation):
    code = "not-transferable"

    def __init__(self, tier: str) -> None:
        super().__init__(f"units of tier {tier!r} are not transferable")


class NotHolderError(RuleViolation):
    code = "not-holder"

    def __init__(self, unit_id: object, party: str) -> None:
        super().__init__(f"{party!r} does not hold unit {unit_id}")


class UnitNotHeldError(RuleViolation):
    code = "unit-not-held"

    def __init__(self, unit_id: object) -> None:
        super().__init__(f"unit {unit_id} is not held by anyone (it was returned to stock)")


class AbsoluteEditionError(RuleViolation):
    code = "absolute-edition"

    def __init__(self, good_id: object) -> None:
        super().__init__(f"good {good_id} is absolute limited: its supply can never grow")


class LifetimeCapError(RuleViolation):
    code = "lifetime-cap"

    def __init__(self, tier: str, cap: int, supply: int, requested: int) -> None:
        super().__init__(
            f"tier {tier!r}: restocking {requested} would exceed the lifetime cap "
            f"{cap} (supply is {supply})"
        )


class VariantRuleError(RuleViolation):
    code = "variant-rule"


class CurrencyMismatchError(RuleViolation):
    code = "currency-mismatch"

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"price is in {actual}, the good trades in {expected}")


class SelfTradeError(RuleViolation):
    code = "self-trade"

    def __init__(self, party: str) -> None:
        super().__init__(f"{party!r} cannot sell a unit to themselves")


class HoldResolvedError(RuleViolation):
    """The hold was already committed, released or expired."""

    code = "hold-resolved"

    def __init__(self, hold_id: object, how: str) -> None:
        super().__init__(f"hold {hold_id} was already {how}")
        self.how = how


class WaitlistError(RuleViolation):
    """Joining a waitlist while the tier can serve the buyer, or leaving an
    entry that is not waiting."""

    code = "waitlist"


class RateLimitedError(RuleViolation):
    """A channel's sales of a tier this minute would pass its rate rule."""

    code = "rate-limited"

    def __init__(self, channel: str, tier: str, limit: int, sold: int) -> None:
        super().__init__(
            f"channel {channel!r} may sell {limit} unit(s) of tier {tier!r} a "
            f"minute and has sold {sold} this minute; try again next minute"
        )


class TierLockedError(RuleViolation):
    """A sale or hold of a tier its unlock condition has not opened yet."""

    code = "tier-locked"

    def __init__(self, tier: str, unlock: dict[str, object], what_opens: str) -> None:
        super().__init__(f"tier {tier!r} is locked: {what_opens}")
        self.problem_extra = {"unlock": unlock}


class PriceRuleError(RuleViolation):
    """A sale at another price than its tier's price schedule has in force."""

    code = "price-rule"

    def __init__(self, tier: str, price: dict[str, object]) -> None:
        super().__init__(
            f"tier {tier!r} sells at {price['amount']} {price['currency']} a unit now "
            "(its price schedule)"
        )
        self.problem_extra = {"price": price}


class PausedError(RuleViolation):
    """A sale, hold or restock of a paused tier (or of a tier of a paused good)."""

    code = "paused"

    def __init__(self, tier: str, scope: str, reason: str, since: str) -> None:
        what = f"tier {tier!r}" if scope == "tier" else f"the good of tier {tier!r}"
        super().__init__(
            f"{what} is paused since {since}: {reason}; sales, holds and restocks "
            "are refused until it is resumed"
        )
        self.problem_extra = {"paused": {"scope": scope, "reason": reason, "since": since}}


class DelistedError(RuleViolation):
    """A sale, hold, restock, waitlist entry or listing change of a delisted tier."""

    code = "delisted"

    def __init__(self, tier: str, scope: str, reason: str, since: str) -> None:
        what = f"tier {tier!r}" if scope == "tier" else f"the good of tier {tier!r}"
        super().__init__(
            f"{what} is delisted since {since}: {reason}; delisting is final "
            "(units sold stay valid and may be resold)"
        )
        self.problem_extra = {"delisted": {"scope": scope, "reason": reason, "since": since}}


class ListingStateError(RuleViolation):
    """A pause of what is paused already, or a resume of what is not paused."""

    code = "listing-state"


class PoolShortError(RuleViolation):
    code = "pool-short"

    def __init__(self, channel: str, tier: str, requested: int, free: int) -> None:
        super().__init__(
            f"channel {channel!r} has {free} unsold unit(s) of tier {tier!r} in "
            f"its pool, {requested} requested"
        )


class CodesExhaustedError(RuleViolation):
    """A redemption-code tier has fewer unbound codes than the units asked for."""

    code = "codes-exhausted"

    def __init__(self, tier: str, requested: int, available: int) -> None:
        super().__init__(
            f"tier {tier!r} has {available} redemption code(s) left to bind, "
            f"{requested} requested: import more codes"
        )


class CodeStateError(RuleViolation):
    """A code cannot do this in its state (deliver an unbound code, redeem
    one twice, resell or refund a unit whose code was revealed...)."""

    code = "code-state"


class DuplicateCodeError(ConflictError):
    """A code of the batch was imported before (or appears twice in it)."""

    code = "duplicate-code"

    def __init__(self, position: int, earlier: str) -> None:
        # The code itself is never named: only where it sits in the batch.
        super().__init__(f"code #{position + 1} of the batch was {earlier}")
        self.position = position


class DuplicateImportError(DuplicateCodeError):
    """An import of several batches (``ledger codes import``) whose input
    repeats a code, or holds codes imported before: nothing is imported.
    The message names places in the input (its lines, or its range), never a code."""

    def __init__(self, position: int, message: str) -> None:
        ConflictError.__init__(self, message)
        self.position = position


class CodeNotFoundError(NotFoundError):
    code = "code-not-found"

    def __init__(self) -> None:
        super().__init__("no such redemption code was issued")


class CodesUnavailableError(LedgerError):
    """This server cannot seal or open redemption codes (no code keyring)."""

    code = "codes-unavailable"


class ForbiddenError(LedgerError, PermissionError):
    """The caller may not do this (acting for another channel or creator)."""

    code = "forbidden"


class NotServedError(ForbiddenError):
    """A channel acted for an account it does not serve."""

    code = "account-not-served"

    def __init__(self, account: str, channel: str, served_by: list[str]) -> None:
        super().__init__(
            f"channel {channel!r} does not serve account {account!r} "
            f"(served by {', '.join(map(repr, served_by))}); the account's holder can "
            "take a unit to another channel with a signed authorization"
        )
        self.account, self.channel = account, channel


class NotInCustodyError(ForbiddenError):
    """A channel acted on a unit held through another channel."""

    code = "unit-not-in-custody"

    def __init__(self, unit_id: object, channel: str, custody: str | None) -> None:
        where = f"is held through channel {custody!r}" if custody else "is not held by anyone"
        super().__init__(f"unit {unit_id} {where}; {channel!r} cannot act on it")
        self.custody = custody


class AuthorizationError(ForbiddenError):
    """A holder's authorization does not let this channel take the unit:
    wrong unit, channel, log or account, an unknown key, a bad signature."""

    code = "authorization-refused"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AuthorizationExpiredError(AuthorizationError):
    code = "authorization-expired"


class AuthorizationReplayedError(ConflictError):
    """The authorization was for an earlier state of the unit: spent."""

    code = "authorization-replayed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ConcurrencyError(LedgerError):
    """Optimistic-concurrency conflicts outlasted the retry budget."""

    code = "contention"


class ChainError(LedgerError):
    """A stored event does not extend its aggregate's hash chain."""

    code = "chain-broken"


class InvariantError(RuntimeError):
    """The code broke one of its own invariants: a bug, never the caller's
    fault, so deliberately not a :class:`LedgerError` (it maps to no problem
    type). Raised where an ``assert`` used to stand, so it holds under
    ``python -O`` too."""
