"""Request bodies of the HTTP API, with the domain's limits as their bounds.

The edge rejects what is malformed early and documents it in OpenAPI; the
domain checks everything again (``ledger.domain.limits`` names each bound
once), so a caller that bypasses the edge meets the same rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ledger.domain import limits

Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.ID_CHARS_MAX,
        pattern=limits.IDENTIFIER_PATTERN,
        examples=["shop-berlin"],
    ),
]
TierName = Annotated[str, Field(pattern=limits.TIER_NAME_PATTERN, max_length=32, examples=["own"])]
Bps = Annotated[
    int, Field(ge=0, le=limits.BPS_DENOMINATOR, description="basis points (1/100 of a percent)")
]
Timestamp = Annotated[
    str,
    Field(
        max_length=27,
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$",
        examples=["2026-12-01T18:00:00.000000Z"],
    ),
]


class Strict(BaseModel):
    """No unknown fields, and no coercion: an integer is a JSON integer (not
    ``true``, ``1.0`` or ``"1"``), a boolean is ``true`` or ``false`` (not
    ``0``). Query and path parameters are not models: they arrive as text
    and are parsed."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Money(Strict):
    amount: int = Field(ge=0, le=limits.AMOUNT_MAX, description="integer minor units")
    currency: str = Field(pattern=limits.CURRENCY_PATTERN, max_length=3, examples=["EUR"])


class Creator(Strict):
    id: Identifier
    share_bps: Bps | None = None


class Edition(Strict):
    policy: Literal["absolute", "restockable"]
    sale_opens_at: Timestamp | None = None
    sale_closes_at: Timestamp | None = None


class EarlyBird(Strict):
    """The first ``quantity`` units sold while ``[opens_at, closes_at)`` is
    open go at ``price``, outside the tier's sale window if need be."""

    quantity: int = Field(ge=1, le=limits.TIER_QUOTA_MAX)
    price: Money
    opens_at: Timestamp
    closes_at: Timestamp


class Unlock(Strict):
    """When the tier opens: at ``at``, or once tier ``tier`` of the good has
    sold ``sold`` units (one of the two; the domain says which mix is wrong)."""

    at: Timestamp | None = None
    tier: TierName | None = None
    sold: int | None = Field(default=None, ge=1, le=limits.TIER_QUOTA_MAX)


class Tier(Strict):
    name: TierName
    quota: int = Field(ge=1, le=limits.TIER_QUOTA_MAX)
    transferable: bool = True
    per_buyer_limit: int | None = Field(default=None, ge=1, le=limits.TIER_QUOTA_MAX)
    lifetime_cap: int | None = Field(default=None, ge=1, le=limits.TIER_QUOTA_MAX)
    early_bird: EarlyBird | None = None
    unlock: Unlock | None = None


class Royalty(Strict):
    resale_bps: Bps


class VariantRules(Strict):
    max_variants: int = Field(ge=0, le=limits.VARIANTS_MAX)
    max_supply_per_variant: int = Field(ge=1, le=limits.TIER_QUOTA_MAX)
    master_primary_bps: Bps = 0
    master_resale_bps: Bps = 0


class GoodSpec(Strict):
    """What a creator declares at mint; see docs/format.md section 5."""

    title: str = Field(min_length=1, max_length=limits.TITLE_CHARS_MAX)
    creators: list[Creator] = Field(min_length=1, max_length=limits.CREATORS_MAX)
    content_digest: str = Field(pattern=limits.CONTENT_DIGEST_PATTERN, max_length=71)
    kind: Literal["collectible", "licence", "redemption-code", "ticket", "media", "software"]
    currency: str = Field(pattern=limits.CURRENCY_PATTERN, max_length=3)
    edition: Edition | None = None
    tiers: list[Tier] = Field(min_length=1, max_length=limits.TIERS_MAX)
    royalty: Royalty | None = None
    variant_rules: VariantRules | None = None
    metadata: dict[str, Any] | None = Field(default=None, max_length=limits.METADATA_KEYS_MAX)

    def to_domain(self) -> dict[str, Any]:
        """The spec as the domain reads it: only what the caller gave."""
        return self.model_dump(exclude_unset=True)


class RegisterChannel(Strict):
    channel: Identifier
    name: str = Field(min_length=1, max_length=limits.TITLE_CHARS_MAX)
    fee_bps: Bps


class Mint(Strict):
    spec: GoodSpec


class DeriveVariant(Strict):
    spec: GoodSpec


class Sell(Strict):
    buyer: Identifier
    channel: Identifier
    quantity: int = Field(default=1, ge=1, le=limits.SALE_QUANTITY_MAX)
    unit_price: Money


class Resell(Strict):
    seller: Identifier
    buyer: Identifier
    channel: Identifier
    price: Money


class Restock(Strict):
    quantity: int = Field(ge=1, le=limits.TIER_QUOTA_MAX)


class Refund(Strict):
    reason: str = Field(min_length=1, max_length=limits.REASON_CHARS_MAX)


class PriceStep(Strict):
    """A unit price, from the start (the first step) or from a threshold."""

    price: Money
    after_sold: int | None = Field(default=None, ge=1, le=limits.TIER_QUOTA_MAX)
    at: Timestamp | None = None


