"""Service administration routes under `/_batchyard/` (not in the Batch contract), Shared Key signed.

GET  /_batchyard/pools/{poolId}/jointoken   {poolId, joinToken}: what agents on other hosts present to
                                            join the pool (`batchyard join-token` prints it)
POST /_batchyard/pools/{poolId}/nodes/{nodeId}/preempt
                                            preempt a Spot/low-priority node now, as its cloud would
                                            (`batchyard nodes preempt`; engine/preemption.py): 202
GET  /_batchyard/jobs/{jobId}/tasks/{taskId}/history
                                            {jobId, taskId, creationTime, transitions: [{state, time,
                                            retryCount, requeueCount}], truncated}: the task's last state
                                            transitions (engine/task_history.py; the dashboard's task page)
POST /_batchyard/clock {advanceSeconds}     tests only (`--adjustable-clock`): move the clock forward
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import service_of, url_for
from batchyard.service.clock import iso
from batchyard.service.engine.task_history import history
from batchyard.service.errors import BatchError
from batchyard.service.http import accepted, endpoint, json_response, read_json


@endpoint
async def join_token(request: Request) -> Response:
    pool_id = request.path_params["poolId"]
    service = service_of(request)
    # what the joining agent names the pool by (`account/id` for an account other than the service's own)
    return json_response({"poolId": service.pool_name(pool_id), "joinToken": service.join_token(pool_id)})


@endpoint
async def preempt_node(request: Request) -> Response:
    pool_id, node_id = request.path_params["poolId"], request.path_params["nodeId"]
    service_of(request).preempt_node(pool_id, node_id)
    return accepted(202, url=url_for(request, f"/pools/{pool_id}/nodes/{node_id}"))


@endpoint
async def task_history(request: Request) -> Response:
    job_id, task_id = request.path_params["jobId"], request.path_params["taskId"]
    job, doc = service_of(request).task(job_id, task_id)
    return json_response({"jobId": job.doc["id"], "taskId": doc["id"], **history(doc)})


@endpoint
async def advance_clock(request: Request) -> Response:
    """Move the service's clock forward and run housekeeping at once."""
    service = service_of(request)
    if not service.clock_is_adjustable:
        raise BatchError(404, "InvalidUri", "The requested URI does not represent any resource on the server.")
    body = await read_json(request)
    seconds = body.get("advanceSeconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise errors.invalid_property("advanceSeconds", seconds, "A number of seconds >= 0 is required.")
    return JSONResponse({"now": iso(service.advance_clock(float(seconds)))})


routes = [
    Route("/_batchyard/pools/{poolId}/jointoken", join_token, methods=["GET"]),
    Route("/_batchyard/pools/{poolId}/nodes/{nodeId}/preempt", preempt_node, methods=["POST"]),
    Route("/_batchyard/jobs/{jobId}/tasks/{taskId}/history", task_history, methods=["GET"]),
    Route("/_batchyard/clock", advance_clock, methods=["POST"]),
]
