"""Who is calling, and may they: API keys, roles and scopes.

``require(*roles)`` is a dependency that answers 401 without a valid key and
403 when the key's role is not among ``roles`` (admin always passes, except
where ``admin=False``: a redemption code is shown to its channel only). The
scope checks (``check_creator``, ``check_channel``) then hold a creator to
its own goods and a channel to itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ledger.api.problems import ApiProblem
from ledger.api.request_ids import REQUEST_ID
from ledger.domain.actor import KEY_ROLES, Actor, new_request_id, set_actor
from ledger.store.apikeys import ApiKeyStore, Principal, Role

_bearer = HTTPBearer(auto_error=False, description="An API key: `Bearer lk_…`")
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same API key, in a header of its own"
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ledger"'}


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    # async, so that a key authenticated in the last CACHE_SECONDS costs no
    # hop to the thread pool (with the role check's, a quarter of a sale's
    # time over HTTP); only a miss reads the database, in the thread pool.
    token = bearer.credentials if bearer is not None else header
    if not token:
        raise ApiProblem(
            401,
            "unauthenticated",
            "send an API key: Authorization: Bearer <key>",
            headers=_CHALLENGE,
        )
    keys: ApiKeyStore | None = request.app.state.runtime.api_keys
    found = None
    if keys is not None:
        found = keys.remembered(token) or await run_in_threadpool(keys.authenticate, token)
    if found is None:
        raise ApiProblem(
            401,
            "invalid-api-key",
            "the API key is unknown, malformed or revoked",
            headers=_CHALLENGE,
        )
    request.state.principal = found  # (log lines name the caller: ledger.api.logs)
    return found


def require(*roles: Role, admin: bool = True) -> Any:
    """A dependency: the caller, if its role is one of ``roles`` (or admin,
    unless ``admin`` is False)."""
    allowed = {*roles} | ({Role.ADMIN} if admin else set())

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise ApiProblem(
                403, "forbidden", f"a {who.role.value} key cannot do this (allowed: {names})"
            )
        act_as(who)
        return who

    return Depends(check)


def act_as(who: Principal) -> None:
    """Make ``who``, with this request's id, the actor the events this request
    causes name (their ``recorded_by``). Set in this request's context: it
    reaches a route run in the thread pool (the context is copied there), and
    no other request (each runs in a task of its own)."""
    if who.role.value in KEY_ROLES:
        request_id = REQUEST_ID.get() or new_request_id()
        set_actor(Actor.of_key(who.key_id, who.role.value, who.subject, request_id))


# Roles that pass the scope checks: they are not held to one creator or
# channel. (An auditor never reaches a command: no command requires its role.)
_UNSCOPED = (Role.ADMIN, Role.AUDITOR)


def check_creator(who: Principal, creators: Iterable[str]) -> None:
    """A creator acts on, and reads statements of, only its own goods."""
    if who.role in _UNSCOPED:
        return
    if who.role is not Role.CREATOR or who.subject not in set(creators):
        raise ApiProblem(
            403, "forbidden", f"{who.role.value} {who.subject!r} is not a creator of this"
        )


def check_channel(who: Principal, channel: str) -> None:
    """A channel acts and reads only for itself."""
    if who.role in _UNSCOPED:
        return
    if who.role is not Role.CHANNEL or who.subject != channel:
        raise ApiProblem(
            403,
            "forbidden",
            f"{who.role.value} {who.subject!r} cannot act or read for channel {channel!r}",
        )
