"""What the ledger knows is wrong, as alarms an auditor acts on.

Pure: the caller reads what the server records (the cosignatures each
verifier handed in, the last push to each verifier, the views' position,
readiness) and this module decides which of it is an alarm. The rules, and
docs/pages.md "Auditor console", say exactly what counts:

* ``verifier-unreachable`` -- the server's last push of a checkpoint to a
  verifier with a URL in the policy could not reach it;
* ``verifier-refused`` -- that push was answered with an error (anything but
  a cosignature or the 409 that says the verifier's size), or with no valid
  cosignature from that verifier;
* ``verifier-lagging`` -- a checkpoint larger than the one the verifier last
  cosigned has waited more than :data:`VERIFIER_LAG_SECONDS` for its
  cosignature (a verifier that never cosigned: since the first checkpoint);
* ``views-failed`` -- the views stopped on an error;
* ``views-behind`` -- the views are behind the store and have applied
  nothing for :data:`VIEWS_STALL_SECONDS`;
* ``not-ready`` -- readiness fails: the database, the views or the sealer
  (one alarm each, ``subject`` naming it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

VERIFIER_LAG_SECONDS = 60.0
"""How long a checkpoint may wait for a verifier's cosignature."""
VIEWS_STALL_SECONDS = 10.0
"""How long the views may be behind the store without applying anything."""


@dataclass(frozen=True, slots=True)
class Push:
    """The server's last push of a checkpoint to one verifier."""

    size: int
    at: datetime
    # cosigned, refused, unreachable, bad-cosignature, or not-sent (the
    # consistency proof did not verify against the checkpoint: nothing left)
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VerifierState:
    """One verifier the policy names, as the server knows it."""

    name: str
    cosigned_size: int  # the largest checkpoint it cosigned (0: none)
    waiting_since: datetime | None  # signed_at of the first checkpoint it has not cosigned
    push: Push | None = None  # None: never pushed to (no URL, or nothing to push yet)


@dataclass(frozen=True, slots=True)
class ViewsState:
    behind: int  # events stored and not yet applied
    applied_at: datetime | None  # when the last batch was applied
    error: str | None


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: str
    subject: str  # the verifier's name, "views", or the readiness part
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail}


def verifier_alarms(state: VerifierState, now: datetime) -> list[Alarm]:
    """The alarms about one verifier (rules in the module's docstring)."""
    found = []
    push = state.push
    if push is not None and push.outcome == "unreachable":
        found.append(
            Alarm("verifier-unreachable", state.name, f"size {push.size}: {push.detail}".strip())
        )
    elif push is not None and push.outcome in ("refused", "bad-cosignature"):
        found.append(
            Alarm("verifier-refused", state.name, f"size {push.size}: {push.detail}".strip())
        )
    if state.waiting_since is not None:
        waited = (now - state.waiting_since).total_seconds()
        if waited > VERIFIER_LAG_SECONDS:
            found.append(
                Alarm(
                    "verifier-lagging",
                    state.name,
                    f"last cosigned size {state.cosigned_size}; a larger checkpoint has waited "
                    f"{waited:.0f} s (bound {VERIFIER_LAG_SECONDS:.0f} s)",
                )
            )
    return found


def views_alarms(views: ViewsState | None, now: datetime) -> list[Alarm]:
    if views is None:
        return []
    if views.error:
        return [Alarm("views-failed", "views", views.error)]
    if views.behind <= 0:
        return []
    idle = None if views.applied_at is None else (now - views.applied_at).total_seconds()
    if idle is None or idle > VIEWS_STALL_SECONDS:
        since = "never applied" if idle is None else f"nothing applied for {idle:.0f} s"
        return [
            Alarm(
                "views-behind",
                "views",
                f"{views.behind} events behind the store, {since} "
                f"(bound {VIEWS_STALL_SECONDS:.0f} s)",
            )
        ]
    return []


def alarms(
    verifiers: Iterable[VerifierState],
    views: ViewsState | None,
    readiness: Mapping[str, bool],
    now: datetime,
) -> list[Alarm]:
    """Every alarm, verifiers first (in the order given), then views, then readiness."""
    found = [alarm for state in verifiers for alarm in verifier_alarms(state, now)]
    found += views_alarms(views, now)
    found += [
        Alarm("not-ready", part, f"readiness: the {part} is not ready")
        for part, ok in readiness.items()
        if not ok
    ]
    return found


def lag(log_size: int, cosigned_size: int) -> int:
    """A verifier's lag in entries: the log's size less the size it last cosigned."""
    return max(0, log_size - cosigned_size)
