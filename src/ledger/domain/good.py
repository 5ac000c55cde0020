"""Goods: their defining attributes (the spec), fingerprint, and lineage.

A good's *definition* -- its spec, mint time and, for a variant, the master
it derives from -- is fixed at mint and hashed into its fingerprint:
``fingerprint = SHA-256(JCS(definition))``. Nothing can change it later: the
Good aggregate has no event that touches the definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.domain import canonical, limits, validate
from ledger.domain.edition import edition_size
from ledger.domain.errors import InvalidInputError, TierNotFoundError, VariantRuleError
from ledger.domain.ids import good_id_for
from ledger.domain.model import Aggregate, Created, Event, format_timestamp
from ledger.domain.money import Money, Share, check_bps
from ledger.domain.unlock import Unlock, check_unlocks, read_unlock

ABSOLUTE = "absolute"
RESTOCKABLE = "restockable"


@dataclass(frozen=True, slots=True)
class Creator:
    id: str
    share_bps: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "share_bps": self.share_bps}


@dataclass(frozen=True, slots=True)
class EarlyBird:
    """An early-bird allotment: the first ``quantity`` units sold while its
    window is open go at ``price`` (minor units, the good's currency)."""

    quantity: int
    price: int
    currency: str
    opens_at: str
    closes_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "price": {"amount": self.price, "currency": self.currency},
            "opens_at": self.opens_at,
            "closes_at": self.closes_at,
        }


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    quota: int
    transferable: bool
    per_buyer_limit: int | None
    lifetime_cap: int | None
    early_bird: EarlyBird | None = None
    unlock: Unlock | None = None

    def to_json(self) -> dict[str, Any]:
        encoded: dict[str, Any] = {
            "name": self.name,
            "quota": self.quota,
            "transferable": self.transferable,
            "per_buyer_limit": self.per_buyer_limit,
            "lifetime_cap": self.lifetime_cap,
        }
        if self.early_bird is not None:  # absent otherwise: older goods keep their fingerprint
            encoded["early_bird"] = self.early_bird.to_json()
        if self.unlock is not None:  # (the same)
            encoded["unlock"] = self.unlock.to_json()
        return encoded


@dataclass(frozen=True, slots=True)
class VariantRules:
    max_variants: int
    max_supply_per_variant: int
    master_primary_bps: int
    master_resale_bps: int

    def to_json(self) -> dict[str, Any]:
        return {
            "max_variants": self.max_variants,
            "max_supply_per_variant": self.max_supply_per_variant,
            "master_primary_bps": self.master_primary_bps,
            "master_resale_bps": self.master_resale_bps,
        }


@dataclass(frozen=True, slots=True)
class GoodSpec:
    """What a creator declares at mint. Build it with :meth:`from_json`."""

    title: str
    creators: tuple[Creator, ...]
    content_digest: str
    kind: str
    currency: str
    edition_policy: str
    sale_opens_at: str | None
    sale_closes_at: str | None
    tiers: tuple[TierSpec, ...]
    resale_royalty_bps: int
    variant_rules: VariantRules | None
    metadata: dict[str, Any]

    def tier(self, name: str) -> TierSpec | None:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "creators": [c.to_json() for c in self.creators],
            "content_digest": self.content_digest,
            "kind": self.kind,
            "currency": self.currency,
            "edition": {
                "policy": self.edition_policy,
                "sale_opens_at": self.sale_opens_at,
                "sale_closes_at": self.sale_closes_at,
            },
            "tiers": [t.to_json() for t in self.tiers],
            "royalty": {"resale_bps": self.resale_royalty_bps},
            "variant_rules": self.variant_rules.to_json() if self.variant_rules else None,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: Any) -> GoodSpec:
        fields = {
            "title",
            "creators",
            "content_digest",
            "kind",
            "currency",
            "edition",
            "tiers",
            "royalty",
            "variant_rules",
            "metadata",
        }
        data = validate.mapping(
            data,
            field="spec",
            keys=fields,
            required={"title", "creators", "content_digest", "kind", "currency", "tiers"},
        )
        title = validate.text(data["title"], field="title", max_chars=limits.TITLE_CHARS_MAX)
        creators = _read_creators(data["creators"])
        digest = validate.text(
            data["content_digest"],
            field="content_digest",
            max_chars=71,
            pattern=limits.CONTENT_DIGEST_PATTERN,
        )
        kind = data["kind"]
        if kind not in limits.GOOD_KINDS:
            raise InvalidInputError("kind", f"must be one of {', '.join(limits.GOOD_KINDS)}")
        currency = validate.text(
            data["currency"], field="currency", max_chars=3, pattern=limits.CURRENCY_PATTERN
        )
        policy, opens, closes = _read_edition(data.get("edition", {"policy": ABSOLUTE}))
        tiers = _read_tiers(data["tiers"], policy, currency)
        royalty = validate.mapping(
            data.get("royalty", {"resale_bps": 0}),
            field="royalty",
            keys={"resale_bps"},
            required={"resale_bps"},
        )
        resale_bps = check_bps(royalty["resale_bps"], field="royalty.resale_bps")
        rules = _read_variant_rules(data.get("variant_rules"))
        metadata = _read_metadata(data.get("metadata", {}))
        return cls(
            title=title,
            creators=creators,
            content_digest=digest,
            kind=kind,
            currency=currency,
            edition_policy=policy,
            sale_opens_at=opens,
            sale_closes_at=closes,
            tiers=tiers,
            resale_royalty_bps=resale_bps,
            variant_rules=rules,
            metadata=json.loads(json.dumps(metadata)),
        )


