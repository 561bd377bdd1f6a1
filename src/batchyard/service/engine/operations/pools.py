"""Pool operations: create, read, update, resize, remove nodes, autoscale, and the nodes' states."""

from __future__ import annotations

from typing import Any

from batchyard.service import errors
from batchyard.service.engine.autoscale import run_document
from batchyard.service.engine.operations.base import Check, OperationsBase, no_check
from batchyard.service.engine.records import PoolRecord
from batchyard.service.models import catalog

# BatchPoolUpdateOptions properties that "can be updated only when the pool is empty" (the contract).
_EMPTY_POOL_ONLY = (
    "displayName",
    "vmSize",
    "enableInterNodeCommunication",
    "virtualMachineConfiguration",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "networkConfiguration",
    "resourceTags",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
)


def _check_size_and_slots(spec: dict[str, Any], vm_size: str) -> None:
    """A known VM size (canonical name written back) and taskSlotsPerNode <= min(4 x cores, 256)."""
    size = catalog.lookup_vm_size(vm_size)
    if size is None:
        raise errors.invalid_property("vmSize", vm_size, "The specified VM size is not supported.")
    if "vmSize" in spec:
        spec["vmSize"] = size.name
    limit = min(256, 4 * size.cores)
    if int(spec.get("taskSlotsPerNode", 1)) > limit:
        raise errors.invalid_property(
            "taskSlotsPerNode", spec["taskSlotsPerNode"], f"The value must be at most {limit} for {size.name}."
        )


class PoolOperations(OperationsBase):
    # --- reads ----------------------------------------------------------------------------------

    def pools(self) -> list[PoolRecord]:
        return [pool for key, pool in self.engine.pools.items() if self.owns(key)]

    def pool(self, pool_id: str) -> PoolRecord:
        """The pool, or PoolNotFound."""
        return self.engine.pool_ops.get_pool(self.key(pool_id))

    def find_pool(self, pool_id: str) -> PoolRecord | None:
        return self.engine.pools.get(self.key(pool_id))

    def node_states(self, pool: PoolRecord, dedicated: bool) -> list[str]:
        """The states of the pool's dedicated (or of its Spot/low-priority) nodes."""
        nodes = (self.engine.nodes[node_id] for node_id in pool.node_ids)
        return [node.doc["state"] for node in nodes if node.dedicated == dedicated]

    # --- changes --------------------------------------------------------------------------------

    def create_pool(self, spec: dict[str, Any]) -> PoolRecord:
        _check_size_and_slots(spec, spec["vmSize"])
        with self.store.transaction():
            return self.engine.pool_ops.create_pool(spec, self.account)

    def delete_pool(self, pool_id: str, check: Check = no_check) -> None:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        check(pool.doc)
        with self.store.transaction():
            self.engine.pool_ops.delete_pool(pool)

    def patch_pool(self, pool_id: str, changes: dict[str, Any], check: Check = no_check) -> PoolRecord:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        check(pool.doc)
        if "vmSize" in changes or "taskSlotsPerNode" in changes:
            _check_size_and_slots(changes, changes.get("vmSize", pool.doc["vmSize"]))
        restricted = [name for name in _EMPTY_POOL_ONLY if name in changes]
        if restricted and (pool.node_ids or pool.doc.get("allocationState") != "steady"):
            raise errors.operation_invalid(
                f"{restricted[0]} can be updated only when the pool is empty (steady, with no compute nodes)."
            )
        with self.store.transaction():
            self.engine.pool_ops.update_pool(pool, changes, replace=False)
        return pool

    def replace_pool_properties(self, pool_id: str, changes: dict[str, Any]) -> PoolRecord:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        with self.store.transaction():
            self.engine.pool_ops.update_pool(pool, changes, replace=True)
        return pool

    def resize_pool(self, pool_id: str, spec: dict[str, Any], check: Check = no_check) -> PoolRecord:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        check(pool.doc)
        with self.store.transaction():
            self.engine.pool_ops.resize_pool(pool, spec)
        return pool

    def stop_resize_pool(self, pool_id: str, check: Check = no_check) -> PoolRecord:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        check(pool.doc)
        with self.store.transaction():
            self.engine.pool_ops.stop_resize(pool)
        return pool

    def remove_nodes(self, pool_id: str, spec: dict[str, Any], check: Check = no_check) -> PoolRecord:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        check(pool.doc)
        with self.store.transaction():
            self.engine.pool_ops.remove_nodes(pool, spec)
        return pool

    # --- autoscale ------------------------------------------------------------------------------

    def enable_autoscale(self, pool_id: str, spec: dict[str, Any], check: Check = no_check) -> PoolRecord:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        check(pool.doc)
        with self.store.transaction():
            self.engine.autoscale.enable_autoscale(pool, spec)
        return pool

    def disable_autoscale(self, pool_id: str) -> PoolRecord:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        with self.store.transaction():
            self.engine.autoscale.disable_autoscale(pool)
        return pool

    def evaluate_autoscale(self, pool_id: str, formula: str) -> tuple[PoolRecord, dict[str, Any]]:
        """The pool and the AutoScaleRun of the formula against it (nothing changes)."""
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        return pool, self.engine.autoscale.evaluate_autoscale(pool, formula)

    def debug_autoscale(self, pool_id: str, formula: str) -> dict[str, Any]:
        """The formula's run with its targets, every variable, each statement's value and the samples."""
        engine = self.engine
        pool = engine.pool_ops.get_pool(self.key(pool_id))
        now = engine.core.now()
        result = engine.autoscale.debug_evaluate(pool, formula, now)
        body: dict[str, Any] = run_document(result, now)
        body["targets"] = {
            "targetDedicatedNodes": result.target_dedicated,
            "targetLowPriorityNodes": result.target_low_priority,
            "nodeDeallocationOption": result.dealloc,
        }
        body["variables"] = [{"name": name, "type": kind, "value": value} for name, kind, value in result.variables]
        body["statements"] = [
            {"index": step.index, "line": step.line, "column": step.col, "text": step.text, "value": step.value}
            for step in result.trace
        ]
        timing = engine.settings.autoscale
        readable_before = now.timestamp() - timing.delay
        body["samplePeriodSeconds"] = timing.sample_period
        body["sampleDelaySeconds"] = timing.delay
        body["samples"] = [
            {
                "name": name,
                "recorded": len(history),
                "readable": sum(1 for when, _ in history.samples if when <= readable_before),
                "latest": history.samples[-1][1] if len(history) else None,
            }
            for name, history in sorted(engine.autoscale.histories.get(pool.key, {}).items())
        ]
        return body
