"""Job schedule routes: add, list, get, exists, patch, replace, disable, enable, terminate, delete, its jobs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import engine_of, list_filter, page, skip_token, url_for
from batchyard.service.api.documents import get_document, list_documents
from batchyard.service.api.usage import job_stats, schedule_stats, wants_stats, with_stats
from batchyard.service.engine.schedules import ScheduleRt
from batchyard.service.http import (
    accepted,
    check_conditions,
    created,
    endpoint,
    entity_headers,
    list_response,
    parse_max_results,
    parse_select,
    present,
    read_json,
)
from batchyard.service.models import jobs as job_models


def _url(request: Request, schedule_id: str) -> str:
    return url_for(request, f"/jobschedules/{schedule_id}")


def _schedule(request: Request, reading: bool) -> ScheduleRt:
    schedule = engine_of(request).get_schedule(request.path_params["scheduleId"])
    check_conditions(request, schedule.doc, reading=reading)
    return schedule


@endpoint
async def add_schedule(request: Request) -> Response:
    spec = job_models.parse_job_schedule_create(await read_json(request))
    engine = engine_of(request)
    with engine.store.transaction():
        schedule = engine.create_schedule(spec)
    return created(_url(request, schedule.doc["id"]), schedule.doc)


@endpoint
async def list_schedules(request: Request) -> Response:
    schedules = engine_of(request).schedules.values()
    return list_documents(
        request,
        "jobSchedules",
        "jobschedules",
        schedules,
        lambda s: _url(request, s.doc["id"]),
        lambda s: schedule_stats(request, s),
    )


@endpoint
async def get_schedule(request: Request) -> Response:
    schedule = engine_of(request).get_schedule(request.path_params["scheduleId"])
    return get_document(
        request, "jobschedules", schedule, _url(request, schedule.doc["id"]), lambda s: schedule_stats(request, s)
    )


@endpoint
async def schedule_exists(request: Request) -> Response:
    schedule = engine_of(request).schedules.get(request.path_params["scheduleId"].lower())
    if schedule is None:
        return Response(status_code=404)
    check_conditions(request, schedule.doc, reading=True)
    return Response(status_code=200, headers=entity_headers(schedule.doc))


async def _change(request: Request, action: str, status: int, body: dict[str, Any] | None = None) -> Response:
    engine = engine_of(request)
    schedule = _schedule(request, reading=False)
    with engine.store.transaction():
        if action == "patch":
            engine.update_schedule(schedule, body or {}, replace=False)
        elif action == "replace":
            engine.update_schedule(schedule, body or {}, replace=True)
        elif action == "disable":
            engine.disable_schedule(schedule)
        elif action == "enable":
            engine.enable_schedule(schedule)
        elif action == "terminate":
            engine.terminate_schedule(schedule)
        elif action == "delete":
            engine.delete_schedule(schedule)
            return accepted(status)
    return accepted(status, schedule.doc, _url(request, schedule.doc["id"]))


@endpoint
async def patch_schedule(request: Request) -> Response:
    return await _change(request, "patch", 200, job_models.parse_job_schedule_update(await read_json(request)))


@endpoint
async def replace_schedule(request: Request) -> Response:
    return await _change(request, "replace", 200, job_models.parse_job_schedule_replace(await read_json(request)))


@endpoint
async def disable_schedule(request: Request) -> Response:
    return await _change(request, "disable", 204)


@endpoint
async def enable_schedule(request: Request) -> Response:
    return await _change(request, "enable", 204)


@endpoint
async def terminate_schedule(request: Request) -> Response:
    return await _change(request, "terminate", 202)


@endpoint
async def delete_schedule(request: Request) -> Response:
    return await _change(request, "delete", 202)


@endpoint
async def list_schedule_jobs(request: Request) -> Response:
    engine = engine_of(request)
    schedule = engine.get_schedule(request.path_params["scheduleId"])
    keep = list_filter(request, "jobScheduleJobs")
    select = parse_select(request)
    jobs = sorted((j for j in engine.jobs_of_schedule(schedule) if keep(j.doc)), key=lambda j: j.seq)
    chosen, token = page(jobs, lambda j: j.seq, skip_token(request), parse_max_results(request))
    expand = wants_stats(request)
    views = (
        with_stats(
            present(j.doc, url_for(request, f"/jobs/{j.doc['id']}"), select),
            select,
            expand,
            lambda j=j: job_stats(request, j),
        )
        for j in chosen
    )
    return list_response(request, "jobs", views, token)


_ONE = "/jobschedules/{scheduleId}"
routes = [
    Route("/jobschedules", add_schedule, methods=["POST"]),
    Route("/jobschedules", list_schedules, methods=["GET"]),
    Route(_ONE, schedule_exists, methods=["HEAD"]),  # before GET: Starlette routes HEAD to GET handlers too
    Route(_ONE, get_schedule, methods=["GET"]),
    Route(_ONE, patch_schedule, methods=["PATCH"]),
    Route(_ONE, replace_schedule, methods=["PUT"]),
    Route(_ONE, delete_schedule, methods=["DELETE"]),
    Route(_ONE + "/disable", disable_schedule, methods=["POST"]),
    Route(_ONE + "/enable", enable_schedule, methods=["POST"]),
    Route(_ONE + "/terminate", terminate_schedule, methods=["POST"]),
    Route(_ONE + "/jobs", list_schedule_jobs, methods=["GET"]),
]
