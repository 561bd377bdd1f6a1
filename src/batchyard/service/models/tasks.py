"""Task request bodies -> normalized documents (contract wire shape, camelCase)."""

from __future__ import annotations

from typing import Any

from . import defaults
from .schema import validate


def parse_task_create(body: Any) -> dict[str, Any]:
    """POST /jobs/{id}/tasks (BatchTaskCreateOptions), with the service defaults filled in.

    Defaults: requiredSlots 1, constraints {maxWallClockTime: unlimited, retentionTime: P7D},
    userIdentity = pool-scoped non-admin auto-user. `constraints.maxTaskRetryCount` is left unset when
    not given: the service takes it from the job, which the caller knows.
    """
    task = validate("BatchTaskCreateOptions", body)
    defaults.task_create(task)
    return task


def parse_task_collection(body: Any) -> list[dict[str, Any]]:
    """POST /jobs/{id}/addtaskcollection (BatchTaskGroup): 1..100 tasks, each normalized like a single add.

    Any invalid task rejects the whole request, naming it by index (`value[3].commandLine`).
    Duplicate IDs within the collection are the caller's to report per task.
    """
    group = validate("BatchTaskGroup", body)
    tasks: list[dict[str, Any]] = group["value"]
    for task in tasks:
        defaults.task_create(task)
    return tasks


def parse_task_update(body: Any) -> dict[str, Any]:
    """PUT /jobs/{job}/tasks/{task} (BatchTask): only `constraints` is writable.

    Returns {"constraints": {...}}: omitted constraints mean the default constraints. As on create,
    `maxTaskRetryCount` stays unset when not given (the caller fills it from the job).
    """
    update = validate("BatchTask", body)
    return {"constraints": defaults.task_constraints(update.get("constraints"), max_task_retry_count=None)}
