"""Pool request bodies -> normalized documents (contract wire shape, camelCase)."""

from __future__ import annotations

from typing import Any

from . import defaults
from .schema import validate


def parse_pool_create(body: Any) -> dict[str, Any]:
    """POST /pools (BatchPoolCreateOptions), with the service defaults filled in.

    `targetDedicated` / `maxTasksPerNode` of older API versions are accepted as aliases. The caller still checks
    `taskSlotsPerNode <= 4 x cores` of the VM size (see `catalog.max_task_slots`).
    """
    pool = validate("BatchPoolCreateOptions", body)
    defaults.pool_spec(pool)
    return pool


def parse_pool_update(body: Any) -> dict[str, Any]:
    """PATCH /pools/{id} (BatchPoolUpdateOptions): only the properties present.

    A present `startTask` replaces the pool's start task whole, so its defaults are filled.
    """
    update = validate("BatchPoolUpdateOptions", body)
    if "startTask" in update:
        defaults.start_task(update["startTask"])
    return update


def parse_pool_replace(body: Any) -> dict[str, Any]:
    """POST /pools/{id}/updateproperties (BatchPoolReplaceOptions): every updatable property.

    `applicationPackageReferences` and `metadata` are required (may be empty); `certificateReferences`
    defaults to [] (the contract requires it, but azure-batch 15.x cannot send it);
    an absent `startTask` means "remove the start task"; `targetNodeCommunicationMode` defaults to
    "default" ("If omitted, the existing setting is default").
    """
    replace = validate("BatchPoolReplaceOptions", body)
    replace.setdefault("certificateReferences", [])
    if "startTask" in replace:
        defaults.start_task(replace["startTask"])
    replace.setdefault("targetNodeCommunicationMode", "default")
    return replace


def parse_pool_resize(body: Any) -> dict[str, Any]:
    """POST /pools/{id}/resize (BatchPoolResizeOptions).

    resizeTimeout defaults to PT15M and nodeDeallocationOption to "requeue". A target that is not given
    stays absent: the caller decides (keep the current target).
    """
    resize = validate("BatchPoolResizeOptions", body)
    resize.setdefault("resizeTimeout", defaults.RESIZE_TIMEOUT)
    resize.setdefault("nodeDeallocationOption", "requeue")
    return resize


def parse_pool_remove_nodes(body: Any) -> dict[str, Any]:
    """POST /pools/{id}/removenodes (BatchNodeRemoveOptions): 1..100 node IDs."""
    remove = validate("BatchNodeRemoveOptions", body)
    remove.setdefault("resizeTimeout", defaults.RESIZE_TIMEOUT)
    remove.setdefault("nodeDeallocationOption", "requeue")
    return remove


def parse_pool_enable_autoscale(body: Any) -> dict[str, Any]:
    """POST /pools/{id}/enableautoscale (BatchPoolEnableAutoScaleOptions): only what is given.

    An absent formula or interval keeps the pool's current one (the caller applies PT15M for a pool
    that never had an interval).
    """
    return validate("BatchPoolEnableAutoScaleOptions", body)


def parse_pool_evaluate_autoscale(body: Any) -> dict[str, Any]:
    """POST /pools/{id}/evaluateautoscale (BatchPoolEvaluateAutoScaleOptions)."""
    return validate("BatchPoolEvaluateAutoScaleOptions", body)
