"""The Service Log events' bodies (a record's `properties`), built from the service's wire documents.

Field names, shapes and value spellings follow Azure Batch's reference pages for each event ("Pool create
event", "Task complete event", ...): `resizeTimeout` in milliseconds as a string, deallocation options
and task results capitalised (`Requeue`, `Success`), error categories `UserError`/`ServerError`. Pure
functions: the recorder (recorder.py) calls them inside the unit of work that made the change.
"""

from __future__ import annotations

from typing import Any

from batchyard.service.models.durations import duration_seconds

Body = dict[str, Any]

# The reference's spellings of nodeDeallocationOption; a growing pool's is "Invalid".
_DEALLOCATION = {
    "requeue": "Requeue",
    "terminate": "Terminate",
    "taskcompletion": "TaskCompletion",
    "retaineddata": "RetainedData",
}
_CATEGORY = {"usererror": "UserError", "servererror": "ServerError"}
# The special task event's taskType (the reference shows "JobPrep" for a job preparation task).
SPECIAL_TASK_TYPES = {"start": "StartTask", "prep": "JobPrep", "release": "JobRelease"}
_DEFAULT_RESIZE_TIMEOUT = "PT15M"


def pool_create(pool: dict[str, Any], is_auto_pool: bool) -> Body:
    vm = pool.get("virtualMachineConfiguration") or {}
    body: Body = {
        "id": pool["id"],
        "displayName": pool.get("displayName", ""),
        "vmSize": pool.get("vmSize", ""),
        "imageType": "VirtualMachineConfiguration",
        "virtualMachineConfiguration": {
            "imageReference": _image_reference(vm.get("imageReference") or {}),
            "nodeAgentId": vm.get("nodeAgentSKUId", ""),
        },
    }
    if "networkConfiguration" in pool:
        body["networkConfiguration"] = {"subnetId": (pool["networkConfiguration"] or {}).get("subnetId", "")}
    fill = (pool.get("taskSchedulingPolicy") or {}).get("nodeFillType", "spread")
    body.update(
        {
            "resizeTimeout": milliseconds(pool.get("resizeTimeout") or _DEFAULT_RESIZE_TIMEOUT),
            "targetDedicatedNodes": int(pool.get("targetDedicatedNodes") or 0),
            "targetLowPriorityNodes": int(pool.get("targetLowPriorityNodes") or 0),
            "taskSlotsPerNode": int(pool.get("taskSlotsPerNode") or 1),
            "vmFillType": fill[:1].upper() + fill[1:],
            "enableAutoScale": bool(pool.get("enableAutoScale", False)),
            "enableInterNodeCommunication": bool(pool.get("enableInterNodeCommunication", False)),
            "isAutoPool": is_auto_pool,
        }
    )
    return body


def _image_reference(image: dict[str, Any]) -> Body:
    if "virtualMachineImageId" in image and "publisher" not in image:
        return {"virtualMachineImageId": image["virtualMachineImageId"]}
    return {key: image.get(key, "") for key in ("publisher", "offer", "sku", "version")}


def milliseconds(duration: str) -> str:
    seconds = duration_seconds(duration)
    return str(round(seconds * 1000)) if seconds is not None else ""


def pool_resize_start(pool: dict[str, Any], option: str | None, is_auto_pool: bool) -> Body:
    return {
        "id": pool["id"],
        "nodeDeallocationOption": _DEALLOCATION.get(option or "", "Invalid"),
        **_sizes(pool),
        "enableAutoScale": bool(pool.get("enableAutoScale", False)),
        "isAutoPool": is_auto_pool,
    }


def pool_resize_complete(
    pool: dict[str, Any],
    option: str | None,
    is_auto_pool: bool,
    started: str,
    ended: str,
    error: dict[str, Any] | None,
) -> Body:
    body = pool_resize_start(pool, option, is_auto_pool)
    body.update(
        {
            "startTime": started,
            "endTime": ended,
            "resultCode": error["code"] if error else "Success",
            "resultMessage": error.get("message", "") if error else "The operation succeeded",
        }
    )
    return body


def _sizes(pool: dict[str, Any]) -> Body:
    return {
        "currentDedicatedNodes": int(pool.get("currentDedicatedNodes") or 0),
        "targetDedicatedNodes": int(pool.get("targetDedicatedNodes") or 0),
        "currentLowPriorityNodes": int(pool.get("currentLowPriorityNodes") or 0),
        "targetLowPriorityNodes": int(pool.get("targetLowPriorityNodes") or 0),
    }


def pool_delete_start(pool: dict[str, Any]) -> Body:
    return {"id": pool["id"]}


