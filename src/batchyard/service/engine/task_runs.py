"""Task runs: placing a task on a node, its result (exit conditions, retries, completion), requeue, kill."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from batchyard.protocol.messages import Run
from batchyard.service.clock import iso
from batchyard.service.documents import TaskDocument
from batchyard.service.engine import states
from batchyard.service.engine.account_keys import account_of
from batchyard.service.engine.core import Concern, EngineCore, limit_seconds
from batchyard.service.engine.events import (
    GangEndRequested,
    JobActionRequested,
    JobManagerCompleted,
    NodeLeaving,
    RunLost,
    TaskBackInQueue,
    TaskCompleted,
    TaskEnded,
    TaskRunFinished,
    TaskStarted,
    reacts_to,
)
from batchyard.service.engine.exit_conditions import ExitOutcome, exit_outcome
from batchyard.service.engine.nodes import failure_of
from batchyard.service.engine.records import JobRecord, NodeRecord, NodeRun, RunKind
from batchyard.service.engine.run_builder import build_run, container_of, container_prefail, merge_environment
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


class TaskRunOps(Concern):
    def __init__(self, core: EngineCore) -> None:
        super().__init__(core)

    # --- runs -----------------------------------------------------------------------------------

    def start_task_run(self, job: JobRecord, doc: TaskDocument, node: NodeRecord, slots: int, now: datetime) -> Run:
        run_id = secrets.token_hex(8)
        pool = self.pools[node.pool_key]
        states.move(doc, states.TASK, "running", now, previous=True, owner=job.doc["id"])
        doc.private.run_id = run_id
        directory = task_dir(job.doc["id"], doc["id"])
        account_url = self.core.account_url(job.key)
        node_url = f"{account_url}/pools/{pool.doc['id']}/nodes/{node.id}"
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
        for key in ("endTime", "exitCode", "result", "failureInfo", "containerInfo"):
            info.pop(key, None)
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)
        self.count(job, "active", "running", slots)
        node.runs[run_id] = NodeRun(job.key, doc["id"].lower(), slots, run_id)
        node.slots_used += slots
        node.doc["totalTasksRun"] = int(node.doc.get("totalTasksRun", 0)) + 1
        node.dirty = True
        node.recent.append(
            {
                "taskUrl": f"{account_url}/jobs/{job.doc['id']}/tasks/{doc['id']}",
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
        self.core.emit(TaskStarted(job, doc, now))
        env = merge_environment(job.doc.get("commonEnvironmentSettings"), doc.get("environmentSettings"))
        if "job" in ((doc.get("authenticationTokenSettings") or {}).get("access") or []):
            env["AZ_BATCH_AUTHENTICATION_TOKEN"] = issue_job_token(self.core.node_secret, job.doc["id"], job.seq)
        fields = self.resources.storage_fields(doc, account_of(job.key))
        settings = doc.get("containerSettings")
        if (mismatch := container_prefail(settings, pool.doc, required=True)) is not None:
            fields.setdefault("prefail", mismatch)
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
            identity=doc.get("userIdentity"),
            container=container_of(settings, pool.doc),
            **fields,
        )

    @reacts_to(TaskRunFinished)
    def _on_task_run_finished(self, event: TaskRunFinished) -> None:
        self.finish_run(event.node, event.run, event.result, event.now, event.doc)

    def finish_run(
        self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime, doc: TaskDocument | None
    ) -> None:
        """End a task's run with the agent's result (`doc`: the task's stored document, None if it is gone)."""
        job = self.jobs.get(run.job_key)
        if job is None:
            return
        if doc is None or doc.private.run_id != run.run_id or doc["state"] != "running":
            return
        info = doc["executionInfo"]
        if result.get("start"):
            info["startTime"] = result["start"]
        info["endTime"] = result.get("end") or iso(now)
        if result.get("exit") is not None:
            info["exitCode"] = result["exit"]
        if result.get("container"):
            info["containerInfo"] = result["container"]
        if result.get("stats"):
            doc.private.run_stats = result["stats"]
        ended_by, doc.private.ending = doc.private.ending, None
        failure = TASK_ENDED if ended_by == "terminate" else failure_of(result)
        if ended_by == "requeue":
            self.requeue_doc(job, doc, run.slots, now)
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
            self.back_to_active(job, doc, run.slots, now, front=False)
        else:
            self.complete(job, doc, run.slots, failure, now, from_state="running")
        self.update_recent(node, doc)

    def complete(
        self,
        job: JobRecord,
        doc: TaskDocument,
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
        states.move(doc, states.TASK, "completed", now, previous=True, owner=job.doc["id"])
        doc.private.run_id = None
        outcome = exit_outcome(doc.get("exitConditions"), info.get("exitCode"), failure)
        if job.doc.get("usesTaskDependencies"):
            doc.private.dependency_action = (
                outcome.dependency_action
            )  # children added later (or after a restart) need it
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)
        self.count(job, from_state, "completed", slots)
        if failure:
            job.failed += 1
            job.failed_slots += slots
        else:
            job.succeeded += 1
            job.succeeded_slots += slots
        self._apply_exit_outcome(job, doc["id"].lower(), outcome, user_ended=failure is TASK_ENDED)
        if doc.private.job_manager:
            self.core.emit(JobManagerCompleted(job))
        node = self.node_of(doc)
        if node is not None and from_state == "running":
            if not failure:
                node.doc["totalTasksSucceeded"] = int(node.doc.get("totalTasksSucceeded", 0)) + 1
            retention = limit_seconds((doc.get("constraints") or {}).get("retentionTime"))
            if retention is not None:
                self.store.retain(now.timestamp() + retention, node.id, doc["nodeInfo"]["taskRootDirectory"])
        self.core.emit(TaskEnded(job))
        self.core.emit(TaskCompleted(job, doc, now))

    def _apply_exit_outcome(self, job: JobRecord, key: str, outcome: ExitOutcome, user_ended: bool) -> None:
        """Dependent tasks and the job react to how the task ended (its exitConditions)."""
        if job.doc.get("usesTaskDependencies"):
            ready, blocked = job.graph.complete(key, outcome.dependency_action)
            for child in ready:
                job.queue.append(QueuedTask(job.key, child, job.dependent_slots.pop(child, 1)))
            if ready:
                self.core.kick()
            if blocked:
                self._mark_blocked(job, blocked)
        if user_ended:
            return  # a task ended by a user triggers no job action
        if job.doc.get("onTaskFailure") == "performexitoptionsjobaction" and outcome.job_action != "none":
            self.core.emit(JobActionRequested(job, outcome.job_action))

    def _mark_blocked(self, job: JobRecord, keys: list[str]) -> None:
        now = self.core.now()
        docs = self.store.get_tasks(job.key, keys)
        for key in keys:
            job.dependent_slots.pop(key, None)
            doc = docs.get(key)
            if doc is not None:
                doc["dependencyStatus"] = blocked_status(job, key)
                self.core.stamp(doc, now)
                self.core.save_task(job.key, doc)

    def back_to_active(self, job: JobRecord, doc: TaskDocument, slots: int, now: datetime, front: bool) -> None:
        states.move(doc, states.TASK, "active", now, previous=True, owner=job.doc["id"])
        doc.private.run_id = None
        doc.pop("nodeInfo", None)
        self.count(job, doc["previousState"], "active", slots)
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)
        task = QueuedTask(job.key, doc["id"].lower(), slots)
        if doc.private.job_manager:
            job.restarts.append(task)  # a job manager's restart comes before all other tasks of the pool
        elif front:
            job.queue.appendleft(task)
        else:
            job.queue.append(task)
        self.core.emit(TaskEnded(job))  # a run ended: a disabling job may be done
        self.core.kick()
        self.core.emit(TaskBackInQueue(job, doc, now))

    def requeue_doc(self, job: JobRecord, doc: TaskDocument, slots: int, now: datetime) -> None:
        info = doc["executionInfo"]
        info["requeueCount"] = int(info.get("requeueCount", 0)) + 1
        info["lastRequeueTime"] = iso(now)
        self.back_to_active(job, doc, slots, now, front=True)

    @reacts_to(RunLost)
    def _requeue_lost_run(self, event: RunLost) -> None:
        self.requeue_run(event.node, event.run, event.now)

    def requeue_run(self, node: NodeRecord, run: NodeRun, now: datetime) -> None:
        """The node lost a running task (agent died, node removed): run it again elsewhere."""
        loser = self.core.reactions.run_loser(run.kind)
        if loser is not None and loser(node, run, now):
            return
        job = self.jobs.get(run.job_key)
        doc = self.store.get_task(run.job_key, run.task_key)
        if (
            job is None
            or doc is None
            or doc.private.run_id != run.run_id
            or doc["state"] not in ("running", "preparing")
        ):
            return
        doc.private.ending = None
        if job.doc["state"] in ("terminating", "completed"):
            self.complete(job, doc, run.slots, TASK_ENDED, now, from_state=doc["state"])
        else:
            self.requeue_doc(job, doc, run.slots, now)

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
            loser = self.core.reactions.run_loser(run.kind)
            if loser is not None and loser(node, run, now):
                continue
            job = self.jobs.get(run.job_key)
            doc = self.store.get_task(run.job_key, run.task_key)
            if job is None or doc is None or doc.private.run_id != run_id:
                continue
            if requeue:
                self.requeue_doc(job, doc, run.slots, now)
            else:
                self.complete(job, doc, run.slots, TASK_ENDED, now, from_state=doc["state"])

    def kill_run(self, doc: TaskDocument, reason: str) -> None:
        """Ask the node to end a running task; its result completes (or requeues) it."""
        if "multiInstanceSettings" in doc:
            self.core.emit(GangEndRequested(doc, reason))  # a gang has a run on every node of it
            return
        self.end_run(doc, reason)

    def end_run(self, doc: TaskDocument, reason: str) -> None:
        """End the task's one run: a held run here and now, a process through its node."""
        node = self.node_of(doc)
        run_id = doc.private.run_id or ""
        if node is not None and run_id in node.runs and node.runs[run_id].kind is RunKind.HELD:
            # Waiting for its node's preparation task: no process to end, so it ends here.
            run = node.runs.pop(run_id)
            node.slots_used -= run.slots
            job = self.jobs[run.job_key]
            if reason == "requeue":
                self.requeue_doc(job, doc, run.slots, self.core.now())
            else:
                self.complete(job, doc, run.slots, TASK_ENDED, self.core.now(), from_state="preparing")
            return
        doc.private.ending = reason
        if node is not None and node.session is not None and doc.private.run_id in node.runs:
            node.session.send({"t": "kill", "aids": [doc.private.run_id]})

    def node_of(self, doc: TaskDocument) -> NodeRecord | None:
        return self.nodes.get((doc.get("nodeInfo") or {}).get("nodeId", ""))

    def count(self, job: JobRecord, old: str, new: str, slots: int) -> None:
        job.counts[old] -= 1
        job.counts[new] += 1
        job.slot_counts[old] -= slots
        job.slot_counts[new] += slots

    def update_recent(self, node: NodeRecord, doc: TaskDocument) -> None:
        for item in node.recent:
            if item["taskId"] == doc["id"] and item["taskState"] == "running":
                item["taskState"] = doc["state"]
                info = doc["executionInfo"]
                item["executionInfo"] = {
                    k: info[k]
                    for k in ("startTime", "endTime", "exitCode", "failureInfo", "retryCount", "requeueCount", "result")
                    if k in info
                }


def blocked_status(job: JobRecord, key: str) -> dict[str, Any]:
    """The marker a blocked task carries: it stays active and will never run (see README)."""
    return {"state": "blocked", "blockedBy": sorted(job.graph.blocked_by.get(key, ()))}
