"""Section 5 of ``docs/format.md`` as data: each event type's exact payload
members and their JSON types, plus the good definition of ``good.minted``.

Every checker returns ``None`` when the value is fine, else a short reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ledger.verify.codec import (
    HEX64_PATTERN,
    SAFE_INTEGER_MAX,
    USER_KEY_PATTERN,
    UUID_PATTERN,
    is_hex64,
    is_int,
    is_timestamp,
    is_uuid,
)

Check = Callable[[Any], str | None]
Inline = Callable[[str, "_Env"], str]
Lines = Callable[[str, "_Env", str], list[str]]

# How each checker is written inline (see "Fast checks" below): the checker ->
# a function giving, for the text of a value, a boolean expression that is
# true only if the checker returns None for that value. Checkers not listed
# are called. FLOAT_FREE: checkers that pass no value holding a float.
_INLINE: dict[object, Inline] = {}
_FLOAT_FREE: set[object] = set()
# Checkers better written as statements (loops): the checker -> a function
# giving, for a variable name and an indent, lines that return False unless
# the checker returns None for the variable's value.
_LINES: dict[object, Lines] = {}


def _register(check: object, inline: Inline, *, float_free: bool = True) -> None:
    _INLINE[check] = inline
    if float_free:
        _FLOAT_FREE.add(check)


class _Env:
    """What generated code refers to by name, and its fresh variable names."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self._names: dict[int, str] = {}
        self._variables = 0

    def name(self, value: object) -> str:
        found = self._names.get(id(value))
        if found is None:
            found = self._names[id(value)] = f"_k{len(self._names)}"
            self.namespace[found] = value  # kept alive, so its id stays its own
        return found

    def variable(self) -> str:
        self._variables += 1
        return f"_v{self._variables}"


def _unwrap(check: object) -> object:
    return check.check if isinstance(check, Optional) else check


def _inline(check: object, v: str, env: _Env) -> str:
    render = _INLINE.get(check)
    return f"({env.name(check)}({v}) is None)" if render is None else render(v, env)


def _matches(pattern: re.Pattern[str], v: str, env: _Env, *, recurring: bool = True) -> str:
    if not recurring:  # values mostly seen once (hashes): no memory of them
        return f"(type({v}) is str and {env.name(pattern.fullmatch)}({v}) is not None)"
    matcher = _matcher(pattern)
    return f"(type({v}) is str and ({v} in {env.name(matcher.seen)} or {env.name(matcher)}({v})))"


class Matcher:
    """``pattern.fullmatch`` remembering the strings that matched: the same
    ids recur (a good's id in each of its units, a sale's id in its unit and
    allowance events, one currency in every price), and a set lookup is a
    tenth of a match."""

    __slots__ = ("_match", "seen")
    LIMIT = 8_192

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._match = pattern.fullmatch
        self.seen: set[str] = set()

    def __call__(self, value: str) -> bool:
        if self._match(value) is None:
            return False
        if len(self.seen) >= self.LIMIT:
            self.seen.clear()  # (in place: generated code holds this set)
        self.seen.add(value)
        return True


_MATCHERS: dict[re.Pattern[str], Matcher] = {}


def _matcher(pattern: re.Pattern[str]) -> Matcher:
    found = _MATCHERS.get(pattern)
    if found is None:
        found = _MATCHERS[pattern] = Matcher(pattern)
    return found


def _lines(check: object, v: str, env: _Env, indent: str) -> list[str]:
    render = _LINES.get(check)
    if render is not None:
        return render(v, env, indent)
    return [f"{indent}if not {_inline(check, v, env)}:", f"{indent}    return False"]


