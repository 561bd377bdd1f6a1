"""Aliases from older API versions, applied to a request object before its schema checks.

Each function takes the raw object and its property path and returns the object with old names
replaced, only where the current name is absent: pool `targetDedicated` -> `targetDedicatedNodes` and
`maxTasksPerNode` -> `taskSlotsPerNode`; `runElevated` on any task kind -> `userIdentity`; resource
file `blobSource` -> `httpUrl`. Pools in `cloudServiceConfiguration` (retired) are refused here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchyard.service.errors import invalid_property

from ..scalars import boolean
from .checks import join, show

Alias = Callable[[dict[str, Any], str], dict[str, Any]]


def _has(body: dict[str, Any], name: str) -> bool:
    low = name.lower()
    return any(k.lower() == low and v is not None for k, v in body.items())


def _renamer(aliases: dict[str, str]) -> Alias:
    """Rename old property names (case-insensitively) unless the new name is given too."""
    lowered = {old.lower(): new for old, new in aliases.items()}

    def rename(body: dict[str, Any], path: str) -> dict[str, Any]:
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

    return rename


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
    if boolean(value, join(path, "runElevated")) and not _has(body, "userIdentity"):
        body["userIdentity"] = {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    return body


def _chain(*steps: Alias) -> Alias:
    def each(body: dict[str, Any], path: str) -> dict[str, Any]:
        for step in steps:
            body = step(body, path)
        return body

    return each


def _no_cloud_service(body: dict[str, Any], path: str) -> dict[str, Any]:
    """`cloudServiceConfiguration` pools of older API versions (Windows guest OS families, retired by Azure)."""
    key = next((k for k in body if k.lower() == "cloudserviceconfiguration"), None)
    if key is not None and body[key] is not None and not _has(body, "virtualMachineConfiguration"):
        raise invalid_property(
            join(path, "cloudServiceConfiguration"),
            show(body[key]),
            "cloudServiceConfiguration pools (Windows Cloud Services OS families) are retired and not "
            "supported; specify virtualMachineConfiguration with an imageReference and nodeAgentSKUId (for Windows, "
            "a MicrosoftWindowsServer WindowsServer image and 'batch.node.windows amd64').",
        )
    return body


_POOL_ALIASES = _renamer({"targetDedicated": "targetDedicatedNodes", "maxTasksPerNode": "taskSlotsPerNode"})


#: Definition name -> its alias step.
ALIASES: dict[str, Alias] = {
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
