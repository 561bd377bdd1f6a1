"""Per-definition hooks the schema validator runs wherever a definition appears.

* `PRE[definition](body, path) -> body`: seed-era aliases, applied to the raw object before its schema
  checks (only when the new name is absent): pool `targetDedicated` -> `targetDedicatedNodes`,
  `maxTasksPerNode` -> `taskSlotsPerNode`; `runElevated` on any task kind -> `userIdentity`;
  resource file `blobSource` -> `httpUrl`.
* `POST[definition](out, path)`: semantic rules on the normalized object that the JSON schema cannot
  express (the contract's "must"/"must not" sentences), raising BatchError naming the property path.
  They may normalize in place (vmSize lower-cased, image version "latest").

Rules that need other resources (the job of a task, the pool's VM size, the current state, the raw
body size) are the caller's: taskSlotsPerNode <= 4 x cores, dependsOn needing usesTaskDependencies,
exit-option jobAction needing onTaskFailure=performexitoptionsjobaction, containerSettings matching the
pool's containerConfiguration, onAllTasksComplete never going terminatejob -> noaction, poolInfo changes
only on a disabled job, the 1 MB limit of an add-collection body, duplicate task IDs in a collection.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Any

import orjson

from batchyard.service.errors import BatchError, invalid_property, missing_property

from . import catalog, durations

Pre = Callable[[dict[str, Any], str], dict[str, Any]]
Post = Callable[[dict[str, Any], str], None]

#: Maximum lengths of string properties, by property name, wherever they appear.
STRING_LIMITS: dict[str, int] = {"displayName": 1024}

#: Contract-required properties that real clients omit: azure-batch 15.1.0's BatchPoolReplaceOptions has no
#: certificateReferences at all (certificates were retired in February 2024), so it cannot be required.
NOT_REQUIRED: dict[str, frozenset[str]] = {"BatchPoolReplaceOptions": frozenset({"certificateReferences"})}

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_REASON = "The ID must be 1 to 64 characters long and contain only letters, digits, hyphens and underscores."

MINUTE = durations.TICKS_PER_MINUTE
HOUR = durations.TICKS_PER_HOUR
# Shortest autoScaleEvaluationInterval (ticks). The contract's 5 minutes; `batchyard serve
# --autoscale-min-interval` lowers it for development (README, Autoscale).
AUTOSCALE_MIN_INTERVAL = [5 * MINUTE]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def show(value: Any) -> str:
    """The PropertyValue text of an offending value: strings as-is, the rest as compact JSON (capped)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # e.g. nested deeper than orjson allows: never let an error message fail
            text = reprlib.repr(value)
    return text if len(text) <= 256 else text[:253] + "..."


_show = show


