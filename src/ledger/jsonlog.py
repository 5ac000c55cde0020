"""JSON log lines: one object a line (``ledger serve --log-format json``,
and its views process). See :mod:`ledger.api.logs` for what a line of a
request carries, and docs/api.md ("Operations")."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

# What a record may carry beside its message, in the order written.
FIELDS = (
    "request_id",
    "actor",
    "method",
    "route",
    "path",
    "status",
    "problem",
    "latency",
    "client",
)


_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last second formatted, and its text


def rfc3339(created: float) -> str:
    """A record's time: RFC 3339 in UTC, to the millisecond (the second's
    text is formatted once a second: a server logs hundreds a second)."""
    second = int(created)
    known, text = _SECOND[0]
    if known != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND[0] = (second, text)
    return f"{text}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module's doc)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def quiet_lookups() -> None:
    """A line names no thread or process: not looking them up for every
    record is a third of an access line's cost."""
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def json_handler() -> logging.Handler:
    """A handler writing JSON lines on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    return handler
