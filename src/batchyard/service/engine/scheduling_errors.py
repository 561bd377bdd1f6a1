"""Why an active job's waiting tasks cannot run: the job's `executionInfo.schedulingError`.

Azure accepts a job whose pool does not exist (its tasks wait for such a pool), keeps tasks waiting on a
pool whose nodes all failed their start task, and never places a task that needs more slots than a node
has. The contract's one place to say why is the job's `schedulingError` (BatchJobSchedulingError): it is
set while the cause lasts, so the waiting is visible instead of silent, and removed when the cause is
gone (a pool is created, a node recovers, the task is deleted).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, islice
from typing import Any

from batchyard.service.engine.core import Concern
from batchyard.service.engine.events import Tick, reacts_to
from batchyard.service.engine.job_errors import MAX_DETAILS, scheduling_error
from batchyard.service.engine.records import JobRecord, PoolRecord

# Node states from which no task runs until someone acts (a reboot, a reimage, a fixed start task).
UNUSABLE_NODE_STATES = frozenset({"starttaskfailed", "unusable"})


class SchedulingErrors(Concern):
    @reacts_to(Tick)
    def _explain_waiting_tasks(self, event: Tick) -> None:
        for job in list(self.jobs.values()):
            if job.doc["state"] != "active":
                continue  # a disabled or ending job's error stays as it was last seen
            error = self.why_waiting(job) if job.queue or job.restarts else None
            info = job.doc.setdefault("executionInfo", {})
            if info.get("schedulingError") != error:
                if error is None:
                    info.pop("schedulingError", None)
                else:
                    info["schedulingError"] = error
                self.core.save_job(job)

    def why_waiting(self, job: JobRecord) -> dict[str, Any] | None:
        """The error that keeps the job's queued tasks from running, or None when they can run (or wait
        only for nodes that are coming, busy or being resized)."""
        pool = self.pools.get(job.pool_key or "")
        if pool is None:
            pool_id = (job.doc.get("executionInfo") or {}).get("poolId") or (job.doc.get("poolInfo") or {}).get(
                "poolId"
            )
            return scheduling_error(
                "PoolNotFound",
                f"The job's pool '{pool_id}' does not exist. Its tasks run once a pool with this id is created.",
                [("PoolId", str(pool_id))],
            )
        # Looked for only while a node has a free slot: tasks waiting for busy nodes wait for a reason, and
        # a long queue is not walked every second while the pool works through it.
        idle_slots = any(
            node.schedulable and node.slots_used < pool.slots_per_node
            for node in (self.nodes[node_id] for node_id in pool.node_ids if node_id in self.nodes)
        )
        too_large = list(islice(self._too_large(job, pool), MAX_DETAILS - 1)) if idle_slots else []
        if too_large:
            per_node = pool.slots_per_node
            return scheduling_error(
                "TaskRequiredSlotsExceedNodeSlots",
                f"{'Tasks need' if len(too_large) > 1 else 'A task needs'} more scheduling slots (requiredSlots) "
                f"than a node of pool '{pool.doc['id']}' has (taskSlotsPerNode {per_node}): "
                "they cannot run on this pool.",
                [("TaskSlotsPerNode", str(per_node))]
                + [(f"Task:{task_id}", f"requiredSlots={slots}") for task_id, slots in too_large],
            )
        states = [(node_id, self.nodes[node_id].doc["state"]) for node_id in pool.node_ids if node_id in self.nodes]
        if states and all(state in UNUSABLE_NODE_STATES for _, state in states):
            return scheduling_error(
                "PoolNodesUnusable",
                f"Every node of pool '{pool.doc['id']}' is in the starttaskfailed or unusable state: no task runs "
                "until a node recovers (fix the start task, then reboot or reimage the nodes, or resize the pool).",
                [(node_id, state) for node_id, state in states],
            )
        return None

    def _too_large(self, job: JobRecord, pool: PoolRecord) -> Iterator[tuple[str, int]]:
        per_node = pool.slots_per_node
        for queued in chain(job.restarts, job.queue):
            if queued.slots > per_node:
                doc = self.store.get_task(job.key, queued.task_key)
                yield (doc["id"] if doc else queued.task_key), queued.slots
