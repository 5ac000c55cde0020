"""Failure classes of a verification, each with its own exit code.

When a report has findings of several classes, the command exits with the
code of the first listed class present: a broken chain is reported as such
even though it also breaks every later checkpoint's root (the root mismatch
is its consequence); a root mismatch alone means the events were rewritten
consistently -- only the signed log shows it. Missing signatures (no
checkpoint at all, or events left outside every checkpoint for too long)
come after the findings that prove something about what was signed, and
before the domain rules: an auditor who named a key asked first whether the
store is signed, and a store that is not may hide any rewrite. The proof store (the stored
tree the server proves from) comes after every class about the events and
the signed log: an event edited after it was logged also leaves its stored
leaf differing, and the edit is the cause.
"""

from __future__ import annotations

from collections.abc import Iterable

# (class, exit code, check codes). Codes not listed are domain-rule findings.
CLASSES: list[tuple[str, int, frozenset[str]]] = [
    (
        "signature",
        5,
        frozenset({"checkpoint-signature", "checkpoint-origin", "checkpoint-mismatch"}),
    ),
    (
        "chain",
        3,
        frozenset(
            {
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
            }
        ),
    ),
    (
        "consistency",
        7,
        frozenset({"checkpoint-root", "checkpoint-beyond-log", "rollback", "split-view"}),
    ),
    ("inclusion", 8, frozenset({"inclusion"})),
    ("quorum", 6, frozenset({"quorum"})),
    ("unsigned", 10, frozenset({"no-checkpoint", "unsigned-events"})),
    ("proof-store", 11, frozenset({"stored-leaf", "stored-node", "stored-state"})),
]
DOMAIN_RULE = ("domain-rule", 4)
EXIT_OK = 0  # (2, could not run, is the CLI's: docs/verification.md)


def failure_class(check: str) -> tuple[str, int]:
    for name, code, checks in CLASSES:
        if check in checks:
            return name, code
    return DOMAIN_RULE


def exit_code(checks: Iterable[str]) -> int:
    """The exit code for a set of finding check codes (0 if none)."""
    present = {failure_class(check) for check in checks}
    if not present:
        return EXIT_OK
    for name, code, _ in CLASSES:
        if (name, code) in present:
            return code
    return DOMAIN_RULE[1]