class SetPrices(Strict):
    steps: list[PriceStep] | None = Field(
        max_length=32,
        description="The price schedule: the first step's price holds from the start, "
        "each later one from its after_sold (units sold) or its at (a time); null lifts it",
    )


class Reason(Strict):
    """Why a good or tier is paused, resumed or delisted (kept in its event)."""

    reason: str = Field(min_length=1, max_length=limits.REASON_CHARS_MAX)


class Reserve(Strict):
    channel: Identifier
    quantity: int = Field(ge=1, le=limits.HOLD_QUANTITY_MAX)
    ttl_seconds: int = Field(
        ge=limits.HOLD_TTL_SECONDS_MIN,
        le=limits.HOLD_TTL_SECONDS_MAX,
        description="How long the units are held",
    )


class CommitHold(Strict):
    buyer: Identifier
    quantity: int = Field(
        ge=1,
        le=limits.HOLD_QUANTITY_MAX,
        description="Units to sell, at most the hold's; the rest returns",
    )
    unit_price: Money


class ReleaseHold(Strict):
    pass


class Allot(Strict):
    quantity: int = Field(ge=1, le=limits.TIER_QUOTA_MAX)
    overflow: bool = Field(
        default=False,
        description="May the channel sell on from the shared stock once its pool is empty?",
    )


class ReturnPool(Strict):
    quantity: int = Field(ge=1, le=limits.TIER_QUOTA_MAX)


class MovePool(Strict):
    from_channel: Identifier = Field(alias="from")
    to_channel: Identifier = Field(alias="to")
    quantity: int = Field(ge=1, le=limits.TIER_QUOTA_MAX)


class JoinWaitlist(Strict):
    buyer: Identifier
    channel: Identifier
    quantity: int = Field(default=1, ge=1, le=limits.HOLD_QUANTITY_MAX)


class SetRate(Strict):
    per_minute: int | None = Field(
        ge=1,
        le=limits.TIER_QUOTA_MAX,
        description=("Units the channel may sell of this tier per minute; null lifts the cap"),
    )


CodeText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.CODE_CHARS_MAX,
        pattern=limits.CODE_PATTERN,
        examples=["GIFT-000001"],
        description="printable ASCII without spaces, case-sensitive",
    ),
]
_PREFIX_PATTERN = r"^[\x21-\x7e]*$"  # CODE_PATTERN, but a range's prefix may be empty
_COUNTER_MAX = 10**limits.CODE_RANGE_WIDTH_MAX - 1


class CodeRange(Strict):
    """``prefix`` then the counter from ``start`` to ``end`` (inclusive),
    zero-padded to ``width`` digits: GIFT-000001 ... GIFT-005000."""

    prefix: str = Field(
        default="",
        max_length=limits.CODE_CHARS_MAX - 1,
        pattern=_PREFIX_PATTERN,
        examples=["GIFT-"],
    )
    width: int = Field(ge=1, le=limits.CODE_RANGE_WIDTH_MAX, examples=[6])
    start: int = Field(ge=0, le=_COUNTER_MAX, examples=[1])
    end: int = Field(
        ge=0,
        le=_COUNTER_MAX,
        examples=[5000],
        description=f"inclusive; at most {limits.CODES_PER_IMPORT_MAX} codes a range",
    )


class ImportCodes(Strict):
    """Exactly one of ``codes`` (a list) or ``range``."""

    codes: (
        Annotated[list[CodeText], Field(min_length=1, max_length=limits.CODES_PER_IMPORT_MAX)]
        | None
    ) = None
    code_range: CodeRange | None = Field(default=None, alias="range")

    @model_validator(mode="after")
    def _exactly_one(self) -> ImportCodes:
        if (self.codes is None) == (self.code_range is None):
            raise ValueError("give exactly one of codes (a list) or range")
        return self


class DeliverCode(Strict):
    holder: Identifier = Field(description="The unit's current holder (the buyer)")


class RedeemCode(Strict):
    code: CodeText
    redeemer: Identifier = Field(description="Who redeems it (e.g. the platform's account id)")


# -- holders (issue 14): accounts, holders' keys, moves and transfers --------
Base64Url = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]


class OpenAccount(Strict):
    account: Identifier
    channel: Identifier


class HolderKeyBody(Strict):
    public_key: Annotated[Base64Url, Field(max_length=64, description="Ed25519, 32 bytes")]
    channel: Identifier


class RevokeHolderKey(Strict):
    channel: Identifier


class Authorization(Strict):
    """A holder's signed consent (docs/format.md section 10)."""

    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    payload: Annotated[Base64Url, Field(max_length=1_400)]
    signature: Annotated[Base64Url, Field(max_length=96)]


class MoveUnit(Strict):
    holder: Identifier
    to_channel: Identifier
    channel: Identifier = Field(
        description="the channel acting: the one holding the unit (a hand-off) "
        "or, presenting the holder's authorization, to_channel"
    )
    authorization: Authorization | None = None


class TransferUnit(Strict):
    giver: Identifier
    recipient: Identifier
    channel: Identifier
    kind: Literal["gift", "inheritance", "own-accounts"] = "gift"
