"""JSON request bodies, read strictly.

A key given twice in one object is refused: ``{"quantity": 1, "quantity": 2}``
is a 422 ``duplicate-key`` problem naming the key and where it is, where a
plain JSON reader keeps the last value and a proxy or a signature check
upstream may have read the first. Routes of class :class:`StrictJsonRoute`
parse their body once with a duplicate-detecting ``object_pairs_hook``
(before pydantic, which then validates the parsed body in strict mode,
see ``ledger.api.models``); FastAPI reuses the parsed body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from ledger.api.problems import ApiProblem, invalid, invalid_field


class DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):  # the rare case: find which
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return found


def loads(data: bytes | str) -> Any:
    """``json.loads``, refusing a key given twice in an object."""
    return json.loads(data, object_pairs_hook=_unique)


class _Pairs(list[tuple[str, Any]]):
    """An object as written: its pairs in order, duplicates kept."""


def duplicate(data: bytes | str) -> tuple[str, list[str]] | None:
    """The first key given twice (in document order) and the location of
    its object, as in validation problems: ``("amount", ["body", "unit_price"])``."""

    def walk(value: Any, location: list[str]) -> tuple[str, list[str]] | None:
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, _ in value:
                if key in seen:
                    return key, location
                seen.add(key)
            children = [(key, item) for key, item in value]
        elif isinstance(value, list):
            children = [(str(i), item) for i, item in enumerate(value)]
        else:
            return None
        for name, item in children:
            found = walk(item, [*location, name])
            if found is not None:
                return found
        return None

    return walk(json.loads(data, object_pairs_hook=_Pairs), ["body"])


_UNREAD = object()


class _StrictJsonRequest(Request):
    _parsed: Any = _UNREAD

    async def json(self) -> Any:
        if self._parsed is _UNREAD:
            self._parsed = loads(await self.body())
        return self._parsed


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads the body as JSON (``application/json`` or ``…+json``)."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is parsed once, refusing duplicated keys."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict(request: Request) -> Response:
            request = _StrictJsonRequest(request.scope, request.receive)
            if _is_json(request.headers.get("content-type")):
                body = await request.body()
                if body:
                    await _parse(request, body)
            return await handler(request)

        return strict


async def _parse(request: Request, body: bytes) -> None:
    try:
        await request.json()
    except DuplicateKeyError as error:
        try:
            found = duplicate(body)
        except RecursionError:
            found = None
        key, location = found if found is not None else (error.key, ["body"])
        where = ".".join(location[1:]) or "the body"
        raise ApiProblem(
            422,
            "duplicate-key",
            f"{key!r} is given twice in {where}; a JSON object names each key once",
            key=key,
            location=location,
            errors=[invalid_field([*location, key], "given twice in one object")],
        ) from None
    except json.JSONDecodeError:
        pass  # FastAPI answers a malformed body as it always does (422 invalid-input)
    except (ValueError, RecursionError) as error:  # e.g. an integer of 5,000 digits
        raise invalid("invalid-input", f"body: {error}", (["body"], str(error))) from None
