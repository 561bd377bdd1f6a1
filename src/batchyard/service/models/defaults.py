"""Service defaults filled into validated documents (each cited from the contract's descriptions).

These work on already-validated dicts and mutate them in place; they only add missing properties.
"""

from __future__ import annotations

from typing import Any, Final

from .durations import UNLIMITED

RETENTION_TIME: Final = "P7D"  # BatchTaskConstraints.retentionTime: "The default is 7 days"
RESIZE_TIMEOUT: Final = "PT15M"  # resizeTimeout: "The default value is 15 minutes"
AUTOSCALE_INTERVAL: Final = "PT15M"  # autoScaleEvaluationInterval: "The default value is 15 minutes"
RELEASE_MAX_WALL_CLOCK: Final = "PT15M"  # BatchJobReleaseTask.maxWallClockTime: "The default value is 15 minutes"
JOB_PREPARATION_ID: Final = "jobpreparation"
JOB_RELEASE_ID: Final = "jobrelease"
TERMINATE_REASON: Final = "UserTerminate"


def user_identity(task: dict[str, Any]) -> None:
    """userIdentity defaults: the auto-user, scope pool (AutoUserScope default), nonadmin (ElevationLevel)."""
    identity = task.setdefault("userIdentity", {"autoUser": {}})
    auto = identity.get("autoUser")
    if auto is not None:
        auto.setdefault("scope", "pool")
        auto.setdefault("elevationLevel", "nonadmin")


def task_constraints(constraints: dict[str, Any] | None, *, max_task_retry_count: int | None) -> dict[str, Any]:
    """BatchTaskConstraints: no wall-clock limit, 7-day retention; maxTaskRetryCount only if given a default.

    A task's retry count defaults to its job's (BatchTaskCreateOptions.constraints), which the caller
    knows; pass `max_task_retry_count=None` to leave it unset.
    """
    out = {} if constraints is None else constraints
    out.setdefault("maxWallClockTime", UNLIMITED)
    out.setdefault("retentionTime", RETENTION_TIME)
    if max_task_retry_count is not None:
        out.setdefault("maxTaskRetryCount", max_task_retry_count)
    return out


def job_constraints(constraints: dict[str, Any] | None) -> dict[str, Any]:
    """BatchJobConstraints: no wall-clock limit; maxTaskRetryCount "The default value is 0"."""
    out = {} if constraints is None else constraints
    out.setdefault("maxWallClockTime", UNLIMITED)
    out.setdefault("maxTaskRetryCount", 0)
    return out


def start_task(task: dict[str, Any]) -> None:
    """BatchStartTask: maxTaskRetryCount 0, waitForSuccess true."""
    task.setdefault("maxTaskRetryCount", 0)
    task.setdefault("waitForSuccess", True)
    user_identity(task)


def multi_instance(task: dict[str, Any]) -> None:
    settings = task.get("multiInstanceSettings")
    if settings is not None:
        settings.setdefault("numberOfInstances", 1)  # "If omitted, the default is 1."


def task_create(task: dict[str, Any]) -> None:
    """BatchTaskCreateOptions: requiredSlots 1, default constraints (retry count left to the job)."""
    task.setdefault("requiredSlots", 1)
    task["constraints"] = task_constraints(task.get("constraints"), max_task_retry_count=None)
    user_identity(task)
    multi_instance(task)


def job_manager(task: dict[str, Any], *, max_task_retry_count: int) -> None:
    """BatchJobManagerTask: killJobOnCompletion, runExclusive, allowLowPriorityNode true; requiredSlots 1."""
    task.setdefault("killJobOnCompletion", True)
    task.setdefault("runExclusive", True)
    task.setdefault("allowLowPriorityNode", True)
    task.setdefault("requiredSlots", 1)
    task["constraints"] = task_constraints(task.get("constraints"), max_task_retry_count=max_task_retry_count)
    user_identity(task)


def job_preparation(task: dict[str, Any]) -> None:
    """BatchJobPreparationTask: id 'jobpreparation', waitForSuccess and rerunOnNodeRebootAfterSuccess true."""
    task.setdefault("id", JOB_PREPARATION_ID)
    task.setdefault("waitForSuccess", True)
    task.setdefault("rerunOnNodeRebootAfterSuccess", True)
    task["constraints"] = task_constraints(task.get("constraints"), max_task_retry_count=0)
    user_identity(task)


def job_release(task: dict[str, Any]) -> None:
    """BatchJobReleaseTask: id 'jobrelease', maxWallClockTime 15 minutes, retentionTime 7 days."""
    task.setdefault("id", JOB_RELEASE_ID)
    task.setdefault("maxWallClockTime", RELEASE_MAX_WALL_CLOCK)
    task.setdefault("retentionTime", RETENTION_TIME)
    user_identity(task)


def pool_spec(pool: dict[str, Any]) -> None:
    """BatchPoolCreateOptions / BatchPoolSpecification defaults."""
    pool.setdefault("taskSlotsPerNode", 1)
    pool.setdefault("taskSchedulingPolicy", {"nodeFillType": "spread"})
    pool.setdefault("resizeTimeout", RESIZE_TIMEOUT)
    pool.setdefault("enableAutoScale", False)
    if pool["enableAutoScale"]:
        pool.setdefault("autoScaleEvaluationInterval", AUTOSCALE_INTERVAL)
    # Targets start at 0 (for an autoscale pool the formula's first evaluation sets them).
    pool.setdefault("targetDedicatedNodes", 0)
    pool.setdefault("targetLowPriorityNodes", 0)
    pool.setdefault("enableInterNodeCommunication", False)
    pool.setdefault("targetNodeCommunicationMode", "default")
    if "startTask" in pool:
        start_task(pool["startTask"])


def pool_info(info: dict[str, Any]) -> None:
    auto = info.get("autoPoolSpecification")
    if auto is not None:
        auto.setdefault("keepAlive", False)
        if "pool" in auto:
            pool_spec(auto["pool"])


def job_spec(job: dict[str, Any]) -> None:
    """BatchJobCreateOptions / BatchJobSpecification defaults, including its special tasks."""
    job.setdefault("priority", 0)
    job.setdefault("maxParallelTasks", -1)
    job.setdefault("allowTaskPreemption", False)
    job.setdefault("usesTaskDependencies", False)
    job.setdefault("onAllTasksComplete", "noaction")
    job.setdefault("onTaskFailure", "noaction")
    job["constraints"] = job_constraints(job.get("constraints"))
    if "jobManagerTask" in job:
        job_manager(job["jobManagerTask"], max_task_retry_count=job["constraints"]["maxTaskRetryCount"])
    if "jobPreparationTask" in job:
        job_preparation(job["jobPreparationTask"])
    if "jobReleaseTask" in job:
        job_release(job["jobReleaseTask"])
    if "poolInfo" in job:
        pool_info(job["poolInfo"])
