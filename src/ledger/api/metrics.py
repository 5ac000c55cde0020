"""Prometheus metrics of the API server, through ``prometheus-client``:
``GET /metrics`` (text format 0.0.4).

Two kinds of figures:

* **Per request**, counted by :class:`ledger.api.observe.Observed` as each
  answer leaves: ``ledger_http_requests_total{method,route,status}``,
  ``ledger_http_request_duration_seconds{method,route}`` (a histogram) and,
  for the commands, ``ledger_commands_total{command,outcome}`` (outcome
  ``ok``, ``replayed`` or the problem's code: ``sold-out``, ``forbidden``...).
  ``route`` is the route's template (``/goods/{good_id}/tiers/{tier}/sales``,
  or ``unmatched``): no label ever holds an id, so the series stay few.
* **Read at scrape time** (:class:`RuntimeCollector`), so the hot path pays
  nothing for them: group-commit batch sizes and conflicts retried (from the
  ledger's runner), how far the views are behind, events not yet under a
  signed checkpoint and the latest checkpoint's age (a few queries),
  readiness, the database pool's connections in use and requests waiting
  (PostgreSQL; SQLite's pool has no queue), and ``ledger_build_info``.

Each app has a registry of its own, so several apps in one process (tests)
never share a series. Who may read ``/metrics``: anyone (``open``, the
default, as ``/healthz``, ``/readyz`` and a verifier node's ``/metrics``:
the figures are aggregates without ids, and a scrape must work while the
database is down), or (``LEDGER_METRICS_ACCESS=auditor``) an auditor or
admin key.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import prometheus_client
from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.datastructures import State

from ledger import __version__
from ledger.api.auth import require
from ledger.domain.model import parse_timestamp
from ledger.store.apikeys import Principal, Role

logger = logging.getLogger("ledger.metrics")

# Text format 0.0.4, which every Prometheus reads (the library's "latest",
# 1.0.0, differs only for names outside [a-zA-Z_:][a-zA-Z0-9_:]*: none here).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route matched


class ServerMetrics:
    """The metrics of one app: the per-request families and the runtime's
    collector, in a registry of their own."""

    def __init__(self, state: State, commands: Mapping[str, str]) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands_by_route = dict(commands)  # route template -> command name
        self.requests = Counter(
            "ledger_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "ledger_http_request_duration_seconds",
            "Time from a request's arrival at the application to its answer handed "
            "to the server whole (a stream: to its end), by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.commands = Counter(
            "ledger_commands_total",
            "Commands answered through the API, by command and outcome: ok, replayed, "
            "or the problem's code (sold-out, forbidden, ...).",
            ["command", "outcome"],
            registry=self.registry,
        )
        for command in sorted(set(self.commands_by_route.values())):
            self.commands.labels(command, "ok")  # expected series, 0 until the first
        self.registry.register(RuntimeCollector(state))
        prometheus_client.ProcessCollector(registry=self.registry)
        prometheus_client.GCCollector(registry=self.registry)
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._outcomes: dict[tuple[str, str], Any] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request (called on the event loop's thread only)."""
        key = (method, route, status)
        children = self._http.get(key)
        if children is None:
            label = method if method in METHODS else "other"
            children = (
                self.requests.labels(label, route, str(status)),
                self.duration.labels(label, route),
            )
            self._http[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def record_command(self, command: str, outcome: str) -> None:
        child = self._outcomes.get((command, outcome))
        if child is None:
            child = self._outcomes[(command, outcome)] = self.commands.labels(command, outcome)
        child.inc()

    def exposition(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


def _gauge(name: str, text: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


class RuntimeCollector(Collector):
    """What the running server holds, read at each scrape (a few queries)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield _gauge(
            "ledger_build_info",
            "The ledger's version and Python's (always 1).",
            1,
            version=__version__,
            python=platform.python_version(),
        )
        runtime = getattr(self.state, "runtime", None)
        ready = GaugeMetricFamily(
            "ledger_ready", "1 when this part is ready (as /readyz says), else 0.", labels=["part"]
        )
        parts = runtime.readiness() if runtime is not None else dict.fromkeys(READY_PARTS, False)
        for part, ok in parts.items():
            ready.add_metric([part], 1 if ok else 0)
        yield ready
        if runtime is None:
            return
        yield from _runner_metrics(runtime)
        yield from _pool_metrics(runtime)
        for read in (_views_metrics, _sealer_metrics):
            try:
                yield from read(runtime)
            except Exception as error:  # the database is down, say: skip these
                logger.debug("metrics: %s skipped (%s)", read.__name__, error)


READY_PARTS = ("database", "views", "sealer")


def _runner_metrics(runtime: Any) -> Iterator[Metric]:
    ledger = runtime.ledger
    yield CounterMetricFamily(
        "ledger_command_conflicts_retried_total",
        "Version conflicts on commit retried by the command runner (this process).",
        value=ledger.conflicts_retried,
    )
    buckets, commands = ledger.batch_sizes.snapshot()
    histogram = HistogramMetricFamily(
        "ledger_group_commit_batch_size",
        "Commands per group-commit batch (one transaction each), this process.",
    )
    histogram.add_metric([], [(_le(bound), count) for bound, count in buckets], commands)
    yield histogram


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(int(bound))


def _pool_metrics(runtime: Any) -> Iterator[Metric]:
    pool = getattr(getattr(runtime.ledger.event_store.recorder, "datastore", None), "pool", None)
    if pool is None:
        return
    if hasattr(pool, "get_stats"):  # psycopg_pool (PostgreSQL)
        stats = pool.get_stats()
        size = stats.get("pool_size", 0)
        in_use = size - stats.get("pool_available", 0)
        waiting = stats.get("requests_waiting", 0)
    else:  # eventsourcing's SQLite pool: no queue to count
        size, in_use, waiting = pool.num_in_use + pool.num_in_pool, pool.num_in_use, None
    yield _gauge("ledger_db_pool_connections", "Connections the database pool holds.", size)
    yield _gauge("ledger_db_pool_in_use", "Connections of the pool in use now.", in_use)
    if waiting is not None:
        yield _gauge(
            "ledger_db_pool_waiting",
            "Requests waiting for a connection of the pool (PostgreSQL).",
            waiting,
        )


def _views_metrics(runtime: Any) -> Iterator[Metric]:
    if runtime.runner is None:
        return
    status = runtime.runner.status()
    yield _gauge(
        "ledger_views_behind_events",
        "Store positions the views have not applied yet (events, where positions have no gaps).",
        status["behind"],
    )
    last = status["lag"].get("last_seconds")
    if last is not None:
        yield _gauge(
            "ledger_views_lag_seconds",
            "The views' last batch: from its oldest event's decision to its commit.",
            last,
        )


def _sealer_metrics(runtime: Any) -> Iterator[Metric]:
    size, last_position, _ = runtime.log.state()
    head = int(runtime.ledger.event_store.recorder.max_notification_id() or 0)
    latest = runtime.log.latest_checkpoint()
    sealed = latest.size if latest is not None else 0
    unsealed = (size - sealed) + max(0, head - last_position)
    yield _gauge("ledger_log_size", "Leaves of the log's tree (events sequenced).", size)
    yield _gauge(
        "ledger_sealer_unsealed_events",
        "Events stored but not under the latest signed checkpoint.",
        unsealed,
    )
    if latest is None:
        return
    age = max(0.0, time.time() - parse_timestamp(latest.signed_at).timestamp())
    yield _gauge(
        "ledger_checkpoint_age_seconds", "Seconds since the latest checkpoint was signed.", age
    )
    yield _gauge(
        "ledger_sealer_lag_seconds",
        "0 when every stored event is under the latest checkpoint, else that "
        "checkpoint's age: at most how long an unsealed event has waited.",
        age if unsealed else 0.0,
    )


# -- the route ---------------------------------------------------------------------------
open_router = APIRouter(tags=["ops"])
auditor_router = APIRouter(tags=["ops"])
SUMMARY = "Prometheus metrics (text format 0.0.4)"
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {}}, "description": "The metrics"}
}


def _exposition(request: Request) -> Response:
    metrics: ServerMetrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE)


@open_router.get("/metrics", summary=SUMMARY, responses=METRICS_RESPONSES)
def metrics_open(request: Request) -> Response:
    return _exposition(request)


@auditor_router.get("/metrics", summary=SUMMARY, responses=METRICS_RESPONSES)
def metrics_auditor(
    request: Request, _who: Annotated[Principal, require(Role.AUDITOR)]
) -> Response:
    return _exposition(request)
