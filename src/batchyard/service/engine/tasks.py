"""Tasks: adding, starting a run on a node, results and retries, requeue, terminate, delete, reactivate."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from batchyard.protocol.messages import Run
from batchyard.service import errors
from batchyard.service.clock import iso
from batchyard.service.engine import states
from batchyard.service.engine.core import limit_seconds
from batchyard.service.engine.dependencies import parent_keys
from batchyard.service.engine.events import (
    JobActionRequested,
    JobManagerCompleted,
    NodeLeaving,
    RunLost,
    TaskEnded,
    TaskRunFinished,
    Tick,
    reacts_to,
)
from batchyard.service.engine.exit_conditions import ExitOutcome, exit_outcome
from batchyard.service.engine.nodes import failure_of
from batchyard.service.engine.pools import PoolOps
from batchyard.service.engine.records import JobRecord, NodeRecord, NodeRun, RunKind
from batchyard.service.engine.run_builder import build_run, merge_environment
from batchyard.service.engine.scheduler import QueuedTask
from batchyard.service.tokens import issue_job_token

TASK_ENDED = {
    "category": "usererror",
    "code": "TaskEnded",
    "message": "Task Was Ended by User Request",
}


def task_dir(job_id: str, task_id: str) -> str:
    """A task's directory under the node root, laid out as on Azure Batch nodes."""
    return f"workitems/{job_id}/job-1/{task_id}"


