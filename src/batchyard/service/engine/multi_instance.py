"""Multi-instance tasks (MPI): gang placement, the coordination command everywhere, then the application.

A task with `multiInstanceSettings` is placed on `numberOfInstances` distinct nodes in one
scheduling round (scheduler.py places gangs all or nothing, so a waiting gang never holds nodes).
Subtask 0 (the primary) runs on the master node: the task document's own run. Every instance
downloads the common resource files into the task directory (AZ_BATCH_TASK_SHARED_DIR) and runs
the coordination command; when all of them succeeded the primary runs the application command.
Subtasks 1..N-1 keep their node's slot until the primary ends. A failed or lost instance ends the
whole task, which is retried (or requeued) as a whole by the ordinary task rules in tasks.py.
When the task leaves `running` for any reason, every node of the gang is told to end what its
instance left there (`endtask`: its runs, the coordination command's session and its background processes).

A job preparation task runs first on every node of the gang as for ordinary tasks: an instance whose
node must wait for it is held (subtask state `preparing`) until it succeeds; if it fails for good,
the whole task goes back to the queue and the job's tasks avoid that node. maxWallClockTime bounds
the whole gang: every run is sent with what is left of it, counted from the first coordination run.

Run ids ("aid" on the wire): the primary's application run has the task's `_aid`; coordination runs and
the subtasks' holds are `mi:<primary aid>:<subtask id>`.

(Over 400 lines on purpose: one concern, a gang's whole life from placement to release; its pure parts
are in gangs.py.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from batchyard.service.clock import iso
from batchyard.service.documents import TaskDocument
from batchyard.service.engine import states
from batchyard.service.engine.core import Concern, EngineCore, limit_seconds
from batchyard.service.engine.events import (
    EngineStarted,
    GangEndRequested,
    JobPoolChanged,
    NodeFreed,
    PoolChanged,
    PreparationRunEnded,
    TaskBackInQueue,
    TaskCompleted,
    TaskDeleted,
    TasksAdded,
    finishes_runs,
    loses_runs,
    reacts_to,
)
from batchyard.service.engine.gangs import MASTER_PORT, MI_PREFIX, NEVER, Gang, coordination_run, mi_status
from batchyard.service.engine.nodes import NodeOps, failure_of
from batchyard.service.engine.preparation import PreparationOps, _prep_state
from batchyard.service.engine.records import JobRecord, NodeRecord, NodeRun, PoolRecord, RunKind
from batchyard.service.engine.task_runs import TASK_ENDED, TaskRunOps, task_dir
from batchyard.service.engine.tasks import TaskOps


class MultiInstanceOps(Concern):
    def __init__(
        self, core: EngineCore, node_ops: NodeOps, task_runs: TaskRunOps, task_ops: TaskOps, preparation: PreparationOps
    ) -> None:
        super().__init__(core)
        self.node_ops = node_ops
        self.task_runs = task_runs
        self.task_ops = task_ops
        self.preparation = preparation
        self.gangs: dict[str, Gang] = {}  # primary aid -> gang
        self.gang_by_task: dict[tuple[str, str], str] = {}  # (job key, task key) -> primary aid
        self.mi_sizes: dict[str, dict[str, int]] = {}  # job key -> unfinished multi-instance task -> instances
        for job in self.jobs.values():
            sizes = self.store.multi_instance_sizes(job.key)
            if sizes:
                self.mi_sizes[job.key] = sizes

    # --- adding and loading -------------------------------------------------------------------------

    @reacts_to(EngineStarted, order=-1)  # before anything looks at the nodes' runs
    def _requeue_gangs_of_the_previous_process(self, event: EngineStarted) -> None:
        """Multi-instance runs of a previous service process run again as a whole: their gangs were in memory."""
        now = event.now
        for job_key, sizes in self.mi_sizes.items():
            job = self.jobs.get(job_key)
            docs = self.store.get_tasks(job_key, list(sizes)) if job is not None else {}
            for doc in docs.values():
                if job is None or doc["state"] not in ("running", "preparing"):
                    continue
                for node in self.nodes.values():
                    run = node.runs.pop((doc.private.run_id or ""), None)
                    if run is not None:
                        node.slots_used -= run.slots
                self.task_runs.requeue_doc(job, doc, 1, now)

    @reacts_to(TasksAdded)
    def _note_added_gangs(self, event: TasksAdded) -> None:
        job = event.job
        pool = self.pools.get(job.pool_key or "")
        for doc in event.docs:
            if "multiInstanceSettings" not in doc:
                continue
            instances = int(doc["multiInstanceSettings"].get("numberOfInstances", 1))
            self.mi_sizes.setdefault(job.key, {})[doc["id"].lower()] = instances
            retention = (doc.get("constraints") or {}).get("retentionTime")
            status = mi_status(pool, instances)
            if status is not None or retention:
                if status is not None:
                    doc["multiInstanceStatus"] = status
                if retention:
                    doc.private.subtask_retention = retention  # subtasks keep the retention of creation, as on Azure
                self.core.save_task(job.key, doc)

    def gang_sizes(self, job: JobRecord) -> dict[str, int]:
        sizes = self.mi_sizes.get(job.key)
        if not sizes:
            return {}
        pool = self.pools.get(job.pool_key or "")
        if pool is None or (status := mi_status(pool, 2)) is not None and status["state"] == "cannotrun":
            return {key: NEVER for key in sizes}  # stays active, as Azure Batch does
        return sizes

    # --- placing ---------------------------------------------------------------------------------

    def assign_gang(
        self, job: JobRecord, doc: TaskDocument, node_ids: list[str], now: datetime
    ) -> dict[str, list[Any]]:
        nodes = [self.nodes[node_id] for node_id in node_ids]
        doc.pop("multiInstanceStatus", None)
        app_run = self.task_runs.start_task_run(job, doc, nodes[0], 1, now)
        if job.doc.get("jobPreparationTask"):
            self.preparation.with_prep_dir(job, app_run)
        addresses = [str(node.doc.get("ipAddress", "127.0.0.1")) for node in nodes]
        app_run["env"].update(
            {
                "CCP_NODES": " ".join([str(len(nodes))] + [f"{address} 1" for address in addresses]),
                "AZ_BATCH_NODE_LIST": ";".join(addresses),
                "AZ_BATCH_HOST_LIST": ",".join(addresses),
                "AZ_BATCH_MASTER_NODE": f"{addresses[0]}:{MASTER_PORT}",
                "AZ_BATCH_IS_CURRENT_NODE_MASTER": "true",
            }
        )
        app_run["mi"] = True
        app_run["session"] = "end"  # what the application leaves running ends with it
        directory = task_dir(job.doc["id"], doc["id"])
        gang = Gang(
            job.key,
            doc["id"].lower(),
            app_run["aid"],
            node_ids,
            app_run,
            directory,
            pending=set(range(len(nodes))),
            limit=app_run["wall"],  # sent with what is left of it (Gang.wall_left)
        )
        self.gangs[gang.run_id] = gang
        for node in nodes:
            node.gang_dirs.add(directory)
        self.gang_by_task[(job.key, gang.task_key)] = gang.run_id
        self.store.delete_subtasks(job.key, gang.task_key)  # a retry starts afresh
        settings = doc["multiInstanceSettings"]
        shared = self.resources.resolve_files(settings.get("commonResourceFiles"))
        runs: dict[str, list[Any]] = {}
        for index, node in enumerate(nodes):
            run_id = gang.sub_run_id(index)
            node.runs[run_id] = NodeRun(job.key, gang.task_key, 0 if index == 0 else 1, run_id, RunKind.INSTANCE)
            coordination = coordination_run(gang, index, settings, shared)
            prep_runs, wait = self.preparation.prepare_node(job, node, now)
            if wait:
                gang.held[index] = coordination  # sent once the node's preparation task succeeded
            else:
                coordination["wall"] = gang.wall_left()
            runs[node.id] = prep_runs + ([] if wait else [coordination])
            if index:
                self._start_subtask(job, doc, gang, index, node, "preparing" if wait else "running", now)
        return runs

    def _start_subtask(
        self, job: JobRecord, doc: TaskDocument, gang: Gang, index: int, node: NodeRecord, state: str, now: datetime
    ) -> None:
        node.slots_used += 1
        node.doc["totalTasksRun"] = int(node.doc.get("totalTasksRun", 0)) + 1
        node.dirty = True
        pool_id = self.pools[node.pool_key].doc["id"]
        node_url = f"{self.core.account_url(node.pool_key)}/pools/{pool_id}/nodes/{node.id}"
        subtask = {
            "id": index,
            "nodeInfo": {
                "affinityId": node.doc["affinityId"],
                "nodeUrl": node_url,
                "poolId": pool_id,
                "nodeId": node.id,
                "taskRootDirectory": gang.directory,
                "taskRootDirectoryUrl": f"{node_url}/files/{gang.directory}",
            },
            "startTime": iso(now),
            "state": state,
            "stateTransitionTime": iso(now),
        }
        self.store.put_subtask(job.key, gang.task_key, index, subtask)
        node.recent.append(
            {
                "taskUrl": f"{self.core.account_url(job.key)}/jobs/{job.doc['id']}/tasks/{doc['id']}",
                "jobId": job.doc["id"],
                "taskId": doc["id"],
                "subtaskId": index,
                "taskState": "running",
                "executionInfo": {
                    "startTime": iso(now),
                    "retryCount": doc["executionInfo"]["retryCount"],
                    "requeueCount": doc["executionInfo"]["requeueCount"],
                },
            }
        )

    # --- job preparation first -------------------------------------------------------------------

    @reacts_to(PreparationRunEnded)
    def _send_or_end_held_instances(self, event: PreparationRunEnded) -> None:
        job, node, now = event.job, event.node, event.now
        state = _prep_state(job.prep.get(node.id))
        if state == "running":
            return  # retried
        for gang in [gang for gang in self.gangs.values() if gang.job_key == job.key]:
            waiting = [index for index in gang.held if gang.nodes[index] == node.id]
            if not waiting:
                continue
            if state != "succeeded":  # failed for good: back to the queue, as an ordinary task would go
                self._end_early(gang, self.store.get_task(job.key, gang.task_key), "unhold", now)
                continue
            for index in waiting:
                self._send_held(gang, index, node, now)

    def _send_held(self, gang: Gang, index: int, node: NodeRecord, now: datetime) -> None:
        run = gang.held.pop(index)
        run["wall"] = gang.wall_left()
        if node.session is not None:
            node.session.send({"t": "run", "runs": [run]})
        docs = {doc["id"]: doc for doc in self.store.list_subtasks(gang.job_key, gang.task_key)}
        if (doc := docs.get(index)) is not None:
            states.move(doc, states.TASK, "running", now, previous=True, owner=f"{gang.job_key}/{gang.task_key}")
            self.store.put_subtask(gang.job_key, gang.task_key, index, doc)

    # --- results ---------------------------------------------------------------------------------

    @finishes_runs(RunKind.INSTANCE)
    def _instance_finished(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        primary, _, index_text = run.run_id[len(MI_PREFIX) :].rpartition(":")
        gang = self.gangs.get(primary)
        if gang is None:
            return
        index = int(index_text)
        gang.pending.discard(index)
        failure = failure_of(result)
        self._record_subtask(gang, index, result, failure)
        if failure is not None:
            details = list(failure.get("details") or []) + [{"name": "SubtaskId", "value": str(index)}]
            self._abort(gang, {**result, "failure": {**failure, "details": details}}, now)
            return
        if index:  # the subtask keeps its slot until the primary ends
            node.runs[run.run_id] = NodeRun(run.job_key, run.task_key, 1, run.run_id, RunKind.INSTANCE)
            node.slots_used += 1
        if not gang.pending and not gang.started:
            gang.started = True
            gang.app_run["wall"] = gang.wall_left()
            master = self.nodes.get(gang.nodes[0])
            if master is not None and master.session is not None:
                master.session.send({"t": "run", "runs": [gang.app_run]})

    @loses_runs(RunKind.TASK)
    def _primary_lost(self, node: NodeRecord, run: NodeRun, now: datetime) -> bool:
        """A gang's primary that waits for its coordination commands has no process to lose yet."""
        waiting = self.gangs.get(run.run_id)
        if waiting is not None and not waiting.started and node.greeting:
            node.runs[run.run_id] = run
            node.slots_used += run.slots
            return True
        return False  # an ordinary task's run, or a started primary: requeued as any task

    @loses_runs(RunKind.INSTANCE)
    def _instance_lost(self, node: NodeRecord, run: NodeRun, now: datetime) -> bool:
        gang = self.gangs.get(run.run_id[len(MI_PREFIX) :].rpartition(":")[0])
        if gang is None:
            return True
        index = int(run.run_id.rpartition(":")[2])
        if node.greeting and (index in gang.held or (index and index not in gang.pending)):
            # A reconnecting agent does not list holds, nor runs it was not sent yet: keep them.
            node.runs[run.run_id] = run
            node.slots_used += run.slots
            return True
        lost = {"category": "servererror", "code": "NodeLost", "message": "A node of the multi-instance task was lost."}
        self._record_subtask(gang, index, {}, lost)
        master = self.nodes.get(gang.nodes[0])
        primary = master.runs.pop(gang.run_id, None) if master is not None else None
        if master is None or primary is None:
            self._release(gang, now)
            return True
        master.slots_used -= primary.slots
        self.task_runs.requeue_run(master, primary, now)  # the whole task runs again
        return True

    def _abort(self, gang: Gang, result: dict[str, Any], now: datetime) -> None:
        """An instance failed: the task fails (and retries by its constraints) as a whole."""
        master = self.nodes.get(gang.nodes[0])
        primary = master.runs.pop(gang.run_id, None) if master is not None else None
        if master is None or primary is None:
            self._release(gang, now)
            return
        master.slots_used -= primary.slots
        doc = self.store.get_task(primary.job_key, primary.task_key)
        self.task_runs.finish_run(master, primary, result, now, doc)
        self._release(gang, now)  # when finish_run did not (the task was gone)

    def _record_subtask(self, gang: Gang, index: int, result: dict[str, Any], failure: dict[str, Any] | None) -> None:
        if index == 0:
            return  # the primary is the task itself; subtasksinfo lists 1..N-1
        docs = {doc["id"]: doc for doc in self.store.list_subtasks(gang.job_key, gang.task_key)}
        doc = docs.get(index)
        if doc is None:
            return
        if result.get("exit") is not None:
            doc["exitCode"] = result["exit"]
        if failure is not None:
            doc["failureInfo"] = failure
            doc["result"] = "failure"
        self.store.put_subtask(gang.job_key, gang.task_key, index, doc)

    # --- the end of a gang: whenever its task leaves `running` ---------------------------------

    @reacts_to(TaskCompleted)
    def _release_completed(self, event: TaskCompleted) -> None:
        job, doc = event.job, event.doc
        self.mi_sizes.get(job.key, {}).pop(doc["id"].lower(), None)
        self._release_task(job.key, doc["id"].lower(), event.now, retention=doc.private.subtask_retention)

    @reacts_to(TaskBackInQueue)
    def _release_requeued(self, event: TaskBackInQueue) -> None:
        self._release_task(event.job.key, event.doc["id"].lower(), event.now)

    def _release_task(self, job_key: str, task_key: str, now: datetime, retention: str | None = None) -> None:
        run_id = self.gang_by_task.get((job_key, task_key))
        if run_id is not None and run_id in self.gangs:
            self._release(self.gangs[run_id], now, retention)

    def _release(self, gang: Gang, now: datetime, retention: str | None = None) -> None:
        """End every instance: stop coordination runs, free the subtasks' slots, complete their records."""
        if self.gangs.pop(gang.run_id, None) is None:
            return
        self.gang_by_task.pop((gang.job_key, gang.task_key), None)
        docs = {doc["id"]: doc for doc in self.store.list_subtasks(gang.job_key, gang.task_key)}
        keep = limit_seconds(retention)
        for index, node_id in enumerate(gang.nodes):
            node = self.nodes.get(node_id)
            if node is None:
                continue
            node.gang_dirs.discard(gang.directory)
            run = node.runs.pop(gang.sub_run_id(index), None)
            if run is not None:
                node.slots_used -= run.slots
            if node.session is not None:  # "when the primary exits, all of the subtasks are terminated"
                node.session.send({"t": "endtask", "dirs": [gang.directory]})
            doc = docs.get(index)
            if doc is not None and doc["state"] != "completed":
                doc.update(previousState=doc["state"], previousStateTransitionTime=doc["stateTransitionTime"])
                doc.update(state="completed", stateTransitionTime=iso(now), endTime=iso(now))
                doc.setdefault("result", "failure" if "failureInfo" in doc else "success")
                if index in gang.pending and "failureInfo" not in doc:
                    doc["failureInfo"] = {
                        "category": "usererror",
                        "code": "TaskEnded",
                        "message": "The multi-instance task ended before this subtask.",
                    }
                    doc["result"] = "failure"
                self.store.put_subtask(gang.job_key, gang.task_key, index, doc)
                self._update_subtask_recent(node, gang, index, doc)
                if keep is not None:
                    self.store.retain(now.timestamp() + keep, node_id, doc["nodeInfo"]["taskRootDirectory"])
            self.node_ops.mark_node_free(node, now)
            self.core.emit(NodeFreed(node, now))
        self.core.kick()

    def _update_subtask_recent(self, node: NodeRecord, gang: Gang, index: int, doc: dict[str, Any]) -> None:
        for item in node.recent:
            if item.get("subtaskId") == index and item["taskId"].lower() == gang.task_key:
                item["taskState"] = "completed"
                item["executionInfo"].update(
                    {k: doc[k] for k in ("endTime", "exitCode", "failureInfo", "result") if k in doc}
                )

    # --- user operations -------------------------------------------------------------------------

    @reacts_to(GangEndRequested)
    def _end_gang(self, event: GangEndRequested) -> None:
        doc, reason = event.doc, event.reason
        if doc["state"] not in ("running", "preparing"):
            return  # ended already: callers come once per node of the gang
        gang = self.gangs.get(doc.private.run_id or "")
        if gang is None or gang.started:
            self.task_runs.end_run(doc, reason)
            return
        # Before the application: no result to wait for (coordination runs may be held); it ends now.
        self._end_early(gang, doc, reason, self.core.now())

    def _end_early(self, gang: Gang, doc: TaskDocument | None, how: str, now: datetime) -> None:
        """End a gang before its application runs: the task completes as ended ("terminate"), is
        requeued ("requeue"), or returns to the queue uncounted ("unhold": a failed job preparation)."""
        job = self.jobs.get(gang.job_key)
        master = self.nodes.get(gang.nodes[0])
        primary = master.runs.pop(gang.run_id, None) if master is not None else None
        if job is None or doc is None or master is None or primary is None or doc.private.run_id != gang.run_id:
            self._release(gang, now)
            return
        master.slots_used -= primary.slots
        doc.private.ending = None
        if how == "terminate":
            doc["executionInfo"]["endTime"] = iso(now)
            self.task_runs.complete(job, doc, primary.slots, TASK_ENDED, now, from_state="running")
            self.task_runs.update_recent(master, doc)
        elif how == "requeue":
            self.task_runs.requeue_doc(job, doc, primary.slots, now)
        else:
            self.task_runs.back_to_active(job, doc, primary.slots, now, front=True)

    @reacts_to(TaskDeleted)
    def _forget_deleted(self, event: TaskDeleted) -> None:
        job, doc = event.job, event.doc
        key = doc["id"].lower()
        ran_on = {sub["nodeInfo"]["nodeId"] for sub in self.store.list_subtasks(job.key, key)}
        gang = self.gangs.get(self.gang_by_task.get((job.key, key)) or "")
        if gang is not None:
            self._release(gang, event.now)
        self.mi_sizes.get(job.key, {}).pop(key, None)
        self.store.delete_subtasks(job.key, key)
        for node_id in ran_on:
            node = self.nodes.get(node_id)
            if node is not None and node.session is not None:
                node.session.send({"t": "cleanup", "paths": [task_dir(job.doc["id"], doc["id"])]})

    def list_subtasks(self, job: JobRecord, task_id: str) -> list[dict[str, Any]]:
        doc = self.task_ops.get_task(job, task_id)
        return self.store.list_subtasks(job.key, doc["id"].lower())

    # --- the waitingfornodes marker follows the pool ------------------------------------------------

    @reacts_to(PoolChanged)
    def _refresh_on_pool_change(self, event: PoolChanged) -> None:
        self._refresh_pool_mi_status(event.pool)

    @reacts_to(JobPoolChanged)
    def _refresh_on_job_pool_change(self, event: JobPoolChanged) -> None:
        self._refresh_mi_status(event.job.key, self.pools.get(event.job.pool_key or ""))

    def _refresh_pool_mi_status(self, pool: PoolRecord) -> None:
        for job_key in list(self.pool_jobs.get(pool.key, ())):
            self._refresh_mi_status(job_key, pool)

    def _refresh_mi_status(self, job_key: str, pool: PoolRecord | None) -> None:
        """Set or clear the marker of the job's queued multi-instance tasks for the pool as it is now."""
        sizes = self.mi_sizes.get(job_key)
        if not sizes:
            return
        now = self.core.now()
        for key, doc in self.store.get_tasks(job_key, list(sizes)).items():
            status = mi_status(pool, sizes[key])
            if doc["state"] != "active" or doc.get("multiInstanceStatus") == status:
                continue
            if status is None:
                doc.pop("multiInstanceStatus", None)
            else:
                doc["multiInstanceStatus"] = status
            self.core.stamp(doc, now)
            self.core.save_task(job_key, doc)
