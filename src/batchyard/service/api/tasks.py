"""Task routes: add, add collection, list, get, delete, terminate, update, reactivate, subtasks."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import conditions, odata_element, parsed_filter, service_of, skip_token, url_for
from batchyard.service.documents import TaskDocument
from batchyard.service.engine.statistics import task_statistics
from batchyard.service.errors import BatchError
from batchyard.service.http import (
    accepted,
    base_url,
    created,
    endpoint,
    entity_headers,
    json_response,
    list_response,
    parse_max_results,
    parse_select,
    present,
    read_json,
)
from batchyard.service.models import tasks as task_models

# The documented limit of one add-collection request body.
MAX_COLLECTION_BYTES = 1024 * 1024


def _task_url(request: Request, job_id: str, task_id: str) -> str:
    return url_for(request, f"/jobs/{job_id}/tasks/{task_id}")


def _wants_stats(request: Request) -> bool:
    raw = request.query_params.get("$expand")
    if raw is None:
        return False
    parts = {part.strip() for part in raw.split(",")}
    if parts - {"stats"}:
        raise errors.invalid_query("$expand", raw, "Only 'stats' can be expanded on tasks.")
    return True


def _view(request: Request, job_id: str, doc: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    return present(doc, _task_url(request, job_id, doc["id"]), select)


def _view_with_stats(request: Request, job_id: str, doc: TaskDocument, select: set[str] | None) -> dict[str, Any]:
    url = _task_url(request, job_id, doc["id"])
    if select is None or "stats" in select:
        doc["stats"] = task_statistics(doc, url)
    return present(doc, url, select)


@endpoint
async def add_task(request: Request) -> Response:
    spec = task_models.parse_task_create(await read_json(request))
    job, doc = service_of(request).add_task(request.path_params["jobId"], spec)
    return created(_task_url(request, job.doc["id"], doc["id"]), doc)


@endpoint
async def add_task_collection(request: Request) -> Response:
    specs = task_models.parse_task_collection(await read_json(request, limit=MAX_COLLECTION_BYTES))
    job, results = service_of(request).add_task_collection(request.path_params["jobId"], specs)
    base = base_url(request)
    locations = f"{base}/jobs/{job.doc['id']}/tasks/"  # once per request: a collection holds up to 100 tasks
    value: list[dict[str, Any]] = []
    for spec, result in zip(specs, results, strict=True):
        if isinstance(result, BatchError):
            value.append({"status": "clienterror", "taskId": spec["id"], "error": result.body(base)})
        else:
            value.append(
                {
                    "status": "success",
                    "taskId": result["id"],
                    "eTag": result["eTag"],
                    "lastModified": result["lastModified"],
                    "location": locations + result["id"],
                }
            )
    return json_response({"odata.metadata": f"{base}/$metadata#taskaddresult", "value": value})


@endpoint
async def list_tasks(request: Request) -> Response:
    where = parsed_filter(request, "tasks")
    service = service_of(request)
    job = service.job(request.path_params["jobId"])
    select = parse_select(request)
    size = parse_max_results(request)
    stats = _wants_stats(request)
    after = skip_token(request)
    job_id = job.doc["id"]
    # A page of only properties the service keeps apart from documents reads no document at all.
    fields = {"id" if name == "url" else name for name in select or ()}
    if select is not None and not stats and fields <= service.task_fields:
        rows, token = service.task_field_page(job, where, after, size, fields)
        base = f"{base_url(request)}/jobs/{job_id}/tasks/"
        names = sorted(select)
        items = [{name: base + row["id"] if name == "url" else row[name] for name in names} for _, row in rows]
        return list_response(request, "tasks", items, token)
    if stats:  # statistics are made of what the runs reported: the tasks' private fields
        documents, token = service.task_document_page(job, where, after, size)
        return list_response(
            request, "tasks", [_view_with_stats(request, job_id, doc, select) for _, doc in documents], token
        )
    docs, token = service.task_page(job, where, after, size)
    views = [
        _raw_view(request, job_id, raw) if select is None else _view(request, job_id, orjson.loads(raw), select)
        for _, raw in docs
    ]
    return list_response(request, "tasks", views, token)


def _raw_view(request: Request, job_id: str, raw: bytes) -> Any:
    """A whole task document as it is on the wire (the store keeps nothing else in it), spliced as JSON bytes."""
    if b'"password"' in raw:  # a container registry's: never answered (redaction.py)
        return _view(request, job_id, orjson.loads(raw), None)
    task_id = raw[7 : raw.index(b'"', 7)].decode() if raw.startswith(b'{"id":"') else orjson.loads(raw)["id"]
    url = orjson.dumps(_task_url(request, job_id, task_id))
    return orjson.Fragment(raw[:-1] + b',"url":' + url + b"}")


@endpoint
async def get_task(request: Request) -> Response:
    reading = conditions(request, reading=True)
    job, doc = service_of(request).task(request.path_params["jobId"], request.path_params["taskId"], reading)
    select = parse_select(request)
    view = (
        _view_with_stats(request, job.doc["id"], doc, select)
        if _wants_stats(request)
        else _view(request, job.doc["id"], doc, select)
    )
    body = odata_element(request, "tasks") | view
    return json_response(body, entity_headers(doc))


def _addressed(request: Request) -> tuple[str, str]:
    """(job id, task id) of the task the route names."""
    return request.path_params["jobId"], request.path_params["taskId"]


@endpoint
async def delete_task(request: Request) -> Response:
    service_of(request).delete_task(*_addressed(request), conditions(request))
    return accepted(200)


@endpoint
async def terminate_task(request: Request) -> Response:
    job, doc = service_of(request).terminate_task(*_addressed(request), conditions(request))
    return accepted(204, doc, _task_url(request, job.doc["id"], doc["id"]))


@endpoint
async def update_task(request: Request) -> Response:
    changes = task_models.parse_task_update(await read_json(request))
    job, doc = service_of(request).update_task(*_addressed(request), changes, conditions(request))
    return accepted(200, doc, _task_url(request, job.doc["id"], doc["id"]))


@endpoint
async def reactivate_task(request: Request) -> Response:
    job, doc = service_of(request).reactivate_task(*_addressed(request), conditions(request))
    return accepted(204, doc, _task_url(request, job.doc["id"], doc["id"]))


@endpoint
async def list_subtasks(request: Request) -> Response:
    subtasks = service_of(request).subtasks(*_addressed(request))
    select = parse_select(request)
    items = [{k: v for k, v in sub.items() if select is None or k in select} for sub in subtasks]
    return list_response(request, "subtaskinfo", items, None)


routes = [
    Route("/jobs/{jobId}/tasks", add_task, methods=["POST"]),
    Route("/jobs/{jobId}/tasks", list_tasks, methods=["GET"]),
    Route("/jobs/{jobId}/addtaskcollection", add_task_collection, methods=["POST"]),
    Route("/jobs/{jobId}/tasks/{taskId}", get_task, methods=["GET"]),
    Route("/jobs/{jobId}/tasks/{taskId}", delete_task, methods=["DELETE"]),
    Route("/jobs/{jobId}/tasks/{taskId}", update_task, methods=["PUT"]),
    Route("/jobs/{jobId}/tasks/{taskId}/terminate", terminate_task, methods=["POST"]),
    Route("/jobs/{jobId}/tasks/{taskId}/reactivate", reactivate_task, methods=["POST"]),
    Route("/jobs/{jobId}/tasks/{taskId}/subtasksinfo", list_subtasks, methods=["GET"]),
]