class TaskOps(PoolOps):
    # --- lookups --------------------------------------------------------------------------------

    def get_task(self, job: JobRecord, task_id: str) -> dict[str, Any]:
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

    def add_tasks(self, job: JobRecord, specs: list[dict[str, Any]]) -> list[dict[str, Any] | errors.BatchError]:
        """Add tasks to a job; one result per spec (the doc, or the error for that task)."""
        self.check_job_accepts_tasks(job)
        now = self.now()
        keys = [spec["id"].lower() for spec in specs]
        existing = self.store.existing_task_keys(job.key, keys)
        seen: set[str] = set()
        results: list[dict[str, Any] | errors.BatchError] = []
        rows = []
        default_retries = int((job.doc.get("constraints") or {}).get("maxTaskRetryCount", 0))
        stamp = iso(now)
        for spec, key in zip(specs, keys, strict=True):
            if key in existing or key in seen:
                results.append(errors.conflict("TaskExists", "The specified task already exists."))
                continue
            dependency = self._dependency_check(job, key, spec)
            if isinstance(dependency, errors.BatchError):
                results.append(dependency)
                continue
            seen.add(key)
            doc = dict(spec)
            if dependency == "blocked":
                doc["dependencyStatus"] = _blocked_status(job, key)
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
            self.stamp(doc, now)
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
            self.kick()
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

    # --- runs -----------------------------------------------------------------------------------

    def assign_task(
        self, job: JobRecord, doc: dict[str, Any], node: NodeRecord, slots: int, now: datetime
    ) -> list[Run]:
        return [self.start_task_run(job, doc, node, slots, now)]

    def start_task_run(self, job: JobRecord, doc: dict[str, Any], node: NodeRecord, slots: int, now: datetime) -> Run:
        run_id = secrets.token_hex(8)
        pool = self.pools[node.pool_key]
        states.move(doc, states.TASK, "running", now, previous=True)
        doc["_aid"] = run_id
        directory = task_dir(job.doc["id"], doc["id"])
        node_url = f"{self.settings.base_url}/pools/{pool.doc['id']}/nodes/{node.id}"
        doc["nodeInfo"] = {
            "affinityId": node.doc["affinityId"],
            "nodeUrl": node_url,
            "poolId": pool.doc["id"],
            "nodeId": node.id,
            "taskRootDirectory": directory,
            "taskRootDirectoryUrl": f"{node_url}/files/{directory}",
        }
        info = doc["executionInfo"]
        info["startTime"] = iso(now)
        for key in ("endTime", "exitCode", "result", "failureInfo"):
            info.pop(key, None)
        self.stamp(doc, now)
        self.save_task(job.key, doc)
        self._count(job, "active", "running", slots)
        node.runs[run_id] = NodeRun(job.key, doc["id"].lower(), slots, run_id)
        node.slots_used += slots
        node.doc["totalTasksRun"] = int(node.doc.get("totalTasksRun", 0)) + 1
        node.dirty = True
        node.recent.append(
            {
                "taskUrl": f"{self.settings.base_url}/jobs/{job.doc['id']}/tasks/{doc['id']}",
                "jobId": job.doc["id"],
                "taskId": doc["id"],
                "taskState": "running",
                "executionInfo": {
                    "startTime": iso(now),
                    "retryCount": info["retryCount"],
                    "requeueCount": info["requeueCount"],
                },
            }
        )
        env = merge_environment(job.doc.get("commonEnvironmentSettings"), doc.get("environmentSettings"))
        if "job" in ((doc.get("authenticationTokenSettings") or {}).get("access") or []):
            env["AZ_BATCH_AUTHENTICATION_TOKEN"] = issue_job_token(self.node_secret, job.doc["id"], job.seq)
        return build_run(
            RunKind.TASK,
            run_id,
            directory,
            doc["commandLine"],
            env,
            job_id=job.doc["id"],
            task_id=doc["id"],
            wall=limit_seconds((doc.get("constraints") or {}).get("maxWallClockTime")),
            retry=info["retryCount"],
            **self.resources.storage_fields(doc),
        )

    @reacts_to(TaskRunFinished)
    def _on_task_run_finished(self, event: TaskRunFinished) -> None:
        self.finish_run(event.node, event.run, event.result, event.now)

    def finish_run(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        job = self.jobs.get(run.job_key)
        if job is None:
            return
        doc = self.store.get_task(run.job_key, run.task_key)
        if doc is None or doc.get("_aid") != run.run_id or doc["state"] != "running":
            return
        info = doc["executionInfo"]
        if result.get("start"):
            info["startTime"] = result["start"]
        info["endTime"] = result.get("end") or iso(now)
        if result.get("exit") is not None:
            info["exitCode"] = result["exit"]
        if result.get("stats"):
            doc["_stats"] = result["stats"]
        ended_by = doc.pop("_ending", None)
        failure = TASK_ENDED if ended_by == "terminate" else failure_of(result)
        if ended_by == "requeue":
            self._requeue_doc(job, doc, run.slots, now)
            return
        limit = int((doc.get("constraints") or {}).get("maxTaskRetryCount", 0))
        retries = int(info.get("retryCount", 0))
        if (
            failure
            and ended_by is None
            and (limit == -1 or retries < limit)
            and job.doc["state"] in ("active", "disabling", "disabled", "enabling")
        ):
            info["retryCount"] = retries + 1
            info["lastRetryTime"] = iso(now)
            info["failureInfo"] = failure
            info["result"] = "failure"
            self._back_to_active(job, doc, run.slots, now, front=False)
        else:
            self._complete(job, doc, run.slots, failure, now, from_state="running")
        self._update_recent(node, doc)

    def _complete(
        self,
        job: JobRecord,
        doc: dict[str, Any],
        slots: int,
        failure: dict[str, Any] | None,
        now: datetime,
        from_state: str,
    ) -> None:
        info = doc["executionInfo"]
        info["result"] = "failure" if failure else "success"
        if failure:
            info["failureInfo"] = failure
        else:
            info.pop("failureInfo", None)
        states.move(doc, states.TASK, "completed", now, previous=True)
        doc.pop("_aid", None)
        outcome = exit_outcome(doc.get("exitConditions"), info.get("exitCode"), failure)
        if job.doc.get("usesTaskDependencies"):
            doc["_dep"] = outcome.dependency_action  # children added later (or after a restart) need it
        self.stamp(doc, now)
        self.save_task(job.key, doc)
        self._count(job, from_state, "completed", slots)
        if failure:
            job.failed += 1
            job.failed_slots += slots
        else:
            job.succeeded += 1
            job.succeeded_slots += slots
        self._apply_exit_outcome(job, doc["id"].lower(), outcome, user_ended=failure is TASK_ENDED)
        if doc.get("_jm"):
            self.emit(JobManagerCompleted(job))
        node = self._node_of(doc)
        if node is not None and from_state == "running":
            if not failure:
                node.doc["totalTasksSucceeded"] = int(node.doc.get("totalTasksSucceeded", 0)) + 1
            retention = limit_seconds((doc.get("constraints") or {}).get("retentionTime"))
            if retention is not None:
                self.store.retain(now.timestamp() + retention, node.id, doc["nodeInfo"]["taskRootDirectory"])
        self.emit(TaskEnded(job))

    def _apply_exit_outcome(self, job: JobRecord, key: str, outcome: ExitOutcome, user_ended: bool) -> None:
        """Dependent tasks and the job react to how the task ended (its exitConditions)."""
        if job.doc.get("usesTaskDependencies"):
            ready, blocked = job.graph.complete(key, outcome.dependency_action)
            for child in ready:
                job.queue.append(QueuedTask(job.key, child, job.dependent_slots.pop(child, 1)))
            if ready:
                self.kick()
            if blocked:
                self._mark_blocked(job, blocked)
        if user_ended:
            return  # a task ended by a user triggers no job action
        if job.doc.get("onTaskFailure") == "performexitoptionsjobaction" and outcome.job_action != "none":
            self.emit(JobActionRequested(job, outcome.job_action))

    def _mark_blocked(self, job: JobRecord, keys: list[str]) -> None:
        now = self.now()
        docs = self.store.get_tasks(job.key, keys)
        for key in keys:
            job.dependent_slots.pop(key, None)
            doc = docs.get(key)
            if doc is not None:
                doc["dependencyStatus"] = _blocked_status(job, key)
                self.stamp(doc, now)
                self.save_task(job.key, doc)

    def _back_to_active(self, job: JobRecord, doc: dict[str, Any], slots: int, now: datetime, front: bool) -> None:
        states.move(doc, states.TASK, "active", now, previous=True)
        doc.pop("_aid", None)
        doc.pop("nodeInfo", None)
        self._count(job, doc["previousState"], "active", slots)
        self.stamp(doc, now)
        self.save_task(job.key, doc)
        task = QueuedTask(job.key, doc["id"].lower(), slots)
        if doc.get("_jm"):
            job.restarts.append(task)  # a job manager's restart comes before all other tasks of the pool
        elif front:
            job.queue.appendleft(task)
        else:
            job.queue.append(task)
        self.emit(TaskEnded(job))  # a run ended: a disabling job may be done
        self.kick()

    def _requeue_doc(self, job: JobRecord, doc: dict[str, Any], slots: int, now: datetime) -> None:
        info = doc["executionInfo"]
        info["requeueCount"] = int(info.get("requeueCount", 0)) + 1
        info["lastRequeueTime"] = iso(now)
        self._back_to_active(job, doc, slots, now, front=True)

    @reacts_to(RunLost)
    def _requeue_lost_run(self, event: RunLost) -> None:
        self.requeue_run(event.node, event.run, event.now)

    def requeue_run(self, node: NodeRecord, run: NodeRun, now: datetime) -> None:
        """The node lost a running task (agent died, node removed): run it again elsewhere."""
        if self.lose_special_run(node, run, now):
            return
        job = self.jobs.get(run.job_key)
        doc = self.store.get_task(run.job_key, run.task_key)
        if job is None or doc is None or doc.get("_aid") != run.run_id or doc["state"] not in ("running", "preparing"):
            return
        doc.pop("_ending", None)
        if job.doc["state"] in ("terminating", "completed"):
            self._complete(job, doc, run.slots, TASK_ENDED, now, from_state=doc["state"])
        else:
            self._requeue_doc(job, doc, run.slots, now)

    @reacts_to(NodeLeaving)
    def _end_runs_of_leaving_node(self, event: NodeLeaving) -> None:
        if event.option in ("requeue", "terminate"):  # taskcompletion and retaineddata wait for the runs
            self.end_node_runs(event.node, requeue=event.option == "requeue", now=event.now)

    def end_node_runs(self, node: NodeRecord, requeue: bool, now: datetime) -> None:
        """Stop every task on a node now: requeue them, or complete them as ended."""
        run_ids = [run_id for run_id, run in node.runs.items() if run.occupies_node]
        if node.session is not None and run_ids:
            node.session.send({"t": "kill", "aids": run_ids})
        for run_id in run_ids:
            run = node.runs.pop(run_id)
            node.slots_used -= run.slots
            if self.lose_special_run(node, run, now):
                continue
            job = self.jobs.get(run.job_key)
            doc = self.store.get_task(run.job_key, run.task_key)
            if job is None or doc is None or doc.get("_aid") != run_id:
                continue
            if requeue:
                self._requeue_doc(job, doc, run.slots, now)
            else:
                self._complete(job, doc, run.slots, TASK_ENDED, now, from_state=doc["state"])

    def kill_run(self, doc: dict[str, Any], reason: str) -> None:
        """Ask the node to end a running task; its result completes (or requeues) it."""
        node = self._node_of(doc)
        run_id = doc.get("_aid", "")
        if node is not None and run_id in node.runs and node.runs[run_id].kind is RunKind.HELD:
            # Waiting for its node's preparation task: no process to end, so it ends here.
            run = node.runs.pop(run_id)
            node.slots_used -= run.slots
            job = self.jobs[run.job_key]
            if reason == "requeue":
                self._requeue_doc(job, doc, run.slots, self.now())
            else:
                self._complete(job, doc, run.slots, TASK_ENDED, self.now(), from_state="preparing")
            return
        doc["_ending"] = reason
        if node is not None and node.session is not None and doc.get("_aid") in node.runs:
            node.session.send({"t": "kill", "aids": [doc["_aid"]]})

    def _node_of(self, doc: dict[str, Any]) -> NodeRecord | None:
        return self.nodes.get((doc.get("nodeInfo") or {}).get("nodeId", ""))

    def _count(self, job: JobRecord, old: str, new: str, slots: int) -> None:
        job.counts[old] -= 1
        job.counts[new] += 1
        job.slot_counts[old] -= slots
        job.slot_counts[new] += slots

    def _update_recent(self, node: NodeRecord, doc: dict[str, Any]) -> None:
        for item in node.recent:
            if item["taskId"] == doc["id"] and item["taskState"] == "running":
                item["taskState"] = doc["state"]
                info = doc["executionInfo"]
                item["executionInfo"] = {
                    k: info[k]
                    for k in ("startTime", "endTime", "exitCode", "failureInfo", "retryCount", "requeueCount", "result")
                    if k in info
                }

    # --- user operations ------------------------------------------------------------------------

    def terminate_task(self, job: JobRecord, doc: dict[str, Any]) -> None:
        if job.doc["state"] == "completed":
            raise errors.conflict("JobCompleted", "The specified job is already in a completed state.")
        now = self.now()
        if doc["state"] == "completed":
            return
        slots = int(doc.get("requiredSlots", 1))
        if doc["state"] == "active":
            _drop_from_queue(job, doc["id"].lower())
            job.graph.forget(doc["id"].lower())
            job.dependent_slots.pop(doc["id"].lower(), None)
            self._complete(job, doc, slots, TASK_ENDED, now, from_state="active")
            return
        self.kill_run(doc, "terminate")
        if doc["state"] == "completed":
            return  # ended at once: nothing was running that could report
        self.stamp(doc, now)
        self.save_task(job.key, doc)
        node = self._node_of(doc)
        if node is None or node.session is None:
            # Nobody will report for it: complete now.
            run = node.runs.pop(doc["_aid"], None) if node else None
            if node is not None and run is not None:
                node.slots_used -= run.slots
            doc.pop("_ending", None)
            self._complete(job, doc, slots, TASK_ENDED, now, from_state=doc["state"])

    def delete_task(self, job: JobRecord, doc: dict[str, Any]) -> None:
        key = doc["id"].lower()
        slots = int(doc.get("requiredSlots", 1))
        state = doc["state"]
        node = self._node_of(doc)
        if state == "active":
            _drop_from_queue(job, key)
            job.graph.forget(key)
            job.dependent_slots.pop(key, None)
        elif state in ("running", "preparing") and node is not None:
            run = node.runs.pop(doc.get("_aid", ""), None)
            if run is not None:
                node.slots_used -= run.slots
                if node.session is not None:
                    node.session.send({"t": "kill", "aids": [run.run_id]})
                self.mark_node_free(node, self.now())
                self.kick()
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
        self.emit(TaskEnded(job))

    def reactivate_task(self, job: JobRecord, doc: dict[str, Any]) -> None:
        self.check_job_accepts_tasks(job)
        info = doc["executionInfo"]
        if doc["state"] != "completed" or info.get("result") != "failure":
            raise errors.conflict(
                "TaskNotFailed" if doc["state"] == "completed" else "TaskNotCompleted",
                "Only a task that completed with a failure can be reactivated.",
            )
        now = self.now()
        slots = int(doc.get("requiredSlots", 1))
        job.failed -= 1
        job.failed_slots -= slots
        info["retryCount"] = 0
        for key in ("failureInfo", "result", "exitCode", "endTime"):
            info.pop(key, None)
        states.move(doc, states.TASK, "active", now, previous=True)
        doc.pop("nodeInfo", None)
        self.stamp(doc, now)
        self.save_task(job.key, doc)
        self._count(job, "completed", "active", slots)
        job.queue.append(QueuedTask(job.key, doc["id"].lower(), slots))
        self.kick()

    def update_task(self, job: JobRecord, doc: dict[str, Any], changes: dict[str, Any]) -> None:
        if doc["state"] == "completed":
            raise errors.conflict("TaskCompleted", "The specified task is already completed.")
        now = self.now()
        constraints = dict(doc.get("constraints") or {})
        constraints.update(changes.get("constraints") or {})
        doc["constraints"] = constraints
        self.stamp(doc, now)
        self.save_task(job.key, doc)

    @reacts_to(Tick)
    def _enforce_task_limits_and_retention(self, event: Tick) -> None:
        for node_id, path in self.store.take_expired(self.now().timestamp()):
            node = self.nodes.get(node_id)
            if node is not None and node.session is not None:
                node.session.send({"t": "cleanup", "paths": [path]})


def _blocked_status(job: JobRecord, key: str) -> dict[str, Any]:
    """The marker a blocked task carries: it stays active and will never run (see README)."""
    return {"state": "blocked", "blockedBy": sorted(job.graph.blocked_by.get(key, ()))}


def _drop_from_queue(job: JobRecord, key: str) -> None:
    for queue in (job.restarts, job.queue):
        for task in queue:
            if task.task_key == key:
                queue.remove(task)
                return
