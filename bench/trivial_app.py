"""The HTTP baseline of bench/http.py: a trivial FastAPI endpoint with the
sale's path and body, served the way ``ledger serve`` serves the ledger.

    .venv/bin/python -m bench.trivial_app --port 8001

(As a module, from the repository's root: run as a file, bench/ would come
first on sys.path and bench/http.py would shadow the standard library's http.)

``POST /goods/{good_id}/tiers/{tier}/sales`` validates a small pydantic body
(buyer, channel, quantity, unit_price) and answers 201 with a few JSON
fields: no store, no authentication, no idempotency -- the cost of FastAPI,
pydantic and uvicorn alone. ``/sync/goods/...`` is the same as a plain
``def`` (run in the thread pool, as the ledger's command routes are). The
server: ``uvicorn.run(app, host, port, log_level="info")``, one worker, as
in ``ledger serve`` (uvicorn picks uvloop and httptools when installed, as
``uvicorn[standard]`` installs them).
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI(title="trivial")


class Price(BaseModel):
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class Sale(BaseModel):
    buyer: str = Field(min_length=1, max_length=128)
    channel: str = Field(min_length=1, max_length=128)
    quantity: int = Field(default=1, ge=1, le=100)
    unit_price: Price


def _answer(good_id: str, tier: str, body: Sale) -> dict[str, Any]:
    return {
        "good_id": good_id,
        "tier": tier,
        "buyer": body.buyer,
        "quantity": body.quantity,
        "amount": body.unit_price.amount * body.quantity,
    }


@app.post("/goods/{good_id}/tiers/{tier}/sales", status_code=201)
async def sell(good_id: str, tier: str, body: Sale) -> dict[str, Any]:
    return _answer(good_id, tier, body)


@app.post("/sync/goods/{good_id}/tiers/{tier}/sales", status_code=201)
def sell_sync(good_id: str, tier: str, body: Sale) -> dict[str, Any]:
    return _answer(good_id, tier, body)


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    options = parser.parse_args()
    uvicorn.run(app, host=options.host, port=options.port, log_level="info")


if __name__ == "__main__":
    main()