def _members_lines(v: str, expected: Mapping[str, Check], env: _Env, indent: str) -> list[str]:
    """:func:`members` returning None, as statements: for an object holding
    just the required members in canonical (sorted) order -- nearly all --
    its values unpacked in that order and checked; for any other, member by
    member."""
    order = tuple(sorted(k for k, c in expected.items() if not isinstance(c, Optional)))
    if not order:
        return _members_lines_by_key(v, expected, env, indent)
    names = [env.variable() for _ in order]
    lines = [
        f"{indent}if type({v}) is dict and tuple({v}) == {env.name(order)}:",
        f"{indent}    {', '.join(names)}{',' if len(names) == 1 else ''} = {v}.values()",
    ]
    for name, key in zip(names, order, strict=True):
        lines += _lines(expected[key], name, env, indent + "    ")
    lines.append(f"{indent}else:")
    return lines + _members_lines_by_key(v, expected, env, indent + "    ")


def _members_lines_by_key(
    v: str, expected: Mapping[str, Check], env: _Env, indent: str
) -> list[str]:
    every = frozenset(expected)
    required = frozenset(k for k, c in expected.items() if not isinstance(c, Optional))
    keys = (
        f"{v}.keys() != {env.name(every)}"
        if required == every
        else f"not {env.name(required)} <= {v}.keys() <= {env.name(every)}"
    )
    lines = [f"{indent}if type({v}) is not dict or {keys}:", f"{indent}    return False"]
    for key, check in expected.items():
        item = env.variable()
        if isinstance(check, Optional):
            lines += [
                f"{indent}{item} = {v}.get({key!r}, {env.name(_ABSENT)})",
                f"{indent}if {item} is not {env.name(_ABSENT)}:",
                *_lines(check.check, item, env, indent + "    "),
            ]
        else:
            lines += [f"{indent}{item} = {v}[{key!r}]", *_lines(check, item, env, indent)]
    return lines


_ABSENT = object()


def _members_inline(v: str, expected: Mapping[str, Check], env: _Env) -> str:
    """:func:`members` returning None, as one expression."""
    every = frozenset(expected)
    required = frozenset(k for k, c in expected.items() if not isinstance(c, Optional))
    keys = (
        f"{v}.keys() == {env.name(every)}"
        if required == every
        else f"{env.name(required)} <= {v}.keys() <= {env.name(every)}"
    )
    terms = [f"type({v}) is dict", keys]
    for key, check in expected.items():
        item = f"{v}[{key!r}]"
        if isinstance(check, Optional):
            terms.append(f"({key!r} not in {v} or {_inline(check.check, item, env)})")
        else:
            terms.append(_inline(check, item, env))
    return f"({' and '.join(terms)})"


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
        missing = [k for k, c in expected.items() if k not in value and not isinstance(c, Optional)]
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

    _register(check, lambda v, _env: f"(type({v}) is int and {low} <= {v} <= {high})")
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

    def inline(v: str, _env: _Env) -> str:
        terms = [
            f"type({v}) is str",
            *(() if empty_ok else (v,)),
            *((f"'/' not in {v}",) if no_slash else ()),
        ]
        return f"({' and '.join(terms)})"

    _register(check, inline)
    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "is not true or false"


def is_true(value: Any) -> str | None:
    return None if value is True else "is not true (leave it out when false)"


CODE_REF_PATTERN = re.compile(r"[0-9a-f]{32}")
KEY_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
KEY_ROLES = frozenset({"admin", "creator", "channel", "auditor", "verifier"})


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

    _register(
        inner,
        lambda v, env: f"({v} is None or {_inline(check, v, env)})",
        float_free=check in _FLOAT_FREE,
    )
    return inner


def one_of(options: frozenset[str]) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or value not in options:
            return f"is not one of {', '.join(sorted(options))}"
        return None

    _register(check, lambda v, env: f"(type({v}) is str and {v} in {env.name(options)})")
    return check