def check_id(value: Any, path: str) -> None:
    """IDs of pools, jobs, tasks, schedules and applications: [A-Za-z0-9_-]{1,64}."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise invalid_property(path, _show(value), ID_REASON)


def _ticks(value: str) -> int:
    return durations.parse_ticks(value)


def _at_least(out: dict[str, Any], path: str, name: str, low: int, what: str = "") -> None:
    value = out.get(name)
    if value is not None and value < low:
        raise invalid_property(_join(path, name), str(value), what or f"The value must be at least {low}.")


def _in_range(out: dict[str, Any], path: str, name: str, low: int, high: int) -> None:
    value = out.get(name)
    if value is not None and not low <= value <= high:
        raise invalid_property(_join(path, name), str(value), f"The value must be between {low} and {high}.")


def _duration_at_least(out: dict[str, Any], path: str, name: str, low: int, text: str) -> None:
    value = out.get(name)
    if value is not None and _ticks(value) < low:
        raise invalid_property(_join(path, name), value, f"The value must be at least {text}.")


def _non_empty(out: dict[str, Any], path: str, name: str) -> None:
    value = out.get(name)
    if value is not None and not value.strip():
        raise invalid_property(_join(path, name), value, "The value must not be empty.")


# --- aliases (PRE) -------------------------------------------------------------------------------------


def _has(body: dict[str, Any], name: str) -> bool:
    low = name.lower()
    return any(k.lower() == low and v is not None for k, v in body.items())


def _renamer(aliases: dict[str, str]) -> Pre:
    """Rename old property names (case-insensitively) unless the new name is given too."""
    lowered = {old.lower(): new for old, new in aliases.items()}

    def pre(body: dict[str, Any], path: str) -> dict[str, Any]:
        hits = [k for k in body if k.lower() in lowered]
        if not hits:
            return body
        body = dict(body)
        for old in hits:
            value = body.pop(old)
            new = lowered[old.lower()]
            if not _has(body, new):
                body[new] = value
        return body

    return pre


def _run_elevated(body: dict[str, Any], path: str) -> dict[str, Any]:
    """Pre-2017 `runElevated` -> `userIdentity`, as Microsoft's migration table maps it.

    `runElevated: true` becomes an admin auto-user with the default scope; on Linux nodes the default
    auto-user is pool-scoped (the contract's AutoUserSpecification default), hence scope "pool".
    `runElevated: false` was the default behaviour, so it maps to nothing.
    """
    key = next((k for k in body if k.lower() == "runelevated"), None)
    if key is None:
        return body
    body = dict(body)
    value = body.pop(key)
    if value is None:
        return body
    if type(value) is not bool:
        raise invalid_property(_join(path, "runElevated"), _show(value), "The value must be a boolean (true or false).")
    if value and not _has(body, "userIdentity"):
        body["userIdentity"] = {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    return body


def _chain(*steps: Pre) -> Pre:
    def pre(body: dict[str, Any], path: str) -> dict[str, Any]:
        for step in steps:
            body = step(body, path)
        return body

    return pre


def _no_cloud_service(body: dict[str, Any], path: str) -> dict[str, Any]:
    """Seed-era `cloudServiceConfiguration` pools (Windows guest OS families) cannot be mapped to Linux."""
    key = next((k for k in body if k.lower() == "cloudserviceconfiguration"), None)
    if key is not None and body[key] is not None and not _has(body, "virtualMachineConfiguration"):
        raise invalid_property(
            _join(path, "cloudServiceConfiguration"),
            _show(body[key]),
            "cloudServiceConfiguration pools (Windows Cloud Services OS families) are retired and not "
            "supported; specify virtualMachineConfiguration with a Linux imageReference and nodeAgentSKUId.",
        )
    return body


_POOL_ALIASES = _renamer({"targetDedicated": "targetDedicatedNodes", "maxTasksPerNode": "taskSlotsPerNode"})

PRE: dict[str, Pre] = {
    "BatchPoolCreateOptions": _chain(_POOL_ALIASES, _no_cloud_service),
    "BatchPoolSpecification": _chain(_POOL_ALIASES, _no_cloud_service),
    "BatchPoolResizeOptions": _renamer({"targetDedicated": "targetDedicatedNodes"}),
    "BatchPoolUpdateOptions": _renamer({"maxTasksPerNode": "taskSlotsPerNode"}),
    "BatchStartTask": _run_elevated,
    "BatchStartTaskUpdate": _run_elevated,
    "BatchTaskCreateOptions": _run_elevated,
    "BatchJobManagerTask": _run_elevated,
    "BatchJobPreparationTask": _run_elevated,
    "BatchJobReleaseTask": _run_elevated,
    "ResourceFile": _renamer({"blobSource": "httpUrl"}),
}


# --- rules (POST) --------------------------------------------------------------------------------------

_SOURCES = ("httpUrl", "storageContainerUrl", "autoStorageContainerName")


def _resource_file(rf: dict[str, Any], path: str) -> None:
    given = [name for name in _SOURCES if rf.get(name)]
    if not given:
        raise invalid_property(
            path,
            _show(rf),
            "Exactly one of httpUrl, storageContainerUrl and autoStorageContainerName must be specified.",
        )
    if len(given) > 1:
        raise invalid_property(
            _join(path, given[1]),
            rf[given[1]],
            f"{given[1]} and {given[0]} are mutually exclusive; specify exactly one of "
            "httpUrl, storageContainerUrl and autoStorageContainerName.",
        )
    if given[0] == "httpUrl":
        if not rf.get("filePath"):
            raise missing_property(_join(path, "filePath"))
        if "blobPrefix" in rf:
            raise invalid_property(
                _join(path, "blobPrefix"),
                rf["blobPrefix"],
                "blobPrefix is valid only with autoStorageContainerName or storageContainerUrl.",
            )
    file_path = rf.get("filePath")
    if file_path and (file_path.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", file_path)):
        raise invalid_property(
            _join(path, "filePath"),
            file_path,
            "The path must be relative and cannot break out of the working directory.",
        )
    mode = rf.get("fileMode")
    if mode is not None and re.fullmatch(r"[0-7]{3,4}", mode) is None:
        raise invalid_property(
            _join(path, "fileMode"), mode, "The file mode must be in octal format, for example 0770."
        )


def _environment_setting(env: dict[str, Any], path: str) -> None:
    if not env["name"].strip() or "=" in env["name"]:
        raise invalid_property(
            _join(path, "name"),
            env["name"],
            "The environment variable name must be non-empty and contain no '='.",
        )


def _metadata_item(item: dict[str, Any], path: str) -> None:
    _non_empty(item, path, "name")


def _user_identity(identity: dict[str, Any], path: str) -> None:
    if "username" in identity and "autoUser" in identity:
        raise invalid_property(
            _join(path, "autoUser"),
            _show(identity["autoUser"]),
            "The username and autoUser properties are mutually exclusive.",
        )
    if "username" not in identity and "autoUser" not in identity:
        raise invalid_property(path, _show(identity), "Specify either the username or the autoUser property.")
    _non_empty(identity, path, "username")


def _retry_count(out: dict[str, Any], path: str) -> None:
    _at_least(out, path, "maxTaskRetryCount", -1, "The value must be -1 (unlimited retries) or greater.")


def _command_line(out: dict[str, Any], path: str) -> None:
    _non_empty(out, path, "commandLine")


def _optional_id(out: dict[str, Any], path: str) -> None:
    if "id" in out:
        check_id(out["id"], _join(path, "id"))


def _start_task(task: dict[str, Any], path: str) -> None:
    _command_line(task, path)
    _retry_count(task, path)


def _start_task_update(task: dict[str, Any], path: str) -> None:
    # Present in a PATCH it overwrites the whole StartTask, so it needs a command line.
    if "commandLine" not in task:
        raise missing_property(_join(path, "commandLine"))
    _start_task(task, path)


def _task(task: dict[str, Any], path: str) -> None:
    check_id(task["id"], _join(path, "id"))
    _command_line(task, path)
    _at_least(task, path, "requiredSlots", 1)
    if "multiInstanceSettings" in task and task.get("requiredSlots", 1) != 1:
        raise invalid_property(
            _join(path, "requiredSlots"),
            str(task["requiredSlots"]),
            "For multi-instance Tasks, requiredSlots must be 1.",
        )


def _job_manager(task: dict[str, Any], path: str) -> None:
    check_id(task["id"], _join(path, "id"))
    _command_line(task, path)
    _at_least(task, path, "requiredSlots", 1)


def _job_preparation(task: dict[str, Any], path: str) -> None:
    _optional_id(task, path)
    _command_line(task, path)


def _job_release(task: dict[str, Any], path: str) -> None:
    _optional_id(task, path)
    _command_line(task, path)
    limit = task.get("maxWallClockTime")
    if limit is not None and _ticks(limit) > 15 * MINUTE:
        raise invalid_property(
            _join(path, "maxWallClockTime"), limit, "The Job Release Task may not run longer than 15 minutes."
        )


def _multi_instance(settings: dict[str, Any], path: str) -> None:
    _at_least(settings, path, "numberOfInstances", 1)
    _non_empty(settings, path, "coordinationCommandLine")


def _ordered_range(out: dict[str, Any], path: str) -> None:
    if out["start"] > out["end"]:
        raise invalid_property(
            _join(path, "end"), str(out["end"]), "The end of the range must not be less than its start."
        )


def _task_id_range(out: dict[str, Any], path: str) -> None:
    _at_least(out, path, "start", 0)
    _ordered_range(out, path)


def _job_common(job: dict[str, Any], path: str) -> None:
    _in_range(job, path, "priority", -1000, 1000)
    value = job.get("maxParallelTasks")
    if value is not None and value != -1 and value < 1:
        raise invalid_property(_join(path, "maxParallelTasks"), str(value), "The value must be -1 or greater than 0.")
    if "jobReleaseTask" in job and "jobPreparationTask" not in job:
        raise invalid_property(
            _join(path, "jobReleaseTask"),
            _show(job["jobReleaseTask"]),
            "A Job Release Task cannot be specified without also specifying a Job Preparation Task.",
        )


def _job_create(job: dict[str, Any], path: str) -> None:
    check_id(job["id"], _join(path, "id"))
    _job_common(job, path)


def _pool_info(info: dict[str, Any], path: str) -> None:
    if "poolId" in info and "autoPoolSpecification" in info:
        raise invalid_property(
            _join(path, "autoPoolSpecification"),
            _show(info["autoPoolSpecification"]),
            "Specify either poolId or autoPoolSpecification, but not both.",
        )
    if "poolId" not in info and "autoPoolSpecification" not in info:
        raise missing_property(_join(path, "poolId"))
    _non_empty(info, path, "poolId")


def _auto_pool(spec: dict[str, Any], path: str) -> None:
    prefix = spec.get("autoPoolIdPrefix")
    if prefix is not None and (len(prefix) > 20 or re.fullmatch(r"[A-Za-z0-9_-]*", prefix) is None):
        raise invalid_property(
            _join(path, "autoPoolIdPrefix"),
            prefix,
            "The prefix can be up to 20 characters of letters, digits, hyphens and underscores.",
        )
    if "pool" not in spec:
        raise missing_property(_join(path, "pool"))


def _pool_sizing(pool: dict[str, Any], path: str) -> None:
    """enableAutoScale / autoScaleFormula / target node rules from the contract text."""
    if pool.get("enableAutoScale"):
        if not pool.get("autoScaleFormula"):
            raise missing_property(_join(path, "autoScaleFormula"))
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if name in pool:
                raise invalid_property(
                    _join(path, name),
                    str(pool[name]),
                    f"{name} must not be specified when enableAutoScale is true.",
                )
        interval = pool.get("autoScaleEvaluationInterval")
        if interval is not None and not AUTOSCALE_MIN_INTERVAL[0] <= _ticks(interval) <= 168 * HOUR:
            raise invalid_property(
                _join(path, "autoScaleEvaluationInterval"),
                interval,
                _autoscale_interval_reason(),
            )
    else:
        if "autoScaleFormula" in pool:
            raise invalid_property(
                _join(path, "autoScaleFormula"),
                pool["autoScaleFormula"],
                "autoScaleFormula must not be specified when enableAutoScale is false.",
            )
        if "targetDedicatedNodes" not in pool and "targetLowPriorityNodes" not in pool:
            raise missing_property(_join(path, "targetDedicatedNodes"))
    _at_least(pool, path, "targetDedicatedNodes", 0)
    _at_least(pool, path, "targetLowPriorityNodes", 0)


_UNSUPPORTED_SIZES = frozenset({"standard_a0", "extrasmall"})


def _vm_size(pool: dict[str, Any], path: str) -> None:
    _non_empty(pool, path, "vmSize")
    size = pool["vmSize"] = catalog.canonical_vm_size(pool["vmSize"])
    if size in _UNSUPPORTED_SIZES:
        raise invalid_property(_join(path, "vmSize"), size, "Batch does not support the STANDARD_A0 VM size.")


def _package_count(out: dict[str, Any], path: str) -> None:
    packages = out.get("applicationPackageReferences")
    if packages is not None and len(packages) > 10:
        raise invalid_property(
            _join(path, "applicationPackageReferences"),
            str(len(packages)),
            "A Pool can have at most 10 package references.",
        )


def _pool_spec(pool: dict[str, Any], path: str) -> None:
    _vm_size(pool, path)
    if "virtualMachineConfiguration" not in pool:
        raise missing_property(_join(path, "virtualMachineConfiguration"))
    _in_range(pool, path, "taskSlotsPerNode", 1, 256)
    _duration_at_least(pool, path, "resizeTimeout", 5 * MINUTE, "5 minutes")
    _pool_sizing(pool, path)
    _package_count(pool, path)


def _pool_create(pool: dict[str, Any], path: str) -> None:
    check_id(pool["id"], _join(path, "id"))
    _pool_spec(pool, path)


def _pool_update(pool: dict[str, Any], path: str) -> None:
    if "vmSize" in pool:
        _vm_size(pool, path)
    _in_range(pool, path, "taskSlotsPerNode", 1, 256)
    _package_count(pool, path)


def _vm_configuration(vmc: dict[str, Any], path: str) -> None:
    sku = vmc.get("nodeAgentSKUId")
    if sku is not None and not catalog.is_supported_agent_sku(sku):
        raise invalid_property(
            _join(path, "nodeAgentSKUId"),
            sku,
            "Only Linux node agent SKUs (batch.node.*, for example 'batch.node.ubuntu 22.04') are supported.",
        )
    if "windowsConfiguration" in vmc:
        raise invalid_property(
            _join(path, "windowsConfiguration"),
            _show(vmc["windowsConfiguration"]),
            "windowsConfiguration must not be specified: only Linux images are supported.",
        )


_GALLERY_IDS = ("virtualMachineImageId", "sharedGalleryImageId", "communityGalleryImageId")
_MARKETPLACE = ("publisher", "offer", "sku")


def _image_reference(ref: dict[str, Any], path: str) -> None:
    ids = [name for name in _GALLERY_IDS if ref.get(name)]
    marketplace = [name for name in _MARKETPLACE if ref.get(name)]
    if len(ids) > 1 or (ids and marketplace):
        other = (ids + marketplace)[1]
        raise invalid_property(
            _join(path, other),
            _show(ref[other]),
            f"{ids[0]} is mutually exclusive with other image properties.",
        )
    if not ids:
        for name in _MARKETPLACE:
            if name not in marketplace:
                raise missing_property(_join(path, name))
        ref.setdefault("version", "latest")  # contract: "If omitted, the default is 'latest'."


def _resize(out: dict[str, Any], path: str) -> None:
    _at_least(out, path, "targetDedicatedNodes", 0)
    _at_least(out, path, "targetLowPriorityNodes", 0)
    _duration_at_least(out, path, "resizeTimeout", 5 * MINUTE, "5 minutes")


def _remove_nodes(out: dict[str, Any], path: str) -> None:
    nodes = out["nodeList"]
    if not 1 <= len(nodes) <= 100:
        raise invalid_property(
            _join(path, "nodeList"), str(len(nodes)), "Between 1 and 100 nodes may be removed per request."
        )
    _duration_at_least(out, path, "resizeTimeout", 5 * MINUTE, "5 minutes")


def _enable_autoscale(out: dict[str, Any], path: str) -> None:
    interval = out.get("autoScaleEvaluationInterval")
    if interval is not None and not AUTOSCALE_MIN_INTERVAL[0] <= _ticks(interval) <= 168 * HOUR:
        raise invalid_property(
            _join(path, "autoScaleEvaluationInterval"),
            interval,
            _autoscale_interval_reason(),
        )


def _autoscale_interval_reason() -> str:
    low = AUTOSCALE_MIN_INTERVAL[0]
    shown = "5 minutes" if low == 5 * MINUTE else f"{low / durations.TICKS_PER_SECOND:g} seconds"
    return f"The value must be between {shown} and 168 hours."


def _task_group(group: dict[str, Any], path: str) -> None:
    count = len(group["value"])
    if not 1 <= count <= 100:
        raise invalid_property(_join(path, "value"), str(count), "A collection must contain between 1 and 100 Tasks.")


def _user_account(account: dict[str, Any], path: str) -> None:
    name = account["name"]
    if not name.strip() or len(name) > 20:
        raise invalid_property(_join(path, "name"), name, "The user name must be 1 to 20 characters long.")
    if "windowsUserConfiguration" in account:
        raise invalid_property(
            _join(path, "windowsUserConfiguration"),
            _show(account["windowsUserConfiguration"]),
            "windowsUserConfiguration can only be specified on a Windows Pool.",
        )


def _exactly_one(out: dict[str, Any], path: str, names: tuple[str, ...]) -> None:
    given = [name for name in names if name in out]
    if len(given) > 1:
        raise invalid_property(
            _join(path, given[1]), _show(out[given[1]]), f"{given[1]} and {given[0]} are mutually exclusive."
        )
    if not given:
        raise invalid_property(path, _show(out), f"Exactly one of {', '.join(names)} must be specified.")


def _mount(out: dict[str, Any], path: str) -> None:
    _exactly_one(
        out,
        path,
        (
            "azureBlobFileSystemConfiguration",
            "nfsMountConfiguration",
            "cifsMountConfiguration",
            "azureFileShareConfiguration",
        ),
    )


def _blobfuse(out: dict[str, Any], path: str) -> None:
    _exactly_one(out, path, ("accountKey", "sasKey", "identityReference"))


def _data_disk(out: dict[str, Any], path: str) -> None:
    _in_range(out, path, "lun", 0, 63)


def _dependencies(out: dict[str, Any], path: str) -> None:
    ids = out.get("taskIds")
    if ids is not None and sum(len(i) for i in ids) > 64000:
        raise BatchError(
            400,
            "TaskDependencyListTooLong",
            "The task dependency list is too long; use task ID ranges instead.",
            {"PropertyName": _join(path, "taskIds")},
        )


def _linux_user(config: dict[str, Any], path: str) -> None:
    if ("uid" in config) != ("gid" in config):
        missing = "gid" if "uid" in config else "uid"
        raise missing_property(_join(path, missing))


def _schedule_id(out: dict[str, Any], path: str) -> None:
    check_id(out["id"], _join(path, "id"))


def _schedule(out: dict[str, Any], path: str) -> None:
    _duration_at_least(out, path, "startWindow", MINUTE, "1 minute")
    _duration_at_least(out, path, "recurrenceInterval", MINUTE, "1 minute")


def _node_user(out: dict[str, Any], path: str) -> None:
    _non_empty(out, path, "name")


POST: dict[str, Post] = {
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
    "BatchPoolCreateOptions": _pool_create,
    "BatchPoolSpecification": _pool_spec,
    "BatchPoolUpdateOptions": _pool_update,
    "VirtualMachineConfiguration": _vm_configuration,
    "VirtualMachineConfigurationUpdate": _vm_configuration,
    "BatchPoolReplaceOptions": _package_count,
    "MountConfiguration": _mount,
    "AzureBlobFileSystemConfiguration": _blobfuse,
    "DataDisk": _data_disk,
    "BatchTaskDependencies": _dependencies,
    "BatchVmImageReference": _image_reference,
    "BatchPoolResizeOptions": _resize,
    "BatchNodeRemoveOptions": _remove_nodes,
    "BatchPoolEnableAutoScaleOptions": _enable_autoscale,
    "BatchTaskGroup": _task_group,
    "UserAccount": _user_account,
    "LinuxUserConfiguration": _linux_user,
    "BatchJobScheduleCreateOptions": _schedule_id,
    "BatchJobScheduleConfiguration": _schedule,
    "BatchNodeUserCreateOptions": _node_user,
}
