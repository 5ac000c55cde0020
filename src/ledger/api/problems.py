"""RFC 9457 problem details for every error the API returns.

One table maps each domain error (by its stable ``code``) to an HTTP status;
the problem ``type`` is ``https://ledger.dev/problems/<code>`` so clients can
switch on it. Handlers never leak stack traces.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.domain import errors
from ledger.store.availability import RETRY_AFTER_SECONDS as RETRY_AFTER_SECONDS_OUTAGE
from ledger.store.availability import DatabaseUnavailableError, unavailable_reason

logger = logging.getLogger("ledger.api")
PROBLEM_BASE = "https://ledger.dev/problems/"
MEDIA_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-Id"  # (see ledger.api.request_ids)

STATUS_BY_ERROR: list[tuple[type[errors.LedgerError], int]] = [
    (errors.InvalidInputError, 422),
    (errors.ForbiddenError, 403),
    (errors.RateLimitedError, 429),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.RuleViolation, 409),
    (errors.ConcurrencyError, 503),
    (errors.CodesUnavailableError, 503),  # no code keyring (or another store's)
    (errors.ChainError, 500),
]


class ApiProblem(Exception):  # noqa: N818 - it is a problem, rendered as one
    """An error raised at the edge (not from the domain). A 422 lists every
    invalid field in ``errors`` (see :func:`invalid`)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra
        self.headers = headers or {}


def invalid(code: str, detail: str, *fields: tuple[list[str], str]) -> ApiProblem:
    """A 422 problem listing each invalid field: ``(location, message)``."""
    return ApiProblem(
        422, code, detail, errors=[invalid_field(location, message) for location, message in fields]
    )


# Every 503 says when to try again (RFC 9110 Retry-After, in seconds). A
# passing condition -- contention, an outage, a server starting -- soon; a
# server set up without something -- a code keyring, live views -- is an
# operator's matter: later.
RETRY_AFTER_SECONDS: dict[str, int] = {
    "contention": 1,
    DatabaseUnavailableError.code: RETRY_AFTER_SECONDS_OUTAGE,
    "not-ready": 1,
    "views-behind": 1,
    "codes-unavailable": 60,
    "views-unavailable": 60,
}
RETRY_AFTER_DEFAULT = 1


def retry_after(status: int, code: str) -> dict[str, str]:
    """The Retry-After header a problem of this status and code carries."""
    if status != 503:
        return {}
    return {"Retry-After": str(RETRY_AFTER_SECONDS.get(code, RETRY_AFTER_DEFAULT))}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(
        body,
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=retry_after(status, code) | (headers or {}),
    )


def unavailable_document(error: BaseException, reason: str, instance: str) -> dict[str, Any]:
    """The 503 database-unavailable problem (see ledger.store.availability)."""
    detail = (
        str(error)
        if isinstance(error, DatabaseUnavailableError)
        else f"the database is unavailable ({reason}); retry later (a command: with "
        "the same Idempotency-Key)"
    )
    extra: dict[str, Any] = (
        {"outcome_unknown": True}
        if isinstance(error, DatabaseUnavailableError) and error.outcome_unknown
        else {}
    )
    return {
        "type": PROBLEM_BASE + DatabaseUnavailableError.code,
        "title": "Database unavailable",
        "status": 503,
        "detail": detail,
        "instance": instance,
        **extra,
    }


def unavailable_problem(error: BaseException, reason: str, instance: str) -> JSONResponse:
    body = unavailable_document(error, reason, instance)
    return JSONResponse(
        body,
        status_code=503,
        media_type=MEDIA_TYPE,
        headers=retry_after(503, DatabaseUnavailableError.code),
    )


def _title(code: str) -> str:
    return code.replace("-", " ").capitalize()


def field_location(field: str, where: Sequence[str]) -> list[str]:
    """A domain error's field as an ``errors`` location, in the form
    FastAPI's validation uses: ``tiers[0].quota`` in a good's spec is
    ``["body", "spec", "tiers", "0", "quota"]``."""
    return [*where, *(part for part in re.split(r"[.\[\]]+", field) if part)]


