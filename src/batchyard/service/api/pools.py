"""Pool routes: add, list, get, exists, delete, patch, update properties, resize, stop resize, remove nodes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import conditions, service_of, url_for
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
from batchyard.service.models import pools as pool_models


def pool_url(request: Request, pool_id: str) -> str:
    return url_for(request, f"/pools/{pool_id}")


@endpoint
async def add_pool(request: Request) -> Response:
    spec = pool_models.parse_pool_create(await read_json(request))
    pool = service_of(request).create_pool(spec)
    return created(pool_url(request, pool.doc["id"]), pool.doc)


@endpoint
async def list_pools(request: Request) -> Response:
    pools = service_of(request).pools()
    return list_documents(
        request, "pools", "pools", pools, lambda p: pool_url(request, p.doc["id"]), lambda p: pool_stats(request, p)
    )


@endpoint
async def get_pool(request: Request) -> Response:
    pool = service_of(request).pool(request.path_params["poolId"])
    return get_document(request, "pools", pool, pool_url(request, pool.doc["id"]), lambda p: pool_stats(request, p))


@endpoint
async def pool_exists(request: Request) -> Response:
    pool = service_of(request).find_pool(request.path_params["poolId"])
    if pool is None:
        return Response(status_code=404)
    check_conditions(request, pool.doc, reading=True)
    return Response(status_code=200, headers=entity_headers(pool.doc))


@endpoint
async def delete_pool(request: Request) -> Response:
    service_of(request).delete_pool(request.path_params["poolId"], conditions(request))
    return accepted(202)


@endpoint
async def patch_pool(request: Request) -> Response:
    changes = pool_models.parse_pool_update(await read_json(request))
    pool = service_of(request).patch_pool(request.path_params["poolId"], changes, conditions(request))
    return accepted(200, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def update_pool_properties(request: Request) -> Response:
    changes = pool_models.parse_pool_replace(await read_json(request))
    pool = service_of(request).replace_pool_properties(request.path_params["poolId"], changes)
    return accepted(204, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def resize_pool(request: Request) -> Response:
    spec = pool_models.parse_pool_resize(await read_json(request))
    pool = service_of(request).resize_pool(request.path_params["poolId"], spec, conditions(request))
    return accepted(202, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def stop_resize(request: Request) -> Response:
    pool = service_of(request).stop_resize_pool(request.path_params["poolId"], conditions(request))
    return accepted(202, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def remove_nodes(request: Request) -> Response:
    spec = pool_models.parse_pool_remove_nodes(await read_json(request))
    pool = service_of(request).remove_nodes(request.path_params["poolId"], spec, conditions(request))
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
