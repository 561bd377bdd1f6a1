"""Job schedule routes: add, list, get, exists, patch, replace, disable, enable, terminate, delete, its jobs."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service.api.common import conditions, list_filter, page, service_of, skip_token, url_for
from batchyard.service.api.documents import get_document, list_documents
from batchyard.service.api.usage import job_stats, schedule_stats, wants_stats, with_stats
from batchyard.service.engine.schedules import ScheduleRecord
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


@endpoint
async def add_schedule(request: Request) -> Response:
    spec = job_models.parse_job_schedule_create(await read_json(request))
    schedule = service_of(request).create_schedule(spec)
    return created(_url(request, schedule.doc["id"]), schedule.doc)


@endpoint
async def list_schedules(request: Request) -> Response:
    schedules = service_of(request).schedules()
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
    schedule = service_of(request).schedule(request.path_params["scheduleId"])
    return get_document(
        request, "jobschedules", schedule, _url(request, schedule.doc["id"]), lambda s: schedule_stats(request, s)
    )


@endpoint
async def schedule_exists(request: Request) -> Response:
    schedule = service_of(request).find_schedule(request.path_params["scheduleId"])
    if schedule is None:
        return Response(status_code=404)
    check_conditions(request, schedule.doc, reading=True)
    return Response(status_code=200, headers=entity_headers(schedule.doc))


def _changed(request: Request, status: int, schedule: ScheduleRecord) -> Response:
    return accepted(status, schedule.doc, _url(request, schedule.doc["id"]))


@endpoint
async def patch_schedule(request: Request) -> Response:
    changes = job_models.parse_job_schedule_update(await read_json(request))
    schedule = service_of(request).update_schedule(
        request.path_params["scheduleId"], changes, False, conditions(request)
    )
    return _changed(request, 200, schedule)


@endpoint
async def replace_schedule(request: Request) -> Response:
    changes = job_models.parse_job_schedule_replace(await read_json(request))
    schedule = service_of(request).update_schedule(
        request.path_params["scheduleId"], changes, True, conditions(request)
    )
    return _changed(request, 200, schedule)


@endpoint
async def disable_schedule(request: Request) -> Response:
    schedule = service_of(request).disable_schedule(request.path_params["scheduleId"], conditions(request))
    return _changed(request, 204, schedule)


@endpoint
async def enable_schedule(request: Request) -> Response:
    schedule = service_of(request).enable_schedule(request.path_params["scheduleId"], conditions(request))
    return _changed(request, 204, schedule)


@endpoint
async def terminate_schedule(request: Request) -> Response:
    schedule = service_of(request).terminate_schedule(request.path_params["scheduleId"], conditions(request))
    return _changed(request, 202, schedule)


@endpoint
async def delete_schedule(request: Request) -> Response:
    service_of(request).delete_schedule(request.path_params["scheduleId"], conditions(request))
    return accepted(202)


@endpoint
async def list_schedule_jobs(request: Request) -> Response:
    found = service_of(request).schedule_jobs(request.path_params["scheduleId"])
    keep = list_filter(request, "jobScheduleJobs")
    select = parse_select(request)
    jobs = sorted((j for j in found if keep(j.doc)), key=lambda j: j.seq)
    chosen, token = page(jobs, lambda j: j.seq, skip_token(request), parse_max_results(request))
    expand = wants_stats(request)
    views = (
        with_stats(
            present(j.doc, url_for(request, f"/jobs/{j.doc['id']}"), select),
            select,
            expand,
            partial(job_stats, request, j),
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
