"""Job routes: add, list, get, delete, patch, update (replace), disable, enable, terminate, task counts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import conditions, list_filter, page, service_of, skip_token, url_for
from batchyard.service.api.documents import get_document, list_documents
from batchyard.service.api.usage import job_stats
from batchyard.service.http import (
    accepted,
    base_url,
    created,
    endpoint,
    json_response,
    list_response,
    parse_max_results,
    read_json,
)
from batchyard.service.models import jobs as job_models


def _job_url(request: Request, job_id: str) -> str:
    return url_for(request, f"/jobs/{job_id}")


@endpoint
async def add_job(request: Request) -> Response:
    spec = job_models.parse_job_create(await read_json(request))
    job = service_of(request).create_job(spec)
    return created(_job_url(request, job.doc["id"]), job.doc)


@endpoint
async def list_jobs(request: Request) -> Response:
    jobs = service_of(request).jobs()
    return list_documents(
        request, "jobs", "jobs", jobs, lambda j: _job_url(request, j.doc["id"]), lambda j: job_stats(request, j)
    )


@endpoint
async def get_job(request: Request) -> Response:
    job = service_of(request).job(request.path_params["jobId"])
    return get_document(request, "jobs", job, _job_url(request, job.doc["id"]), lambda j: job_stats(request, j))


@endpoint
async def delete_job(request: Request) -> Response:
    service_of(request).delete_job(request.path_params["jobId"], conditions(request))
    return accepted(202)


@endpoint
async def patch_job(request: Request) -> Response:
    changes = job_models.parse_job_update(await read_json(request))
    job = service_of(request).update_job(request.path_params["jobId"], changes, False, conditions(request))
    return accepted(200, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def replace_job(request: Request) -> Response:
    changes = job_models.parse_job_replace(await read_json(request))
    job = service_of(request).update_job(request.path_params["jobId"], changes, True, conditions(request))
    return accepted(200, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def disable_job(request: Request) -> Response:
    spec = job_models.parse_job_disable(await read_json(request))
    job = service_of(request).disable_job(request.path_params["jobId"], spec["disableTasks"], conditions(request))
    return accepted(202, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def enable_job(request: Request) -> Response:
    job = service_of(request).enable_job(request.path_params["jobId"], conditions(request))
    return accepted(202, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def terminate_job(request: Request) -> Response:
    spec = job_models.parse_job_terminate(await read_json(request, optional=True))
    reason = spec.get("terminateReason")
    job = service_of(request).terminate_job(request.path_params["jobId"], reason, conditions(request))
    return accepted(202, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def task_counts(request: Request) -> Response:
    counts = service_of(request).task_counts(request.path_params["jobId"])
    metadata = f"{base_url(request)}/$metadata#taskcountsresult/@Element"
    return json_response({"odata.metadata": metadata, **counts})


@endpoint
async def preparation_and_release_status(request: Request) -> Response:
    statuses = service_of(request).preparation_statuses(request.path_params["jobId"])
    keep = list_filter(request, "jobPrepReleaseStatus")
    indexed = list(enumerate((status for status in statuses if keep(status)), start=1))
    chosen, token = page(indexed, lambda pair: pair[0], skip_token(request), parse_max_results(request))
    return list_response(request, "jobpreparationandreleasetaskstatuslist", (_status_view(s) for _, s in chosen), token)


def _status_view(status: dict[str, Any]) -> dict[str, Any]:
    view = dict(status)
    for part in ("jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo"):
        if part in view and "taskRootDirectory" in view[part]:
            url = f"{view['nodeUrl']}/files/{view[part]['taskRootDirectory']}"
            view[part] = dict(view[part], taskRootDirectoryUrl=url)
    return view


routes = [
    Route("/jobs", add_job, methods=["POST"]),
    Route("/jobs", list_jobs, methods=["GET"]),
    Route("/jobs/{jobId}", get_job, methods=["GET"]),
    Route("/jobs/{jobId}", delete_job, methods=["DELETE"]),
    Route("/jobs/{jobId}", patch_job, methods=["PATCH"]),
    Route("/jobs/{jobId}", replace_job, methods=["PUT"]),
    Route("/jobs/{jobId}/disable", disable_job, methods=["POST"]),
    Route("/jobs/{jobId}/enable", enable_job, methods=["POST"]),
    Route("/jobs/{jobId}/terminate", terminate_job, methods=["POST"]),
    Route("/jobs/{jobId}/taskcounts", task_counts, methods=["GET"]),
    Route("/jobs/{jobId}/jobpreparationandreleasetaskstatus", preparation_and_release_status, methods=["GET"]),
]
