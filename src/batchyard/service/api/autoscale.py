"""Autoscale routes: enable, disable and evaluate (the contract), and a debugging evaluation.

`POST /_batchyard/pools/{poolId}/evaluateautoscale` (Shared Key signed like every request) is not in
the Batch contract: it evaluates a formula against the pool's live samples whether or not autoscale
is on, and answers every variable with its type, each statement's value and the samples available,
so a formula can be developed before it is applied (`batchyard autoscale evaluate` prints it).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import engine_of
from batchyard.service.api.pools import pool_url
from batchyard.service.engine.autoscale import run_document
from batchyard.service.http import accepted, check_conditions, endpoint, entity_headers, json_response, read_json
from batchyard.service.models import pools as pool_models


@endpoint
async def enable_autoscale(request: Request) -> Response:
    spec = pool_models.parse_pool_enable_autoscale(await read_json(request))
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    check_conditions(request, pool.doc, reading=False)
    with engine.store.transaction():
        engine.enable_autoscale(pool, spec)
    return accepted(200, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def disable_autoscale(request: Request) -> Response:
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    with engine.store.transaction():
        engine.disable_autoscale(pool)
    return accepted(200, pool.doc, pool_url(request, pool.doc["id"]))


@endpoint
async def evaluate_autoscale(request: Request) -> Response:
    spec = pool_models.parse_pool_evaluate_autoscale(await read_json(request))
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    run = engine.evaluate_autoscale(pool, spec["autoScaleFormula"])
    headers = {**entity_headers(pool.doc), "DataServiceId": pool_url(request, pool.doc["id"])}
    return json_response(run, headers)


@endpoint
async def debug_evaluate(request: Request) -> Response:
    spec = pool_models.parse_pool_evaluate_autoscale(await read_json(request))
    engine = engine_of(request)
    pool = engine.get_pool(request.path_params["poolId"])
    now = engine.now()
    result = engine.debug_evaluate(pool, spec["autoScaleFormula"], now)
    body: dict[str, Any] = run_document(result, now)
    body["targets"] = {
        "targetDedicatedNodes": result.target_dedicated,
        "targetLowPriorityNodes": result.target_low_priority,
        "nodeDeallocationOption": result.dealloc,
    }
    body["variables"] = [{"name": name, "type": kind, "value": value} for name, kind, value in result.variables]
    body["statements"] = [
        {"index": step.index, "line": step.line, "column": step.col, "text": step.text, "value": step.value}
        for step in result.trace
    ]
    timing = engine.settings.autoscale
    readable_before = now.timestamp() - timing.delay
    body["samplePeriodSeconds"] = timing.sample_period
    body["sampleDelaySeconds"] = timing.delay
    body["samples"] = [
        {
            "name": name,
            "recorded": len(history),
            "readable": sum(1 for when, _ in history.samples if when <= readable_before),
            "latest": history.samples[-1][1] if len(history) else None,
        }
        for name, history in sorted(engine.histories.get(pool.key, {}).items())
    ]
    return json_response(body)


routes = [
    Route("/pools/{poolId}/enableautoscale", enable_autoscale, methods=["POST"]),
    Route("/pools/{poolId}/disableautoscale", disable_autoscale, methods=["POST"]),
    Route("/pools/{poolId}/evaluateautoscale", evaluate_autoscale, methods=["POST"]),
    Route("/_batchyard/pools/{poolId}/evaluateautoscale", debug_evaluate, methods=["POST"]),
]
