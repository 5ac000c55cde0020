"""RFC 9457 problem details for every error the API returns.

One table maps each domain error (by its stable ``code``) to an HTTP status;
the problem ``type`` is ``https://ledger.dev/problems/<code>`` so clients can
switch on it. Handlers never leak stack traces.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.domain import errors

logger = logging.getLogger("ledger.api")
PROBLEM_BASE = "https://ledger.dev/problems/"
MEDIA_TYPE = "application/problem+json"

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
    """An error raised at the edge (not from the domain)."""

    def __init__(self, status: int, code: str, detail: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra
        self.headers = headers or {}


def problem(status: int, code: str, title: str, detail: str, instance: str, *,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail,
            "instance": instance, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _title(code: str) -> str:
    return code.replace("-", " ").capitalize()


def domain_problem(error: errors.LedgerError, instance: str) -> dict[str, Any]:
    """The problem document for a domain error (its ``status`` inside)."""
    status = next((s for kind, s in STATUS_BY_ERROR if isinstance(error, kind)), 400)
    extra: dict[str, Any] = (
        {"field": error.field} if isinstance(error, errors.InvalidInputError) else {})
    return {"type": PROBLEM_BASE + error.code, "title": _title(error.code), "status": status,
            "detail": error.message, "instance": instance, **extra}


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.LedgerError)
    async def domain_error(request: Request, error: errors.LedgerError) -> JSONResponse:
        body = domain_problem(error, request.url.path)
        return JSONResponse(body, status_code=body["status"], media_type=MEDIA_TYPE)

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, error: ApiProblem) -> JSONResponse:
        return problem(error.status, error.code, _title(error.code), error.detail,
                       request.url.path, headers=error.headers, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        issues = [{"location": list(map(str, e.get("loc", ()))), "message": e.get("msg", "")}
                  for e in error.errors()]
        first = issues[0] if issues else {"location": [], "message": "invalid request"}
        detail = f"{'.'.join(first['location'])}: {first['message']}"
        return problem(422, "invalid-input", "Invalid input", detail, request.url.path,
                       errors=issues)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        return problem(error.status_code, code, _title(code), str(error.detail),
                       request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path,
                     exc_info=error)
        return problem(500, "internal-error", "Internal error",
                       "the server could not complete the request; nothing acknowledged is lost",
                       request.url.path)
