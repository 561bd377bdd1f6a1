"""Whether a task's `containerSettings` may be added to its job's pool (checked when it is added; when it
runs, run_builder.container_prefail checks the pool it lands on, which may have changed since)."""

from __future__ import annotations

from typing import Any

from batchyard.service import errors
from batchyard.service.engine.account_keys import scoped_key
from batchyard.service.engine.run_builder import container_config


def job_pool_doc(pools: dict[str, Any], account: str | None, pool_info: dict[str, Any]) -> dict[str, Any] | None:
    """The pool of `account` a job's `poolInfo` names (its record's document); None when it does not exist
    (yet) or the job has an auto pool: Azure accepts container tasks of a job whose auto pool
    specification has no container configuration (azure-batch's own test_batch_tasks adds one), and
    their runs fail with ContainerSettingsNotSupported (run_builder.container_prefail)."""
    if pool_info.get("autoPoolSpecification"):
        return None
    pool = pools.get(scoped_key(account, str(pool_info.get("poolId") or "")))
    return pool.doc if pool is not None else None


def container_refusal(spec: dict[str, Any], pool_doc: dict[str, Any] | None, path: str) -> errors.BatchError | None:
    """The error for a task (`path` names its containerSettings) that cannot have its containerSettings."""
    settings = spec.get("containerSettings")
    if not settings:
        return None
    if spec.get("multiInstanceSettings"):  # its coordination and MPI launcher would run outside the image
        return errors.invalid_property(
            path, settings.get("imageName"), "Multi-instance tasks in containers are not supported by this service yet."
        )
    if pool_doc is None or container_config(pool_doc) is not None:
        return None
    return errors.invalid_property(
        path,
        settings.get("imageName"),
        "The job's pool has no containerConfiguration: its tasks cannot run in containers.",
    )
