"""The ASGI application and composition root: store, providers, engine and its facade; every route."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from batchyard.protocol import messages
from batchyard.providers.base import NodeProvider
from batchyard.providers.external import ExternalProvider
from batchyard.providers.local import LocalProvider
from batchyard.providers.registry import ProviderRegistry
from batchyard.providers.slurm import SlurmProvider
from batchyard.service.account_paths import AccountPaths
from batchyard.service.api import (
    admin,
    applications,
    autoscale,
    certificates,
    files,
    jobs,
    node_actions,
    node_extensions,
    nodes,
    pools,
    principals,
    schedules,
    tasks,
    usage,
)
from batchyard.service.clock import AdjustableClock, Clock
from batchyard.service.config import Settings
from batchyard.service.dashboard import routes as dashboard
from batchyard.service.dashboard.sessions import DashboardSessions
from batchyard.service.diagnostics import stream as diagnostic_stream
from batchyard.service.diagnostics.service import DiagnosticLogService
from batchyard.service.diagnostics.settings import DiagnosticSettings
from batchyard.service.engine.engine import Engine
from batchyard.service.engine.facade import BatchService
from batchyard.service.errors import BatchError
from batchyard.service.gateway import AgentSession
from batchyard.service.http import base_url, error_response
from batchyard.service.identity import endpoints as identity_endpoints
from batchyard.service.identity.provider import IdentityProvider
from batchyard.service.management import routes as management
from batchyard.service.management.account_directory import AccountDirectory
from batchyard.service.metrics import RequestMetrics, ServiceMetrics, metrics_endpoint
from batchyard.service.models import contract_rules
from batchyard.service.persistence.open import POSTGRES_SCHEMES, open_store
from batchyard.service.ports import Store
from batchyard.service.storage.runs import linked_resources


async def readiness(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    return JSONResponse(
        {
            "service": "batchyard",
            "account": settings.account_name,
            "url": settings.base_url,
            "httpsUrl": settings.https_url,
        }
    )


async def agent_endpoint(websocket: WebSocket) -> None:
    service: BatchService = websocket.app.state.service
    node_id = websocket.headers.get(messages.NODE_HEADER, "")
    token = websocket.headers.get(messages.TOKEN_HEADER, "")
    if not service.node_token_ok(node_id, token):
        await websocket.close(code=4403)
        return
    await websocket.accept()
    await service.agent_session(AgentSession(node_id, websocket))


async def join_endpoint(request: Request) -> Response:
    """An agent on another host trades its pool's join token for one node's identity."""
    service: BatchService = request.app.state.service
    try:
        body = await request.json()
        claimed = service.claim_node(str(body["pool"]), str(body["token"]))
    except (ValueError, KeyError, TypeError):
        claimed = None
    if claimed is None:
        return JSONResponse({"error": "no node of that pool is waiting for an agent, or the token is wrong"}, 403)
    return JSONResponse({"nodeId": claimed[0], "nodeToken": claimed[1]})


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(
        BatchError(404, "InvalidUri", "The requested URI does not represent any resource on the server."),
        base_url(request),
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(
        BatchError(405, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb."),
        base_url(request),
    )


def build_app(settings: Settings, providers: list[NodeProvider] | None = None, store: Store | None = None) -> Starlette:
    """The service; `providers` replace the built-in ones (local, external, slurm) of the same names; `store`
    is one opened already (an instance that took the failover lease: service/failover.py).

    StoreError when the store cannot be opened (an unreachable database, one from a newer service)."""
    data_dir = Path(settings.data_dir)
    store = store or open_store(data_dir, settings.database)
    builtin: list[NodeProvider] = [
        LocalProvider(data_dir / "nodes", settings.service_urls),
        ExternalProvider(messages.lease_expiry(settings.timing.agent_lease)),
        SlurmProvider(settings.slurm, settings.service_urls, settings.account_name),
    ]
    chosen = {provider.name: provider for provider in [*builtin, *(providers or [])]}
    registry = ProviderRegistry(chosen.values(), default=LocalProvider.name)
    contract_rules.set_autoscale_min_interval(settings.autoscale.min_interval)
    clock = AdjustableClock() if settings.adjustable_clock else Clock()
    resources, application_registry = linked_resources(settings, store)
    engine = Engine(settings, store, registry, clock, resources)
    registry.bind(engine.node_ops)
    service = BatchService(engine, application_registry)
    metrics = ServiceMetrics(engine)
    store.transaction_observer = metrics.transaction_seconds.observe
    # the account's diagnostic settings (Microsoft.Insights), which can turn Service Logs on at any time
    linked = resources.storage
    diagnostic_settings = DiagnosticSettings(data_dir, linked.account_name if linked is not None else None)
    diagnostics = (
        DiagnosticLogService(
            engine,
            settings.account_name,
            settings.diagnostic_logs,
            diagnostic_settings,
            settings.storage_connection_string,
        )
        if settings.diagnostic_logs or linked is not None
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        if diagnostics is not None:
            diagnostics.start()
        try:
            yield
        finally:
            await service.stop()
            if diagnostics is not None:
                await diagnostics.stop()
            store.close()

    async def abandon() -> None:
        """Another instance took charge of the store (failover): stop this one's work, leaving the nodes and
        their runs to the new active instance."""
        await service.abandon()
        if diagnostics is not None:
            await diagnostics.stop()
        store.close()

    routes = [
        Route("/", readiness, methods=["GET"]),
        Route("/metrics", metrics_endpoint(settings.metrics_token), methods=["GET"]),
        WebSocketRoute(messages.AGENT_PATH, agent_endpoint),
        Route(messages.JOIN_PATH, join_endpoint, methods=["POST"]),
        *admin.routes,
        *diagnostic_stream.routes,
        *pools.routes,
        *autoscale.routes,
        *nodes.routes,
        *node_actions.routes,
        *node_extensions.routes,
        *certificates.routes,
        *jobs.routes,
        *schedules.routes,
        *tasks.routes,
        *files.routes,
        *applications.routes,
        *usage.routes,
        *principals.routes,
        *dashboard.routes,
        *management.routes,
        *identity_endpoints.routes,  # last: its paths start with a tenant id where Batch's start with a word
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
        middleware=[
            Middleware(AccountPaths, service_account=settings.account_name),
            Middleware(RequestMetrics, metrics=metrics),
        ],
    )
    # A path with a trailing slash is another path (404 InvalidUri), not a redirect to the one without: a Batch
    # client does not follow redirects, and `.../files/` names no file.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.service = service
    app.state.abandon = abandon
    app.state.metrics = metrics
    app.state.event_feed = diagnostics.feed if diagnostics is not None else None
    app.state.diagnostic_settings = diagnostic_settings
    app.state.dashboard_sessions = DashboardSessions()
    # the accounts, with keys and allowedAuthenticationModes as the management plane last set them
    app.state.accounts = AccountDirectory.open(
        store, data_dir, settings.account_name, settings.account_keys, settings.authentication_modes
    )
    app.state.identity = IdentityProvider.open(data_dir, settings.https_url) if settings.https_url else None
    return app


def close_event_streams(app: ASGIApp) -> None:
    """Before a stop: end the open event streams (`GET /_batchyard/events`), which a shutdown would wait for;
    on a failover instance, the active service's."""
    if isinstance(app, Starlette):
        if (feed := app.state.event_feed) is not None:
            feed.close()
    elif (close := getattr(app, "close_event_streams", None)) is not None:
        close()


def build_service(settings: Settings) -> ASGIApp:
    """What `batchyard serve` runs: the service; on PostgreSQL, one of several instances of which the failover
    lease's holder is active (service/failover.py). StoreError when the database cannot be used."""
    if not settings.database or not settings.database.startswith(POSTGRES_SCHEMES):
        return build_app(settings)
    from batchyard.service.failover import FailoverApp, check_database  # (psycopg: the `postgres` extra)

    check_database(settings.database)
    return FailoverApp(settings.database, settings.base_url, lambda store: build_app(settings, store=store))
