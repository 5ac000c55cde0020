"""Rules 8.11 of ``docs/format.md``: redemption codes, checked from the events.

A code is named by its ref (a keyed hash); the verifier never sees its text
and needs no key. It follows every code through its life -- imported, free in
its tier's pool, lent to a hold, sold, bound to the unit its sale issued,
delivered to that unit's holder, redeemed; or returned to the pool or voided
by a refund -- and flags any event that takes a code it may not take: a code
in two pools, sold twice, bound to another unit than its sale's, delivered
to someone who does not hold the unit, redeemed twice or before delivery, a
revealed code's unit resold. The :class:`CodeRules` object is driven by the
:class:`~ledger.verify.verifier.Verifier` and keeps only refs and ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.verify import codec
from ledger.verify.invariant import VerifierInvariantError

Payload = dict[str, Any]

# A code's states, in the order of its life.
IMPORTED, FREE, HELD, SOLD, BOUND = "imported", "free", "held", "sold", "bound"
DELIVERED, REDEEMED, RETURNING, VOIDED = "delivered", "redeemed", "returning", "voided"


class Located(Protocol):
    position: int | None
    aggregate_id: str | None
    type: str | None


Flag = Callable[..., None]  # (event, check, message, expected=, actual=)


@dataclass(slots=True)
class _Code:
    event: Any  # where it was imported
    ref: str
    stock_id: str
    batch_id: str
    state: str = IMPORTED
    unit_id: str | None = None
    sale_id: str | None = None
    holder: str | None = None
    refund: tuple[str, str] | None = None  # (refund_id, "returned" | "voided") awaited
    returned_by: str | None = None  # the refund whose stock.code-returned is awaited


class CodeRules:
    def __init__(self, flag: Flag) -> None:
        self._flag = flag
        self.coded: set[str] = set()  # stock ids of redemption-code tiers
        self._pools: dict[str, set[str]] = {}  # stock id -> free refs
        # (stock, hold) -> the refs it names, and those of them it was lent
        self._lent: dict[tuple[str, str], tuple[list[str], set[str]]] = {}
        # stock id -> the refs its next sale takes (a committed hold's), and those lent
        self._committing: dict[str, tuple[list[str], set[str]]] = {}
        self._codes: dict[str, _Code] = {}  # ref -> code
        self._ids: dict[str, str] = {}  # code aggregate id -> ref
        self._units: dict[str, str] = {}  # unit id -> ref of its code
        self._due: dict[str, str] = {}  # unit id -> ref its next unit event must carry

    # -- tiers ----------------------------------------------------------------
    def opened(self, ev: Located, stock_id: str, p: Payload, kind: str | None) -> None:
        coded = p.get("coded", False)
        if kind is not None and coded != (kind == "redemption-code"):
            self._flag(
                ev,
                "stock-mismatch",
                f"coded is {coded}, but the good is a {kind}: "
                "exactly the tiers of redemption-code goods are coded",
            )
        if coded:
            self.coded.add(stock_id)
            self._pools.setdefault(stock_id, set())

    def imported(self, ev: Located, p: Payload, known_good: Payload | None) -> None:
        """``code.imported``: a code of a coded tier, named by its ref."""
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        ref = p["ref"]
        if ev.aggregate_id != codec.derive_id("code", ref):
            self._flag(ev, "bad-id", "the code's aggregate id is not derived from its ref")
        stock_id = codec.derive_id("stock", p["good_id"], p["tier"])
        if known_good is not None and stock_id not in self.coded:
            self._flag(
                ev,
                "code-import",
                f"tier {p['tier']!r} of good {p['good_id']} is not "
                "coded: only a redemption-code good's tiers take codes",
            )
        if ref in self._codes:
            self._flag(ev, "code-import", f"code {ref} is imported twice")
            return
        self._codes[ref] = _Code(ev, ref, stock_id, p["batch_id"])
        self._ids[ev.aggregate_id] = ref

    def listed(self, ev: Located, stock_id: str, p: Payload) -> None:
        """``stock.codes-imported``: the batch's codes join the tier's pool."""
        if stock_id not in self.coded:
            self._flag(ev, "code-import", "codes imported into a tier that is not coded")
        pool = self._pools.setdefault(stock_id, set())
        for ref in p["refs"]:
            code = self._codes.get(ref)
            if (
                code is None
                or code.state != IMPORTED
                or code.stock_id != stock_id
                or code.batch_id != p["batch_id"]
            ):
                why = (
                    "no code.imported precedes it"
                    if code is None
                    else "it is listed by a batch already"
                    if code.state != IMPORTED
                    else "its code.imported names another tier or batch"
                )
                self._flag(ev, "code-import", f"code {ref} cannot join the pool: {why}")
                continue
            code.state = FREE
            pool.add(ref)

    def free(self, stock_id: str) -> int:
        """How many codes are free in the tier's pool (neither bound nor lent)."""
        return len(self._pools.get(stock_id, ()))

    # -- holds and sales ----------------------------------------------------------
    def _take(self, ev: Located, stock_id: str, refs: list[str], state: str) -> list[str]:
        """Take ``refs`` from the tier's pool; those not free there are
        flagged and left as they are. Returns the refs taken."""
        pool = self._pools.get(stock_id, set())
        taken = []
        for ref in refs:
            code = self._codes.get(ref)
            if ref not in pool or code is None:
                self._flag(
                    ev,
                    "code-binding",
                    f"code {ref} is not free in this tier's pool "
                    f"(it is {code.state if code else 'not imported here'})",
                )
                continue
            pool.discard(ref)
            code.state = state
            taken.append(ref)
        return taken

    def _check_count(self, ev: Located, stock_id: str, p: Payload, quantity: int) -> list[str]:
        refs: list[str] = p.get("codes", [])
        if stock_id in self.coded and len(refs) != quantity:
            self._flag(
                ev,
                "code-binding",
                f"{quantity} unit(s) of a coded tier take "
                f"{quantity} code(s); the event names {len(refs)}",
                expected=str(quantity),
                actual=str(len(refs)),
            )
        elif stock_id not in self.coded and refs:
            self._flag(ev, "code-binding", "codes named for a tier that is not coded")
        if len(set(refs)) != len(refs):
            self._flag(ev, "code-binding", "a code is named twice")
        return refs

    def reserved(self, ev: Located, stock_id: str, p: Payload) -> None:
        refs = self._check_count(ev, stock_id, p, p["quantity"])
        # The hold names its codes in order (its sale takes the first ones),
        # but only those it could take are lent: one that was not free (sold,
        # lent to another hold; flagged here) must not return to the pool with it.
        lent = self._take(ev, stock_id, refs, HELD)
        self._lent[(stock_id, p["hold_id"])] = (list(refs), set(lent))

    def hold_resolved(self, stock_id: str, hold_id: str, committed: int) -> None:
        """A hold committed (``committed`` units) or released (0): what the
        sale does not take returns to the pool."""
        refs, lent = self._lent.pop((stock_id, hold_id), ([], set()))
        if committed:
            self._committing[stock_id] = (refs[:committed], lent)
        pool = self._pools.setdefault(stock_id, set())
        for ref in refs[committed:]:
            if ref in lent:
                pool.add(ref)
                self._codes[ref].state = FREE

    def sold(self, ev: Located, stock_id: str, p: Payload, unit_ids: list[str]) -> None:
        refs = self._check_count(ev, stock_id, p, len(p["serials"]))
        committing = self._committing.pop(stock_id, None)
        if committing is not None:  # the sale of a committed hold takes the hold's codes
            named, lent = committing
            if refs != named:
                self._flag(
                    ev,
                    "code-binding",
                    "the sale of a committed hold does not take the codes lent to the hold",
                    expected=",".join(named),
                    actual=",".join(refs),
                )
            for ref in refs:
                if ref not in named:
                    self._take(ev, stock_id, [ref], SOLD)
                elif ref in lent:
                    self._codes[ref].state = SOLD
                # else: the hold named a code it could not take (flagged there)
        else:
            self._take(ev, stock_id, refs, SOLD)
        for ref, unit_id in zip(refs, unit_ids, strict=False):
            code = self._codes.get(ref)
            if code is not None and code.state == SOLD:
                code.unit_id, code.sale_id = unit_id, p["sale_id"]
            self._due[unit_id] = ref

    def unit_sold(self, ev: Located, unit_id: str, p: Payload) -> None:
        """``unit.issued`` / ``unit.reissued``: it carries its sale's code."""
        due = self._due.pop(unit_id, None)
        if p.get("code") != due:
            self._flag(
                ev,
                "code-binding",
                f"the unit carries code {p.get('code')}, its sale gave it {due}",
                expected=str(due),
                actual=str(p.get("code")),
            )
        if due is not None:
            self._units[unit_id] = due

    def bound(self, ev: Located, p: Payload) -> None:
        code = self._code_of(ev)
        if code is None:
            return
        if code.state != SOLD or (code.unit_id, code.sale_id) != (p["unit_id"], p["sale_id"]):
            self._flag(
                ev,
                "code-binding",
                f"code {code.ref} is bound to unit {p['unit_id']} "
                f"by sale {p['sale_id']}, but no sale gave it that unit "
                f"(the code is {code.state})",
            )
            return
        code.state = BOUND

    # -- the holder's side ------------------------------------------------------
    def delivered(self, ev: Located, p: Payload, holder: str | None) -> None:
        code = self._code_of(ev)
        if code is None:
            return
        if code.state != BOUND or code.unit_id != p["unit_id"]:
            self._flag(
                ev,
                "code-state",
                f"code {code.ref} is delivered while {code.state}"
                + (
                    ""
                    if code.unit_id == p["unit_id"]
                    else f" and bound to another unit ({code.unit_id})"
                ),
            )
        elif holder != p["holder"]:
            self._flag(
                ev,
                "code-state",
                f"code {code.ref} is delivered to {p['holder']}, "
                f"who does not hold its unit ({holder})",
                expected=str(holder),
                actual=p["holder"],
            )
        code.state, code.holder = DELIVERED, p["holder"]

    def redeemed(self, ev: Located, p: Payload) -> None:
        code = self._code_of(ev)
        if code is None:
            return
        if code.state != DELIVERED or (code.unit_id, code.holder) != (p["unit_id"], p["holder"]):
            self._flag(
                ev,
                "code-state",
                f"code {code.ref} is redeemed while {code.state}: a "
                "code is redeemed once, after its delivery, for its unit and holder",
            )
        code.state = REDEEMED

    def resold(self, ev: Located, unit_id: str) -> None:
        code = self._codes.get(self._units.get(unit_id, ""))
        if code is not None and code.state != BOUND:
            self._flag(ev, "code-state", f"the unit is resold after its code was {code.state}")

    def refunded(self, ev: Located, unit_id: str, p: Payload) -> None:
        code = self._codes.get(self._units.get(unit_id, ""))
        if code is None:  # no code, or one its sale could not name (flagged there)
            self._units.pop(unit_id, None)
            return
        primary = p["kind"] == "sale"
        if primary and code.state in (BOUND, DELIVERED):
            # The sale's refund sends a sealed code back, voids a revealed one.
            code.refund = (p["refund_id"], "returned" if code.state == BOUND else "voided")
        elif code.state != BOUND:
            self._flag(
                ev,
                "code-state",
                f"a {p['kind']} of the unit is refunded after its code was {code.state}",
            )
        if primary:
            self._units.pop(unit_id, None)

    def settled(self, ev: Located, p: Payload, outcome: str) -> None:
        """``code.returned`` / ``code.voided``: what the refund of its sale owed."""
        code = self._code_of(ev)
        if code is None:
            return
        if code.refund != (p["refund_id"], outcome) or code.unit_id != p["unit_id"]:
            self._flag(
                ev,
                "code-state",
                f"code {code.ref} is {outcome}, but no refund of its "
                f"sale calls for that (it is {code.state})",
            )
        if outcome == "returned":  # its stock.code-returned names the refund
            code.returned_by = code.refund[0] if code.refund is not None else p["refund_id"]
        code.refund = None
        code.state = RETURNING if outcome == "returned" else VOIDED

    def returned_to_pool(self, ev: Located, stock_id: str, p: Payload) -> None:
        code = self._codes.get(p["ref"])
        if code is None or code.state != RETURNING or code.stock_id != stock_id:
            self._flag(
                ev,
                "code-state",
                f"code {p['ref']} returns to the pool without a "
                "code.returned of this tier before it",
            )
            return
        if p["refund_id"] != code.returned_by:
            self._flag(
                ev,
                "code-state",
                f"code {code.ref} returns to the pool by refund "
                f"{p['refund_id']}, but the refund that returned it is "
                f"{code.returned_by}",
                expected=str(code.returned_by),
                actual=p["refund_id"],
            )
        code.state, code.unit_id, code.sale_id, code.holder = FREE, None, None, None
        code.returned_by = None
        self._pools.setdefault(stock_id, set()).add(p["ref"])

    def _code_of(self, ev: Located) -> _Code | None:
        if ev.aggregate_id is None:
            raise VerifierInvariantError("ev.aggregate_id unset")
        ref = self._ids.get(ev.aggregate_id)
        return self._codes.get(ref) if ref is not None else None

    # -- the end -------------------------------------------------------------
    def finish(self, unreadable: set[str]) -> None:
        for code in self._codes.values():
            if code.event.aggregate_id in unreadable:
                continue
            if code.state == IMPORTED:
                self._flag(
                    code.event,
                    "code-import",
                    f"code {code.ref} is imported but no "
                    "stock.codes-imported puts it in its tier's pool",
                )
            elif code.state == SOLD:
                self._flag(
                    code.event,
                    "code-binding",
                    f"code {code.ref} is sold (sale "
                    f"{code.sale_id}) but never bound by a code.bound",
                )
            elif code.state == RETURNING:
                self._flag(
                    code.event,
                    "code-state",
                    f"code {code.ref} is returned but no "
                    "stock.code-returned puts it back in its pool",
                )
            if code.refund is not None:
                self._flag(
                    code.event,
                    "code-state",
                    f"the refund {code.refund[0]} of code "
                    f"{code.ref}'s sale is not followed by its code.{code.refund[1]}",
                )
        self._due.clear()
