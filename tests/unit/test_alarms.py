"""What counts as an alarm (ledger.domain.alarms; docs/pages.md, "Auditor
console"): each rule at its bound, just under it and just over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.alarms import (
    VERIFIER_LAG_SECONDS,
    VIEWS_STALL_SECONDS,
    Alarm,
    Push,
    VerifierState,
    ViewsState,
    alarms,
    lag,
)

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def kinds(found: list[Alarm]) -> list[tuple[str, str]]:
    return [(a.kind, a.subject) for a in found]


def test_a_verifier_in_step_raises_nothing() -> None:
    state = VerifierState("w1", 10, None, Push(10, ago(1), "cosigned"))
    assert alarms([state], None, {}, NOW) == []


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        ("unreachable", "verifier-unreachable"),
        ("refused", "verifier-refused"),
        ("bad-cosignature", "verifier-refused"),
    ],
)
def test_the_last_push_failing_is_an_alarm(outcome: str, kind: str) -> None:
    state = VerifierState("w1", 9, ago(1), Push(10, ago(1), outcome, "HTTP 503"))
    found = alarms([state], None, {}, NOW)
    assert kinds(found) == [(kind, "w1")]
    assert found[0].detail == "size 10: HTTP 503"


def test_a_push_not_sent_or_never_made_is_no_alarm_by_itself() -> None:
    states = [
        VerifierState("w1", 9, ago(1), Push(10, ago(1), "not-sent", "proof damaged")),
        VerifierState("w2", 9, ago(1), None),
    ]
    assert alarms(states, None, {}, NOW) == []


def test_a_verifier_lags_once_a_checkpoint_waited_past_the_bound() -> None:
    waiting = VerifierState("w1", 5, ago(VERIFIER_LAG_SECONDS), None)
    assert alarms([waiting], None, {}, NOW) == []
    late = VerifierState("w1", 5, ago(VERIFIER_LAG_SECONDS + 1), None)
    found = alarms([late], None, {}, NOW)
    assert kinds(found) == [("verifier-lagging", "w1")]
    assert "last cosigned size 5" in found[0].detail
    # Unreachable and lagging: both.
    both = VerifierState("w1", 0, ago(600), Push(7, ago(1), "unreachable"))
    assert kinds(alarms([both], None, {}, NOW)) == [
        ("verifier-unreachable", "w1"),
        ("verifier-lagging", "w1"),
    ]


def test_views_behind_and_idle_past_the_bound_or_failed() -> None:
    assert alarms([], ViewsState(0, ago(3600), None), {}, NOW) == []  # idle, caught up
    assert alarms([], ViewsState(5, ago(VIEWS_STALL_SECONDS), None), {}, NOW) == []
    stalled = alarms([], ViewsState(5, ago(VIEWS_STALL_SECONDS + 1), None), {}, NOW)
    assert kinds(stalled) == [("views-behind", "views")]
    assert kinds(alarms([], ViewsState(5, None, None), {}, NOW)) == [("views-behind", "views")]
    failed = alarms([], ViewsState(5, ago(1), "OperationalError: x"), {}, NOW)
    assert kinds(failed) == [("views-failed", "views")]


def test_each_readiness_part_not_ready_is_an_alarm() -> None:
    readiness = {"database": True, "views": False, "sealer": False}
    assert kinds(alarms([], None, readiness, NOW)) == [
        ("not-ready", "views"),
        ("not-ready", "sealer"),
    ]


def test_lag_is_the_log_size_less_the_size_cosigned() -> None:
    assert lag(12, 10) == 2
    assert lag(12, 0) == 12
    assert lag(10, 12) == 0  # (a cosignature of a size the log reached since)
