"""The verifier's own invariant error (it must not import the domain's)."""

from __future__ import annotations


class VerifierInvariantError(RuntimeError):
    """The verifier broke one of its own invariants: a bug in the verifier,
    not a finding about the log. Raised where an ``assert`` used to stand,
    so the check holds under ``python -O`` too."""
