"""Tasks: adding (with dependencies), reading, terminating, deleting, reactivating, updating; limits and
retention. Their runs on nodes are in task_runs.py."""

from __future__ import annotations

from typing import Any

from batchyard.service import errors
from batchyard.service.clock import iso
from batchyard.service.documents import TaskDocument
from batchyard.service.engine import states
from batchyard.service.engine.account_keys import account_of
from batchyard.service.engine.container_rules import container_refusal, job_pool_doc
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.dependencies import parent_keys
from batchyard.service.engine.events import TaskDeleted, TaskEnded, TasksAdded, Tick, reacts_to
from batchyard.service.engine.nodes import NodeOps
from batchyard.service.engine.records import JobRecord
from batchyard.service.engine.scheduler import QueuedTask
from batchyard.service.engine.task_runs import TASK_ENDED, TaskRunOps, blocked_status, task_dir


class TaskOps(Concern):
    def __init__(self, core: EngineCore, node_ops: NodeOps, task_runs: TaskRunOps) -> None:
        super().__init__(core)
        self.node_ops = node_ops
        self.task_runs = task_runs

    # --- lookups --------------------------------------------------------------------------------

    def get_task(self, job: JobRecord, task_id: str) -> TaskDocument:
        doc = self.store.get_task(job.key, task_id.lower())
        if doc is None:
            raise errors.not_found("TaskNotFound", "The specified task does not exist.")
        return doc

    # --- adding ---------------------------------------------------------------------------------

    def check_job_accepts_tasks(self, job: JobRecord) -> None:
        state = job.doc["state"]
        if state == "completed":
            raise errors.conflict("JobCompleted", "The specified job is already in a completed state.")
        if state == "terminating":
            raise errors.conflict("JobBeingTerminated", "The specified job is being terminated.")
        if state == "deleting":
            raise errors.conflict(
                "JobBeingDeleted", "The specified job has been marked for deletion and is being deleted."
            )

    def add_tasks(self, job: JobRecord, specs: list[dict[str, Any]]) -> list[TaskDocument | errors.BatchError]:
        """Add tasks to a job; one result per spec (the doc, or the error for that task)."""
        self.check_job_accepts_tasks(job)
        now = self.core.now()
        keys = [spec["id"].lower() for spec in specs]
        existing = self.store.existing_task_keys(job.key, keys)
        seen: set[str] = set()
        results: list[TaskDocument | errors.BatchError] = []
        rows: list[tuple[str, int, str, TaskDocument]] = []
        default_retries = int((job.doc.get("constraints") or {}).get("maxTaskRetryCount", 0))
        stamp = iso(now)
        pool_doc = job_pool_doc(self.pools, account_of(job.key), job.doc["poolInfo"])
        for spec, key in zip(specs, keys, strict=True):
            if key in existing or key in seen:
                results.append(errors.conflict("TaskExists", "The specified task already exists."))
                continue
            refused = container_refusal(spec, pool_doc, "containerSettings")
            if refused is not None:
                results.append(refused)
                continue
            dependency = self._dependency_check(job, key, spec)
            if isinstance(dependency, errors.BatchError):
                results.append(dependency)
                continue
            seen.add(key)
            doc = TaskDocument(spec)
            if dependency == "blocked":
                doc["dependencyStatus"] = blocked_status(job, key)
            constraints = dict(doc.get("constraints") or {})
            constraints.setdefault("maxTaskRetryCount", default_retries)
            doc["constraints"] = constraints
            doc.update(
                {
                    "creationTime": stamp,
                    "state": "active",
                    "stateTransitionTime": stamp,
                    "executionInfo": {"retryCount": 0, "requeueCount": 0},
                }
            )
            self.core.stamp(doc, now)
            rows.append((key, self.store.next_seq(), "active", doc))
            results.append(doc)
        if rows:
            self.store.insert_tasks(job.key, rows)
            for key, _, _, doc in rows:
                slots = int(doc.get("requiredSlots", 1))
                job.counts["active"] += 1
                job.slot_counts["active"] += slots
                if job.graph.is_waiting(key):
                    job.dependent_slots[key] = slots  # queued when its parents are satisfied
                else:
                    job.queue.append(QueuedTask(job.key, key, slots))
            self.core.kick()
            self.core.emit(TasksAdded(job, [doc for _, _, _, doc in rows]))
        return results

    def _dependency_check(self, job: JobRecord, key: str, spec: dict[str, Any]) -> str | errors.BatchError:
        """Register a new task's parents: "ready", "waiting", "blocked", or the error that refuses it."""
        depends_on = spec.get("dependsOn")
        if not depends_on:
            return "ready"
        if not job.doc.get("usesTaskDependencies"):
            return errors.BatchError(
                400,
                "TaskDependenciesNotSpecifiedOnJob",
                "The task has dependencies, but its job does not have usesTaskDependencies set.",
            )
        try:
            parents = parent_keys(depends_on)
        except (KeyError, ValueError):
            return errors.invalid_property("dependsOn", depends_on, "The task id ranges are not valid.")
        if job.graph.would_cycle(key, parents):
            return errors.invalid_property("dependsOn", depends_on, "The dependencies would form a cycle.")
        return job.graph.add(key, parents)

    # --- user operations ------------------------------------------------------------------------

    def terminate_task(self, job: JobRecord, doc: TaskDocument) -> None:
        if job.doc["state"] == "completed":
            raise errors.conflict("JobCompleted", "The specified job is already in a completed state.")
        now = self.core.now()
        if doc["state"] == "completed":
            return
        slots = int(doc.get("requiredSlots", 1))
        if doc["state"] == "active":
            _drop_from_queue(job, doc["id"].lower())
            job.graph.forget(doc["id"].lower())
            job.dependent_slots.pop(doc["id"].lower(), None)
            self.task_runs.complete(job, doc, slots, TASK_ENDED, now, from_state="active")
            return
        self.task_runs.kill_run(doc, "terminate")
        if doc["state"] == "completed":
            return  # ended at once: nothing was running that could report
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)
        node = self.task_runs.node_of(doc)
        if node is None or node.session is None:
            # Nobody will report for it: complete now.
            run = node.runs.pop(doc.private.run_id or "", None) if node else None
            if node is not None and run is not None:
                node.slots_used -= run.slots
            doc.private.ending = None
            self.task_runs.complete(job, doc, slots, TASK_ENDED, now, from_state=doc["state"])

    def delete_task(self, job: JobRecord, doc: TaskDocument) -> None:
        key = doc["id"].lower()
        slots = int(doc.get("requiredSlots", 1))
        state = doc["state"]
        node = self.task_runs.node_of(doc)
        if state == "active":
            _drop_from_queue(job, key)
            job.graph.forget(key)
            job.dependent_slots.pop(key, None)
        elif state in ("running", "preparing") and node is not None:
            run = node.runs.pop((doc.private.run_id or ""), None)
            if run is not None:
                node.slots_used -= run.slots
                if node.session is not None:
                    node.session.send({"t": "kill", "aids": [run.run_id]})
                self.node_ops.mark_node_free(node, self.core.now())
                self.core.kick()
        elif state == "completed":
            if (doc.get("executionInfo") or {}).get("result") == "success":
                job.succeeded -= 1
                job.succeeded_slots -= slots
            else:
                job.failed -= 1
                job.failed_slots -= slots
        job.counts[state] -= 1
        job.slot_counts[state] -= slots
        self.store.delete_task(job.key, key)
        if node is not None and node.session is not None:
            node.session.send({"t": "cleanup", "paths": [task_dir(job.doc["id"], doc["id"])]})
        self.core.emit(TaskEnded(job))
        self.core.emit(TaskDeleted(job, doc, self.core.now()))

    def reactivate_task(self, job: JobRecord, doc: TaskDocument) -> None:
        self.check_job_accepts_tasks(job)
        info = doc["executionInfo"]
        if doc["state"] != "completed" or info.get("result") != "failure":
            raise errors.conflict(
                "TaskNotFailed" if doc["state"] == "completed" else "TaskNotCompleted",
                "Only a task that completed with a failure can be reactivated.",
            )
        now = self.core.now()
        slots = int(doc.get("requiredSlots", 1))
        job.failed -= 1
        job.failed_slots -= slots
        info["retryCount"] = 0
        for key in ("failureInfo", "result", "exitCode", "endTime"):
            info.pop(key, None)
        states.move(doc, states.TASK, "active", now, previous=True, owner=job.doc["id"])
        doc.pop("nodeInfo", None)
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)
        self.task_runs.count(job, "completed", "active", slots)
        job.queue.append(QueuedTask(job.key, doc["id"].lower(), slots))
        self.core.kick()

    def update_task(self, job: JobRecord, doc: TaskDocument, changes: dict[str, Any]) -> None:
        if doc["state"] == "completed":
            raise errors.conflict("TaskCompleted", "The specified task is already completed.")
        now = self.core.now()
        constraints = dict(doc.get("constraints") or {})
        constraints.update(changes.get("constraints") or {})
        doc["constraints"] = constraints
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)

    @reacts_to(Tick)
    def _enforce_task_limits_and_retention(self, event: Tick) -> None:
        for node_id, path in self.store.take_expired(self.core.now().timestamp()):
            node = self.nodes.get(node_id)
            if node is not None and node.session is not None:
                node.session.send({"t": "cleanup", "paths": [path]})


def _drop_from_queue(job: JobRecord, key: str) -> None:
    for queue in (job.restarts, job.queue):
        for task in queue:
            if task.task_key == key:
                queue.remove(task)
                return