def _read_edition(value: Any) -> tuple[str, str | None, str | None]:
    """An edition: its policy and its sale window (opens, closes)."""
    edition = validate.mapping(
        value,
        field="edition",
        keys={"policy", "sale_opens_at", "sale_closes_at"},
        required={"policy"},
    )
    policy = edition["policy"]
    if policy not in (ABSOLUTE, RESTOCKABLE):
        raise InvalidInputError("edition.policy", f"must be {ABSOLUTE!r} or {RESTOCKABLE!r}")
    opens = validate.timestamp(edition.get("sale_opens_at"), field="edition.sale_opens_at")
    closes = validate.timestamp(edition.get("sale_closes_at"), field="edition.sale_closes_at")
    if opens is not None and closes is not None and closes <= opens:
        raise InvalidInputError("edition.sale_closes_at", "must be after sale_opens_at")
    return policy, opens, closes


def _read_metadata(metadata: Any) -> dict[str, Any]:
    """Free-form metadata: a JSON object, bounded in keys, depth and bytes."""
    if not isinstance(metadata, dict):
        raise InvalidInputError("metadata", "must be an object")
    if len(metadata) > limits.METADATA_KEYS_MAX:
        raise InvalidInputError("metadata", f"at most {limits.METADATA_KEYS_MAX} keys")
    canonical.check_json_value(metadata, field="metadata", depth_max=limits.METADATA_DEPTH_MAX)
    if len(canonical.encode(metadata)) > limits.METADATA_BYTES_MAX:
        raise InvalidInputError("metadata", f"at most {limits.METADATA_BYTES_MAX} bytes")
    return metadata


