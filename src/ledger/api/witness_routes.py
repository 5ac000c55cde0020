"""``GET /witnesses`` and ``GET /alarms``: how the verifiers keep up, and
what the ledger knows is wrong.

Read from what the server records: the cosignatures each verifier handed in
(stored with the time they came), the checkpoints, the server's last push to
each verifier (kept in memory: a restart forgets it), the views' position
and readiness. :mod:`ledger.domain.alarms` decides what is an alarm.

Auditors and admins only, not public as ``/log/...`` is: a push's outcome
carries the verifier's answer or the network error reaching it, and the
verifiers' URLs -- the operator's network, not the log's content. What is
public about the verifiers, their cosignatures, ``GET /log/checkpoint``
serves to anyone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter

from ledger.api.auth import require
from ledger.api.json_body import StrictJsonRoute
from ledger.api.log_routes import RuntimeDep
from ledger.api.query_routes import READ_RESPONSES
from ledger.api.runtime import Runtime
from ledger.domain import alarms as rules
from ledger.domain.model import format_timestamp
from ledger.store.apikeys import Principal, Role

router = APIRouter(tags=["reads"], route_class=StrictJsonRoute)

Auditor = Annotated[Principal, require(Role.AUDITOR)]


def _moment(text: str | None) -> datetime | None:
    """A stored ISO 8601 time (``...Z``) as an aware datetime."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def _verifiers(rt: Runtime) -> list[tuple[rules.VerifierState, str | None]]:
    """Each verifier the policy names (its state, and when its newest
    cosignature came), in the policy's order."""
    if rt.policy is None:
        return []
    cosigned = rt.log.last_cosigned()
    pushes = rt.last_pushes()
    out = []
    for name in rt.policy.witnesses:
        size, received_at = cosigned.get(name, (0, None))
        waiting = rt.log.first_checkpoint_after(size)
        state = rules.VerifierState(
            name=name,
            cosigned_size=size,
            waiting_since=None if waiting is None else _moment(waiting.signed_at),
            push=pushes.get(name),
        )
        out.append((state, received_at))
    return out


def _views(rt: Runtime) -> rules.ViewsState | None:
    if rt.runner is None:
        return None
    status = rt.runner.status()
    return rules.ViewsState(
        behind=int(status["behind"]),
        applied_at=_moment(status["applied_at"]),
        error=None if status["error"] is None else str(status["error"]),
    )


def _push(push: rules.Push | None) -> dict[str, Any] | None:
    if push is None:
        return None
    return {
        "size": push.size,
        "at": _stamp(push.at),
        "outcome": push.outcome,
        "detail": push.detail,
    }


@router.get(
    "/witnesses",
    responses=READ_RESPONSES,
    summary="Each verifier the policy names: what it last cosigned, its lag, the last push to it",
)
def witnesses(rt: RuntimeDep, _who: Auditor) -> dict[str, Any]:
    log_size = rt.log.size()
    latest = rt.log.latest_checkpoint()
    policy = None
    if rt.policy is not None:
        cosigners = rt.log.cosignatures(latest.size) if latest is not None else {}
        policy = {
            "quorum": rt.policy.quorum,
            "quorum_met": latest is not None and rt.policy.satisfied(cosigners),
        }
    verifiers = []
    for state, received_at in _verifiers(rt):
        verifier = rt.policy.witnesses[state.name] if rt.policy is not None else None
        verifiers.append(
            {
                "name": state.name,
                "vkey": None if verifier is None else verifier.vkey(),
                "url": (rt.policy.witness_urls.get(state.name) if rt.policy else None) or None,
                "cosigned_size": state.cosigned_size,
                "cosigned_at": received_at,
                "lag": rules.lag(log_size, state.cosigned_size),
                "waiting_since": _stamp(state.waiting_since),
                "last_push": _push(state.push),
            }
        )
    return {
        "log_size": log_size,
        "checkpoint": None
        if latest is None
        else {"size": latest.size, "signed_at": latest.signed_at},
        "policy": policy,
        "verifiers": verifiers,
    }


@router.get(
    "/alarms",
    responses=READ_RESPONSES,
    summary="What the ledger knows is wrong: verifiers refusing, unreachable or lagging; views; "
    "readiness",
)
def alarms(rt: RuntimeDep, _who: Auditor) -> dict[str, Any]:
    now = datetime.now(UTC)
    found = rules.alarms((state for state, _ in _verifiers(rt)), _views(rt), rt.readiness(), now)
    return {
        "checked_at": format_timestamp(now),
        "bounds": {
            "verifier_lag_seconds": rules.VERIFIER_LAG_SECONDS,
            "views_stall_seconds": rules.VIEWS_STALL_SECONDS,
        },
        "alarms": [alarm.to_json() for alarm in found],
    }
