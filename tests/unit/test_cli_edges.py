"""The CLI's last line of defence and the access log's polling filter."""

from __future__ import annotations

import logging

import psycopg
import pytest

from ledger.cli import _one_line
from ledger.cli.serve import _not_a_poll
from ledger.store.postgres import connect_cause


def test_a_database_lost_mid_command_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused\n\tIs the server running on that host?"
    )
    assert _one_line(error) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: the database is unavailable: ")
    assert "Connection refused" in err


def test_anything_unforeseen_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _one_line(KeyError("holder")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: internal error (KeyError: 'holder')")
    assert "LEDGER_TRACEBACK=1" in err


@pytest.mark.parametrize(
    ("message", "cause", "lasting"),
    [
        (
            'connection failed: connection to server at "127.0.0.1", port 1 failed: '
            "Connection refused\n\tIs the server running on that host?",
            "Connection refused",
            False,
        ),
        (
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            'FATAL:  database "nosuch" does not exist',
            'database "nosuch" does not exist',
            True,
        ),
        (
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            'FATAL:  password authentication failed for user "x"',
            'password authentication failed for user "x"',
            True,
        ),
        (
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            "FATAL:  the database system is starting up",
            "the database system is starting up",
            False,
        ),
        (
            "failed to resolve host 'db': [Errno -2] Name or service not known",
            "failed to resolve host 'db': [Errno -2] Name or service not known",
            False,
        ),
    ],
)
def test_the_cause_is_read_out_of_libpqs_message(message: str, cause: str, lasting: bool) -> None:
    problem = connect_cause(message)
    assert problem.cause == cause
    assert problem.lasting is lasting


def _access(method: str, path: str, status: int) -> logging.LogRecord:
    """A record as uvicorn's access logger makes it."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", method, path, "1.1", status),
        None,
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "kept"),
    [
        ("GET", "/log/checkpoint", 200, False),
        ("GET", "/log/entries?start=0&end=10", 200, False),
        ("GET", "/healthz", 200, False),
        ("GET", "/metrics", 200, False),  # a scraper's poll
        ("GET", "/metrics", 401, True),
        ("GET", "/readyz", 503, True),  # not ready: worth a line
        ("GET", "/log/checkpoint", 404, True),
        ("POST", "/goods", 201, True),
        ("GET", "/goods/x/stock", 200, True),
    ],
)
def test_the_access_log_can_leave_out_the_polls(
    method: str, path: str, status: int, kept: bool
) -> None:
    assert _not_a_poll(_access(method, path, status)) is kept
