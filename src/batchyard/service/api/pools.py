"""Pool routes: add, list, get, exists, delete, patch, update properties, resize, stop resize, remove nodes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import engine_of, url_for
from batchyard.service.api.documents import get_document, list_documents
from batchyard.service.api.usage import pool_stats
from batchyard.service.http import (
    accepted,
    check_conditions,
    created,
    endpoint,
    entity_headers,
    read_json,
)
from batchyard.service.models import catalog
from batchyard.service.models import pools as pool_models


def pool_url(request: Request, pool_id: str) -> str:
    return url_for(request, f"/pools/{pool_id}")


def _check_size_and_slots(spec: dict[str, Any], vm_size: str) -> None:
    """A known VM size (canonical name written back) and taskSlotsPerNode <= min(4 x cores, 256)."""
    size = catalog.lookup_vm_size(vm_size)
    if size is None:
        raise errors.invalid_property("vmSize", vm_size, "The specified VM size is not supported.")
    if "vmSize" in spec:
        spec["vmSize"] = size.name
    limit = min(256, 4 * size.cores)
    if int(spec.get("taskSlotsPerNode", 1)) > limit:
        raise errors.invalid_property(
            "taskSlotsPerNode", spec["taskSlotsPerNode"], f"The value must be at most {limit} for {size.name}."
        )


# BatchPoolUpdateOptions properties that "can be updated only when the pool is empty" (the contract).
_EMPTY_POOL_ONLY = (
    "displayName",
    "vmSize",
    "enableInterNodeCommunication",
    "virtualMachineConfiguration",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "networkConfiguration",
    "resourceTags",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
)


@endpoint
async def add_pool(request: Request) -> Response:
    spec = pool_models.parse_pool_create(await read_json(request))
    _check_size_and_slots(spec, spec["vmSize"])
    engine = engine_of(request)
    with engine.store.transaction():
        pool = engine.create_pool(spec)
    return created(pool_url(request, pool.doc["id"]), pool.doc)


@endpoint
async def list_pools(request: Request) -> Response:
    pools = engine_of(request).pools.values()
    return list_documents(
        request, "pools", "pools", pools, lambda p: pool_url(request, p.doc["id"]), lambda p: pool_stats(request, p)
    )


@endpoint
async def get_pool(request: Request) -> Response:
    pool = engine_of(request).get_pool(request.path_params["poolId"])
    return get_document(request, "pools", pool, pool_url(request, pool.doc["id"]), lambda p: pool_stats(request, p))


@endpoint
async def pool_exists(request: Request) -> Response:
    pool = engine_of(request).pools.get(request.path_params["poolId"].lower())
    if pool is None:
        return Response(status_code=404)
    check_conditions(request, pool.doc, reading=True)
    return Response(status_code=200, headers=entity_headers(pool.doc))


@endpoint
async def delete_pool(request: Request) -> Response:
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    check_conditions(request, pool.doc, reading=False)
    with engine.store.transaction():
        engine.delete_pool(pool)
    return accepted(202)


@endpoint
async def patch_pool(request: Request) -> Response:
    changes = pool_models.parse_pool_update(await read_json(request))
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    check_conditions(request, pool.doc, reading=False)
    if "vmSize" in changes or "taskSlotsPerNode" in changes:
        _check_size_and_slots(changes, changes.get("vmSize", pool.doc["vmSize"]))
    restricted = [name for name in _EMPTY_POOL_ONLY if name in changes]
    if restricted and (pool.node_ids or pool.doc.get("allocationState") != "steady"):
        raise errors.operation_invalid(
            f"{restricted[0]} can be updated only when the pool is empty (steady, with no compute nodes)."
        )
    with engine.store.transaction():
        engine.update_pool(pool, changes, replace=False)
    return accepted(200, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def update_pool_properties(request: Request) -> Response:
    changes = pool_models.parse_pool_replace(await read_json(request))
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    with engine.store.transaction():
        engine.update_pool(pool, changes, replace=True)
    return accepted(204, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def resize_pool(request: Request) -> Response:
    spec = pool_models.parse_pool_resize(await read_json(request))
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    check_conditions(request, pool.doc, reading=False)
    with engine.store.transaction():
        engine.resize_pool(pool, spec)
    return accepted(202, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def stop_resize(request: Request) -> Response:
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    check_conditions(request, pool.doc, reading=False)
    with engine.store.transaction():
        engine.stop_resize(pool)
    return accepted(202, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def remove_nodes(request: Request) -> Response:
    spec = pool_models.parse_pool_remove_nodes(await read_json(request))
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    check_conditions(request, pool.doc, reading=False)
    with engine.store.transaction():
        engine.remove_nodes(pool, spec)
    return accepted(202, pool.doc, pool_url(request, pool.doc["id"]))


routes = [
    Route("/pools", add_pool, methods=["POST"]),
    Route("/pools", list_pools, methods=["GET"]),
    # HEAD first: Starlette also routes HEAD to GET handlers.
    Route("/pools/{poolId}", pool_exists, methods=["HEAD"]),
    Route("/pools/{poolId}", get_pool, methods=["GET"]),
    Route("/pools/{poolId}", delete_pool, methods=["DELETE"]),
    Route("/pools/{poolId}", patch_pool, methods=["PATCH"]),
    Route("/pools/{poolId}/updateproperties", update_pool_properties, methods=["POST"]),
    Route("/pools/{poolId}/resize", resize_pool, methods=["POST"]),
    Route("/pools/{poolId}/stopresize", stop_resize, methods=["POST"]),
    Route("/pools/{poolId}/removenodes", remove_nodes, methods=["POST"]),
]