def _read_creators(value: Any) -> tuple[Creator, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= limits.CREATORS_MAX:
        raise InvalidInputError("creators", f"must be a list of 1 to {limits.CREATORS_MAX}")
    creators = []
    for i, raw in enumerate(value):
        item = validate.mapping(
            raw, field=f"creators[{i}]", keys={"id", "share_bps"}, required={"id"}
        )
        share = item.get("share_bps", limits.BPS_DENOMINATOR if len(value) == 1 else None)
        creators.append(
            Creator(
                id=validate.identifier(item["id"], field=f"creators[{i}].id"),
                share_bps=check_bps(share, field=f"creators[{i}].share_bps"),
            )
        )
    if len({c.id for c in creators}) != len(creators):
        raise InvalidInputError("creators", "creator ids must be unique")
    if sum(c.share_bps for c in creators) != limits.BPS_DENOMINATOR:
        raise InvalidInputError("creators", "share_bps must sum to 10000")
    return tuple(creators)


def _read_tiers(value: Any, policy: str, currency: str) -> tuple[TierSpec, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= limits.TIERS_MAX:
        raise InvalidInputError("tiers", f"must be a list of 1 to {limits.TIERS_MAX}")
    tiers = [_read_tier(raw, f"tiers[{i}]", policy, currency) for i, raw in enumerate(value)]
    if len({t.name for t in tiers}) != len(tiers):
        raise InvalidInputError("tiers", "tier names must be unique")
    check_unlocks(
        {t.name: t.unlock for t in tiers}, {t.name: t.lifetime_cap or t.quota for t in tiers}
    )
    return tuple(tiers)


def _read_tier(raw: Any, where: str, policy: str, currency: str) -> TierSpec:
    item = validate.mapping(
        raw,
        field=where,
        keys={
            "name",
            "quota",
            "transferable",
            "per_buyer_limit",
            "lifetime_cap",
            "early_bird",
            "unlock",
        },
        required={"name", "quota"},
    )
    name = validate.text(
        item["name"], field=f"{where}.name", max_chars=32, pattern=limits.TIER_NAME_PATTERN
    )
    quota = validate.integer(
        item["quota"], field=f"{where}.quota", low=1, high=limits.TIER_QUOTA_MAX
    )
    transferable = validate.boolean(item.get("transferable", True), field=f"{where}.transferable")
    limit = item.get("per_buyer_limit")
    if limit is not None:
        limit = validate.integer(limit, field=f"{where}.per_buyer_limit", low=1, high=quota)
    cap = item.get("lifetime_cap")
    if policy == ABSOLUTE:
        if cap is not None and cap != quota:
            raise InvalidInputError(
                f"{where}.lifetime_cap", "an absolute edition's supply is its quota"
            )
        cap = quota
    else:
        cap = (
            quota
            if cap is None
            else validate.integer(
                cap, field=f"{where}.lifetime_cap", low=quota, high=limits.TIER_QUOTA_MAX
            )
        )
    early = item.get("early_bird")
    return TierSpec(
        name,
        quota,
        transferable,
        limit,
        cap,
        None if early is None else _read_early_bird(early, f"{where}.early_bird", quota, currency),
        None if item.get("unlock") is None else read_unlock(item["unlock"], f"{where}.unlock"),
    )


def _read_early_bird(value: Any, where: str, quota: int, currency: str) -> EarlyBird:
    item = validate.mapping(
        value,
        field=where,
        keys={"quantity", "price", "opens_at", "closes_at"},
        required={"quantity", "price", "opens_at", "closes_at"},
    )
    quantity = validate.integer(item["quantity"], field=f"{where}.quantity", low=1, high=quota)
    price = Money.from_json(item["price"])
    if price.currency != currency:
        raise InvalidInputError(f"{where}.price", f"must be in the good's currency {currency}")
    opens = validate.timestamp(item["opens_at"], field=f"{where}.opens_at")
    closes = validate.timestamp(item["closes_at"], field=f"{where}.closes_at")
    if opens is None or closes is None:
        raise InvalidInputError(where, "an early bird needs opens_at and closes_at")
    if closes <= opens:
        raise InvalidInputError(f"{where}.closes_at", "must be after opens_at")
    return EarlyBird(quantity, price.amount, price.currency, opens, closes)


def _read_variant_rules(value: Any) -> VariantRules | None:
    if value is None:
        return None
    item = validate.mapping(
        value,
        field="variant_rules",
        keys={"max_variants", "max_supply_per_variant", "master_primary_bps", "master_resale_bps"},
        required={"max_variants", "max_supply_per_variant"},
    )
    return VariantRules(
        max_variants=validate.integer(
            item["max_variants"],
            field="variant_rules.max_variants",
            low=1,
            high=limits.VARIANTS_MAX,
        ),
        max_supply_per_variant=validate.integer(
            item["max_supply_per_variant"],
            field="variant_rules.max_supply_per_variant",
            low=1,
            high=limits.TIER_QUOTA_MAX,
        ),
        master_primary_bps=check_bps(
            item.get("master_primary_bps", 0), field="variant_rules.master_primary_bps"
        ),
        master_resale_bps=check_bps(
            item.get("master_resale_bps", 0), field="variant_rules.master_resale_bps"
        ),
    )


class Good(Aggregate):
    """A minted good. Its definition never changes; it only gains variants."""

    spec: GoodSpec
    definition: dict[str, Any]
    fingerprint: str
    variants: list[str]

    @classmethod
    def mint(cls, spec: GoodSpec, now: datetime, master: Good | None = None) -> Good:
        master_block = None
        if master is not None:
            rules = master.spec.variant_rules
            if rules is None:
                raise VariantRuleError(f"good {master.id} declares no variant rules")
            master_block = {
                "good_id": str(master.id),
                "fingerprint": master.fingerprint,
                "creators": [c.to_json() for c in master.spec.creators],
                "primary_bps": rules.master_primary_bps,
                "resale_bps": rules.master_resale_bps,
            }
        definition = {
            "spec": spec.to_json(),
            "minted_at": format_timestamp(now),
            "master": master_block,
        }
        fingerprint = canonical.fingerprint(definition)
        return cls._create(
            cls.Minted,
            good_id_for(fingerprint),
            now,
            definition=definition,
            fingerprint=fingerprint,
        )

    def derive_variant(self, spec: GoodSpec, now: datetime) -> Good:
        """Mint a variant of this good under the rules it declared."""
        rules = self.spec.variant_rules
        if rules is None:
            raise VariantRuleError(f"good {self.id} declares no variant rules")
        if self.definition["master"] is not None:
            raise VariantRuleError("a variant cannot itself have variants")
        if len(self.variants) >= rules.max_variants:
            raise VariantRuleError(
                f"good {self.id} allows {rules.max_variants} variant(s), all derived"
            )
        if spec.currency != self.spec.currency:
            raise VariantRuleError("a variant trades in its master's currency")
        if spec.variant_rules is not None:
            raise VariantRuleError("a variant cannot declare variant rules")
        for tier in spec.tiers:
            if (tier.lifetime_cap or tier.quota) > rules.max_supply_per_variant:
                raise VariantRuleError(
                    f"tier {tier.name!r} supply may not exceed "
                    f"{rules.max_supply_per_variant} for a variant of {self.id}"
                )
        variant = Good.mint(spec, now, master=self)
        self._trigger(
            Good.VariantDerived,
            now,
            variant_id=str(variant.id),
            variant_fingerprint=variant.fingerprint,
            index=len(self.variants) + 1,
        )
        return variant

    def tier(self, name: str) -> TierSpec:
        tier = self.spec.tier(name)
        if tier is None:
            raise TierNotFoundError(self.id, name)
        return tier

    def edition_size(self, name: str) -> tuple[int, str]:
        """Tier ``name``'s edition size and what it is (``ledger.domain.edition``)."""
        tier = self.tier(name)
        return edition_size(
            tier.lifetime_cap or tier.quota, self.spec.edition_policy == RESTOCKABLE
        )

    @property
    def master_id(self) -> UUID | None:
        master = self.definition["master"]
        return UUID(master["good_id"]) if master else None

    # -- royalty shares ---------------------------------------------------
    def primary_shares(self, channel: str, channel_fee_bps: int) -> list[Share]:
        """Weights for a primary sale: creators get what the channel fee and
        the master's cut leave; see :mod:`ledger.domain.money`."""
        master = self.definition["master"]
        master_bps = master["primary_bps"] if master else 0
        creators_bps = limits.BPS_DENOMINATOR - channel_fee_bps - master_bps
        if creators_bps < 0:
            raise VariantRuleError("channel fee and master royalty exceed the price")
        return self._shares(creators_bps, master_bps, master, channel, channel_fee_bps, None, 0)

    def resale_shares(self, channel: str, channel_fee_bps: int, seller: str) -> list[Share]:
        master = self.definition["master"]
        master_bps = master["resale_bps"] if master else 0
        creators_bps = self.spec.resale_royalty_bps
        seller_bps = limits.BPS_DENOMINATOR - channel_fee_bps - master_bps - creators_bps
        if seller_bps < 0:
            raise VariantRuleError("channel fee and royalties exceed the resale price")
        return self._shares(
            creators_bps, master_bps, master, channel, channel_fee_bps, seller, seller_bps
        )

    def _shares(
        self,
        creators_bps: int,
        master_bps: int,
        master: dict[str, Any] | None,
        channel: str,
        channel_fee_bps: int,
        seller: str | None,
        seller_bps: int,
    ) -> list[Share]:
        whole = limits.BPS_DENOMINATOR
        shares = [Share(c.id, "creator", creators_bps * c.share_bps) for c in self.spec.creators]
        if master:
            shares += [
                Share(c["id"], "master-creator", master_bps * c["share_bps"])
                for c in master["creators"]
            ]
        shares.append(Share(channel, "channel", channel_fee_bps * whole))
        if seller is not None:
            shares.append(Share(seller, "seller", seller_bps * whole))
        return shares

    # -- events -----------------------------------------------------------
    @dataclass(frozen=True)
    class Minted(Created):
        TYPE = "good.minted"
        definition: dict[str, Any]
        fingerprint: str

        def apply(self, aggregate: Good) -> None:
            aggregate.definition = self.definition
            aggregate.spec = GoodSpec.from_json(self.definition["spec"])
            aggregate.fingerprint = self.fingerprint
            aggregate.variants = []

    @dataclass(frozen=True)
    class VariantDerived(Event):
        TYPE = "good.variant-derived"
        variant_id: str
        variant_fingerprint: str
        index: int

        def apply(self, aggregate: Good) -> None:
            aggregate.variants.append(self.variant_id)


Good.Minted.AGGREGATE = Good
