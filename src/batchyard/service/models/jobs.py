"""Job and job-schedule request bodies -> normalized documents (contract wire shape, camelCase)."""

from __future__ import annotations

from typing import Any

from . import defaults
from .schema import validate


def parse_job_create(body: Any) -> dict[str, Any]:
    """POST /jobs (BatchJobCreateOptions), with the service defaults filled in.

    Defaults: priority 0, maxParallelTasks -1, allowTaskPreemption/usesTaskDependencies false,
    onAllTasksComplete/onTaskFailure "noaction", constraints {maxWallClockTime: unlimited,
    maxTaskRetryCount: 0}; job manager/preparation/release task defaults; auto-pool defaults.
    """
    job = validate("BatchJobCreateOptions", body)
    defaults.job_spec(job)
    return job


def parse_job_update(body: Any) -> dict[str, Any]:
    """PATCH /jobs/{id} (BatchJobUpdateOptions): only the properties present.

    A present `constraints` or `poolInfo` replaces the job's whole, so its defaults are filled. The caller
    enforces the state rules (poolInfo only while disabled, no terminatejob -> noaction).
    """
    update = validate("BatchJobUpdateOptions", body)
    if "constraints" in update:
        update["constraints"] = defaults.job_constraints(update["constraints"])
    if "poolInfo" in update:
        defaults.pool_info(update["poolInfo"])
    return update


def parse_job_replace(body: Any) -> dict[str, Any]:
    """PUT /jobs/{id} (BatchJob): replaces every updatable property; omitted ones get their defaults.

    Only priority, allowTaskPreemption, maxParallelTasks, constraints, poolInfo, onAllTasksComplete and
    metadata are writable (the rest are readOnly in the contract and are dropped).
    """
    job = validate("BatchJob", body)
    job.setdefault("priority", 0)
    job.setdefault("allowTaskPreemption", False)
    job.setdefault("maxParallelTasks", -1)
    job["constraints"] = defaults.job_constraints(job.get("constraints"))
    job.setdefault("onAllTasksComplete", "noaction")
    job.setdefault("metadata", [])
    defaults.pool_info(job["poolInfo"])
    return job


def parse_job_terminate(body: Any = None) -> dict[str, Any]:
    """POST /jobs/{id}/terminate (optional BatchJobTerminateOptions); default reason UserTerminate."""
    options = {} if body is None else validate("BatchJobTerminateOptions", body)
    options.setdefault("terminateReason", defaults.TERMINATE_REASON)
    return options


def parse_job_disable(body: Any) -> dict[str, Any]:
    """POST /jobs/{id}/disable (BatchJobDisableOptions): disableTasks is required."""
    return validate("BatchJobDisableOptions", body)


def parse_job_schedule_create(body: Any) -> dict[str, Any]:
    """POST /jobschedules (BatchJobScheduleCreateOptions), with job specification defaults."""
    schedule = validate("BatchJobScheduleCreateOptions", body)
    defaults.job_spec(schedule["jobSpecification"])
    return schedule


def parse_job_schedule_update(body: Any) -> dict[str, Any]:
    """PATCH /jobschedules/{id} (BatchJobScheduleUpdateOptions): only the properties present."""
    return validate("BatchJobScheduleUpdateOptions", body)


def parse_job_schedule_replace(body: Any) -> dict[str, Any]:
    """PUT /jobschedules/{id} (BatchJobSchedule): schedule, jobSpecification and metadata replaced whole."""
    schedule = validate("BatchJobSchedule", body)
    schedule.setdefault("schedule", {})
    defaults.job_spec(schedule["jobSpecification"])
    schedule.setdefault("metadata", [])
    return schedule
