"""A verifier node's HTTP face.

* ``POST /add-checkpoint`` -- C2SP tlog-witness: body ``old <size>``, the
  consistency proof lines, a blank line, the signed checkpoint. Answers the
  cosignature line (200), or 400 (malformed), 403 (log signature), 404
  (unknown origin), 409 + ``text/x.tlog.size`` (old size is not ours), 422
  (consistency proof), 503 (in alarm).
* ``GET /checkpoint`` -- the latest checkpoint this node cosigned.
* ``GET /status`` -- JSON; 503 while in alarm, with the evidence.
* ``GET /metrics`` -- Prometheus text, through ``prometheus-client`` (the
  same library as the API server's): the node's counters and state, read
  at each scrape.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import prometheus_client
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger.tlog import merkle
from ledger.tlog.c2sp import MalformedRequestError, NoteError, UnprocessableRequestError
from ledger.tlog.witness import AddCheckpoint, parse_add_checkpoint
from ledger.verifier_node.node import Refusal, VerifierNode, logger

# The node's metrics (each ledger_verifier_<name>): type and help line.
METRICS: dict[str, tuple[str, str]] = {
    "cosigned_total": ("counter", "Checkpoints this node cosigned since it started."),
    "alarms_total": ("counter", "Alarms raised since this node started."),
    "entries_verified_total": ("counter", "Log entries re-verified since this node started."),
    "tree_size": ("gauge", "Size of the latest checkpoint this node cosigned."),
    "alarm": ("gauge", "1 while the node is in alarm (it cosigns nothing), else 0."),
}


class NodeCollector(Collector):
    """The node's counters and state, read when scraped."""

    def __init__(self, node: VerifierNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        values = {
            **node.metrics,
            "tree_size": node.state.size,
            "alarm": 1 if node.state.alarm else 0,
        }
        for name, value in values.items():
            kind, text = METRICS[name]
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(f"ledger_verifier_{name}", text, value=value)


def create_node_app(node: VerifierNode, poll_interval: float = 0.5) -> FastAPI:
    app = FastAPI(title="ledger verifier node", lifespan=_lifespan(node, poll_interval))
    registry = prometheus_client.CollectorRegistry(auto_describe=True)
    registry.register(NodeCollector(node))

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        if node.state.alarm is not None:
            return PlainTextResponse(f"in alarm: {node.state.alarm['message']}", status_code=503)
        return _add_checkpoint(node, (await request.body()).decode("utf-8", "replace"))

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
    def metrics() -> Response:
        return Response(
            prometheus_client.generate_latest(registry),
            media_type="text/plain; version=0.0.4; charset=utf-8",  # (names: all 0.0.4)
        )

    return app


def _lifespan(
    node: VerifierNode, poll_interval: float
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """While the app runs, a thread replays the log and then follows it."""
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(
            target=_follow, args=(node, stop, poll_interval), name="verifier-poll", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)
            node.close()

    return lifespan


def _follow(node: VerifierNode, stop: threading.Event, poll_interval: float) -> None:
    try:
        node.replay()
    except Refusal as refusal:
        logger.error("replay refused: %s", refusal.message)
    trouble = _Trouble()
    while not stop.is_set():
        try:
            node.poll_once()
        except Refusal as refusal:
            trouble.report(f"not cosigning: {refusal.message}")
        except httpx.HTTPError as error:
            trouble.report(f"cannot reach the ledger at {node.ledger_url}: {_cause(error)}")
        except Exception as error:  # a bug: its traceback, once per message
            trouble.report(f"poll failed: {type(error).__name__}: {error}", exc_info=True)
        else:
            trouble.clear(f"the ledger at {node.ledger_url} answers again")
        stop.wait(poll_interval)


class _Trouble:
    """What keeps the node from following, logged once when it starts or
    changes and once when it ends -- not at every poll."""

    def __init__(self) -> None:
        self.current: str | None = None

    def report(self, message: str, *, exc_info: bool = False) -> None:
        if message != self.current:
            logger.warning("%s (retrying at every poll)", message, exc_info=exc_info)
            self.current = message

    def clear(self, message: str) -> None:
        if self.current is not None:
            logger.info("%s", message)
            self.current = None


def _cause(error: httpx.HTTPError) -> str:
    """The innermost reason, in one line ('[Errno 111] Connection refused')."""
    inner: BaseException = error
    while inner.__cause__ is not None:
        inner = inner.__cause__
    return " ".join(str(inner).split()) or type(error).__name__


def _size_answer(size: int) -> Response:
    """409: the old size is not ours; the body says what ours is."""
    return PlainTextResponse(f"{size}\n", status_code=409, media_type="text/x.tlog.size")


def _add_checkpoint(node: VerifierNode, body: str) -> Response:
    """C2SP tlog-witness add-checkpoint: the cosignature line, or the refusal."""
    try:
        request = parse_add_checkpoint(body)
    except (MalformedRequestError, NoteError) as error:
        return PlainTextResponse(str(error), status_code=400)
    try:
        refused = _refusal(node, request)
        if refused is not None:
            return refused
        line = node.add_checkpoint(request.checkpoint)
    except Refusal as refusal:
        if refusal.size is not None:
            return _size_answer(refusal.size)
        return PlainTextResponse(refusal.message, status_code=refusal.status)
    return PlainTextResponse(line + "\n")


def _refusal(node: VerifierNode, request: AddCheckpoint) -> Response | None:
    """Why the request cannot be cosigned (None: it can be tried); raises
    :class:`Refusal` for a checkpoint the node does not accept."""
    checkpoint = node._open(request.checkpoint)
    try:
        request.check()
    except UnprocessableRequestError as error:
        return PlainTextResponse(str(error), status_code=422)
    except MalformedRequestError as error:
        return PlainTextResponse(str(error), status_code=400)
    if request.old_size != node.state.size:
        return _size_answer(node.state.size)
    if request.old_size and checkpoint.size != request.old_size:
        try:
            merkle.verify_consistency(
                request.old_size,
                checkpoint.size,
                base64.b64decode(node.state.root),
                checkpoint.root,
                request.consistency,
            )
        except merkle.ProofError as error:
            return PlainTextResponse(f"bad consistency proof: {error}", status_code=422)
    return None
