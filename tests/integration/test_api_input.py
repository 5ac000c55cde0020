"""Input at the HTTP edge, over every operation of the served OpenAPI
document (so a new route cannot forget it): every integer has an upper
bound and an oversized one is a 422 problem, never a 500; integers are
integers and booleans booleans; a key given twice in a JSON body is a 422
problem naming it.

(The same over a real server: tests/e2e/test_http_edge.py.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.runtime import Runtime, open_runtime
from ledger.config import Settings
from ledger.domain import limits
from ledger.store.apikeys import Role
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

PROBLEM = "https://ledger.dev/problems/"
PROBLEM_JSON = "application/problem+json"


# -- the OpenAPI document, walked ------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One typed value a request carries: a parameter, or a field of a body."""

    method: str
    path: str
    where: str  # "path", "query", "header" or "body"
    location: tuple[str, ...]  # the name, or the field's path inside the body
    schema: dict[str, Any]
    parameters: tuple[dict[str, Any], ...]  # the operation's parameters

    @property
    def label(self) -> str:
        return f"{self.method} {self.path} {self.where}:{'.'.join(self.location)}"


def _schema() -> dict[str, Any]:
    runtime = open_runtime(DatabaseURL.parse("sqlite:///:memory:"), Settings())
    try:
        document: dict[str, Any] = create_app(runtime).openapi()
        return document
    finally:
        runtime.ledger.close()


