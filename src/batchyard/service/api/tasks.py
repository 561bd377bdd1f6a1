"""Task routes: add, add collection, list, get, delete, terminate, update, reactivate, subtasks."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import engine_of, odata_element, parsed_filter, skip_token, url_for
from batchyard.service.engine.statistics import task_statistics
from batchyard.service.errors import BatchError
from batchyard.service.http import (
    accepted,
    check_conditions,
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


def _view(request: Request, job_id: str, doc: dict[str, Any], select: set[str] | None, stats: bool) -> dict[str, Any]:
    url = _task_url(request, job_id, doc["id"])
    if stats and (select is None or "stats" in select):
        doc["stats"] = task_statistics(doc, url)
    return present(doc, url, select)


@endpoint
async def add_task(request: Request) -> Response:
    spec = task_models.parse_task_create(await read_json(request))
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    with engine.store.transaction():
        (result,) = engine.add_tasks(job, [spec])
    if isinstance(result, BatchError):
        raise result
    return created(_task_url(request, job.doc["id"], result["id"]), result)


@endpoint
async def add_task_collection(request: Request) -> Response:
    specs = task_models.parse_task_collection(await read_json(request, limit=MAX_COLLECTION_BYTES))
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    with engine.store.transaction():
        results = engine.add_tasks(job, specs)
    base = request.app.state.settings.base_url
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
                    "location": _task_url(request, job.doc["id"], result["id"]),
                }
            )
    return json_response({"odata.metadata": f"{base}/$metadata#taskaddresult", "value": value})


# `$select` properties the tasks table holds in columns: such pages are built without reading documents.
_COLUMN_SELECT = {"id": "id", "state": "state", "stateTransitionTime": "stateTransitionTime", "url": "id"}


@endpoint
async def list_tasks(request: Request) -> Response:
    where = parsed_filter(request, "tasks")
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    select = parse_select(request)
    size = parse_max_results(request)
    stats = _wants_stats(request)
    after = skip_token(request)
    if select is not None and select <= _COLUMN_SELECT.keys() and not stats:
        items = _column_page(request, job.key, job.doc["id"], select, after, size + 1, where)
        token = str(items[size - 1][0]) if len(items) > size else None
        return list_response(request, "tasks", [item for _, item in items[:size]], token)
    rows = engine.store.list_tasks(job.key, after, size + 1, where)
    token = str(rows[size - 1][0]) if len(rows) > size else None
    job_id = job.doc["id"]
    items = [
        _raw_view(request, job_id, raw)
        if select is None and not stats
        else _view(request, job_id, orjson.loads(raw), select, stats)
        for _, raw in rows[:size]
    ]
    return list_response(request, "tasks", items, token)


def _column_page(
    request: Request, job_key: str, job_id: str, select: set[str], after: int, limit: int, where: Any
) -> list[tuple[int, dict[str, Any]]]:
    names = sorted(select)
    fields = tuple(dict.fromkeys(_COLUMN_SELECT[name] for name in names))
    rows = engine_of(request).store.list_task_fields(job_key, after, limit, fields, where)
    base = f"{request.app.state.settings.base_url}/jobs/{job_id}/tasks/"
    out: list[tuple[int, dict[str, Any]]] = []
    for seq, values in rows:
        item = {name: base + values["id"] if name == "url" else values[_COLUMN_SELECT[name]] for name in names}
        out.append((seq, item))
    return out


def _raw_view(request: Request, job_id: str, raw: bytes) -> Any:
    """A whole stored document as it is on the wire, spliced as JSON bytes when it has no private `_` keys."""
    if b'"_' in raw:  # may hold a private key (or a value starting with "_"): take the exact path
        doc = orjson.loads(raw)
        return present(doc, _task_url(request, job_id, doc["id"]))
    task_id = raw[7 : raw.index(b'"', 7)].decode() if raw.startswith(b'{"id":"') else orjson.loads(raw)["id"]
    url = orjson.dumps(_task_url(request, job_id, task_id))
    return orjson.Fragment(raw[:-1] + b',"url":' + url + b"}")


@endpoint
async def get_task(request: Request) -> Response:
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    doc = engine.get_task(job, request.path_params["taskId"])
    check_conditions(request, doc, reading=True)
    body = odata_element(request, "tasks") | _view(
        request, job.doc["id"], doc, parse_select(request), _wants_stats(request)
    )
    return json_response(body, entity_headers(doc))


async def _task_for_change(request: Request) -> tuple[Any, dict[str, Any]]:
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    doc = engine.get_task(job, request.path_params["taskId"])
    check_conditions(request, doc, reading=False)
    return job, doc


@endpoint
async def delete_task(request: Request) -> Response:
    job, doc = await _task_for_change(request)
    engine = engine_of(request)
    with engine.store.transaction():
        engine.delete_task(job, doc)
    return accepted(200)


@endpoint
async def terminate_task(request: Request) -> Response:
    job, doc = await _task_for_change(request)
    engine = engine_of(request)
    with engine.store.transaction():
        engine.terminate_task(job, doc)
    return accepted(204, doc, _task_url(request, job.doc["id"], doc["id"]))


@endpoint
async def update_task(request: Request) -> Response:
    changes = task_models.parse_task_update(await read_json(request))
    job, doc = await _task_for_change(request)
    engine = engine_of(request)
    with engine.store.transaction():
        engine.update_task(job, doc, changes)
    return accepted(200, doc, _task_url(request, job.doc["id"], doc["id"]))


@endpoint
async def reactivate_task(request: Request) -> Response:
    job, doc = await _task_for_change(request)
    engine = engine_of(request)
    with engine.store.transaction():
        engine.reactivate_task(job, doc)
    return accepted(204, doc, _task_url(request, job.doc["id"], doc["id"]))


@endpoint
async def list_subtasks(request: Request) -> Response:
    engine = engine_of(request)
    job = engine.get_job(request.path_params["jobId"])
    # Only multi-instance tasks have subtasks (1..N-1; the primary is the task itself).
    select = parse_select(request)
    items = [
        {k: v for k, v in sub.items() if select is None or k in select}
        for sub in engine.list_subtasks(job, request.path_params["taskId"])
    ]
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
