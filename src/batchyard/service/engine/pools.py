"""Pools: creation, resizing (a reconcile loop of target versus nodes), node removal and deletion."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from batchyard.service import errors
from batchyard.service.clock import iso, parse_iso
from batchyard.service.engine import states
from batchyard.service.engine.account_keys import account_of, in_account, scoped_key
from batchyard.service.engine.certificates import CertificateOps
from batchyard.service.engine.core import Concern, EngineCore, limit_seconds
from batchyard.service.engine.events import (
    EngineStarted,
    NodeForgotten,
    NodeFreed,
    NodeLeaving,
    PoolAdded,
    PoolChanged,
    PoolCreated,
    PoolDeleted,
    PoolDeleting,
    PoolResizeEnded,
    PoolResizeStarted,
    Tick,
    reacts_to,
)
from batchyard.service.engine.formulas import Formulas
from batchyard.service.engine.nodes import NodeOps
from batchyard.service.engine.preemption import check_preemption_settings
from batchyard.service.engine.records import NodeRecord, PoolRecord
from batchyard.service.models import catalog

# How a resize under way ends when its pool is deleted (the Service Log's pool resize complete event).
_RESIZE_STOPPED = {"code": "ResizeStopped", "message": "The resize was stopped: the pool is being deleted."}

# Nodes that are not doing work leave first when a pool shrinks.
_REMOVAL_ORDER = {
    "preempted": 0,
    "unusable": 0,
    "starttaskfailed": 0,
    "unknown": 1,
    "creating": 1,
    "starting": 1,
    "offline": 2,
    "waitingforstarttask": 2,
    "idle": 3,
    "running": 4,
}


# A pool's target for its dedicated (True) and its Spot/low-priority (False) nodes.
_TARGETS = {True: "targetDedicatedNodes", False: "targetLowPriorityNodes"}


class PoolOps(Concern):
    def __init__(
        self, core: EngineCore, node_ops: NodeOps, certificate_ops: CertificateOps, formulas: Formulas
    ) -> None:
        super().__init__(core)
        self.node_ops = node_ops
        self.certificate_ops = certificate_ops  # a pool may only reference active certificates
        self.formulas = formulas  # an autoscale formula is checked before the pool exists

    def get_pool(self, key: str) -> PoolRecord:
        """The pool of that key (account_keys.scoped_key), or PoolNotFound."""
        pool = self.pools.get(key)
        if pool is None:
            raise errors.not_found("PoolNotFound", "The specified pool does not exist.")
        return pool

    def create_pool(self, spec: dict[str, Any], account: str | None, auto_pool_for: str | None = None) -> PoolRecord:
        """A new pool of `account` (`auto_pool_for`: the job or schedule key whose auto pool it is)."""
        if spec.get("enableAutoScale"):
            self.formulas.check(spec["autoScaleFormula"])
        self.certificate_ops.check_certificate_references(spec.get("certificateReferences"), account)
        check_preemption_settings(spec.get("metadata"))
        key = scoped_key(account, spec["id"])
        if key in self.pools:
            if self.pools[key].doc["state"] == "deleting":
                raise errors.conflict(
                    "PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed."
                )
            raise errors.conflict("PoolExists", "The specified pool already exists.")
        self.check_pool_quota(account)
        now = self.core.now()
        doc = dict(spec)
        doc.update(
            {
                "creationTime": iso(now),
                "state": "active",
                "stateTransitionTime": iso(now),
                "allocationState": "steady",
                "allocationStateTransitionTime": iso(now),
                "currentDedicatedNodes": 0,
                "currentLowPriorityNodes": 0,
                "currentNodeCommunicationMode": "default",
            }
        )
        self.core.stamp(doc, now)
        pool = PoolRecord(key, self.store.next_seq(), doc)
        pool.private.auto_pool_for = auto_pool_for
        self.pools[key] = pool
        self.core.emit(PoolAdded(pool, now))
        self.begin_resize(pool, now)
        self.core.save_pool(pool)
        self.core.kick()
        self.core.emit(PoolCreated(pool, now))
        return pool

    def check_pool_quota(self, account: str | None) -> None:
        """The account's pools, auto pools and pools being deleted included, may not exceed its quota."""
        if sum(1 for key in self.pools if in_account(key, account)) >= self.settings.pool_quota:
            raise errors.conflict(
                "PoolQuotaReached",
                f"The specified account has reached its quota of pools ({self.settings.pool_quota}).",
            )

    # --- resizing -------------------------------------------------------------------------------

    def resize_pool(self, pool: PoolRecord, spec: dict[str, Any]) -> None:
        if pool.doc.get("enableAutoScale") and pool.doc["state"] != "deleting":
            raise errors.conflict(
                "AutoScalingEnabled", "The specified pool has auto-scaling enabled; resize is not allowed."
            )
        self._require_steady_active(pool)
        now = self.core.now()
        pool.doc["targetDedicatedNodes"] = spec.get("targetDedicatedNodes", pool.doc.get("targetDedicatedNodes", 0))
        pool.doc["targetLowPriorityNodes"] = spec.get("targetLowPriorityNodes", 0)
        if "resizeTimeout" in spec:
            pool.doc["resizeTimeout"] = spec["resizeTimeout"]
        pool.private.deallocation_option = spec.get("nodeDeallocationOption", "requeue")
        self.begin_resize(pool, now)
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)

    def stop_resize(self, pool: PoolRecord) -> None:
        if pool.doc["state"] == "deleting":
            raise _being_deleted()
        if pool.doc["allocationState"] != "resizing":
            return
        now = self.core.now()
        staying = [self.nodes[node_id] for node_id in pool.node_ids if self.nodes[node_id].private.leaving is None]
        for dedicated in (True, False):
            pool.doc[_TARGETS[dedicated]] = sum(1 for node in staying if node.dedicated == dedicated)
        self._set_allocation(pool, "stopping", now)
        self._check_allocation(pool, now)
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)

    def remove_nodes(self, pool: PoolRecord, spec: dict[str, Any]) -> None:
        self._require_steady_active(pool)
        ids = spec["nodeList"]
        wanted = []
        for node_id in ids:
            node = self.nodes.get(node_id)
            if node is None or node.pool_key != pool.key:
                raise errors.not_found("NodeNotFound", f"The node {node_id} does not exist in the pool.")
            wanted.append(node)
        now = self.core.now()
        option = spec.get("nodeDeallocationOption", "requeue")
        for dedicated in (True, False):
            leaving = sum(1 for node in wanted if node.dedicated == dedicated and node.private.leaving is None)
            pool.doc[_TARGETS[dedicated]] = max(0, int(pool.doc.get(_TARGETS[dedicated], 0)) - leaving)
        if "resizeTimeout" in spec:
            pool.doc["resizeTimeout"] = spec["resizeTimeout"]
        self._set_allocation(pool, "resizing", now)
        pool.private.resize_started = iso(now)
        self.core.emit(PoolResizeStarted(pool, option, now))
        for node in wanted:
            self._start_leaving(node, option, now)
        self._check_allocation(pool, now)
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)

    def _require_steady_active(self, pool: PoolRecord) -> None:
        if pool.doc["state"] == "deleting":
            raise _being_deleted()
        if pool.doc["allocationState"] != "steady":
            raise errors.conflict(
                "PoolNotSteady", "The specified pool is not in a steady allocation state; wait until it is steady."
            )

    def begin_resize(self, pool: PoolRecord, now: datetime) -> None:
        pool.doc["resizeErrors"] = []
        pool.doc.pop("resizeErrors")
        if pool.doc["allocationState"] == "resizing" and pool.private.resize_started:
            self._end_resize(pool, now)  # a new target replaces the resize under way
        self._set_allocation(pool, "resizing", now)
        pool.private.resize_started = iso(now)
        staying = sum(1 for node_id in pool.node_ids if self.nodes[node_id].private.leaving is None)
        target = int(pool.doc.get("targetDedicatedNodes", 0)) + int(pool.doc.get("targetLowPriorityNodes", 0))
        option = pool.private.deallocation_option if target < staying else None
        self.core.emit(PoolResizeStarted(pool, option, now))
        self._reconcile(pool, now)

    def _reconcile(self, pool: PoolRecord, now: datetime) -> None:
        """Move the pool's dedicated and its low-priority nodes toward their targets, each on its own quota."""
        quota_errors = []
        for dedicated in (True, False):
            target = int(pool.doc.get(_TARGETS[dedicated], 0))
            staying = [
                node
                for node in (self.nodes[node_id] for node_id in pool.node_ids)
                if node.private.leaving is None and node.dedicated == dedicated
            ]
            if len(staying) < target:
                wanted = target - len(staying)
                allowed = self._nodes_within_quota(pool, wanted, dedicated)
                for _ in range(allowed):
                    self.node_ops.allocate_node(pool, now, dedicated)
                if allowed < wanted:
                    quota_errors.append(self._quota_error(dedicated))
            elif len(staying) > target:
                option = pool.private.deallocation_option
                victims = sorted(
                    staying,
                    key=lambda n: (
                        self._hosts_job_manager(n),
                        _REMOVAL_ORDER.get(n.doc["state"], 5),
                        n.slots_used,
                        -n.seq,
                    ),
                )[: len(staying) - target]
                for node in victims:
                    self._start_leaving(node, option, now)
        if quota_errors:
            pool.doc["resizeErrors"] = quota_errors
        self._check_allocation(pool, now)

    def _hosts_job_manager(self, node: NodeRecord) -> bool:
        """A node running a job manager task leaves last when its pool shrinks (Azure Batch docs, job manager task)."""
        for run in node.runs.values():
            job = self.jobs.get(run.job_key)
            if job is not None and (job.doc.get("jobManagerTask") or {}).get("id", "").lower() == run.task_key:
                return True
        return False

    def _nodes_within_quota(self, pool: PoolRecord, wanted: int, dedicated: bool) -> int:
        """Dedicated and low-priority cores have separate account quotas (preempted nodes hold theirs)."""
        account = account_of(pool.key)
        used = sum(
            _cores(self.pools[node.pool_key].doc["vmSize"])
            for node in self.nodes.values()
            if node.pool_key in self.pools and node.dedicated == dedicated and in_account(node.pool_key, account)
        )
        per_node = _cores(pool.doc["vmSize"])
        return max(0, min(wanted, (self._quota(dedicated) - used) // per_node))

    def _quota(self, dedicated: bool) -> int:
        return self.settings.core_quota if dedicated else self.settings.low_priority_core_quota

    def _quota_error(self, dedicated: bool) -> dict[str, Any]:
        if dedicated:
            code, message, name = (
                "AccountCoreQuotaReached",
                "The specified account has reached its dedicated core quota.",
                "CoreQuota",
            )
        else:
            code, message, name = (
                "AccountLowPriorityCoreQuotaReached",
                "The specified account has reached its low-priority core quota.",
                "LowPriorityCoreQuota",
            )
        return {"code": code, "message": message, "values": [{"name": name, "value": str(self._quota(dedicated))}]}

    def _set_allocation(self, pool: PoolRecord, state: str, now: datetime) -> None:
        if pool.doc.get("allocationState") != state:
            pool.doc["allocationState"] = state
            pool.doc["allocationStateTransitionTime"] = iso(now)

    def _check_allocation(self, pool: PoolRecord, now: datetime) -> None:
        """Every change of a pool's target or nodes passes here."""
        dedicated = sum(1 for node_id in pool.node_ids if self.nodes[node_id].dedicated)
        # Preempted low-priority nodes count as current until they are reallocated (the contract says so).
        pool.doc["currentDedicatedNodes"] = dedicated
        pool.doc["currentLowPriorityNodes"] = len(pool.node_ids) - dedicated
        if pool.doc["allocationState"] in ("resizing", "stopping"):
            if not any(self.nodes[node_id].private.leaving for node_id in pool.node_ids):
                self._end_resize(pool, now)
        self.core.emit(PoolChanged(pool, now))

    def _end_resize(self, pool: PoolRecord, now: datetime) -> None:
        started, pool.private.resize_started = pool.private.resize_started, None
        self._set_allocation(pool, "steady", now)
        errors_now = pool.doc.get("resizeErrors") or [None]
        self.core.emit(PoolResizeEnded(pool, started, errors_now[0], now))

    # --- node removal ---------------------------------------------------------------------------

    def _start_leaving(self, node: NodeRecord, option: str, now: datetime) -> None:
        if node.private.leaving is not None:
            return
        node.private.leaving = option
        states.move(node.doc, states.NODE, "leavingpool", now, previous=False, owner=node.pool_key)
        self.core.emit(NodeLeaving(node, option, now))
        self.core.save_node(node)
        self._maybe_finish_leaving(node)

    @reacts_to(EngineStarted)
    def _finish_removals_of_the_previous_process(self, event: EngineStarted) -> None:
        for node in list(self.nodes.values()):
            self._maybe_finish_leaving(node)

    @reacts_to(NodeFreed)
    def _leave_when_free(self, event: NodeFreed) -> None:
        self._maybe_finish_leaving(event.node)

    def _maybe_finish_leaving(self, node: NodeRecord) -> None:
        if node.private.leaving is None:
            return
        if any(run.occupies_node for run in node.runs.values()):
            return
        if node.private.leaving == "retaineddata" and self.store.retained_until(node.id) > self.core.now().timestamp():
            return  # housekeeping looks again once the task data may go
        self._remove_node(node)

    def _remove_node(self, node: NodeRecord) -> None:
        """Stop the node's agent and wipe its disk; the node is gone from the pool once that is done."""
        if node.removing:
            return
        node.removing = True
        if node.session is not None:
            node.session.send({"t": "shutdown"})
        self.core.spawn(self._stop_and_forget(node))

    async def _stop_and_forget(self, node: NodeRecord) -> None:
        await self.core.provider_of(node).stop_node(node.id, wipe=True)
        with self.store.transaction():
            self._forget_node(node)

    def _forget_node(self, node: NodeRecord) -> None:
        self.core.emit(NodeForgotten(node))
        now = self.core.now()
        self.nodes.pop(node.id, None)
        self.store.delete_node(node.id)
        pool = self.pools.get(node.pool_key)
        if pool is None:
            return
        if node.id in pool.node_ids:
            pool.node_ids.remove(node.id)
        if pool.doc["state"] == "deleting" and not pool.node_ids:
            self._drop_deleted(pool, now)
            return
        self._check_allocation(pool, now)
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)

    # --- deletion and updates -------------------------------------------------------------------

    def delete_pool(self, pool: PoolRecord) -> None:
        if pool.doc["state"] == "deleting":
            return
        now = self.core.now()
        states.move(pool.doc, states.POOL, "deleting", now, previous=False)
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)
        self.core.emit(PoolDeleting(pool, now))
        if pool.private.resize_started:  # deleting a pool stops its resize (Pool - Delete)
            started, pool.private.resize_started = pool.private.resize_started, None
            self.core.emit(PoolResizeEnded(pool, started, _RESIZE_STOPPED, now))
        if not pool.node_ids:
            self._drop_deleted(pool, now)
            return
        for node_id in list(pool.node_ids):
            node = self.nodes.get(node_id)
            if node is not None:
                node.private.leaving = None
                self._start_leaving(node, "requeue", now)

    def _drop_deleted(self, pool: PoolRecord, now: datetime) -> None:
        self.pools.pop(pool.key, None)
        self.store.delete_pool(pool.key)
        self.core.emit(PoolDeleted(pool, pool.doc["stateTransitionTime"], now))

    def update_pool(self, pool: PoolRecord, changes: dict[str, Any], replace: bool) -> None:
        if "certificateReferences" in changes:
            self.certificate_ops.check_certificate_references(changes["certificateReferences"], account_of(pool.key))
        check_preemption_settings(changes.get("metadata"))
        if pool.doc["state"] == "deleting":
            raise _being_deleted()
        now = self.core.now()
        if replace:
            # updateproperties replaces these wholesale; absent startTask removes it.
            for key in (
                "startTask",
                "certificateReferences",
                "applicationPackageReferences",
                "metadata",
                "targetNodeCommunicationMode",
            ):
                pool.doc.pop(key, None)
        pool.doc.update(changes)
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)

    @reacts_to(Tick)
    def _check_leaving_nodes_and_resize_timeouts(self, event: Tick) -> None:
        now = self.core.now()
        for node in list(self.nodes.values()):
            if node.private.leaving == "retaineddata":
                self._maybe_finish_leaving(node)
        for pool in list(self.pools.values()):
            started = pool.private.resize_started
            if pool.doc["allocationState"] != "resizing" or not started:
                continue
            timeout = limit_seconds(pool.doc.get("resizeTimeout")) or 900.0
            if now - parse_iso(started) > timedelta(seconds=timeout):
                pool.doc["resizeErrors"] = [
                    {
                        "code": "AllocationTimedout",
                        "message": "Desired number of nodes could not be allocated within the resize timeout",
                    }
                ]
                self._end_resize(pool, now)
                self.core.stamp(pool.doc, now)
                self.core.save_pool(pool)


def _cores(vm_size: str) -> int:
    size = catalog.lookup_vm_size(vm_size)
    return size.cores if size else 1


def _being_deleted() -> Exception:
    return errors.conflict(
        "PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed."
    )
