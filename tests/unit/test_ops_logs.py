"""Log lines of a request name it (issue 14 item 8): a line logged by a route
-- run on the event loop or in the thread pool -- carries the request's id
and its caller, and the JSON formatter writes one object a line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from ledger.api.logs import JsonFormatter, RequestContext
from ledger.api.metrics import ServerMetrics
from ledger.api.observe import AccessLog, Observed
from ledger.api.request_ids import RequestIds
from ledger.jsonlog import rfc3339
from ledger.service.combiner import BatchSizes
from ledger.store.apikeys import Role

route_logger = logging.getLogger("ledger.test.route")


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestContext())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Kept]:
    handler = Kept()
    logger = logging.getLogger("ledger")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


async def caller(request: Request) -> object:
    who = SimpleNamespace(key_id="k1", role=Role.CHANNEL, subject="shop", label="secret-ish")
    request.state.principal = who  # as ledger.api.auth.principal does
    return who


def app() -> FastAPI:
    made = FastAPI()
    made.state.runtime = None
    metrics = ServerMetrics(made.state, {})

    @made.get("/pooled")
    def pooled(_who: Annotated[object, Depends(caller)]) -> dict[str, str]:
        route_logger.info("in the thread pool")
        return {}

    @made.get("/looped")
    async def looped(_who: Annotated[object, Depends(caller)]) -> dict[str, str]:
        route_logger.info("on the event loop")
        return {}

    @made.get("/anonymous")
    def anonymous() -> dict[str, str]:
        route_logger.info("nobody")
        return {}

    made.add_middleware(RequestIds)
    made.add_middleware(Observed, metrics=metrics, access=AccessLog())
    return made


@pytest.mark.parametrize("path", ["/pooled", "/looped"])
def test_a_routes_lines_carry_its_request_id_and_caller(kept: Kept, path: str) -> None:
    client = TestClient(app())
    assert client.get(path, headers={"X-Request-Id": "rid-1"}).status_code == 200
    assert client.get(path, headers={"X-Request-Id": "rid-2"}).status_code == 200
    lines = [r for r in kept.records if r.name == route_logger.name]
    assert [r.request_id for r in lines] == ["rid-1", "rid-2"]  # type: ignore[attr-defined]
    assert all(
        r.actor == {"key_id": "k1", "role": "channel", "subject": "shop"}  # type: ignore[attr-defined]
        for r in lines
    )
    access = [r for r in kept.records if r.name == "ledger.access"]
    assert [(r.request_id, r.route, r.status) for r in access] == [  # type: ignore[attr-defined]
        ("rid-1", path, 200),
        ("rid-2", path, 200),
    ]


def test_a_line_without_a_caller_or_outside_a_request(kept: Kept) -> None:
    client = TestClient(app())
    made = client.get("/anonymous").headers["X-Request-Id"]
    logging.getLogger("ledger.test.outside").info("between requests")
    by_message = {r.getMessage(): r for r in kept.records}
    assert by_message["nobody"].request_id == made  # type: ignore[attr-defined]
    assert by_message["nobody"].actor is None  # type: ignore[attr-defined]
    assert by_message["between requests"].request_id is None  # type: ignore[attr-defined]


def test_the_json_formatter_writes_one_object_a_line() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord(
            "ledger.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    record.request_id = "r-9"
    record.status = 500
    record.latency = 0.25
    line = formatter.format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == "failed here"
    assert (doc["level"], doc["logger"], doc["request_id"]) == ("error", "ledger.x", "r-9")
    assert (doc["status"], doc["latency"]) == (500, 0.25)
    assert "ValueError: bad" in doc["exception"]
    assert doc["time"] == rfc3339(record.created)
    assert rfc3339(0.0015) == "1970-01-01T00:00:00.001Z"


def test_batch_sizes_are_a_cumulative_histogram() -> None:
    sizes = BatchSizes()
    for size in (1, 1, 2, 3, 200, 256, 300):
        sizes.add(size)
    buckets, commands = sizes.snapshot()
    assert commands == 1 + 1 + 2 + 3 + 200 + 256 + 300
    cumulative = dict(buckets)
    assert (cumulative[1.0], cumulative[2.0], cumulative[4.0]) == (2, 3, 4)
    assert (cumulative[128.0], cumulative[256.0], cumulative[float("inf")]) == (4, 6, 7)
