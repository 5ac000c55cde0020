"""What a client has just created is never a 404 (docs/api.md, Freshness).

A lookup by id reads the views, which follow the store a few milliseconds
behind. The soak (bench/soak.py) found reads of a unit just sold answered
404: the lookup missed, the views then caught up *before* the route asked
how far they were, so it saw them level with the store and believed the
miss. These tests replay that interleaving with the real runner and store,
and pause the views to show what a read gets when they cannot catch up in
time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.problems import ApiProblem
from ledger.api.query_routes import _found
from ledger.api.runtime import Runtime, open_runtime
from ledger.config import Settings
from ledger.store.apikeys import Role
from ledger.store.database import DatabaseURL
from tests.strategies import open_shop_and_sell


@pytest.fixture
def runtime(store_url: DatabaseURL) -> Iterator[Runtime]:
    """A server's runtime whose views runner is not running: the test moves it."""
    runtime = open_runtime(store_url, Settings(projection_process="no"))
    try:
        yield runtime
    finally:
        if runtime.runner is not None:
            runtime.runner.stop()
        runtime.ledger.close()


def test_a_lookup_that_misses_just_before_the_views_catch_up_looks_again(runtime: Runtime) -> None:
    runner = runtime.runner
    assert runner is not None
    runner.step()  # the views are level with the store
    _, sold = open_shop_and_sell(runtime.ledger, 1)
    unit = sold[0]["units"][0]["unit_id"]
    assert runner.position < runtime.views.store.store_position()  # the sale is not in them

    def unit_then_views_catch_up() -> dict[str, Any] | None:
        # The read misses; the views' thread then applies the sale (and says
        # so) before the route asks how far they have got -- as it did under
        # the soak, where the two threads interleave this way now and then.
        found = runtime.views.unit(unit)
        runner.step()
        return found

    found = _found(runtime, unit_then_views_catch_up, f"unit {unit}")
    assert found["unit_id"] == unit
    assert found["holder"] == "b0"


def test_a_lookup_that_misses_with_the_views_level_is_a_404_at_once(runtime: Runtime) -> None:
    runner = runtime.runner
    assert runner is not None
    open_shop_and_sell(runtime.ledger, 1)
    runner.step()
    began = time.monotonic()
    with pytest.raises(ApiProblem) as missing:
        _found(runtime, lambda: runtime.views.unit(str(uuid.uuid4())), "unit x")
    assert missing.value.status == 404
    assert time.monotonic() - began < 1.0  # nothing to wait for


def test_a_read_of_a_new_unit_while_the_views_are_stalled_is_never_a_404(
    store_url: DatabaseURL,
) -> None:
    """Views stopped (as if they fell far behind): a read of the unit just
    sold, or of its good's stock, answers 503 ``views-behind`` with
    Retry-After after the bounded wait -- not a 404 -- and 200 once they
    catch up."""
    runtime = open_runtime(store_url, Settings(projection_process="no"))
    assert runtime.api_keys is not None
    assert runtime.runner is not None
    channel = runtime.api_keys.issue(Role.CHANNEL, "shop", label="shop")[1]
    headers = {"Authorization": f"Bearer {channel}"}
    try:
        with TestClient(create_app(runtime)) as client:
            good, _ = open_shop_and_sell(runtime.ledger, 0)
            assert runtime.runner.wait_for(runtime.views.store.store_position(), 10)
            runtime.runner.stop()  # the views stall from here on
            sale = client.post(
                f"/goods/{good}/tiers/own/sales",
                headers=headers | {"Idempotency-Key": "s-1"},
                json={
                    "buyer": "carol",
                    "channel": "shop",
                    "unit_price": {"amount": 100, "currency": "EUR"},
                },
            )
            assert sale.status_code == 201, sale.text
            unit = sale.json()["units"][0]["unit_id"]
            began = time.monotonic()
            read = client.get(f"/units/{unit}", headers=headers)
            waited = time.monotonic() - began
            assert read.status_code == 503, read.text
            assert read.json()["type"] == "https://ledger.dev/problems/views-behind"
            assert read.headers["Retry-After"] == "1"
            assert 1.5 < waited < 5.0  # the bounded wait, then the answer
            runtime.runner.start()
            assert runtime.runner.wait_for(runtime.views.store.store_position(), 10)
            read = client.get(f"/units/{unit}", headers=headers)
            assert read.status_code == 200, read.text
            assert read.json()["holder"] == "carol"
    finally:
        runtime.ledger.close()
