"""Section 5 of ``docs/format.md`` as data: each event type's exact payload
members and their JSON types, plus the good definition of ``good.minted``.

Every checker returns ``None`` when the value is fine, else a short reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ledger.verify.codec import (
    SAFE_INTEGER_MAX,
    USER_KEY_PATTERN,
    is_hex64,
    is_int,
    is_timestamp,
    is_uuid,
)

Check = Callable[[Any], str | None]

BPS = 10_000
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
GOOD_KINDS = frozenset({"collectible", "licence", "redemption-code", "ticket", "media", "software"})
POLICIES = frozenset({"absolute", "restockable"})
ROLES = frozenset({"creator", "master-creator", "channel", "seller"})


class Optional:
    """A member that may be absent (its writer leaves it out rather than
    write null); when present it must pass ``check``."""

    def __init__(self, check: Check) -> None:
        self.check = check

    def __call__(self, value: Any) -> str | None:
        return self.check(value)


def members(value: Any, expected: Mapping[str, Check], what: str) -> str | None:
    """An object with exactly ``expected``'s members (optional ones may be
    absent), each passing its check."""
    if not isinstance(value, dict):
        return f"{what} is not an object"
    if value.keys() != expected.keys():
        missing = [k for k, c in expected.items()
                   if k not in value and not isinstance(c, Optional)]
        if missing:
            return f"{what} lacks member(s) {', '.join(sorted(missing))}"
        extra = [k for k in value if k not in expected]
        if extra:
            return f"{what} has unexpected member(s) {', '.join(sorted(extra))}"
    for key, check in expected.items():
        if key not in value:
            continue
        problem = check(value[key])
        if problem is not None:
            return f"{what}.{key} {problem}"
    return None


# -- scalar checkers -------------------------------------------------------
def integer(low: int = 0, high: int = SAFE_INTEGER_MAX) -> Check:
    def check(value: Any) -> str | None:
        if not is_int(value):
            return "is not an integer"
        if not low <= value <= high:
            return f"is {value}, outside {low}…{high}"
        return None

    return check


def text(*, no_slash: bool = False, empty_ok: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "is not a string"
        if not value and not empty_ok:
            return "is empty"
        if no_slash and "/" in value:
            return "contains '/'"
        return None

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "is not true or false"


def is_true(value: Any) -> str | None:
    return None if value is True else "is not true (leave it out when false)"


CODE_REF_PATTERN = re.compile(r"[0-9a-f]{32}")


def code_ref(value: Any) -> str | None:
    if isinstance(value, str) and CODE_REF_PATTERN.fullmatch(value):
        return None
    return "is not a code ref (32 lowercase hex digits)"


def uuid_text(value: Any) -> str | None:
    return None if is_uuid(value) else "is not a lowercase UUID"


def hex64(value: Any) -> str | None:
    return None if is_hex64(value) else "is not 64 lowercase hex digits"


def timestamp(value: Any) -> str | None:
    return None if is_timestamp(value) else "is not a YYYY-MM-DDTHH:MM:SS.ffffffZ timestamp"


def nullable(check: Check) -> Check:
    def inner(value: Any) -> str | None:
        return None if value is None else check(value)

    return inner


def one_of(options: frozenset[str]) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or value not in options:
            return f"is not one of {', '.join(sorted(options))}"
        return None

    return check


def matches(pattern: re.Pattern[str], what: str) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            return f"is not {what}"
        return None

    return check


def obj(value: Any) -> str | None:
    return None if isinstance(value, dict) else "is not an object"


def list_of(check: Check, *, min_len: int = 0) -> Check:
    def inner(value: Any) -> str | None:
        if not isinstance(value, list):
            return "is not a list"
        if len(value) < min_len:
            return f"has fewer than {min_len} item(s)"
        for i, item in enumerate(value):
            problem = check(item)
            if problem is not None:
                return f"[{i}] {problem}"
        return None

    return inner


def shape(expected: Mapping[str, Check]) -> Check:
    def check(value: Any) -> str | None:
        problem = members(value, expected, "")
        return None if problem is None else problem.lstrip(". ")

    return check


bps = integer(0, BPS)
identifier = text(no_slash=True)
currency = matches(CURRENCY_PATTERN, "an ISO 4217 code")
_money = shape({"amount": integer(0), "currency": currency})
_split = list_of(
    shape({"recipient": text(), "role": one_of(ROLES), "amount": integer(0)}), min_len=1
)
_MONEY_KEYS = frozenset({"amount", "currency"})
_PART_KEYS = frozenset({"recipient", "role", "amount"})


def money(value: Any) -> str | None:
    """Money: ``{"amount": int >= 0, "currency": "<ISO 4217>"}``. (Prices and
    splits are in most events: checked inline first, explained on failure.)"""
    if (
        type(value) is dict
        and value.keys() == _MONEY_KEYS
        and type(value["amount"]) is int
        and 0 <= value["amount"] <= SAFE_INTEGER_MAX
        and type(value["currency"]) is str
        and CURRENCY_PATTERN.fullmatch(value["currency"]) is not None
    ):
        return None
    return _money(value) or "is not money"


def split(value: Any) -> str | None:
    """A split: a non-empty list of ``{"recipient", "role", "amount"}``."""
    if type(value) is list and value:
        for part in value:
            if not (
                type(part) is dict
                and part.keys() == _PART_KEYS
                and type(part["recipient"]) is str
                and part["recipient"]
                and type(part["role"]) is str
                and part["role"] in ROLES
                and type(part["amount"]) is int
                and 0 <= part["amount"] <= SAFE_INTEGER_MAX
            ):
                break
        else:
            return None
    return _split(value) or "is not a split"


creators = list_of(shape({"id": text(), "share_bps": bps}), min_len=1)

EARLY_BIRD = shape({"quantity": integer(1), "price": money, "opens_at": timestamp,
                    "closes_at": timestamp})

PAYLOADS: dict[str, dict[str, Check]] = {
    "good.minted": {"definition": obj, "fingerprint": hex64},
    "good.variant-derived": {
        "variant_id": uuid_text,
        "variant_fingerprint": hex64,
        "index": integer(1),
    },
    "stock.opened": {
        "good_id": uuid_text,
        "tier": identifier,
        "supply": integer(0),
        "lifetime_cap": integer(0),
        "restockable": boolean,
        "transferable": boolean,
        "per_buyer_limit": nullable(integer(0)),
        "sale_opens_at": nullable(timestamp),
        "sale_closes_at": nullable(timestamp),
        "coded": Optional(is_true),
        "early_bird": Optional(EARLY_BIRD),
    },
    "stock.sold": {
        "sale_id": uuid_text,
        "buyer": identifier,
        "channel": identifier,
        "serials": list_of(integer(1), min_len=1),
        "unit_price": money,
        "split": split,
        "codes": Optional(list_of(code_ref, min_len=1)),
        "early_bird": Optional(is_true),
    },
    "stock.restocked": {"quantity": integer(), "supply": integer()},
    "stock.returned": {"serial": integer(1), "refund_id": uuid_text},
    "stock.reserved": {
        "hold_id": uuid_text,
        "channel": identifier,
        "quantity": integer(1),
        "expires_at": timestamp,
        "codes": Optional(list_of(code_ref, min_len=1)),
    },
    "stock.hold-committed": {
        "hold_id": uuid_text,
        "sale_id": uuid_text,
        "quantity": integer(1),
        "returned": integer(0),
    },
    "stock.hold-released": {
        "hold_id": uuid_text,
        "quantity": integer(1),
        "reason": one_of(frozenset({"released", "expired"})),
    },
    "stock.allotted": {"channel": identifier, "quantity": integer(1), "overflow": boolean},
    "stock.pool-returned": {"channel": identifier, "quantity": integer(1)},
    "stock.pool-drawn": {"channel": identifier, "quantity": integer(1), "sale_id": uuid_text},
    "stock.waitlisted": {
        "entry_id": uuid_text,
        "buyer": identifier,
        "channel": identifier,
        "quantity": integer(1),
    },
    "stock.waitlist-left": {"entry_id": uuid_text},
    "stock.rate-set": {"channel": identifier, "per_minute": nullable(integer(1))},
    "stock.refund-owed": {
        "hold_id": uuid_text,
        "refund_id": uuid_text,
        "buyer": identifier,
        "quantity": integer(1),
        "amount": money,
    },
    "unit.issued": {
        "good_id": uuid_text,
        "tier": identifier,
        "serial": integer(1),
        "transferable": boolean,
        "holder": identifier,
        "sale_id": uuid_text,
        "channel": identifier,
        "price": money,
        "split": split,
        "code": Optional(code_ref),
    },
    "unit.reissued": {
        "holder": identifier,
        "sale_id": uuid_text,
        "channel": identifier,
        "price": money,
        "split": split,
        "code": Optional(code_ref),
    },
    "unit.resold": {
        "resale_id": uuid_text,
        "seller": identifier,
        "buyer": identifier,
        "channel": identifier,
        "price": money,
        "split": split,
    },
    "unit.refunded": {
        "refund_id": uuid_text,
        "acquisition_id": uuid_text,
        "kind": one_of(frozenset({"sale", "resale"})),
        "holder": identifier,
        "returned_to": nullable(identifier),
        "price": money,
        "split": split,
        "reason": text(empty_ok=True),
    },
    "stock.codes-imported": {"batch_id": uuid_text, "refs": list_of(code_ref, min_len=1)},
    "stock.code-returned": {"ref": code_ref, "refund_id": uuid_text},
    "code.imported": {"ref": code_ref, "good_id": uuid_text, "tier": identifier,
                      "batch_id": uuid_text},
    "code.bound": {"unit_id": uuid_text, "sale_id": uuid_text},
    "code.delivered": {"unit_id": uuid_text, "holder": identifier},
    "code.redeemed": {"unit_id": uuid_text, "holder": identifier, "redeemer": identifier},
    "code.returned": {"unit_id": uuid_text, "refund_id": uuid_text},
    "code.voided": {"unit_id": uuid_text, "refund_id": uuid_text},
    "channel.registered": {"channel": identifier, "name": text(), "fee_bps": bps},
    "allowance.started": {"stock_id": uuid_text, "buyer": identifier},
    "allowance.counted": {
        "delta": integer(-SAFE_INTEGER_MAX),
        "reference": uuid_text,
    },
    "command.recorded": {
        "scope": text(no_slash=True, empty_ok=True),
        "key": text(),
        "command": text(),
        "request_hash": hex64,
        "result": obj,
    },
}

# Which aggregate each type belongs to, and which types create one.
CREATION_TYPES = frozenset(
    {
        "good.minted",
        "stock.opened",
        "unit.issued",
        "channel.registered",
        "allowance.started",
        "command.recorded",
        "code.imported",
    }
)
KINDS = {t: t.split(".", 1)[0] for t in PAYLOADS}


def payload_problem(event_type: str, payload: Any) -> str | None:
    return members(payload, PAYLOADS[event_type], "payload")


# -- the good definition ---------------------------------------------------
_TIER: dict[str, Check] = {
    "name": identifier,
    "quota": integer(0),
    "transferable": boolean,
    "per_buyer_limit": nullable(integer(0)),
    "lifetime_cap": integer(0),
    "early_bird": Optional(EARLY_BIRD),
}
_SPEC = {
    "title": text(),
    "creators": creators,
    "content_digest": matches(DIGEST_PATTERN, "sha256:<64 hex>"),
    "kind": one_of(GOOD_KINDS),
    "currency": currency,
    "edition": shape(
        {
            "policy": one_of(POLICIES),
            "sale_opens_at": nullable(timestamp),
            "sale_closes_at": nullable(timestamp),
        }
    ),
    "tiers": list_of(shape(_TIER), min_len=1),
    "royalty": shape({"resale_bps": bps}),
    "variant_rules": nullable(
        shape(
            {
                "max_variants": integer(0),
                "max_supply_per_variant": integer(0),
                "master_primary_bps": bps,
                "master_resale_bps": bps,
            }
        )
    ),
    "metadata": obj,
}
_MASTER = {
    "good_id": uuid_text,
    "fingerprint": hex64,
    "creators": creators,
    "primary_bps": bps,
    "resale_bps": bps,
}
_DEFINITION = {"spec": shape(_SPEC), "minted_at": timestamp, "master": nullable(shape(_MASTER))}


def definition_shape_problem(definition: Any) -> str | None:
    """Why a ``good.minted`` definition does not have section 5's members and
    types (None if it does)."""
    return members(definition, _DEFINITION, "definition")


def definition_rule_problems(definition: Any) -> list[str]:
    """Section 5's rules on a well-shaped definition (empty if it keeps them)."""
    spec = definition["spec"]
    problems = []
    total = sum(c["share_bps"] for c in spec["creators"])
    if total != BPS:
        problems.append(f"creators' share_bps sum to {total}, not 10000")
    master = definition["master"]
    if master is not None:
        total = sum(c["share_bps"] for c in master["creators"])
        if total != BPS:
            problems.append(f"master creators' share_bps sum to {total}, not 10000")
    names = [t["name"] for t in spec["tiers"]]
    if len(set(names)) != len(names):
        problems.append("tier names repeat")
    for tier in spec["tiers"]:
        early = tier.get("early_bird")
        if early is None:
            continue
        if early["quantity"] > tier["quota"]:
            problems.append(f"tier {tier['name']!r}: the early bird's quantity "
                            f"{early['quantity']} exceeds the quota {tier['quota']}")
        if early["price"]["currency"] != spec["currency"]:
            problems.append(f"tier {tier['name']!r}: the early bird's price is not in "
                            f"{spec['currency']}")
        if early["closes_at"] <= early["opens_at"]:
            problems.append(f"tier {tier['name']!r}: the early bird closes before it opens")
    if spec["edition"]["policy"] == "absolute":
        for tier in spec["tiers"]:
            if tier["lifetime_cap"] != tier["quota"]:
                problems.append(
                    f"tier {tier['name']!r} of an absolute edition has lifetime_cap "
                    f"{tier['lifetime_cap']} != quota {tier['quota']}"
                )
    key_problem = _metadata_key_problem(spec["metadata"])
    if key_problem is not None:
        problems.append(key_problem)
    return problems


def _metadata_key_problem(metadata: Any) -> str | None:
    stack = [metadata]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if USER_KEY_PATTERN.fullmatch(key) is None:
                    return f"metadata key {key!r} does not match ^[A-Za-z0-9_.:-]{{1,64}}$"
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return None
