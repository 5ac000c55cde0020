"""Independent verification of a ledger, from its events alone.

Written from ``docs/format.md`` as an outsider would: this package imports
nothing of the write path (``ledger.domain``, ``ledger.service``, …; an
import-linter contract enforces it). It reads raw rows through
:mod:`ledger.store.records` or the export file of section 3, and recomputes
every encoding, hash, id, split and rule itself.

Use::

    report = verify_store(DatabaseURL.parse("sqlite:///ledger.db"))
    report = verify_export("ledger.jsonl")
    if not report.ok:
        print(report.first)

or feed a :class:`Verifier` yourself (``feed`` for stored rows,
``feed_record`` for export lines, then ``finish``). It streams: it keeps
per-aggregate heads and rule state, never the log, and it keeps going after
a finding, resynchronising each chain on what is stored so one break is
reported once.

Check codes (``Finding.check``), by section of the spec:

Encoding and envelope (sections 1 to 3)
    ``bad-json``            bytes that do not parse as JSON
    ``not-canonical``       JSON that is not its canonical form (whitespace,
                            key order, escapes, floats, integers beyond
                            +/-(2^53-1), non-ASCII keys)
    ``bad-envelope``        wrong record/state members, aggregate id not a
                            lowercase UUID, bad version, prev_hash not 64 hex,
                            payload not an object, a malformed recorded_by
    ``bad-timestamp``       timestamp not ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    ``record-mismatch``     an export line is not the splice of its parts
    ``bad-line``            an empty export line, or no final newline
    ``unreadable``          the store cannot be read past some row
Chain (section 2)
    ``version-gap``         a version skips ahead (events missing)
    ``version-order``       a version repeats or goes back
    ``prev-hash-mismatch``  prev_hash is not the previous event's hash (or 64
                            zeros at version 1); expected and actual given
Types and payloads (section 5)
    ``unknown-type``        not an event type of section 5
    ``wrong-type``          a type in another kind of aggregate, a creation
                            type after version 1, or another type at version 1
    ``bad-payload``         payload members or their JSON types are wrong
    ``bad-definition``      a good's definition breaks section 5 (members,
                            shares not summing to 10000, absolute edition with
                            lifetime_cap != quota, minted_at != timestamp, …)
Ids (section 4, rule 8.1)
    ``bad-id``              aggregate id is not the UUIDv5 derivation
    ``bad-fingerprint``     fingerprint is not SHA-256 of the definition
    ``unknown-ref``         names a good, stock or channel not created before
Cross-references (sections 5 and 6; matched by id, never by adjacency)
    ``command-missing``     no command.recorded has the sale_id, resale_id or
                            refund_id an effect names
    ``command-mismatch``    that record names another command
    ``command-orphan``      a record of a command whose effects name it (sell,
                            resell, refund, reserve, commit-hold, join-waitlist,
                            import-codes) that no earlier event names: its
                            effects are missing
    ``command-result``      the result of such a record (what a retry is
                            answered) is not the answer its effects
                            determine: a member of another value or JSON
                            type, a member added or missing
Supply (rule 8.2)
    ``stock-mismatch``      stock.opened differs from its tier's definition, or
                            a tier of a good is never opened
    ``oversold``            more units live than the stock's supply
    ``serial-reused``       a sale takes a serial that is live
    ``serial-order``        serials not taken returned-first (lowest first),
                            then new in order
    ``serial-not-live``     stock.returned of a serial not issued or already back
    ``lifetime-cap``        supply above the lifetime cap
    ``restock-forbidden``   stock.restocked on an absolute edition's tier
    ``restock-mismatch``    new supply != old supply + quantity (or quantity < 1)
    ``sale-window``         a sale outside ``[sale_opens_at, sale_closes_at)``
Units (rule 8.3)
    ``unit-mismatch``       a unit event not matching its sale (serial, holder,
                            price, split, channel, issued vs reissued)
    ``dangling-sale``       a sold serial that no unit event of its sale issues
                            by the end of the log
    ``unit-held``           a held unit is sold again
    ``not-holder``          a resale, gift or move by someone who does not hold
                            the unit
    ``not-transferable``    a resale or gift of a non-transferable tier's unit
    ``self-transfer``       a gift to the giver
    ``refund-mismatch``     a refund that does not undo the holder's latest
                            unrefunded acquisition, on its terms (or undoes
                            a transfer: nothing was paid)
    ``return-mismatch``     a primary refund without its stock.returned (or a
                            stock.returned that no earlier refund explains)
Accounts and custody (rule 8.13)
    ``not-served``          a channel acts (sells to, resells to, gives to,
                            waitlists, registers a key) for an account it
                            does not serve, or one never opened
    ``not-in-custody``      a channel resells, gives or hands off a unit held
                            through another channel
    ``acting-channel``      an event recorded by a channel's key acts as
                            another channel (a refund or a code delivery: of
                            a unit held through another channel)
    ``account-state``       a channel linked twice, or linked for a unit that
                            is never moved to it
    ``holder-key``          a holder's key whose id is not its hash, or
                            registered twice, or revoked while not in force
    ``move-state``          a unit moved to the channel holding it
    ``move-consent``        a move without a valid consent: a holder-signature
                            move whose authorization is malformed, for another
                            unit, account, channel or version, outside its
                            life, or not signed by a key in force
Money (rule 8.4)
    ``currency``            a price not in the good's currency
    ``split-sum``           split parts do not sum to the price
    ``split-mismatch``      split is not section 7's largest-remainder split
Per-buyer limits (rule 8.5)
    ``buyer-limit``         an allowance's total leaves 0..per_buyer_limit
    ``allowance-mismatch``  allowance events that do not match their sale or
                            refund (or exist for a tier without a limit)
Variants (rule 8.6)
    ``variant-limit``       more variants than max_variants, a variant tier
                            over max_supply_per_variant, or no variant rules
    ``variant-mismatch``    a variant's master block or derivation record does
                            not match the master
Actors (section 2's ``recorded_by``, rule 8.12)
    ``actor-unknown-key``   recorded by an API key no earlier apikey.issued issues
    ``actor-mismatch``      recorded by a key under another role or subject
                            than the key was issued with
    ``actor-revoked-key``   recorded by a key after its apikey.revoked (or a
                            key revoked twice)
Webhook subscriptions (rule 8.14)
    ``webhook-owner``       registered for another principal than the key
                            that recorded it, or for types its role may not read
    ``webhook-actor``       changed by a key other than its owner's or an
                            admin's (or marked failing by anyone but the server)
    ``webhook-state``       a step its life does not allow: after its
                            deletion, a resume while active, a skipped secret
                            generation, a grace beyond 7 days
Listing (rule 8.15)
    ``listing``             a sale, hold or restock of a tier while a pause is
                            in force on it, or after its delisting
    ``listing-state``       a pause of a scope paused already, a resume of
                            one not paused, anything after a delisting
Unlock tiers (rule 8.16)
    ``locked``              a sale or hold of a tier before its stock.unlocked
    ``unlock``              an unlocking of a tier with no condition, twice,
                            of another cause, before its time, or before the
                            tier it waits on sold its units
Price rules (rule 8.17)
    ``price-rule``          a sale (not an early bird's) at another price than
                            its schedule has in force, or a malformed schedule
Verifier
    ``unverifiable``        the verifier could not check an event (a bug in
                            the verifier, reported rather than raised)
The global log (:mod:`ledger.verify.log`) and the auditor's memory
    ``checkpoint-signature`` a checkpoint's note has no valid signature by a
                            trusted log key (or does not parse)
    ``checkpoint-origin``   a checkpoint names another origin
    ``checkpoint-mismatch`` a stored checkpoint row differs from its signed note
    ``checkpoint-root``     a signed root is not the root of the events
    ``checkpoint-beyond-log`` a checkpoint covers more events than exist
    ``quorum``              the latest checkpoint's cosignatures miss the
                            policy's quorum, or one of them is forged
    ``rollback``            the log no longer reaches the size verified before
    ``split-view``          the log's first N entries are not the tree
                            verified before
    ``no-checkpoint``       given a log key or a policy: the log has events
                            and no checkpoint (an export file has none)
    ``unsigned-events``     given a log key or a policy: an event outside
                            every checkpoint that verified is more than the
                            bound (``max_unsigned_age``, 300 s) older than the
                            newest event
The stored tree the server proves from (:mod:`ledger.verify.prooftree`)
    ``stored-leaf``         a ``tlog_leaves`` row names another event than the
                            one at its index, is missing, or has no event
    ``stored-node``         a ``tlog_nodes`` hash differs from the one
                            recomputed from the events, is missing or extra
    ``stored-state``        ``tlog_state`` does not hold the events' tree
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.verify.report import Finding, Report
from ledger.verify.verifier import Verifier

if TYPE_CHECKING:
    from ledger.verify.sources import (
        BundleError,
        export_bundle,
        export_store,
        verify_bundle,
        verify_export,
        verify_store,
    )

_SOURCES = frozenset(
    {
        "BundleError",
        "export_bundle",
        "export_store",
        "verify_bundle",
        "verify_export",
        "verify_store",
    }
)


def __getattr__(name: str) -> Any:
    """The readers of stores and files, imported when first asked for: the
    verifier's second process (:mod:`ledger.verify.pipeline`) needs the rules
    only, not the database drivers."""
    if name in _SOURCES:
        from ledger.verify import sources  # noqa: PLC0415 - imported lazily on purpose

        return getattr(sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CHECKS: tuple[str, ...] = (
    # the global log (ledger.verify.log) and the auditor's memory (--state)
    "checkpoint-signature",
    "checkpoint-origin",
    "checkpoint-mismatch",
    "checkpoint-root",
    "checkpoint-beyond-log",
    "quorum",
    "rollback",
    "split-view",
    "no-checkpoint",
    "unsigned-events",
    # the stored tree the server proves from (ledger.verify.prooftree)
    "stored-leaf",
    "stored-node",
    "stored-state",
    "bad-json",
    "not-canonical",
    "bad-envelope",
    "bad-timestamp",
    "record-mismatch",
    "bad-line",
    "unreadable",
    "version-gap",
    "version-order",
    "prev-hash-mismatch",
    "unknown-type",
    "wrong-type",
    "bad-payload",
    "bad-definition",
    "bad-id",
    "bad-fingerprint",
    "unknown-ref",
    "command-missing",
    "command-mismatch",
    "command-orphan",
    "command-result",
    "stock-mismatch",
    "oversold",
    "serial-reused",
    "serial-order",
    "serial-not-live",
    "lifetime-cap",
    "restock-forbidden",
    "restock-mismatch",
    "sale-window",
    "unit-mismatch",
    "dangling-sale",
    "unit-held",
    "not-holder",
    "not-transferable",
    "self-transfer",
    "refund-mismatch",
    "not-served",
    "not-in-custody",
    "acting-channel",
    "account-state",
    "holder-key",
    "move-state",
    "move-consent",
    "return-mismatch",
    "currency",
    "split-sum",
    "split-mismatch",
    "buyer-limit",
    "allowance-mismatch",
    "variant-limit",
    "variant-mismatch",
    "actor-unknown-key",
    "actor-mismatch",
    "actor-revoked-key",
    "unverifiable",
)

__all__ = [
    "CHECKS",
    "BundleError",
    "Finding",
    "Report",
    "Verifier",
    "export_bundle",
    "export_store",
    "verify_bundle",
    "verify_export",
    "verify_store",
]
