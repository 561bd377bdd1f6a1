"""Compute node action routes: reboot, reimage, scheduling, deallocate/start, users, remote login, logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import engine_of, url_for
from batchyard.service.api.nodes import find_node
from batchyard.service.http import accepted, created, endpoint, json_response, read_json
from batchyard.service.models import nodes as node_models


def _node_url(request: Request) -> str:
    return url_for(request, f"/pools/{request.path_params['poolId']}/nodes/{request.path_params['nodeId']}")


async def _optional_body(request: Request) -> object:
    body = await read_json(request, optional=True)
    return body if body != {} else None


def _act(request: Request, status: int, action: Callable[[Any, Any], None]) -> Response:
    """Run `action(engine, node)` on the addressed node in one transaction; the accepted answer."""
    engine = engine_of(request)
    node = find_node(request)
    with engine.store.transaction():
        action(engine, node)
    return accepted(status, url=_node_url(request))


@endpoint
async def reboot(request: Request) -> Response:
    option = node_models.parse_node_reboot(await _optional_body(request))["nodeRebootOption"]
    return _act(request, 202, lambda engine, node: engine.restart_node(node, "reboot", option))


@endpoint
async def reimage(request: Request) -> Response:
    option = node_models.parse_node_reimage(await _optional_body(request))["nodeReimageOption"]
    return _act(request, 202, lambda engine, node: engine.restart_node(node, "reimage", option))


@endpoint
async def disable_scheduling(request: Request) -> Response:
    spec = node_models.parse_node_disable_scheduling(await _optional_body(request))
    option = spec["nodeDisableSchedulingOption"]
    return _act(request, 200, lambda engine, node: engine.disable_scheduling(node, option))


@endpoint
async def enable_scheduling(request: Request) -> Response:
    return _act(request, 200, lambda engine, node: engine.enable_scheduling(node))


@endpoint
async def deallocate(request: Request) -> Response:
    option = node_models.parse_node_deallocate(await _optional_body(request))["nodeDeallocateOption"]
    return _act(request, 202, lambda engine, node: engine.deallocate_node(node, option))


@endpoint
async def start(request: Request) -> Response:
    return _act(request, 202, lambda engine, node: engine.start_node(node))


@endpoint
async def add_user(request: Request) -> Response:
    spec = node_models.parse_node_user_create(await read_json(request))
    engine = engine_of(request)
    node = find_node(request)
    with engine.store.transaction():
        engine.add_user(node, spec)
    return created(f"{_node_url(request)}/users/{spec['name']}", {})


@endpoint
async def replace_user(request: Request) -> Response:
    spec = node_models.parse_node_user_replace(await read_json(request, optional=True))
    engine = engine_of(request)
    node = find_node(request)
    with engine.store.transaction():
        engine.replace_user(node, request.path_params["userName"], spec)
    return accepted(200, url=f"{_node_url(request)}/users/{request.path_params['userName']}")


@endpoint
async def delete_user(request: Request) -> Response:
    engine = engine_of(request)
    node = find_node(request)
    with engine.store.transaction():
        engine.delete_user(node, request.path_params["userName"])
    return accepted(200)


@endpoint
async def remote_login_settings(request: Request) -> Response:
    engine = engine_of(request)
    settings = await engine.remote_login_settings(find_node(request))
    return json_response(settings)


@endpoint
async def upload_logs(request: Request) -> Response:
    spec = node_models.parse_upload_batch_service_logs(await read_json(request))
    engine = engine_of(request)
    result = await engine.upload_logs(find_node(request), spec)
    return json_response(result)


_NODE = "/pools/{poolId}/nodes/{nodeId}"

routes = [
    Route(f"{_NODE}/reboot", reboot, methods=["POST"]),
    Route(f"{_NODE}/reimage", reimage, methods=["POST"]),
    Route(f"{_NODE}/disablescheduling", disable_scheduling, methods=["POST"]),
    Route(f"{_NODE}/enablescheduling", enable_scheduling, methods=["POST"]),
    Route(f"{_NODE}/deallocate", deallocate, methods=["POST"]),
    Route(f"{_NODE}/start", start, methods=["POST"]),
    Route(f"{_NODE}/users", add_user, methods=["POST"]),
    Route(f"{_NODE}/users/{{userName}}", replace_user, methods=["PUT"]),
    Route(f"{_NODE}/users/{{userName}}", delete_user, methods=["DELETE"]),
    Route(f"{_NODE}/remoteloginsettings", remote_login_settings, methods=["GET"]),
    Route(f"{_NODE}/uploadbatchservicelogs", upload_logs, methods=["POST"]),
]
