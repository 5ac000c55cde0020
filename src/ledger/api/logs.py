"""Log lines of ``ledger serve``: the request they belong to, and JSON lines.

* :class:`RequestContext`, a filter on the server's log handler, gives every
  record emitted while a request is served its ``request_id`` (the
  :data:`~ledger.api.request_ids.REQUEST_ID` context variable, or the
  request's state once the id's middleware has returned) and its ``actor``
  (the API key's id, role and subject, once authenticated -- never the key
  itself). Routes run in the thread pool see both: the pool copies the
  request's context.
* :class:`JsonFormatter` writes a record as one JSON object on one line:
  ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, and those
  of ``request_id``, ``actor``, ``method``, ``route``, ``path``, ``status``,
  ``problem``, ``latency`` (seconds), ``client`` and ``exception`` the record
  has. ``ledger serve --log-format json`` logs so (docs/api.md, "Logs").
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from ledger.api.request_ids import REQUEST_ID
from ledger.jsonlog import JsonFormatter, quiet_lookups

__all__ = ["REQUEST_STATE", "JsonFormatter", "RequestContext", "actor_of", "log_as_json"]

# The ASGI scope's ``state`` of the request being served (set by
# ledger.api.observe.Observed): its ``request_id`` and, once authenticated,
# its ``principal`` (ledger.api.auth).
REQUEST_STATE: ContextVar[dict[str, Any] | None] = ContextVar("ledger_request_state", default=None)


def actor_of(principal: Any) -> dict[str, Any] | None:
    """Who is calling, as logged: key id, role and subject (no secret)."""
    if principal is None:
        return None
    return {
        "key_id": principal.key_id,
        "role": principal.role.value,
        "subject": principal.subject,
    }


class RequestContext(logging.Filter):
    """Adds ``request_id`` and ``actor`` to every record (None outside a
    request), unless the record already has them (the access line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        state = REQUEST_STATE.get()
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get() or (state or {}).get("request_id")
        if getattr(record, "actor", None) is None:
            record.actor = actor_of((state or {}).get("principal"))
        return True


def log_as_json(level: int = logging.INFO) -> logging.Handler:
    """Every logger of the process -- the ledger's, uvicorn's, the
    libraries' -- writes JSON lines on stderr through one handler on the
    root logger; the ledger's own at ``level``, the others' warnings."""
    quiet_lookups()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContext())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("ledger").setLevel(level)
    return handler