def invalid_field(location: list[str], message: str) -> dict[str, Any]:
    """One member of a 422's ``errors``: where, and what is wrong there."""
    return {"location": location, "message": message}


def domain_problem(
    error: errors.LedgerError, instance: str, *, where: Sequence[str] = ("body",)
) -> dict[str, Any]:
    """The problem document for a domain error (its ``status`` inside). An
    invalid input names its field (``field``) and, as every 422 does, lists
    it in ``errors`` (``where``: the part of the request it came in)."""
    status = next((s for kind, s in STATUS_BY_ERROR if isinstance(error, kind)), 400)
    extra: dict[str, Any] = {}
    if isinstance(error, errors.InvalidInputError):
        prefix = f"{error.field}: "
        message = error.message.removeprefix(prefix)
        location = field_location(error.field, where)
        extra = {"field": error.field, "errors": [invalid_field(location, message)]}
    elif isinstance(field := getattr(error, "field", None), str):
        extra = {"field": field}  # (an authorization's: which part of it)
    extra |= getattr(error, "problem_extra", {})  # (what a rule's problem says besides)
    return {
        "type": PROBLEM_BASE + error.code,
        "title": _title(error.code),
        "status": status,
        "detail": error.message,
        "instance": instance,
        **extra,
    }


# The commands whose body is ``{"spec": …}``: a good's definition, whose
# fields the domain names from the spec down (mint, derive a variant).
SPEC_BODY = re.compile(r"^/goods(/[^/]+/variants)?/?$")


def _where(request: Request, error: errors.LedgerError) -> tuple[str, ...]:
    """Where in the request a domain error's field came: a query parameter
    of that name, else the body of a command (a good's spec, for mint and
    variants) or the path."""
    if not isinstance(error, errors.InvalidInputError):
        return ("body",)
    head = re.split(r"[.\[]", error.field, maxsplit=1)[0]
    if head in request.query_params:
        return ("query",)
    if request.method != "POST":
        return ("path",)
    return ("body", "spec") if SPEC_BODY.match(request.url.path) else ("body",)


async def unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(
        500,
        "internal-error",
        "Internal error",
        "the server could not complete the request; nothing acknowledged is lost",
        request.url.path,
        # Answered outside the request-id middleware: the id is added here.
        headers=_request_id(request),
    )


def _request_id(request: Request) -> dict[str, str]:
    request_id = request.scope.get("state", {}).get("request_id")
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.LedgerError)
    async def domain_error(request: Request, error: errors.LedgerError) -> JSONResponse:
        body = domain_problem(error, request.url.path, where=_where(request, error))
        return JSONResponse(
            body,
            status_code=body["status"],
            media_type=MEDIA_TYPE,
            headers=retry_after(body["status"], error.code),
        )

    @app.exception_handler(DatabaseUnavailableError)
    @app.exception_handler(PersistenceError)  # the event store's wrapper of driver errors
    @app.exception_handler(psycopg.Error)
    async def database_error(request: Request, error: Exception) -> JSONResponse:
        reason = unavailable_reason(error)
        if reason is None:
            return await unexpected(request, error)
        return unavailable_problem(error, reason, request.url.path)

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, error: ApiProblem) -> JSONResponse:
        return problem(
            error.status,
            error.code,
            _title(error.code),
            error.detail,
            request.url.path,
            headers=error.headers,
            **error.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        issues = [
            {"location": list(map(str, e.get("loc", ()))), "message": e.get("msg", "")}
            for e in error.errors()
        ]
        first = issues[0] if issues else {"location": [], "message": "invalid request"}
        detail = f"{'.'.join(first['location'])}: {first['message']}"
        return problem(
            422, "invalid-input", "Invalid input", detail, request.url.path, errors=issues
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        return problem(error.status_code, code, _title(code), str(error.detail), request.url.path)

    app.add_exception_handler(Exception, unexpected)