def pool_delete_complete(pool: dict[str, Any], started: str, ended: str) -> Body:
    return {"id": pool["id"], "startTime": started, "endTime": ended}


def pool_autoscale(pool: dict[str, Any]) -> Body:
    run = pool.get("autoScaleRun") or {}
    body: Body = {
        "id": pool["id"],
        "timestamp": run.get("timestamp", ""),
        "formula": pool.get("autoScaleFormula", ""),
        "results": run.get("results", ""),
    }
    if run.get("error"):
        error = run["error"]
        body["error"] = {
            "code": error.get("code", ""),
            "message": error.get("message", ""),
            "values": list(error.get("values") or []),
        }
    return body


def _task_head(job_id: str, task: dict[str, Any], job_manager: bool) -> Body:
    return {
        "jobId": job_id,
        "id": task["id"],
        "taskType": "JobManager" if job_manager else "User",
        "systemTaskVersion": 0,  # batchyard has no internal retries beside the ones retryCount counts
        "requiredSlots": int(task.get("requiredSlots") or 1),
    }


def _task_settings(task: dict[str, Any]) -> Body:
    instances = (task.get("multiInstanceSettings") or {}).get("numberOfInstances", 1)
    retries = (task.get("constraints") or {}).get("maxTaskRetryCount", 0)
    return {
        "multiInstanceSettings": {"numberOfInstances": int(instances)},
        "constraints": {"maxTaskRetryCount": int(retries)},
    }


def _node_info(task: dict[str, Any], pool_id: str = "", node_id: str = " ") -> Body:
    info = task.get("nodeInfo") or {}
    return {"poolId": info.get("poolId", pool_id), "nodeId": info.get("nodeId", node_id)}


def task_start(job_id: str, task: dict[str, Any], job_manager: bool) -> Body:
    return {
        **_task_head(job_id, task, job_manager),
        "nodeInfo": _node_info(task),
        **_task_settings(task),
        "executionInfo": {"retryCount": int(task["executionInfo"].get("retryCount", 0))},
    }


def task_complete(job_id: str, task: dict[str, Any], job_manager: bool) -> Body:
    """The task complete event's body; the task fail event has the same body (see `failed`)."""
    info = task.get("executionInfo") or {}
    execution: Body = {}
    for key in ("startTime", "endTime", "exitCode"):
        if key in info:
            execution[key] = info[key]
    execution["retryCount"] = int(info.get("retryCount", 0))
    execution["requeueCount"] = int(info.get("requeueCount", 0))
    execution["result"] = "Failure" if failed(task) else "Success"
    execution["schedulingError"] = scheduling_error(info.get("failureInfo"))
    return {
        **_task_head(job_id, task, job_manager),
        "nodeInfo": _node_info(task),
        **_task_settings(task),
        "executionInfo": execution,
    }


def failed(task: dict[str, Any]) -> bool:
    return (task.get("executionInfo") or {}).get("result") == "failure"


def scheduling_error(failure: dict[str, Any] | None) -> Body:
    """A failureInfo as the events' schedulingError (empty strings when there was none)."""
    failure = failure or {}
    category = str(failure.get("category", ""))
    return {
        "category": _CATEGORY.get(category.lower(), category),
        "code": failure.get("code", ""),
        "message": failure.get("message", ""),
        "details": [
            {"name": detail.get("name", ""), "value": detail.get("value", "")}
            for detail in failure.get("details") or []
        ],
    }


def task_schedule_fail(
    job_id: str, task: dict[str, Any], job_manager: bool, pool_id: str, node_id: str, error: dict[str, Any]
) -> Body:
    return {
        **_task_head(job_id, task, job_manager),
        "nodeInfo": {"poolId": pool_id, "nodeId": node_id},
        **_task_settings(task),
        "schedulingError": {key: error.get(key, "") for key in ("category", "code", "message")},
    }


def special_task(kind: str, task_id: str, job_id: str | None, pool_id: str, node_id: str, info: dict[str, Any]) -> Body:
    """A start task's, job preparation or release task's run ended (the special task event)."""
    execution: Body = {key: info[key] for key in ("startTime", "endTime", "exitCode") if key in info}
    execution["result"] = info.get("result", "")  # the reference writes them as the REST API does: success
    failure = info.get("failureInfo")
    # Without an error the reference shows only an empty `details`.
    execution["schedulingError"] = scheduling_error(failure) if failure else {"details": []}
    body: Body = {
        "taskName": task_id,
        "taskType": SPECIAL_TASK_TYPES[kind],
        "nodeInfo": {"poolId": pool_id, "nodeId": node_id},
        "executionInfo": execution,
    }
    if job_id is not None:
        body = {"jobId": job_id, **body}
    return body