def matches(pattern: re.Pattern[str], what: str) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            return f"is not {what}"
        return None

    _register(check, lambda v, env: _matches(pattern, v, env))
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

    def inline(v: str, env: _Env) -> str:
        item = env.variable()
        return (
            f"(type({v}) is list and len({v}) >= {min_len} and "
            f"all({_inline(check, item, env)} for {item} in {v}))"
        )

    def lines(v: str, env: _Env, indent: str) -> list[str]:
        item = env.variable()
        return [
            f"{indent}if type({v}) is not list or len({v}) < {min_len}:",
            f"{indent}    return False",
            f"{indent}for {item} in {v}:",
            *_lines(check, item, env, indent + "    "),
        ]

    _register(inner, inline, float_free=check in _FLOAT_FREE)
    _LINES[inner] = lines
    return inner


def shape(expected: Mapping[str, Check]) -> Check:
    def check(value: Any) -> str | None:
        problem = members(value, expected, "")
        return None if problem is None else problem.lstrip(". ")

    _register(
        check,
        lambda v, env: _members_inline(v, expected, env),
        float_free=all(_unwrap(c) in _FLOAT_FREE for c in expected.values()),
    )
    _LINES[check] = lambda v, env, indent: _members_lines(v, expected, env, indent)
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


_register(boolean, lambda v, _env: f"({v} is True or {v} is False)")
_register(is_true, lambda v, _env: f"({v} is True)")
_register(code_ref, lambda v, env: _matches(CODE_REF_PATTERN, v, env))
_register(uuid_text, lambda v, env: _matches(UUID_PATTERN, v, env))
_register(hex64, lambda v, env: _matches(HEX64_PATTERN, v, env, recurring=False))
_register(timestamp, lambda v, env: f"{env.name(is_timestamp)}({v})")
_register(obj, lambda v, _env: f"(type({v}) is dict)", float_free=False)
# Money and splits, as their own first checks read.


def _money_inline(v: str, env: _Env) -> str:
    currency_ok = _matches(CURRENCY_PATTERN, f"{v}['currency']", env)
    return (
        f"(type({v}) is dict and {v}.keys() == {env.name(_MONEY_KEYS)} "
        f"and type({v}['amount']) is int and 0 <= {v}['amount'] <= {SAFE_INTEGER_MAX} "
        f"and {currency_ok})"
    )


_register(money, _money_inline)


def _part_ok(part: str, env: _Env) -> str:
    return (
        f"(type({part}) is dict and {part}.keys() == {env.name(_PART_KEYS)} "
        f"and type({part}['recipient']) is str and len({part}['recipient']) > 0 "
        f"and type({part}['role']) is str and {part}['role'] in {env.name(ROLES)} "
        f"and type({part}['amount']) is int and 0 <= {part}['amount'] <= {SAFE_INTEGER_MAX})"
    )


def _split_inline(v: str, env: _Env) -> str:
    part = env.variable()
    return f"(type({v}) is list and len({v}) > 0 and all({_part_ok(part, env)} for {part} in {v}))"


def _split_lines(v: str, env: _Env, indent: str) -> list[str]:
    part, amount, recipient, role = (env.variable() for _ in range(4))
    return [
        f"{indent}if type({v}) is not list or not {v}:",
        f"{indent}    return False",
        f"{indent}for {part} in {v}:",
        f"{indent}    if type({part}) is dict and tuple({part}) == {env.name(_PART_ORDER)}:",
        f"{indent}        {amount}, {recipient}, {role} = {part}.values()",
        f"{indent}        if not (type({amount}) is int and 0 <= {amount} <= {SAFE_INTEGER_MAX} "
        f"and type({recipient}) is str and len({recipient}) > 0 and type({role}) is str "
        f"and {role} in {env.name(ROLES)}):",
        f"{indent}            return False",
        f"{indent}    elif not {_part_ok(part, env)}:",
        f"{indent}        return False",
    ]


_PART_ORDER = tuple(sorted(_PART_KEYS))


