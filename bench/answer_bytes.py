"""What rendering a command's answer as canonical bytes costs the sale path.

    .venv/bin/python -m bench.answer_bytes [--sales 3000] [--rounds 3]

Two figures, in process, on a SQLite store in a temporary directory:

* ``render``: one sale's answer dict to response bytes -- FastAPI's path for
  a route returning a dict (validate against ``dict[str, Any]``, then
  Pydantic's ``dump_json``; what the command routes did before) against
  ``AnswerJSON`` (``canonical.encode``, what they do now). Microseconds
  per answer, best of ``--rounds``.
* ``sale``: whole sales through the ASGI app (``TestClient``: routing,
  auth, the command, the commit, the answer), one at a time, sales per
  second and the median in milliseconds, best of ``--rounds``. Run it on
  both trees to compare (it imports nothing the older tree lacks).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ledger.api.app import create_app
from ledger.api.runtime import open_runtime
from ledger.config import Settings
from ledger.store.apikeys import Role
from ledger.store.database import DatabaseURL

SPEC: dict[str, Any] = {
    "title": "Bench",
    "creators": [{"id": "alice", "share_bps": 10_000}],
    "content_digest": "sha256:" + "a" * 64,
    "kind": "collectible",
    "currency": "EUR",
    "edition": {"policy": "absolute"},
    "tiers": [{"name": "own", "quota": 1_000_000}],
    "royalty": {"resale_bps": 1_000},
    "metadata": {},
}


def render_figures(answer: dict[str, Any], rounds: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])

    def before() -> bytes:
        return adapter.dump_json(adapter.validate_python(answer))

    figures["render before (validate + dump_json), us"] = _best(before, rounds)
    try:
        from ledger.api.command_routes import AnswerJSON  # noqa: PLC0415 - absent before
    except ImportError:
        return figures

    def after() -> bytes:
        return bytes(AnswerJSON(dict(answer), status_code=201).body)

    figures["render after (AnswerJSON), us"] = _best(after, rounds)
    return figures


def _best(work: Any, rounds: int, number: int = 20_000) -> float:
    return min(timeit.repeat(work, number=number, repeat=rounds)) / number * 1e6


def sale_figures(sales: int, rounds: int) -> tuple[dict[str, float], dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:
        url = DatabaseURL.parse(f"sqlite:///{Path(scratch) / 'bench.db'}")
        runtime = open_runtime(url, Settings())
        assert runtime.api_keys is not None
        admin = runtime.api_keys.issue(Role.ADMIN, None, label="bench")[1]
        try:
            with TestClient(create_app(runtime)) as client:
                auth = {"Authorization": f"Bearer {admin}"}

                def post(path: str, body: dict[str, Any]) -> Any:
                    response = client.post(
                        path, json=body, headers=auth | {"Idempotency-Key": uuid.uuid4().hex}
                    )
                    assert response.status_code == 201, response.text
                    return response

                post("/channels", {"channel": "shop", "name": "Shop", "fee_bps": 500})
                good = post("/goods", {"spec": SPEC}).json()["good_id"]
                path = f"/goods/{good}/tiers/own/sales"
                body = {
                    "buyer": "b",
                    "channel": "shop",
                    "quantity": 1,
                    "unit_price": {"amount": 1_000, "currency": "EUR"},
                }
                answer: dict[str, Any] = post(path, body).json()
                best_rate, best_median = 0.0, float("inf")
                for _ in range(rounds):
                    took = []
                    start = time.perf_counter()
                    for n in range(sales):
                        began = time.perf_counter()
                        post(path, body | {"buyer": f"b{n % 500}"})
                        took.append(time.perf_counter() - began)
                    rate = sales / (time.perf_counter() - start)
                    best_rate = max(best_rate, rate)
                    best_median = min(best_median, statistics.median(took) * 1e3)
        finally:
            runtime.ledger.close()
    return {"sales per second": best_rate, "sale median, ms": best_median}, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sales", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    sale, answer = sale_figures(options.sales, options.rounds)
    for name, value in (render_figures(answer, options.rounds) | sale).items():
        print(f"{name:45} {value:10.2f}")


if __name__ == "__main__":
    main()
