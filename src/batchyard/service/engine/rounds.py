"""The scheduling round: each active pool's job queues and free node slots go to the pure scheduler, and
its assignments become runs sent to the nodes.

A round runs once per event-loop turn however many kicks asked for it (`EngineCore.kick`), inside one
store transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from itertools import islice

from batchyard.protocol.messages import Run
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import RoundDue, reacts_to
from batchyard.service.engine.multi_instance import MultiInstanceOps
from batchyard.service.engine.preparation import PreparationOps
from batchyard.service.engine.records import JobRecord, PoolRecord
from batchyard.service.engine.scheduler import JobQueueView, NodeSlots, QueuedTask, schedule

log = logging.getLogger("batchyard.engine")

# Above any job priority (which is at most 1000): job managers that must run again.
RESTART_PRIORITY = 1_000_000


class SchedulingRounds(Concern):
    def __init__(self, core: EngineCore, preparation: PreparationOps, multi_instance: MultiInstanceOps) -> None:
        super().__init__(core)
        self.preparation = preparation  # places a task (its job's preparation task first)
        self.multi_instance = multi_instance  # places gangs

    @reacts_to(RoundDue)
    def _schedule_pools(self, event: RoundDue) -> None:
        for pool in list(self.pools.values()):
            if pool.doc["state"] != "active":
                continue
            try:
                self._schedule_pool(pool)
            except Exception:
                # One pool's fault must not stop every other pool from getting work.
                log.exception("scheduling pool %s failed", pool.doc["id"])

    def _schedule_pool(self, pool: PoolRecord) -> None:
        per_node = pool.slots_per_node
        nodes = [
            NodeSlots(node.id, per_node - node.slots_used, node.seq)
            for node in (self.nodes[node_id] for node_id in pool.node_ids)
            if node.schedulable and node.slots_used < per_node
        ]
        if not nodes:
            return
        jobs = [job for job in (self.jobs[key] for key in self.pool_jobs.get(pool.key, ())) if job.schedulable]
        low_priority = frozenset(node_id for node_id in pool.node_ids if not self.nodes[node_id].dedicated)
        views: list[JobQueueView] = []
        for job in jobs:
            excluded = self.preparation.excluded_nodes(job)
            manager_excluded = excluded | low_priority if _manager_needs_dedicated(job) else excluded
            queue: Iterable[QueuedTask] = job.queue
            if job.queue and manager_excluded != excluded and job.queue[0].task_key == _manager_key(job):
                # The job manager, first in its queue, may not run on Spot/low-priority nodes.
                views.append(JobQueueView(job.priority, job.seq, [job.queue[0]], manager_excluded))
                queue = islice(job.queue, 1, None)
            if job.queue:
                views.append(JobQueueView(job.priority, job.seq, queue, excluded, self.multi_instance.gang_sizes(job)))
            if job.restarts:
                # A job manager that must run again goes before every job's tasks (Azure Batch docs, job manager task).
                views.append(JobQueueView(RESTART_PRIORITY, job.seq, job.restarts, manager_excluded))
        if not views:
            return
        # What a waiting gang may reserve for: only looked at when a gang is queued.
        gangs_queued = any(view.gangs for view in views)
        schedulable = [n for n in pool.node_ids if self.nodes[n].schedulable] if gangs_queued else []
        assignments = schedule(views, nodes, pool.fill_type, schedulable)
        if not assignments:
            return
        by_job: dict[str, list[tuple[QueuedTask, str]]] = defaultdict(list)
        gangs: dict[tuple[str, str], tuple[str, ...]] = {}  # multi-instance tasks: their subtask nodes
        for assignment in assignments:
            by_job[assignment.task.job_key].append((assignment.task, assignment.node_id))
            if assignment.others:
                gangs[(assignment.task.job_key, assignment.task.task_key)] = assignment.others
        runs_by_node: dict[str, list[Run]] = defaultdict(list)
        now = self.core.now()
        for job_key, picked in by_job.items():
            job = self.jobs[job_key]
            _take_from_queue(job, {task.task_key for task, _ in picked})
            docs = self.store.get_tasks(job_key, [task.task_key for task, _ in picked])
            for task, node_id in picked:
                doc = docs.get(task.task_key)
                if doc is None or doc["state"] != "active":
                    continue
                others = gangs.get((job_key, task.task_key))
                if others:
                    for gang_node, gang_runs in self.multi_instance.assign_gang(
                        job, doc, [node_id, *others], now
                    ).items():
                        runs_by_node[gang_node].extend(gang_runs)
                    continue
                runs = self.preparation.assign_task(job, doc, self.nodes[node_id], task.slots, now)
                runs_by_node[node_id].extend(runs)
        for node_id, runs in runs_by_node.items():
            node = self.nodes[node_id]
            self.core.mark_node_busy(node, now)
            if node.session is not None and runs:
                node.session.send({"t": "run", "runs": runs})


def _manager_key(job: JobRecord) -> str:
    return str((job.doc.get("jobManagerTask") or {}).get("id", "")).lower()


def _manager_needs_dedicated(job: JobRecord) -> bool:
    """allowLowPriorityNode false: the job manager runs on dedicated nodes only."""
    manager: dict[str, object] = job.doc.get("jobManagerTask") or {}
    return manager.get("allowLowPriorityNode", True) is False


def _take_from_queue(job: JobRecord, keys: set[str]) -> None:
    """Remove assigned tasks from the front part of a job's queues, keeping skipped ones in order."""
    for queue in (job.restarts, job.queue):
        kept: list[QueuedTask] = []
        while keys and queue:
            task = queue.popleft()
            if task.task_key in keys:
                keys.discard(task.task_key)
            else:
                kept.append(task)
        queue.extendleft(reversed(kept))
