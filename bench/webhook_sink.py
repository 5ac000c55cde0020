"""The benchmark's webhook receiver: a process of its own, served the way
``ledger serve`` is (uvicorn, httptools, uvloop), so the receiver's work is
cheap and visible apart from the server's on a small machine.

    .venv/bin/python -m bench.webhook_sink --port 8200

It verifies every request's signature with the Standard Webhooks reference
library (``standardwebhooks.Webhook(secret).verify``) against the secret
of its path, answers 204 (401 if it does not verify), and records
``[path, webhook-id, type, event timestamp, received at, verified]``.

* ``POST /_secrets`` ``{"<path>": "whsec_..."}``: the paths' secrets;
* ``GET /_count``: ``{"received": n}``;
* ``GET /_records``: every record, in arrival order;
* ``GET /_ready``: 204 once serving.

tests/webhook_receiver.py is the tests' receiver (a thread of the test
process, with failures to order); this one only receives, fast.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

Scope = dict[str, Any]
Message = dict[str, Any]

secrets_by_path: dict[str, Webhook] = {}
records: list[list[Any]] = []


async def _answer(
    send: Callable[[Message], Awaitable[None]], status: int, body: bytes = b""
) -> None:
    headers = [(b"content-type", b"application/json")] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _record(path: str, headers: dict[str, str], body: bytes) -> bool:
    received_at = time.time()
    webhook = secrets_by_path.get(path)
    try:
        if webhook is None:
            raise WebhookVerificationError("no secret for this path")
        webhook.verify(body, headers, json_parse=False)
        verified = True
    except WebhookVerificationError:
        verified = False
    try:
        event = orjson.loads(body)
        kind, at = event.get("type"), event.get("timestamp")
    except orjson.JSONDecodeError:
        kind = at = None
    records.append([path, headers.get("webhook-id"), kind, at, received_at, verified])
    return verified


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if scope["method"] == "GET":
        if path == "/_count":
            await _answer(send, 200, orjson.dumps({"received": len(records)}))
        elif path == "/_records":
            await _answer(send, 200, orjson.dumps(records))
        else:
            await _answer(send, 204)
        return
    if path == "/_secrets":
        for where, secret in orjson.loads(body).items():
            secrets_by_path[where] = Webhook(secret)
        await _answer(send, 204)
        return
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    await _answer(send, 204 if _record(path, headers, body) else 401)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
