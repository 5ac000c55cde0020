"""A verifier node's HTTP face.

* ``POST /add-checkpoint`` -- C2SP tlog-witness: body ``old <size>``, the
  consistency proof lines, a blank line, the signed checkpoint. Answers the
  cosignature line (200), or 400 (malformed), 403 (log signature), 404
  (unknown origin), 409 + ``text/x.tlog.size`` (old size is not ours), 422
  (consistency proof), 503 (in alarm).
* ``GET /checkpoint`` -- the latest checkpoint this node cosigned.
* ``GET /status`` -- JSON; 503 while in alarm, with the evidence.
* ``GET /metrics`` -- Prometheus text.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ledger.tlog import merkle
from ledger.tlog.c2sp import MalformedRequestError, NoteError, UnprocessableRequestError
from ledger.tlog.witness import parse_add_checkpoint
from ledger.verifier_node.node import Refusal, VerifierNode, logger


def create_node_app(node: VerifierNode, poll_interval: float = 0.5) -> FastAPI:  # noqa: C901, PLR0915 - the routes are closures over one node
    stop = threading.Event()

    def loop() -> None:
        try:
            node.replay()
        except Refusal as refusal:
            logger.error("replay refused: %s", refusal.message)
        while not stop.is_set():
            try:
                node.poll_once()
            except Refusal as refusal:
                logger.warning("not cosigning: %s", refusal.message)
            except Exception:
                logger.exception("poll failed")
            stop.wait(poll_interval)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(target=loop, name="verifier-poll", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)
            node.close()

    app = FastAPI(title="ledger verifier node", lifespan=lifespan)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        if node.state.alarm is not None:
            return PlainTextResponse(f"in alarm: {node.state.alarm['message']}", status_code=503)
        body = (await request.body()).decode("utf-8", "replace")
        try:
            request_ = parse_add_checkpoint(body)
        except (MalformedRequestError, NoteError) as error:
            return PlainTextResponse(str(error), status_code=400)
        try:
            checkpoint = node._open(request_.checkpoint)
            try:
                request_.check()
            except UnprocessableRequestError as error:
                return PlainTextResponse(str(error), status_code=422)
            except MalformedRequestError as error:
                return PlainTextResponse(str(error), status_code=400)
            if request_.old_size != node.state.size:
                return PlainTextResponse(
                    f"{node.state.size}\n", status_code=409, media_type="text/x.tlog.size"
                )
            if request_.old_size and checkpoint.size != request_.old_size:
                try:
                    merkle.verify_consistency(
                        request_.old_size,
                        checkpoint.size,
                        base64.b64decode(node.state.root),
                        checkpoint.root,
                        request_.consistency,
                    )
                except merkle.ProofError as error:
                    return PlainTextResponse(f"bad consistency proof: {error}", status_code=422)
            line = node.add_checkpoint(request_.checkpoint)
        except Refusal as refusal:
            if refusal.size is not None:
                return PlainTextResponse(
                    f"{refusal.size}\n", status_code=409, media_type="text/x.tlog.size"
                )
            return PlainTextResponse(refusal.message, status_code=refusal.status)
        return PlainTextResponse(line + "\n")

    @app.get("/checkpoint")
    def checkpoint() -> Response:
        if not node.state.cosigned:
            return PlainTextResponse("nothing cosigned yet", status_code=404)
        return PlainTextResponse(node.state.cosigned)

    @app.get("/status")
    def status() -> JSONResponse:
        body = {
            "name": node.signer.name,
            "origin": node.origin,
            "size": node.state.size,
            "root": node.state.root,
            "alarm": node.state.alarm,
        }
        return JSONResponse(body, status_code=503 if node.state.alarm else 200)

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        lines = [f"ledger_verifier_{name} {value}" for name, value in node.metrics.items()]
        lines.append(f"ledger_verifier_tree_size {node.state.size}")
        lines.append(f"ledger_verifier_alarm {1 if node.state.alarm else 0}")
        return PlainTextResponse("\n".join(lines) + "\n")

    return app
