"""Channels and goods (sections 4, 5 and 7; rules 8.1 and 8.8): a channel's
fee, a good's definition and fingerprint, a variant's master and
derivation, and section 7's splits of a good's sales (:class:`Splits`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ledger.verify import codec
from ledger.verify.facts import Event, Facts, Good, Payload, Stock
from ledger.verify.invariant import VerifierInvariantError
from ledger.verify.schema import definition_rule_problems, definition_shape_problem
from ledger.verify.splits import largest_remainder, primary_weights, resale_weights

_SELLER = "(seller)"  # a label, replaced by the seller's name in remembered resale splits


@dataclass(slots=True)
class Derivation:
    event: Event
    master_id: str
    fingerprint: str


def good_from(event: Event, definition: Payload, fingerprint: str) -> Good:
    spec = definition["spec"]
    edition = spec["edition"]
    good = Good(
        event=event,
        fingerprint=fingerprint,
        currency=spec["currency"],
        kind=spec["kind"],
        creators=[(c["id"], c["share_bps"]) for c in spec["creators"]],
        resale_bps=spec["royalty"]["resale_bps"],
        policy=edition["policy"],
        opens=edition["sale_opens_at"],
        closes=edition["sale_closes_at"],
        tiers={t["name"]: t for t in spec["tiers"]},
        variant_rules=spec["variant_rules"],
        unopened={t["name"] for t in spec["tiers"]},
    )
    master = definition["master"]
    if master is not None:
        good.master_id = master["good_id"]
        good.master_creators = [(c["id"], c["share_bps"]) for c in master["creators"]]
        good.master_primary_bps = master["primary_bps"]
        good.master_resale_bps = master["resale_bps"]
    return good


class Splits:
    """Section 7's splits, remembered: they are pure functions of the good,
    the channel and its fee, and the price."""

    def __init__(self) -> None:
        self._primary: dict[tuple[str, str, int, int], list[Payload] | None] = {}
        self._resale: dict[tuple[str, str, int, int], list[Payload] | None] = {}

    def resale(
        self, stock: Stock | None, good: Good, channel: str, fee: int, amount: int, seller: str
    ) -> list[Payload] | None:
        """Section 7's split of a resale. The seller's name is only a label:
        its part is the last and its weight does not depend on it, so the
        split is remembered per good, channel and price, the seller's part
        relabelled."""
        if stock is None:
            raise VerifierInvariantError("stock unset")
        key = (stock.good_id, channel, fee, amount)
        try:
            parts = self._resale[key]
        except KeyError:
            weights = resale_weights(
                good.creators,
                good.resale_bps,
                good.master_creators,
                good.master_resale_bps,
                channel,
                fee,
                _SELLER,
            )
            parts = largest_remainder(amount, weights)
            if len(self._resale) >= 10_000:
                self._resale.clear()
            self._resale[key] = parts
        if parts and parts[-1]["role"] == "seller":
            return [*parts[:-1], {**parts[-1], "recipient": seller}]
        return parts

    def primary(
        self, good_id: str, good: Good, channel: str, fee: int, amount: int
    ) -> list[Payload] | None:
        """Section 7's split of a primary sale (remembered: a good's sales
        through one channel at one price all split alike). Not to be changed
        by the caller."""
        key = (good_id, channel, fee, amount)
        try:
            return self._primary[key]
        except KeyError:
            pass
        weights = primary_weights(
            good.creators, good.master_creators, good.master_primary_bps, channel, fee
        )
        parts = largest_remainder(amount, weights)
        if len(self._primary) >= 10_000:
            self._primary.clear()
        self._primary[key] = parts
        return parts


class GoodRules:
    """``channel.registered``, ``good.minted``, ``good.variant-derived``."""

    def __init__(self, facts: Facts) -> None:
        self._flag = facts.flag
        self._check_own_id = facts.check_own_id
        self._goods = facts.goods
        self._channels = facts.channels
        self._unreadable = facts.unreadable
        self.derivations: dict[str, Derivation] = {}  # by variant id

    def on_channel_registered(self, ev: Event, p: Payload) -> None:
        self._check_own_id(ev, p)
        self._channels.setdefault(sys.intern(p["channel"]), p["fee_bps"])

    def on_minted(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        definition, fingerprint = p["definition"], p["fingerprint"]
        actual = codec.sha256_hex(codec.encode(definition))
        if actual != fingerprint:
            self._flag(
                ev,
                "bad-fingerprint",
                f"fingerprint is not SHA-256 of the definition: expected {actual}, "
                f"found {fingerprint}",
                expected=actual,
                actual=fingerprint,
            )
        self._check_own_id(ev, p)
        shape_problem = definition_shape_problem(definition)
        if shape_problem is not None:
            self._flag(ev, "bad-definition", shape_problem)
            self._unreadable.add(ev.aggregate_id)
            return
        for problem in definition_rule_problems(definition):
            self._flag(ev, "bad-definition", problem)
        if definition["minted_at"] != ev.timestamp:
            self._flag(
                ev,
                "bad-definition",
                f"minted_at {definition['minted_at']} is not the event's timestamp {ev.timestamp}",
            )
        good = good_from(ev.ref(), definition, fingerprint)
        master = definition["master"]
        if master is not None:
            self._check_master(ev, good, master)
            self._check_derivation(ev, fingerprint, master)
        if ev.aggregate_id not in self._goods:
            self._goods[ev.aggregate_id] = good

    def _check_master(self, ev: Event, good: Good, master: Payload) -> None:
        found = self._goods.get(master["good_id"])
        if found is None:
            if master["good_id"] not in self._unreadable:
                self._flag(
                    ev,
                    "unknown-ref",
                    f"master good {master['good_id']} is not minted before its variant",
                )
            return
        diffs = _master_diffs(found, master)
        if diffs:
            self._flag(
                ev,
                "variant-mismatch",
                "definition.master is not copied from the master: " + "; ".join(diffs),
            )
        rules = found.variant_rules
        if rules is None:
            self._flag(ev, "variant-limit", f"master {master['good_id']} declares no variant rules")
            return
        cap = rules["max_supply_per_variant"]
        for name, tier in good.tiers.items():
            if tier["lifetime_cap"] > cap:
                self._flag(
                    ev,
                    "variant-limit",
                    f"variant tier {name!r} has lifetime_cap {tier['lifetime_cap']}, "
                    f"over the master's max_supply_per_variant {cap}",
                    expected=f"<= {cap}",
                    actual=str(tier["lifetime_cap"]),
                )

    def _check_derivation(self, ev: Event, fingerprint: str, master: Payload) -> None:
        """A variant is minted only as its master's ``good.variant-derived``
        says (which the writer saves first)."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        derived = self.derivations.pop(ev.aggregate_id, None)
        if derived is None:
            if master["good_id"] not in self._unreadable:
                self._flag(
                    ev,
                    "variant-mismatch",
                    "no good.variant-derived on its master names this variant",
                )
            return
        diffs = []
        if derived.master_id != master["good_id"]:
            diffs.append(
                f"it was derived by {derived.master_id}, not by the master named in "
                f"its definition ({master['good_id']})"
            )
        if derived.fingerprint != fingerprint:
            diffs.append(
                f"its fingerprint is not the variant_fingerprint {derived.fingerprint} derived"
            )
        if diffs:
            self._flag(
                ev,
                "variant-mismatch",
                "the variant is not the one its master derived: " + "; ".join(diffs),
            )

    def on_variant_derived(self, ev: Event, p: Payload) -> None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        if p["variant_id"] != codec.derive_id("good", p["variant_fingerprint"]):
            self._flag(
                ev,
                "variant-mismatch",
                "variant_id is not the good id derived from variant_fingerprint",
            )
        self.derivations[p["variant_id"]] = Derivation(
            ev.ref(), ev.aggregate_id, p["variant_fingerprint"]
        )
        good = self._goods.get(ev.aggregate_id)
        if good is None:
            return
        good.variants += 1
        if p["index"] != good.variants:
            self._flag(
                ev,
                "variant-mismatch",
                f"index {p['index']}, but this is the good's variant No. {good.variants}",
                expected=str(good.variants),
                actual=str(p["index"]),
            )
        rules = good.variant_rules
        if rules is None:
            self._flag(
                ev, "variant-limit", "the good declares no variant rules, so it derives no variants"
            )
        elif good.variants > rules["max_variants"]:
            self._flag(
                ev,
                "variant-limit",
                f"variant No. {good.variants} exceeds max_variants {rules['max_variants']}",
                expected=f"<= {rules['max_variants']}",
                actual=str(good.variants),
            )

    def finish(self) -> None:
        """Variants derived and never minted; tiers never opened."""
        for variant_id, derived in self.derivations.items():
            if variant_id not in self._unreadable:
                self._flag(
                    derived.event,
                    "variant-mismatch",
                    f"the variant {variant_id} it derives is never minted",
                )
        for good in self._goods.values():
            if good.unopened:
                self._flag(
                    good.event,
                    "stock-mismatch",
                    f"tier(s) {sorted(good.unopened)} of the good have no stock.opened",
                )
        self.derivations.clear()


def _master_diffs(found: Good, master: Payload) -> list[str]:
    """How a variant's ``definition.master`` differs from its master good."""
    diffs = []
    if master["fingerprint"] != found.fingerprint:
        diffs.append(f"fingerprint {master['fingerprint']} (master's: {found.fingerprint})")
    if [(c["id"], c["share_bps"]) for c in master["creators"]] != found.creators:
        diffs.append("creators differ from the master's")
    rules = found.variant_rules
    if rules is not None:
        if master["primary_bps"] != rules["master_primary_bps"]:
            diffs.append(
                f"primary_bps {master['primary_bps']} (master's rules: "
                f"{rules['master_primary_bps']})"
            )
        if master["resale_bps"] != rules["master_resale_bps"]:
            diffs.append(
                f"resale_bps {master['resale_bps']} (master's rules: {rules['master_resale_bps']})"
            )
    return diffs
