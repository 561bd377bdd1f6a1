"""Compute node action routes: reboot, reimage, scheduling, deallocate/start, users, remote login, logs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import service_of, url_for
from batchyard.service.http import accepted, created, endpoint, json_response, read_json
from batchyard.service.models import nodes as node_models


def _node_url(request: Request) -> str:
    return url_for(request, f"/pools/{request.path_params['poolId']}/nodes/{request.path_params['nodeId']}")


def _addressed(request: Request) -> tuple[str, str]:
    """(pool id, node id) of the node the route names."""
    return request.path_params["poolId"], request.path_params["nodeId"]


async def _optional_body(request: Request) -> object:
    body = await read_json(request, optional=True)
    return body if body != {} else None


@endpoint
async def reboot(request: Request) -> Response:
    option = node_models.parse_node_reboot(await _optional_body(request))["nodeRebootOption"]
    service_of(request).restart_node(*_addressed(request), "reboot", option)
    return accepted(202, url=_node_url(request))


@endpoint
async def reimage(request: Request) -> Response:
    option = node_models.parse_node_reimage(await _optional_body(request))["nodeReimageOption"]
    service_of(request).restart_node(*_addressed(request), "reimage", option)
    return accepted(202, url=_node_url(request))


@endpoint
async def disable_scheduling(request: Request) -> Response:
    spec = node_models.parse_node_disable_scheduling(await _optional_body(request))
    service_of(request).disable_node_scheduling(*_addressed(request), spec["nodeDisableSchedulingOption"])
    return accepted(200, url=_node_url(request))


@endpoint
async def enable_scheduling(request: Request) -> Response:
    service_of(request).enable_node_scheduling(*_addressed(request))
    return accepted(200, url=_node_url(request))


@endpoint
async def deallocate(request: Request) -> Response:
    option = node_models.parse_node_deallocate(await _optional_body(request))["nodeDeallocateOption"]
    service_of(request).deallocate_node(*_addressed(request), option)
    return accepted(202, url=_node_url(request))


@endpoint
async def start(request: Request) -> Response:
    service_of(request).start_node(*_addressed(request))
    return accepted(202, url=_node_url(request))


@endpoint
async def add_user(request: Request) -> Response:
    spec = node_models.parse_node_user_create(await read_json(request))
    service_of(request).add_node_user(*_addressed(request), spec)
    return created(f"{_node_url(request)}/users/{spec['name']}", {})


@endpoint
async def replace_user(request: Request) -> Response:
    spec = node_models.parse_node_user_replace(await read_json(request, optional=True))
    name = request.path_params["userName"]
    service_of(request).replace_node_user(*_addressed(request), name, spec)
    return accepted(200, url=f"{_node_url(request)}/users/{name}")


@endpoint
async def delete_user(request: Request) -> Response:
    service_of(request).delete_node_user(*_addressed(request), request.path_params["userName"])
    return accepted(200)


@endpoint
async def remote_login_settings(request: Request) -> Response:
    return json_response(await service_of(request).remote_login_settings(*_addressed(request)))


@endpoint
async def remote_desktop(request: Request) -> Response:
    """GetRemoteDesktop of older api-versions (the legacy SDK's compute_node.get_remote_desktop)."""
    body = service_of(request).remote_desktop_file(*_addressed(request))
    return Response(body.encode(), media_type="application/octet-stream")


@endpoint
async def upload_logs(request: Request) -> Response:
    spec = node_models.parse_upload_batch_service_logs(await read_json(request))
    return json_response(await service_of(request).upload_node_logs(*_addressed(request), spec))


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
    Route(f"{_NODE}/rdp", remote_desktop, methods=["GET"]),
    Route(f"{_NODE}/uploadbatchservicelogs", upload_logs, methods=["POST"]),
]
