"""What the command routes share: the ``Idempotency-Key`` header and its
scope, the path parameters, the roles, and the answer as canonical JSON
(``Idempotent-Replayed: true`` on a replay)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import JSONResponse

from ledger.api.auth import require
from ledger.api.json_body import StrictJsonRoute
from ledger.api.problems import ApiProblem
from ledger.api.runtime import Runtime
from ledger.domain import canonical, limits
from ledger.service import Answer
from ledger.store.apikeys import Principal, Role

# The one router of every command: command_routes, hold_routes and
# code_routes add theirs to it (command_routes imports the other two, after
# its own, so the API's schema lists them in that order).
router = APIRouter(tags=["commands"], route_class=StrictJsonRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=limits.IDEMPOTENCY_KEY_CHARS_MAX,
        description="Required. A unique key per intended effect (e.g. a UUID); "
        "retrying with the same key and body returns the first response.",
    ),
]
GoodId = Annotated[UUID, Path(description="The good's id")]
UnitId = Annotated[UUID, Path(description="The unit's id")]
TierPath = Annotated[str, Path(pattern=limits.TIER_NAME_PATTERN, max_length=32)]

Admin = Annotated[Principal, require(Role.ADMIN)]
CreatorOrAdmin = Annotated[Principal, require(Role.CREATOR)]
ChannelOrAdmin = Annotated[Principal, require(Role.CHANNEL)]

COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Idempotency-Key header missing"},
    401: {"description": "No API key, or an invalid or revoked one"},
    403: {"description": "The key's role or scope does not allow this"},
    404: {"description": "A good, tier, unit or channel named does not exist"},
    409: {"description": "A business rule refused it, or the key was reused with another body"},
    413: {"description": "Body too large"},
    422: {"description": "Malformed input"},
}


def scope_of(principal: Principal) -> str:
    """The idempotency scope: the caller's identity, so keys of different
    callers never meet. Fits the domain's identifier bounds however long
    the subject is."""
    if principal.subject is None:
        return principal.role.value
    scope = f"{principal.role.value}:{principal.subject}"
    if len(scope) > limits.SCOPE_CHARS_MAX:
        digest = hashlib.sha256(principal.subject.encode()).hexdigest()[:40]
        scope = f"{principal.role.value}:sha256-{digest}"
    return scope


def require_key(key: str | None) -> str:
    if key is None:
        raise ApiProblem(
            400,
            "idempotency-key-required",
            "every POST needs an Idempotency-Key header (e.g. a fresh UUID)",
        )
    return key


ANSWER = dict[str, Any]  # documented only: an answer is returned as an AnswerJSON


class AnswerJSON(JSONResponse):
    """A command's answer: the canonical JSON (RFC 8785: sorted keys, no
    spaces) of its result. The command record stores the result in that same
    form, so the first answer and every replay -- from this process's cache
    or read back from the store after a restart -- are the same bytes."""

    def render(self, content: Any) -> bytes:
        return canonical.encode(content)


def answered(response: Response, result: Answer, *, status: int = 201) -> Response:
    """The answer to a command, first or replayed: the same status, body
    bytes and headers (those set on ``response``), and
    ``Idempotent-Replayed: true`` on a replay. Returned as a response, so
    FastAPI neither validates nor re-encodes it."""
    answer = AnswerJSON(result.to_json(), status_code=status, headers=dict(response.headers))
    if result.replayed:
        answer.headers["Idempotent-Replayed"] = "true"
    return answer


def own_channel(who: Principal) -> str | None:
    """A channel key acts on its own holds only (checked inside the decision)."""
    return who.subject if who.role is Role.CHANNEL else None


def creators_of(rt: Runtime, good_id: UUID) -> list[str]:
    """The good's creators (a missing good is a 404 problem)."""
    return [c.id for c in rt.ledger.good(good_id).spec.creators]
