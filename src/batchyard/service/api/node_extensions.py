"""A node's VM extensions (Nodes_ListNodeExtensions, Nodes_GetNodeExtension): those its pool was created with,
then the one Azure Batch installs its node agent with on a Linux node (`batchNodeExtension`, a CustomScript
extension: Azure lists it after the pool's own, as azure-batch's test_batch_compute_node_extensions expects).

Nothing installs an extension on a local node; each is reported as Azure reports one that provisioned,
so clients that wait for their extensions go on. `protectedSettings` (secrets) are never answered.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import odata_element, service_of
from batchyard.service.api.nodes import find_node
from batchyard.service.clock import iso
from batchyard.service.engine.records import NodeRecord
from batchyard.service.http import endpoint, json_response, list_response, parse_max_results, parse_select

NODE_AGENT_EXTENSION = {"name": "batchNodeExtension", "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript"}


def _extensions(request: Request, node: NodeRecord) -> list[dict[str, Any]]:
    pool = service_of(request).pool(request.path_params["poolId"])
    own = (pool.doc.get("virtualMachineConfiguration") or {}).get("extensions") or []
    configured = [*own, NODE_AGENT_EXTENSION]
    provisioned = node.doc.get("allocationTime") or iso(service_of(request).now())
    return [_view(extension, provisioned) for extension in configured]


def _view(extension: dict[str, Any], provisioned: str) -> dict[str, Any]:
    status = {
        "code": "ProvisioningState/succeeded",
        "displayStatus": "Provisioning succeeded",
        "level": "Info",
        "time": provisioned,
    }
    return {
        "provisioningState": "Succeeded",
        "vmExtension": {key: value for key, value in extension.items() if key != "protectedSettings"},
        "instanceView": {"name": extension["name"], "statuses": [status], "subStatuses": []},
    }


def _selected(view: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    return view if select is None else {key: value for key, value in view.items() if key in select}


@endpoint
async def list_node_extensions(request: Request) -> Response:
    views = _extensions(request, find_node(request))[: parse_max_results(request)]
    select = parse_select(request)
    return list_response(request, "extensions", (_selected(view, select) for view in views), None)


@endpoint
async def get_node_extension(request: Request) -> Response:
    name = request.path_params["extensionName"]
    for view in _extensions(request, find_node(request)):
        if view["vmExtension"]["name"].lower() == name.lower():
            return json_response(odata_element(request, "extensions") | _selected(view, parse_select(request)))
    raise errors.not_found("NodeExtensionNotFound", "The specified node extension does not exist.")


routes = [
    Route("/pools/{poolId}/nodes/{nodeId}/extensions", list_node_extensions, methods=["GET"]),
    Route("/pools/{poolId}/nodes/{nodeId}/extensions/{extensionName}", get_node_extension, methods=["GET"]),
]
