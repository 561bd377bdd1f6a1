"""The service's Prometheus metrics (`GET /metrics`, names prefixed `batchyard_`).

Two kinds: what the engine holds now (tasks by state per job, nodes by state per pool, the queue, agent
connections) is read from its records when Prometheus scrapes, so it costs nothing between scrapes; what
happens (requests, task starts, autoscale runs, store transactions) is counted as it happens, from the
engine's events and a middleware. Each service has its own registry: services in one process (tests) do
not mix their figures.
"""

from __future__ import annotations

import hmac
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as CounterMetric
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from batchyard.service.clock import parse_iso
from batchyard.service.engine.engine import Engine
from batchyard.service.engine.events import AutoscaleEvaluated, TaskStarted, reacts_to

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Request durations: the data plane answers in milliseconds; lists of many tasks take up to seconds.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Add -> running: milliseconds on an idle node, minutes or hours behind a queue.
_START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
_TRANSACTION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServiceMetrics:
    """The registry of one service, and what feeds it (add it to the engine's reactions: `observe`)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = CounterMetric(
            "batchyard_requests",
            "HTTP requests answered, by operation (the handler's name) and status code",
            ["operation", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "batchyard_request_duration_seconds",
            "Time from a request's arrival to its answer, by operation",
            ["operation"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.task_start_seconds = Histogram(
            "batchyard_task_start_latency_seconds",
            "Time from a task's creation (its add) to its first run starting on a node",
            buckets=_START_BUCKETS,
            registry=self.registry,
        )
        self.autoscale_runs = CounterMetric(
            "batchyard_autoscale_evaluations",
            "Automatic scaling formula evaluations of pools, by result (success, failure)",
            ["pool", "result"],
            registry=self.registry,
        )
        self.transaction_seconds = Histogram(
            "batchyard_store_transaction_seconds",
            "Time of the store's outermost transactions, from begin to commit",
            buckets=_TRANSACTION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_EngineState(engine))
        engine.reactions.add(self)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    @reacts_to(TaskStarted)
    def _task_started(self, event: TaskStarted) -> None:
        if event.doc["executionInfo"].get("retryCount", 0) or event.doc["executionInfo"].get("requeueCount", 0):
            return  # add -> running is about the first start
        created = event.doc.get("creationTime")
        if created:
            self.task_start_seconds.observe(max(0.0, (event.now - parse_iso(created)).total_seconds()))

    @reacts_to(AutoscaleEvaluated)
    def _autoscale_evaluated(self, event: AutoscaleEvaluated) -> None:
        self.autoscale_runs.labels(event.pool.doc["id"], "success" if event.ok else "failure").inc()


class _EngineState(Collector):
    """Gauges read from the engine's records at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.core = engine.core

    def describe(self) -> list[Metric]:
        return []  # the metrics' label values are only known when collected

    def collect(self) -> Iterator[Metric]:
        tasks = GaugeMetricFamily("batchyard_tasks", "Tasks by state, per job", labels=["job", "state"])
        queued = 0
        for job in self.core.jobs.values():
            for state in ("active", "preparing", "running", "completed"):
                tasks.add_metric([job.doc["id"], state], job.counts[state])
            queued += len(job.queue)
        yield tasks
        yield GaugeMetricFamily(
            "batchyard_queued_tasks",
            "Tasks ready to run (their dependencies met) that wait for a node, in all jobs",
            value=queued,
        )
        nodes = GaugeMetricFamily("batchyard_nodes", "Compute nodes by state, per pool", labels=["pool", "state"])
        by_pool: Counter[tuple[str, str]] = Counter()
        connected = 0
        for node in self.core.nodes.values():
            pool = self.core.pools.get(node.pool_key)
            by_pool[(pool.doc["id"] if pool else node.pool_key, node.doc["state"])] += 1
            connected += node.session is not None
        for (pool_id, state), count in sorted(by_pool.items()):
            nodes.add_metric([pool_id, state], count)
        yield nodes
        yield GaugeMetricFamily(
            "batchyard_agent_connections", "Node agents connected to the service now", value=connected
        )


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by operation and status (WebSockets pass)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            endpoint = scope.get("endpoint")  # set by the router when a route matched
            operation = getattr(endpoint, "__name__", "unmatched")
            self.metrics.requests.labels(operation, str(status)).inc()
            self.metrics.request_seconds.labels(operation).observe(time.perf_counter() - start)


def metrics_endpoint(token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """`GET /metrics`: open, or with `token` only for `Authorization: Bearer <token>` (Prometheus's
    `authorization` scrape setting)."""

    async def metrics(request: Request) -> Response:
        if token is not None:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return PlainTextResponse("metrics need the bearer token of --metrics-token-file\n", status_code=401)
        service_metrics: ServiceMetrics = request.app.state.metrics
        return Response(service_metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def read_token(path: Path | None) -> str | None:
    """The metrics token kept in a file (its first line), or None for open metrics."""
    if path is None:
        return None
    lines = path.read_text().split()
    token = lines[0] if lines else ""
    if not token:
        raise ValueError(f"{path} holds no token")
    return token