def _money_lines(v: str, env: _Env, indent: str) -> list[str]:
    amount, currency = env.variable(), env.variable()
    return [
        f"{indent}if type({v}) is dict and tuple({v}) == {env.name(_MONEY_ORDER)}:",
        f"{indent}    {amount}, {currency} = {v}.values()",
        f"{indent}    if not (type({amount}) is int and 0 <= {amount} <= {SAFE_INTEGER_MAX} "
        f"and {_matches(CURRENCY_PATTERN, currency, env)}):",
        f"{indent}        return False",
        f"{indent}elif not {_money_inline(v, env)}:",
        f"{indent}    return False",
    ]


_MONEY_ORDER = tuple(sorted(_MONEY_KEYS))
_LINES[money] = _money_lines


_register(split, _split_inline)
_LINES[split] = _split_lines


creators = list_of(shape({"id": text(), "share_bps": bps}), min_len=1)

EARLY_BIRD = shape(
    {"quantity": integer(1), "price": money, "opens_at": timestamp, "closes_at": timestamp}
)

LISTING_SCOPE = one_of(frozenset({"good", "tier"}))
# A tier's unlock: {"at": timestamp} or {"tier": name, "sold": n} (one form:
# definition_rule_problems says which mixes are wrong).
UNLOCK = shape(
    {"at": Optional(timestamp), "tier": Optional(identifier), "sold": Optional(integer(1))}
)

PRICE_STEP = shape({"price": money, "after_sold": Optional(integer(1)), "at": Optional(timestamp)})

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
        "unlock": Optional(UNLOCK),
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
    "stock.price-set": {"steps": nullable(list_of(PRICE_STEP, min_len=1))},
    "stock.unlocked": {
        "cause": one_of(frozenset({"time", "sales"})),
        "sold": Optional(integer(1)),
    },
    "stock.paused": {"scope": LISTING_SCOPE, "reason": text()},
    "stock.resumed": {"scope": LISTING_SCOPE, "reason": text()},
    "stock.delisted": {"scope": LISTING_SCOPE, "reason": text()},
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
    "code.imported": {
        "ref": code_ref,
        "good_id": uuid_text,
        "tier": identifier,
        "batch_id": uuid_text,
    },
    "code.bound": {"unit_id": uuid_text, "sale_id": uuid_text},
    "code.delivered": {"unit_id": uuid_text, "holder": identifier},
    "code.redeemed": {"unit_id": uuid_text, "holder": identifier, "redeemer": identifier},
    "code.returned": {"unit_id": uuid_text, "refund_id": uuid_text},
    "code.voided": {"unit_id": uuid_text, "refund_id": uuid_text},
    "channel.registered": {"channel": identifier, "name": text(), "fee_bps": bps},
    "account.opened": {"account": identifier, "channel": identifier},
    "account.linked": {"channel": identifier, "consent": text(), "unit_id": uuid_text},
    "account.key-registered": {"key_id": text(), "public_key": text(), "channel": identifier},
    "account.key-revoked": {"key_id": text(), "channel": identifier},
    "unit.moved": {
        "move_id": uuid_text,
        "holder": identifier,
        "from_channel": identifier,
        "to_channel": identifier,
        "consent": text(),
        "authorization": Optional(obj),
    },
    "unit.transferred": {
        "transfer_id": uuid_text,
        "giver": identifier,
        "recipient": identifier,
        "channel": identifier,
        "kind": one_of(frozenset({"gift", "inheritance", "own-accounts"})),
    },
    "apikey.issued": {
        "key_id": matches(KEY_ID_PATTERN, "12 lowercase hex digits"),
        "role": one_of(KEY_ROLES),
        "subject": nullable(identifier),
        "label": text(empty_ok=True),
    },
    "apikey.revoked": {"key_id": matches(KEY_ID_PATTERN, "12 lowercase hex digits")},
    "webhook.registered": {
        "subscription_id": matches(CODE_REF_PATTERN, "32 lowercase hex digits"),
        "owner_role": one_of(frozenset({"channel", "creator", "admin"})),
        "owner": nullable(identifier),
        "url": text(),
        "types": list_of(text(), min_len=1),
        "version": integer(1),
    },
    "webhook.secret-rotated": {"generation": integer(2), "grace_until": timestamp},
    "webhook.paused": {"subscription_id": text()},
    "webhook.resumed": {"subscription_id": text()},
    "webhook.deleted": {"subscription_id": text()},
    "webhook.failing": {
        "position": integer(1),
        "attempts": integer(0),
        "reason": one_of(frozenset({"exhausted", "gone"})),
    },
    "webhook.replayed": {"from_position": integer(0)},
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
        "account.opened",
        "apikey.issued",
        "webhook.registered",
        "allowance.started",
        "command.recorded",
        "code.imported",
    }
)
KINDS = {t: t.split(".", 1)[0] for t in PAYLOADS}


