"""Compute node routes (list, get), pool node counts and the supported images list."""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import list_filter, odata_element, page, service_of, skip_token, url_for
from batchyard.service.engine.records import NodeRecord
from batchyard.service.http import (
    endpoint,
    json_response,
    list_response,
    parse_max_results,
    parse_select,
    present,
)
from batchyard.service.models import catalog

# Wire names of node states in BatchNodeCounts.
_COUNT_NAMES = {
    "creating": "creating",
    "idle": "idle",
    "offline": "offline",
    "preempted": "preempted",
    "rebooting": "rebooting",
    "reimaging": "reimaging",
    "running": "running",
    "starting": "starting",
    "starttaskfailed": "startTaskFailed",
    "leavingpool": "leavingPool",
    "unknown": "unknown",
    "unusable": "unusable",
    "waitingforstarttask": "waitingForStartTask",
    "deallocated": "deallocated",
    "deallocating": "deallocating",
    "upgradingos": "upgradingOS",
}


def node_view(request: Request, node: NodeRecord, select: set[str] | None = None) -> dict[str, Any]:
    service = service_of(request)
    doc = service.node_document(node)
    return present(doc, url_for(request, f"/pools/{service.pool_id_of(node)}/nodes/{node.id}"), select)


def find_node(request: Request) -> NodeRecord:
    return service_of(request).node(request.path_params["poolId"], request.path_params["nodeId"])


@endpoint
async def list_nodes(request: Request) -> Response:
    keep = list_filter(request, "nodes")
    nodes = service_of(request).pool_nodes(request.path_params["poolId"])
    select = parse_select(request)
    views = [(node.seq, node_view(request, node)) for node in nodes]
    chosen, token = page(
        [v for v in views if keep(v[1])], lambda v: v[0], skip_token(request), parse_max_results(request)
    )
    if select is not None:
        return list_response(
            request, "nodes", ({k: v for k, v in view.items() if k in select} for _, view in chosen), token
        )
    return list_response(request, "nodes", (view for _, view in chosen), token)


@endpoint
async def get_node(request: Request) -> Response:
    node = find_node(request)
    return json_response(odata_element(request, "nodes") | node_view(request, node, parse_select(request)))


@endpoint
async def pool_node_counts(request: Request) -> Response:
    keep = list_filter(request, "poolNodeCounts")
    service = service_of(request)
    pools = sorted((p for p in service.pools() if keep({"poolId": p.doc["id"]})), key=lambda p: p.seq)
    chosen, token = page(pools, lambda p: p.seq, skip_token(request), parse_max_results(request, 10, 10))
    items = []
    for pool in chosen:
        dedicated, low = (_state_counts(service.node_states(pool, kind)) for kind in (True, False))
        items.append({"poolId": pool.doc["id"], "dedicated": dedicated, "lowPriority": low})
    return list_response(request, "poolnodecounts", items, token)


def _state_counts(states: list[str]) -> dict[str, int]:
    """BatchNodeCounts: how many nodes are in each state, and in all."""
    counts = Counter(states)
    return {name: counts.get(state, 0) for state, name in _COUNT_NAMES.items()} | {"total": len(states)}


@endpoint
async def supported_images(request: Request) -> Response:
    keep = list_filter(request, "supportedImages")
    images = [image for image in catalog.supported_images() if keep(image)]
    indexed = list(enumerate(images, start=1))
    chosen, token = page(indexed, lambda pair: pair[0], skip_token(request), parse_max_results(request))
    return list_response(request, "supportedimages", (image for _, image in chosen), token)


routes = [
    Route("/pools/{poolId}/nodes", list_nodes, methods=["GET"]),
    Route("/pools/{poolId}/nodes/{nodeId}", get_node, methods=["GET"]),
    Route("/nodecounts", pool_node_counts, methods=["GET"]),
    Route("/supportedimages", supported_images, methods=["GET"]),
]