SCHEMA = _schema()
COMPONENTS: dict[str, Any] = SCHEMA["components"]["schemas"]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _leaves(
    schema: dict[str, Any], kind: str, location: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every place of JSON type ``kind`` in ``schema``, with its location."""
    if len(location) > 12:
        return
    schema = _resolve(schema)
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from _leaves(alternative, kind, location)
    if schema.get("type") == kind:
        yield location, schema
    for name, field in schema.get("properties", {}).items():
        yield from _leaves(field, kind, (*location, name))
    if isinstance(schema.get("items"), dict):
        yield from _leaves(schema["items"], kind, (*location, "0"))


def inputs(kind: str) -> list[Input]:
    found = []
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            parameters = tuple(operation.get("parameters", []))
            for parameter in parameters:
                for _, schema in _leaves(parameter["schema"], kind):
                    found.append(
                        Input(
                            method.upper(),
                            path,
                            parameter["in"],
                            (parameter["name"],),
                            schema,
                            parameters,
                        )
                    )
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                for location, schema in _leaves(body["schema"], kind):
                    found.append(Input(method.upper(), path, "body", location, schema, parameters))
    return found


def operations_with_a_body() -> list[tuple[str, str, tuple[dict[str, Any], ...]]]:
    return [
        (method.upper(), path, tuple(operation.get("parameters", [])))
        for path, operations in SCHEMA["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


INTEGERS = inputs("integer")
BOOLEANS = inputs("boolean")


def _filler(schema: dict[str, Any]) -> Any:
    """A well-formed value for a parameter the test does not aim at."""
    schema = _resolve(schema)
    for alternative in schema.get("anyOf", []):
        if alternative.get("type") != "null":
            return _filler(alternative)
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("type") == "integer":
        return schema.get("minimum", 1)
    if schema.get("pattern") == limits.TIER_NAME_PATTERN:
        return "own"
    return "shop"


def _nested(location: tuple[str, ...], value: Any) -> Any:
    if not location:
        return value
    inner = _nested(location[1:], value)
    return [inner] if location[0] == "0" else {location[0]: inner}


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    token: str

    def stored(self) -> int:
        return int(self.runtime.ledger.event_store.recorder.max_notification_id() or 0)

    def send(
        self,
        method: str,
        path: str,
        parameters: tuple[dict[str, Any], ...],
        *,
        aim: tuple[str, str, Any] | None = None,
        content: bytes | None = None,
    ) -> Any:
        """``aim``: (where, name, value) of the one parameter set on purpose;
        the other path and required query parameters get well-formed values."""
        values: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}}
        for parameter in parameters:
            if parameter["in"] == "path" or parameter.get("required"):
                values[parameter["in"]][parameter["name"]] = _filler(parameter["schema"])
        if aim is not None and aim[0] != "body":
            values[aim[0]][aim[1]] = aim[2]
        url = path.format(**values["path"])
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        headers |= {k: str(v) for k, v in values["header"].items()}
        if aim is not None and aim[0] == "body":
            content = json.dumps(aim[2]).encode()
        return self.client.request(
            method, url, params=values["query"], headers=headers, content=content
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("input") / "ledger.db"
    runtime = open_runtime(
        DatabaseURL.parse(f"sqlite:///{path}"), Settings(projection_poll_interval=0.01)
    )
    assert runtime.api_keys is not None
    token = runtime.api_keys.issue(Role.ADMIN, None)[1]
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            yield Api(client, runtime, token)
    finally:
        runtime.ledger.close()


def _problem_at(response: Any, where: str, location: tuple[str, ...]) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["status"] == 422
    places = [tuple(issue["location"]) for issue in problem.get("errors", [])]
    assert (where, *location) in places, problem
    return problem


# -- item 5: every integer has an upper bound --------------------------------------


def test_the_schema_has_integers_and_booleans_to_check() -> None:
    labels = {i.label for i in INTEGERS}
    assert "GET /log/entries query:start" in labels
    assert "GET /log/proof/inclusion query:version" in labels
    assert "POST /goods/{good_id}/tiers/{tier}/sales body:quantity" in labels
    assert "POST /goods body:spec.tiers.0.quota" in labels
    assert "POST /goods body:spec.tiers.0.transferable" in {b.label for b in BOOLEANS}


@pytest.mark.parametrize("given", INTEGERS, ids=lambda i: i.label)
def test_every_integer_input_has_an_upper_bound(given: Input) -> None:
    maximum = given.schema.get("maximum")
    assert maximum is not None, f"{given.label} has no maximum"
    # A bound named in ledger.domain.limits, or a code range's largest counter
    # (10**20 - 1, which the OpenAPI document shows as the float 1e20).
    named = {v for v in vars(limits).values() if isinstance(v, int) and not isinstance(v, bool)}
    assert maximum in named | {float(10**limits.CODE_RANGE_WIDTH_MAX - 1)}, given.label
    if given.where != "body":  # a place in the store: exact in JSON, and stored as BIGINT
        assert maximum <= limits.JSON_INTEGER_MAX, given.label


@pytest.mark.parametrize("oversized", ["maximum+1", 2**64, 10**30])
@pytest.mark.parametrize("given", INTEGERS, ids=lambda i: i.label)
def test_an_oversized_integer_is_a_422_problem_naming_it(
    api: Api, given: Input, oversized: Any
) -> None:
    bound = int(given.schema.get("maximum", 2**63 - 1))  # (an integer, even if shown as 1e20)
    value = bound + 1 if oversized == "maximum+1" else max(oversized, bound + 1)
    before = api.stored()
    if given.where == "body":
        aim: tuple[str, str, Any] = ("body", "", _nested(given.location, value))
    else:
        aim = (given.where, given.location[0], value)
    response = api.send(given.method, given.path, given.parameters, aim=aim)
    _problem_at(response, given.where, given.location)
    assert api.stored() == before


@pytest.mark.parametrize("given", [i for i in INTEGERS if i.where != "body"], ids=lambda i: i.label)
def test_a_parameter_at_its_maximum_is_answered_without_a_5xx(api: Api, given: Input) -> None:
    response = api.send(
        given.method,
        given.path,
        given.parameters,
        aim=(given.where, given.location[0], given.schema["maximum"]),
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("/log/entries?start=9223372036854775808&end=9223372036854775809", "invalid-input"),
        (f"/log/proof/inclusion?index={10**30}", "invalid-input"),
        (f"/log/proof/inclusion?aggregate_id={uuid.uuid4()}&version={2**64}", "invalid-input"),
        (f"/log/proof/inclusion?index={limits.LOG_INDEX_MAX}", "not-in-log"),
        (f"/log/proof/consistency?old={2**64}", "invalid-input"),
        ("/goods?cursor=WzE4NDQ2NzQ0MDczNzA5NTUxNjE1XQ", "invalid-input"),  # [2**64 - 1]
    ],
)
def test_the_reported_big_numbers_are_problems_not_500(api: Api, query: str, problem: str) -> None:
    response = api.client.get(query, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEM + problem


# -- item 6: strict types and no duplicate keys --------------------------------------

NOT_AN_INTEGER = [True, False, 1.0, 2.5, "1", None]
NOT_A_BOOLEAN = [0, 1, "true", "false", 1.0, None]


# (Parameters arrive as text and are parsed: ?limit=10 is the integer 10.)
@pytest.mark.parametrize("given", [i for i in INTEGERS if i.where == "body"], ids=lambda i: i.label)
@pytest.mark.parametrize("wrong", [v for v in NOT_AN_INTEGER if v is not None], ids=repr)
def test_an_integer_field_takes_only_an_integer(api: Api, given: Input, wrong: Any) -> None:
    before = api.stored()
    response = api.send(
        given.method, given.path, given.parameters, aim=("body", "", _nested(given.location, wrong))
    )
    _problem_at(response, "body", given.location)
    assert api.stored() == before


@pytest.mark.parametrize("given", BOOLEANS, ids=lambda i: i.label)
@pytest.mark.parametrize("wrong", [v for v in NOT_A_BOOLEAN if v is not None], ids=repr)
def test_a_boolean_field_takes_only_a_boolean(api: Api, given: Input, wrong: Any) -> None:
    before = api.stored()
    response = api.send(
        given.method, given.path, given.parameters, aim=("body", "", _nested(given.location, wrong))
    )
    _problem_at(response, "body", given.location)
    assert api.stored() == before


@pytest.fixture(scope="module")
def good(api: Api) -> str:
    admin = {"Authorization": f"Bearer {api.token}"}
    assert (
        api.client.post(
            "/channels",
            json={"channel": "shop", "name": "Shop", "fee_bps": 500},
            headers=admin | {"Idempotency-Key": "shop"},
        ).status_code
        == 201
    )
    minted = api.client.post(
        "/goods", json={"spec": good_spec()}, headers=admin | {"Idempotency-Key": "mint"}
    )
    assert minted.status_code == 201, minted.text
    good_id: str = minted.json()["good_id"]
    return good_id


SALE = (
    '{"buyer": "b1", "channel": "shop", "quantity": %s, '
    '"unit_price": {"amount": 100, "currency": "EUR"}}'
)


@pytest.mark.parametrize("quantity", ["true", "1.0", '"1"', "false", "1e0"])
def test_a_sale_of_a_quantity_that_is_not_an_integer_sells_nothing(
    api: Api, good: str, quantity: str
) -> None:
    before = api.stored()
    response = api.send(
        "POST", f"/goods/{good}/tiers/own/sales", (), content=(SALE % quantity).encode()
    )
    problem = _problem_at(response, "body", ("quantity",))
    assert problem["type"] == PROBLEM + "invalid-input"
    assert api.stored() == before
    # The same sale with an integer goes through.
    assert (
        api.send(
            "POST", f"/goods/{good}/tiers/own/sales", (), content=(SALE % "1").encode()
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("body", "key", "location"),
    [
        (
            '{"buyer": "b1", "channel": "shop", "quantity": 1, "quantity": 2, '
            '"unit_price": {"amount": 100, "currency": "EUR"}}',
            "quantity",
            ["body"],
        ),
        (
            '{"buyer": "b1", "channel": "shop", "quantity": 1, '
            '"unit_price": {"amount": 100, "currency": "EUR", "amount": 1}}',
            "amount",
            ["body", "unit_price"],
        ),
        (
            '{"buyer": "b1", "buyer": "b1", "channel": "shop", '
            '"unit_price": {"amount": 100, "currency": "EUR"}}',
            "buyer",
            ["body"],
        ),
        (
            '{"buyer": "b1", "channel": "shop", "unit_price": {"amount": 100, "currency": "EUR"}, '
            '"x": [{"a": 1}, {"b": 1, "b": 2}]}',
            "b",
            ["body", "x", "1"],
        ),
    ],
)
def test_a_key_given_twice_is_a_422_problem_naming_it(
    api: Api, good: str, body: str, key: str, location: list[str]
) -> None:
    before = api.stored()
    response = api.send("POST", f"/goods/{good}/tiers/own/sales", (), content=body.encode())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == PROBLEM + "duplicate-key"
    assert problem["key"] == key
    assert problem["location"] == location
    assert repr(key) in problem["detail"]
    assert api.stored() == before


@pytest.mark.parametrize(
    ("method", "path", "parameters"),
    operations_with_a_body(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_json_body_refuses_a_duplicated_key(
    api: Api, method: str, path: str, parameters: tuple[dict[str, Any], ...]
) -> None:
    before = api.stored()
    response = api.send(method, path, parameters, content=b'{"twice": 1, "twice": 1}')
    assert response.status_code == 422, response.text
    assert response.json()["type"] == PROBLEM + "duplicate-key"
    assert response.json()["key"] == "twice"
    assert api.stored() == before


def test_malformed_json_is_still_the_usual_422(api: Api, good: str) -> None:
    response = api.send(
        "POST", f"/goods/{good}/tiers/own/sales", (), content=b'{"buyer": "b1", "buyer": '
    )
    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "invalid-input"