def payload_problem(event_type: str, payload: Any) -> str | None:
    return members(payload, PAYLOADS[event_type], "payload")


# -- Fast checks -------------------------------------------------------------
# Most payloads are fine, and most of a verifier's time would go to saying so
# through the checkers above, one call per member. So each type's checkers
# are also written out as one function returning a truth value, made from the
# same declarations (each checker's inline form, registered beside it): True
# only if payload_problem() would return None. Else ask payload_problem()
# for the reason.
def _compile(types: Mapping[str, Mapping[str, Check]]) -> dict[str, Callable[[Any], object]]:
    env = _Env()
    source = "".join(
        "\n".join(
            [f"def _ok{n}(p):", *_members_lines("p", expected, env, "    "), "    return True\n"]
        )
        for n, expected in enumerate(types.values())
    )
    # Generated from the declarations above only: no data goes into the source.
    exec(compile(source, "<ledger.verify.schema fast checks>", "exec"), env.namespace)  # noqa: S102
    return {event_type: env.namespace[f"_ok{n}"] for n, event_type in enumerate(types)}


PAYLOAD_OK = _compile(PAYLOADS)
# Members whose checker lets any JSON through (a definition, a command's
# result): the only places a payload that passes PAYLOAD_OK can hold a float.
UNTYPED_MEMBERS = {
    event_type: tuple(k for k, c in expected.items() if _unwrap(c) not in _FLOAT_FREE)
    for event_type, expected in PAYLOADS.items()
}


# -- the good definition ---------------------------------------------------
_TIER: dict[str, Check] = {
    "name": identifier,
    "quota": integer(0),
    "transferable": boolean,
    "per_buyer_limit": nullable(integer(0)),
    "lifetime_cap": integer(0),
    "early_bird": Optional(EARLY_BIRD),
    "unlock": Optional(UNLOCK),
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


def definition_rule_problems(definition: Any) -> list[str]:  # noqa: PLR0912 - one check per rule of section 5, read as a list
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
    problems.extend(_unlock_problems(spec["tiers"]))
    for tier in spec["tiers"]:
        early = tier.get("early_bird")
        if early is None:
            continue
        if early["quantity"] > tier["quota"]:
            problems.append(
                f"tier {tier['name']!r}: the early bird's quantity "
                f"{early['quantity']} exceeds the quota {tier['quota']}"
            )
        if early["price"]["currency"] != spec["currency"]:
            problems.append(
                f"tier {tier['name']!r}: the early bird's price is not in {spec['currency']}"
            )
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


def _unlock_problems(tiers: list[Any]) -> list[str]:
    """Each tier's unlock is one of its two forms, naming another tier."""
    names = {t["name"] for t in tiers}
    problems = []
    for tier in tiers:
        unlock = tier.get("unlock")
        if unlock is None:
            continue
        if set(unlock) not in ({"at"}, {"tier", "sold"}):
            problems.append(f"tier {tier['name']!r}: unlock is {{at}} or {{tier, sold}}")
        elif "tier" in unlock and (unlock["tier"] == tier["name"] or unlock["tier"] not in names):
            problems.append(f"tier {tier['name']!r}: unlock names no other tier of the good")
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
