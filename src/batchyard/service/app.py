"""The ASGI application: routes of every resource, the agent endpoint, and the engine's lifetime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from batchyard.protocol import messages
from batchyard.providers.base import NodeProvider
from batchyard.providers.external import ExternalProvider
from batchyard.providers.local import LocalProvider
from batchyard.providers.registry import ProviderRegistry
from batchyard.service import errors
from batchyard.service.api import (
    applications,
    autoscale,
    certificates,
    files,
    jobs,
    node_actions,
    nodes,
    pools,
    schedules,
    tasks,
    usage,
)
from batchyard.service.auth import SharedKeyAccount
from batchyard.service.clock import AdjustableClock, Clock, iso
from batchyard.service.config import Settings
from batchyard.service.engine.engine import Engine
from batchyard.service.errors import BatchError
from batchyard.service.gateway import AgentSession
from batchyard.service.http import endpoint, error_response, read_json
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.storage.runs import attach_storage


async def readiness(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    return JSONResponse({"service": "batchyard", "account": settings.account_name, "url": settings.base_url})


async def agent_endpoint(websocket: WebSocket) -> None:
    engine: Engine = websocket.app.state.engine
    node_id = websocket.headers.get(messages.NODE_HEADER, "")
    token = websocket.headers.get(messages.TOKEN_HEADER, "")
    if not engine.node_token_ok(node_id, token):
        await websocket.close(code=4403)
        return
    await websocket.accept()
    await engine.agent_session(AgentSession(node_id, websocket))


async def join_endpoint(request: Request) -> Response:
    """An agent on another host trades its pool's join token for one node's identity."""
    engine: Engine = request.app.state.engine
    try:
        body = await request.json()
        claimed = engine.claim_node(str(body["pool"]), str(body["token"]))
    except (ValueError, KeyError, TypeError):
        claimed = None
    if claimed is None:
        return JSONResponse({"error": "no node of that pool is waiting for an agent, or the token is wrong"}, 403)
    return JSONResponse({"nodeId": claimed[0], "nodeToken": claimed[1]})


@endpoint
async def advance_clock(request: Request) -> Response:
    """Tests only (`--adjustable-clock`): move the service's clock forward and run housekeeping at once."""
    engine: Engine = request.app.state.engine
    if not isinstance(engine.clock, AdjustableClock):
        raise BatchError(404, "InvalidUri", "The requested URI does not represent any resource on the server.")
    body = await read_json(request)
    seconds = body.get("advanceSeconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise errors.invalid_property("advanceSeconds", seconds, "A number of seconds >= 0 is required.")
    now = engine.clock.advance(float(seconds))
    with engine.store.transaction():
        engine.housekeeping()
    return JSONResponse({"now": iso(now)})


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(
        BatchError(404, "InvalidUri", "The requested URI does not represent any resource on the server."),
        request.app.state.settings.base_url,
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(
        BatchError(405, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb."),
        request.app.state.settings.base_url,
    )


def build_app(settings: Settings, providers: list[NodeProvider] | None = None) -> Starlette:
    """The service; `providers` replace the built-in ones (local, external) of the same names."""
    data_dir = Path(settings.data_dir)
    store = SqliteStore(data_dir / "batchyard.db")
    builtin: list[NodeProvider] = [LocalProvider(data_dir / "nodes", settings.base_url), ExternalProvider()]
    chosen = {provider.name: provider for provider in [*builtin, *(providers or [])]}
    registry = ProviderRegistry(chosen.values(), default=LocalProvider.name)
    clock = AdjustableClock() if settings.adjustable_clock else Clock()
    engine = Engine(settings, store, registry, clock)
    registry.bind(engine)
    app_registry = attach_storage(engine, settings, store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()
            store.close()

    routes = [
        Route("/", readiness, methods=["GET"]),
        WebSocketRoute(messages.AGENT_PATH, agent_endpoint),
        Route(messages.JOIN_PATH, join_endpoint, methods=["POST"]),
        Route("/_batchyard/clock", advance_clock, methods=["POST"]),
        *pools.routes,
        *autoscale.routes,
        *nodes.routes,
        *node_actions.routes,
        *certificates.routes,
        *jobs.routes,
        *schedules.routes,
        *tasks.routes,
        *files.routes,
        *applications.routes,
        *usage.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.applications = app_registry
    app.state.account = SharedKeyAccount(settings.account_name, settings.account_keys)
    return app
