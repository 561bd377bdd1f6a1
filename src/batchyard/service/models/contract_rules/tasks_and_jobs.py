"""Contract rules for tasks, jobs and job schedules (and the resource files, environment settings,
metadata and user identities they carry) that the JSON schema cannot express.

Each rule takes the normalized object and its property path, and raises BatchError naming the property.
"""

from __future__ import annotations

import re
from typing import Any

from batchyard.service.errors import BatchError, invalid_property, missing_property

from .checks import MINUTE, Rule, at_least, check_id, duration_at_least, in_range, join, non_empty, show, ticks

_SOURCES = ("httpUrl", "storageContainerUrl", "autoStorageContainerName")


def _resource_file(rf: dict[str, Any], path: str) -> None:
    given = [name for name in _SOURCES if rf.get(name)]
    if not given:
        raise invalid_property(
            path,
            show(rf),
            "Exactly one of httpUrl, storageContainerUrl and autoStorageContainerName must be specified.",
        )
    if len(given) > 1:
        raise invalid_property(
            join(path, given[1]),
            rf[given[1]],
            f"{given[1]} and {given[0]} are mutually exclusive; specify exactly one of "
            "httpUrl, storageContainerUrl and autoStorageContainerName.",
        )
    if given[0] == "httpUrl":
        if not rf.get("filePath"):
            raise missing_property(join(path, "filePath"))
        if "blobPrefix" in rf:
            raise invalid_property(
                join(path, "blobPrefix"),
                rf["blobPrefix"],
                "blobPrefix is valid only with autoStorageContainerName or storageContainerUrl.",
            )
    file_path = rf.get("filePath")
    if file_path and (file_path.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", file_path)):
        raise invalid_property(
            join(path, "filePath"),
            file_path,
            "The path must be relative and cannot break out of the working directory.",
        )
    mode = rf.get("fileMode")
    if mode is not None and re.fullmatch(r"[0-7]{3,4}", mode) is None:
        raise invalid_property(join(path, "fileMode"), mode, "The file mode must be in octal format, for example 0770.")


def _environment_setting(env: dict[str, Any], path: str) -> None:
    if not env["name"].strip() or "=" in env["name"]:
        raise invalid_property(
            join(path, "name"),
            env["name"],
            "The environment variable name must be non-empty and contain no '='.",
        )


def _metadata_item(item: dict[str, Any], path: str) -> None:
    non_empty(item, path, "name")


def _user_identity(identity: dict[str, Any], path: str) -> None:
    if "username" in identity and "autoUser" in identity:
        raise invalid_property(
            join(path, "autoUser"),
            show(identity["autoUser"]),
            "The username and autoUser properties are mutually exclusive.",
        )
    if "username" not in identity and "autoUser" not in identity:
        raise invalid_property(path, show(identity), "Specify either the username or the autoUser property.")
    non_empty(identity, path, "username")


def _retry_count(out: dict[str, Any], path: str) -> None:
    at_least(out, path, "maxTaskRetryCount", -1, "The value must be -1 (unlimited retries) or greater.")


def _command_line(out: dict[str, Any], path: str) -> None:
    non_empty(out, path, "commandLine")


def _optional_id(out: dict[str, Any], path: str) -> None:
    if "id" in out:
        check_id(out["id"], join(path, "id"))


def _start_task(task: dict[str, Any], path: str) -> None:
    _command_line(task, path)
    _retry_count(task, path)


def _start_task_update(task: dict[str, Any], path: str) -> None:
    # Present in a PATCH it overwrites the whole StartTask, so it needs a command line.
    if "commandLine" not in task:
        raise missing_property(join(path, "commandLine"))
    _start_task(task, path)


def _task(task: dict[str, Any], path: str) -> None:
    check_id(task["id"], join(path, "id"))
    _command_line(task, path)
    at_least(task, path, "requiredSlots", 1)
    if "multiInstanceSettings" in task and task.get("requiredSlots", 1) != 1:
        raise invalid_property(
            join(path, "requiredSlots"),
            str(task["requiredSlots"]),
            "For multi-instance Tasks, requiredSlots must be 1.",
        )


def _job_manager(task: dict[str, Any], path: str) -> None:
    check_id(task["id"], join(path, "id"))
    _command_line(task, path)
    at_least(task, path, "requiredSlots", 1)


def _job_preparation(task: dict[str, Any], path: str) -> None:
    _optional_id(task, path)
    _command_line(task, path)


def _job_release(task: dict[str, Any], path: str) -> None:
    _optional_id(task, path)
    _command_line(task, path)
    limit = task.get("maxWallClockTime")
    if limit is not None and ticks(limit) > 15 * MINUTE:
        raise invalid_property(
            join(path, "maxWallClockTime"), limit, "The Job Release Task may not run longer than 15 minutes."
        )


def _multi_instance(settings: dict[str, Any], path: str) -> None:
    at_least(settings, path, "numberOfInstances", 1)
    non_empty(settings, path, "coordinationCommandLine")


def _ordered_range(out: dict[str, Any], path: str) -> None:
    if out["start"] > out["end"]:
        raise invalid_property(
            join(path, "end"), str(out["end"]), "The end of the range must not be less than its start."
        )


def _task_id_range(out: dict[str, Any], path: str) -> None:
    at_least(out, path, "start", 0)
    _ordered_range(out, path)


def _task_group(group: dict[str, Any], path: str) -> None:
    count = len(group["value"])
    if not 1 <= count <= 100:
        raise invalid_property(join(path, "value"), str(count), "A collection must contain between 1 and 100 Tasks.")


def _dependencies(out: dict[str, Any], path: str) -> None:
    ids = out.get("taskIds")
    if ids is not None and sum(len(i) for i in ids) > 64000:
        raise BatchError(
            400,
            "TaskDependencyListTooLong",
            "The task dependency list is too long; use task ID ranges instead.",
            {"PropertyName": join(path, "taskIds")},
        )


def _job_common(job: dict[str, Any], path: str) -> None:
    in_range(job, path, "priority", -1000, 1000)
    value = job.get("maxParallelTasks")
    if value is not None and value != -1 and value < 1:
        raise invalid_property(join(path, "maxParallelTasks"), str(value), "The value must be -1 or greater than 0.")
    if "jobReleaseTask" in job and "jobPreparationTask" not in job:
        raise invalid_property(
            join(path, "jobReleaseTask"),
            show(job["jobReleaseTask"]),
            "A Job Release Task cannot be specified without also specifying a Job Preparation Task.",
        )


def _job_create(job: dict[str, Any], path: str) -> None:
    check_id(job["id"], join(path, "id"))
    _job_common(job, path)


def _pool_info(info: dict[str, Any], path: str) -> None:
    if "poolId" in info and "autoPoolSpecification" in info:
        raise invalid_property(
            join(path, "autoPoolSpecification"),
            show(info["autoPoolSpecification"]),
            "Specify either poolId or autoPoolSpecification, but not both.",
        )
    if "poolId" not in info and "autoPoolSpecification" not in info:
        raise missing_property(join(path, "poolId"))
    non_empty(info, path, "poolId")


def _auto_pool(spec: dict[str, Any], path: str) -> None:
    prefix = spec.get("autoPoolIdPrefix")
    if prefix is not None and (len(prefix) > 20 or re.fullmatch(r"[A-Za-z0-9_-]*", prefix) is None):
        raise invalid_property(
            join(path, "autoPoolIdPrefix"),
            prefix,
            "The prefix can be up to 20 characters of letters, digits, hyphens and underscores.",
        )
    if "pool" not in spec:
        raise missing_property(join(path, "pool"))


def _schedule_id(out: dict[str, Any], path: str) -> None:
    check_id(out["id"], join(path, "id"))


def _schedule(out: dict[str, Any], path: str) -> None:
    duration_at_least(out, path, "startWindow", MINUTE, "1 minute")
    duration_at_least(out, path, "recurrenceInterval", MINUTE, "1 minute")


#: Definition name -> its rule.
TASK_AND_JOB_RULES: dict[str, Rule] = {
    "ResourceFile": _resource_file,
    "EnvironmentSetting": _environment_setting,
    "BatchMetadataItem": _metadata_item,
    "UserIdentity": _user_identity,
    "BatchTaskConstraints": _retry_count,
    "BatchJobConstraints": _retry_count,
    "BatchStartTask": _start_task,
    "BatchStartTaskUpdate": _start_task_update,
    "BatchTaskCreateOptions": _task,
    "BatchJobManagerTask": _job_manager,
    "BatchJobPreparationTask": _job_preparation,
    "BatchJobReleaseTask": _job_release,
    "MultiInstanceSettings": _multi_instance,
    "BatchTaskIdRange": _task_id_range,
    "ExitCodeRangeMapping": _ordered_range,
    "BatchJobCreateOptions": _job_create,
    "BatchJobUpdateOptions": _job_common,
    "BatchJob": _job_common,
    "BatchJobSpecification": _job_common,
    "BatchJobSpecificationUpdate": _job_common,
    "BatchPoolInfo": _pool_info,
    "BatchPoolInfoUpdate": _pool_info,
    "BatchAutoPoolSpecification": _auto_pool,
    "BatchTaskDependencies": _dependencies,
    "BatchTaskGroup": _task_group,
    "BatchJobScheduleCreateOptions": _schedule_id,
    "BatchJobScheduleConfiguration": _schedule,
}
