"""Autoscale routes: enable, disable and evaluate (the contract), and a debugging evaluation.

`POST /_batchyard/pools/{poolId}/evaluateautoscale` (Shared Key signed like every request) is not in
the Batch contract: it evaluates a formula against the pool's live samples whether or not autoscale
is on, and answers every variable with its type, each statement's value and the samples available,
so a formula can be developed before it is applied (`batchyard autoscale evaluate` prints it).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import conditions, service_of
from batchyard.service.api.pools import pool_url
from batchyard.service.http import accepted, endpoint, entity_headers, json_response, read_json
from batchyard.service.models import pools as pool_models


@endpoint
async def enable_autoscale(request: Request) -> Response:
    spec = pool_models.parse_pool_enable_autoscale(await read_json(request))
    pool = service_of(request).enable_autoscale(request.path_params["poolId"], spec, conditions(request))
    return accepted(200, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def disable_autoscale(request: Request) -> Response:
    pool = service_of(request).disable_autoscale(request.path_params["poolId"])
    return accepted(200, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def evaluate_autoscale(request: Request) -> Response:
    spec = pool_models.parse_pool_evaluate_autoscale(await read_json(request))
    pool, run = service_of(request).evaluate_autoscale(request.path_params["poolId"], spec["autoScaleFormula"])
    headers = {**entity_headers(pool.doc), "DataServiceId": pool_url(request, pool.doc["id"])}
    return json_response(run, headers)


@endpoint
async def debug_evaluate(request: Request) -> Response:
    spec = pool_models.parse_pool_evaluate_autoscale(await read_json(request))
    return json_response(service_of(request).debug_autoscale(request.path_params["poolId"], spec["autoScaleFormula"]))


routes = [
    Route("/pools/{poolId}/enableautoscale", enable_autoscale, methods=["POST"]),
    Route("/pools/{poolId}/disableautoscale", disable_autoscale, methods=["POST"]),
    Route("/pools/{poolId}/evaluateautoscale", evaluate_autoscale, methods=["POST"]),
    Route("/_batchyard/pools/{poolId}/evaluateautoscale", debug_evaluate, methods=["POST"]),
]
