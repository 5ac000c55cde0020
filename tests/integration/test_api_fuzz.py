"""Schema-driven fuzzing of the served OpenAPI document (schemathesis).

For every operation, schemathesis draws path, query and header parameters
and bodies from the operation's own schemas: valid ones (positive mode),
valid ones aimed at real ids, and ones that break the schema on purpose
(negative mode). Each is sent with a real key of a random role. Whatever
comes back must not be a 5xx, every error must be a problem document, and
a refused request must leave the store exactly as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from ledger.api.app import create_app
from ledger.api.runtime import Runtime, open_runtime
from ledger.config import Settings
from ledger.projections.replay import compare_with_replay
from ledger.store.apikeys import Role
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec

SKIP = {"GET /goods/{good_id}/stock/stream"}  # never ends; covered by the role matrix
STATS: Counter[str] = Counter()


class World:
    def __init__(self, client: TestClient, runtime: Runtime, tokens: dict[str, str]) -> None:
        self.client, self.runtime, self.tokens = client, runtime, tokens
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        for channel in ("shop", "other"):
            client.post(
                "/channels",
                json={"channel": channel, "name": channel, "fee_bps": 500},
                headers=admin | {"Idempotency-Key": f"ch-{channel}"},
            )
        self.good = client.post(
            "/goods",
            json={
                "spec": good_spec(
                    variant_rules={"max_variants": 2, "max_supply_per_variant": 5},
                    policy="restockable",
                )
            },
            headers=admin | {"Idempotency-Key": "mint"},
        ).json()["good_id"]
        sale = client.post(
            f"/goods/{self.good}/tiers/own/sales",
            json={
                "buyer": "b1",
                "channel": "shop",
                "unit_price": {"amount": 100, "currency": "EUR"},
            },
            headers=admin | {"Idempotency-Key": "sale"},
        ).json()
        self.unit = sale["units"][0]["unit_id"]
        # A redemption-code good with codes and a coded unit sold by shop to
        # b1, for the code routes to be aimed at.
        self.coded = client.post(
            "/goods",
            json={
                "spec": good_spec(
                    title="Keys", kind="redemption-code", tiers=[{"name": "key", "quota": 50}]
                )
            },
            headers=admin | {"Idempotency-Key": "mint-keys"},
        ).json()["good_id"]
        assert (
            client.post(
                f"/goods/{self.coded}/tiers/key/codes",
                json={"range": {"prefix": "FUZZ-", "width": 4, "start": 1, "end": 30}},
                headers=admin | {"Idempotency-Key": "codes"},
            ).status_code
            == 201
        )
        coded_sale = client.post(
            f"/goods/{self.coded}/tiers/key/sales",
            json={
                "buyer": "b1",
                "channel": "shop",
                "unit_price": {"amount": 100, "currency": "EUR"},
            },
            headers=admin | {"Idempotency-Key": "coded-sale"},
        ).json()
        self.coded_unit = coded_sale["units"][0]["unit_id"]
        loaded = schemathesis.openapi.from_asgi("/openapi.json", client.app)
        self.operations = []
        for result in loaded.get_all_operations():
            assert not isinstance(result, Err), result  # the schema itself must load
            if result.ok().label not in SKIP:
                self.operations.append(result.ok())

    def stored(self) -> tuple[int, int, int]:
        recorder = self.runtime.ledger.event_store.recorder
        keys = self.runtime.api_keys
        assert keys is not None
        checkpoints = self.runtime.log.checkpoints()
        cosigned = sum(len(self.runtime.log.cosignatures(c.size)) for c in checkpoints)
        return int(recorder.max_notification_id() or 0), len(keys.list()), cosigned

    def known(self, name: str) -> list[Any]:
        return {
            "good_id": [self.good],
            "unit_id": [self.unit],
            "tier": ["own", "view"],
            "creator": ["alice"],
            "channel": ["shop", "other"],
        }.get(name, [])


@pytest.fixture
def world(store_url: DatabaseURL) -> Iterator[World]:
    runtime = open_runtime(
        store_url, Settings(projection_poll_interval=0.01), code_keyring=Keyring.generate()
    )
    assert runtime.api_keys is not None
    tokens = {
        role.value: runtime.api_keys.issue(
            role, "alice" if role is Role.CREATOR else "shop" if role is Role.CHANNEL else None
        )[1]
        for role in Role
    }
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            yield World(client, runtime, tokens)
    finally:
        runtime.ledger.close()


def strategies(world: World) -> st.SearchStrategy[Any]:
    known = {
        "good_id": world.good,
        "unit_id": world.unit,
        "tier": "own",
        "creator": "alice",
        "channel": "shop",
    }
    coded = known | {"good_id": world.coded, "unit_id": world.coded_unit, "tier": "key"}
    options = []
    for op in world.operations:
        names = [p.name for p in op.path_parameters]
        options.append(op.as_strategy())
        options.append(op.as_strategy(GenerationMode.NEGATIVE))
        for ids in (known, coded):  # aimed at the plain good, and at the coded one
            aimed = {n: ids[n] for n in names if n in ids}
            if aimed:
                options.append(op.as_strategy(path_parameters=aimed))
        if op.label == "GET /audit":  # the trail's filters, aimed at what is there
            options.append(op.as_strategy(query={"unit": world.unit, "role": "admin"}))
            options.append(op.as_strategy(query={"good": world.good, "actor": "shop"}))
    return st.one_of(options)


def fuzz(world: World, examples: int) -> None:
    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        case=strategies(world), role=st.sampled_from(sorted(world.tokens)), keyed=st.integers(0, 9)
    )
    def check(case: Any, role: str, keyed: int) -> None:
        request = case.as_transport_kwargs()
        request.pop("cookies", None)  # the API uses none
        headers = {
            k: v
            for k, v in request.pop("headers").items()
            if k.lower() not in ("authorization", "x-api-key")
        }
        headers["Authorization"] = f"Bearer {world.tokens[role]}"
        if request["method"] == "POST" and "Idempotency-Key" not in headers and keyed:
            headers["Idempotency-Key"] = f"fuzz-{STATS.total()}"
        before = world.stored()
        try:
            response = world.client.request(headers=headers, **request)
        except (UnicodeEncodeError, ValueError):  # not sendable as HTTP at all
            STATS["unsendable"] += 1
            return
        STATS[f"{response.status_code // 100}xx"] += 1
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", response.text
            problem = response.json()
            assert problem["status"] == response.status_code
            assert problem["type"].startswith("https://ledger.dev/problems/")
            assert world.stored() == before, (case.as_curl_command(), response.text)

    check()


@pytest.mark.parametrize("examples", [600])
def test_no_request_drawn_from_the_schema_gets_a_5xx_or_changes_state_when_refused(
    world: World, examples: int
) -> None:
    STATS.clear()
    assert "GET /audit" in {op.label for op in world.operations}
    fuzz(world, examples)
    print(
        f"fuzzed {sum(STATS.values())} requests over {len(world.operations)} operations: "
        f"{dict(sorted(STATS.items()))}"
    )
    assert STATS["4xx"] > 0
    assert STATS["2xx"] > 0
    # Whatever was accepted, the views kept up exactly.
    runner, views = world.runtime.runner, world.runtime.projections
    assert runner is not None
    assert views is not None
    assert runner.wait_for(views.store_position(), timeout=30)
    replay = compare_with_replay(views)
    assert replay.ok, replay.differences
