"""Job routes: add, list, get, delete, patch, update (replace), disable, enable, terminate, task counts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import engine_of, list_filter, page, skip_token, url_for
from batchyard.service.api.documents import get_document, list_documents
from batchyard.service.api.usage import job_stats
from batchyard.service.http import (
    accepted,
    check_conditions,
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
    engine = engine_of(request)
    engine.check_job_quota()
    with engine.store.transaction():
        job = engine.create_job(spec)
    return created(_job_url(request, job.doc["id"]), job.doc)


@endpoint
async def list_jobs(request: Request) -> Response:
    jobs = engine_of(request).jobs.values()
    return list_documents(
        request, "jobs", "jobs", jobs, lambda j: _job_url(request, j.doc["id"]), lambda j: job_stats(request, j)
    )


@endpoint
async def get_job(request: Request) -> Response:
    job = engine_of(request).get_job(request.path_params["jobId"])
    return get_document(request, "jobs", job, _job_url(request, job.doc["id"]), lambda j: job_stats(request, j))


@endpoint
async def delete_job(request: Request) -> Response:
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    check_conditions(request, job.doc, reading=False)
    with engine.store.transaction():
        engine.delete_job(job)
    return accepted(202)


@endpoint
async def patch_job(request: Request) -> Response:
    changes = job_models.parse_job_update(await read_json(request))
    return await _update(request, changes, replace=False)


@endpoint
async def replace_job(request: Request) -> Response:
    changes = job_models.parse_job_replace(await read_json(request))
    return await _update(request, changes, replace=True)


def _same_pool(given: dict, current: dict) -> bool:  # type: ignore[type-arg]
    """A poolInfo naming the job's current pool (PUT must send one; only a change needs a disabled job)."""
    pool_id = given.get("poolId")
    return (
        bool(pool_id)
        and "autoPoolSpecification" not in given
        and pool_id.lower() == str(current.get("poolId") or "").lower()
    )


async def _update(request: Request, changes: dict, replace: bool) -> Response:  # type: ignore[type-arg]
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    check_conditions(request, job.doc, reading=False)
    if "poolInfo" in changes and _same_pool(changes["poolInfo"], job.doc.get("poolInfo") or {}):
        changes = {k: v for k, v in changes.items() if k != "poolInfo"}
    if (
        not replace
        and changes.get("onAllTasksComplete") == "noaction"
        and job.doc.get("onAllTasksComplete") == "terminatejob"
    ):
        raise errors.invalid_property(
            "onAllTasksComplete", "noaction", "The value cannot be changed from terminatejob to noaction."
        )
    with engine.store.transaction():
        engine.update_job(job, changes, replace=replace)
    return accepted(200, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def disable_job(request: Request) -> Response:
    spec = job_models.parse_job_disable(await read_json(request))
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    check_conditions(request, job.doc, reading=False)
    with engine.store.transaction():
        engine.disable_job(job, spec["disableTasks"])
    return accepted(202, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def enable_job(request: Request) -> Response:
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    check_conditions(request, job.doc, reading=False)
    with engine.store.transaction():
        engine.enable_job(job)
    return accepted(202, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def terminate_job(request: Request) -> Response:
    spec = job_models.parse_job_terminate(await read_json(request, optional=True))
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    check_conditions(request, job.doc, reading=False)
    with engine.store.transaction():
        engine.terminate_job(job, spec.get("terminateReason"))
    return accepted(202, job.doc, _job_url(request, job.doc["id"]))


@endpoint
async def task_counts(request: Request) -> Response:
    job = engine_of(request).get_job(request.path_params["jobId"])
    counts = job.counts
    slots = job.slot_counts
    return json_response(
        {
            "odata.metadata": f"{request.app.state.settings.base_url}/$metadata#taskcountsresult/@Element",
            "taskCounts": {
                "active": counts["active"],
                "running": counts["running"] + counts["preparing"],
                "completed": counts["completed"],
                "succeeded": job.succeeded,
                "failed": job.failed,
            },
            "taskSlotCounts": {
                "active": slots["active"],
                "running": slots["running"] + slots["preparing"],
                "completed": slots["completed"],
                "succeeded": job.succeeded_slots,
                "failed": job.failed_slots,
            },
        }
    )


@endpoint
async def preparation_and_release_status(request: Request) -> Response:
    job = engine_of(request).get_job(request.path_params["jobId"])
    if not job.doc.get("jobPreparationTask") and not job.doc.get("jobReleaseTask"):
        raise errors.conflict(
            "JobPreparationTaskOrReleaseTaskNotSpecified", "The job has no job preparation or release task."
        )
    keep = list_filter(request, "jobPrepReleaseStatus")
    statuses = [status for status in job.prep.values() if keep(status)]
    indexed = list(enumerate(statuses, start=1))
    chosen, token = page(indexed, lambda pair: pair[0], skip_token(request), parse_max_results(request))
    return list_response(request, "jobpreparationandreleasetaskstatuslist", (_status_view(s) for _, s in chosen), token)


def _status_view(status: dict) -> dict:  # type: ignore[type-arg]
    view = {k: v for k, v in status.items() if not k.startswith("_")}
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
