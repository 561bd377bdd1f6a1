"""Job preparation and release tasks: per node, before a job's first task there, and when the job ends.

The preparation task runs on a node only when a task of the job is placed there. With
waitForSuccess (the default) that task waits in `preparing`, holding its slots, until the
preparation succeeds; if it fails for good, the waiting tasks go back to the queue and the job's
tasks are not placed on that node again. When the job is terminated or deleted, the release task
runs once on every node that ran the preparation task, and the job stays `terminating` (or
`deleting`) until the releases are done or have hit their maxWallClockTime.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from batchyard.protocol.messages import Run
from batchyard.service.clock import iso
from batchyard.service.documents import TaskDocument
from batchyard.service.engine import states
from batchyard.service.engine.core import Concern, EngineCore, limit_seconds
from batchyard.service.engine.events import (
    NodeBooting,
    PreparationRunEnded,
    ReleasesFinished,
    SpecialTaskEnded,
    TaskScheduleFailed,
    finishes_runs,
    loses_runs,
    reacts_to,
)
from batchyard.service.engine.nodes import failure_of
from batchyard.service.engine.records import JobRecord, NodeRecord, NodeRun, RunKind
from batchyard.service.engine.run_builder import build_run, container_of, container_prefail, merge_environment
from batchyard.service.engine.scheduler import QueuedTask
from batchyard.service.engine.task_runs import TaskRunOps

PREP_DIR = "jobpreparation"
RELEASE_DIR = "jobrelease"
# Why a task placed on a node whose job preparation task failed goes back to the queue (the Service Log's
# task schedule fail event).
_PREP_FAILED = {
    "category": "UserError",
    "code": "JobPreparationTaskFailed",
    "message": "Task cannot run because the job preparation task failed on node",
}


def prep_run_id(job_key: str) -> str:
    return f"prep:{job_key}"


def release_run_id(job_key: str) -> str:
    return f"release:{job_key}"


class PreparationOps(Concern):
    def __init__(self, core: EngineCore, task_runs: TaskRunOps) -> None:
        super().__init__(core)
        self.task_runs = task_runs

    # --- placing a task on a node ---------------------------------------------------------------

    def assign_task(self, job: JobRecord, doc: TaskDocument, node: NodeRecord, slots: int, now: datetime) -> list[Run]:
        """Place a task on a node; the runs to send it (its job's preparation task may come first)."""
        if not job.doc.get("jobPreparationTask"):
            return [self.task_runs.start_task_run(job, doc, node, slots, now)]
        runs, wait = self.prepare_node(job, node, now)
        if not wait:
            return runs + [self.with_prep_dir(job, self.task_runs.start_task_run(job, doc, node, slots, now))]
        # Hold the task on this node in `preparing` until the preparation task succeeds.
        states.move(doc, states.TASK, "preparing", now, previous=True, owner=job.doc["id"])
        doc["nodeInfo"] = {"poolId": self.pools[node.pool_key].doc["id"], "nodeId": node.id}
        run_id = f"held:{doc['id'].lower()}"
        doc.private.run_id = run_id
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)
        self.task_runs.count(job, "active", "preparing", slots)
        node.runs[run_id] = NodeRun(job.key, doc["id"].lower(), slots, run_id, RunKind.HELD)
        node.slots_used += slots
        return runs

    def prepare_node(self, job: JobRecord, node: NodeRecord, now: datetime) -> tuple[list[Run], bool]:
        """Before a task of the job runs on the node: the preparation run to send (when it has not run
        there yet), and whether the task must wait for it to succeed (waitForSuccess)."""
        prep = job.doc.get("jobPreparationTask")
        if not prep:
            return [], False
        state = _prep_state(job.prep.get(node.id))
        runs = [self._start_prep(job, node, prep, retry=0, now=now)] if state is None else []
        return runs, bool(prep.get("waitForSuccess", True)) and state != "succeeded"

    def with_prep_dir(self, job: JobRecord, run: Run) -> Run:
        run["prepDir"] = f"workitems/{job.doc['id']}/job-1/{PREP_DIR}"
        return run

    def _start_prep(self, job: JobRecord, node: NodeRecord, prep: dict[str, Any], retry: int, now: datetime) -> Run:
        run_id = prep_run_id(job.key)
        node.runs[run_id] = NodeRun(job.key, "", 0, run_id, RunKind.PREPARATION)
        info = {
            "state": "running",
            "startTime": iso(now),
            "retryCount": retry,
            "taskRootDirectory": f"workitems/{job.doc['id']}/job-1/{PREP_DIR}",
        }
        if retry:
            info["lastRetryTime"] = iso(now)
        status = job.prep.setdefault(node.id, self._new_status(node))
        status["jobPreparationTaskExecutionInfo"] = info
        self.store.put_prep_status(job.key, node.id, status)
        return self._job_task_run(job, node, prep, run_id, PREP_DIR, retry)

    def _job_task_run(
        self, job: JobRecord, node: NodeRecord, spec: dict[str, Any], run_id: str, directory: str, retry: int
    ) -> Run:
        pool = self.pools.get(node.pool_key)
        settings = spec.get("containerSettings")
        prefail = container_prefail(settings, pool.doc if pool else None, required=False)
        run = build_run(
            RunKind.PREPARATION if directory == PREP_DIR else RunKind.RELEASE,
            run_id,
            f"workitems/{job.doc['id']}/job-1/{directory}",
            spec["commandLine"],
            merge_environment(job.doc.get("commonEnvironmentSettings"), spec.get("environmentSettings")),
            job_id=job.doc["id"],
            task_id=spec.get("id") or directory,
            files=self.resources.resolve_files(spec.get("resourceFiles")),
            wall=limit_seconds((spec.get("constraints") or {}).get("maxWallClockTime") or spec.get("maxWallClockTime")),
            retry=retry,
            identity=spec.get("userIdentity"),
            container=container_of(settings, pool.doc if pool else None),
        )
        if prefail is not None:
            run["prefail"] = prefail
        return run

    def _new_status(self, node: NodeRecord) -> dict[str, Any]:
        pool_id = self.pools[node.pool_key].doc["id"] if node.pool_key in self.pools else node.pool_key
        return {
            "poolId": pool_id,
            "nodeId": node.id,
            "nodeUrl": f"{self.core.account_url(node.pool_key)}/pools/{pool_id}/nodes/{node.id}",
        }

    # --- results --------------------------------------------------------------------------------

    @finishes_runs(RunKind.PREPARATION)
    def _preparation_finished(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        self._prep_done(node, run, result, now)
        job = self.jobs.get(run.job_key)
        if job is not None:
            self.core.emit(PreparationRunEnded(job, node, now))

    @finishes_runs(RunKind.RELEASE)
    def _release_finished(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        self._release_done(node, run, result, now)

    def _prep_done(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        job = self.jobs.get(run.job_key)
        if job is None or node.id not in job.prep:
            return
        prep = job.doc.get("jobPreparationTask") or {}
        status = job.prep[node.id]
        info = status["jobPreparationTaskExecutionInfo"]
        failure = failure_of(result)
        _finish_info(info, result, failure, now)
        self.core.emit(SpecialTaskEnded("prep", prep.get("id") or PREP_DIR, job, node, dict(info), now))
        if failure:
            limit = int((prep.get("constraints") or {}).get("maxTaskRetryCount", 0))
            retry = int(info.get("retryCount", 0))
            if (limit == -1 or retry < limit) and node.session is not None and job.doc["state"] == "active":
                node.session.send({"t": "run", "runs": [self._start_prep(job, node, prep, retry + 1, now)]})
                return
        self.store.put_prep_status(job.key, node.id, status)
        held = [r for r in node.runs.values() if r.job_key == job.key and r.kind is RunKind.HELD]
        runs: list[Run] = []
        for waiting in held:
            node.runs.pop(waiting.run_id)
            node.slots_used -= waiting.slots
            doc = self.store.get_task(job.key, waiting.task_key)
            if doc is None or doc["state"] != "preparing":
                continue
            if failure:
                # Not on this node: the task goes back to the queue; the node keeps serving other jobs.
                self._unhold(job, doc, waiting.slots, now)
                self.core.emit(TaskScheduleFailed(job, doc, node, _PREP_FAILED, now))
            else:
                self.task_runs.count(
                    job, "preparing", "active", waiting.slots
                )  # start_task_run counts active -> running
                runs.append(self.with_prep_dir(job, self.task_runs.start_task_run(job, doc, node, waiting.slots, now)))
        if runs and node.session is not None:
            node.session.send({"t": "run", "runs": runs})
        self.core.kick()

    def _unhold(self, job: JobRecord, doc: TaskDocument, slots: int, now: datetime) -> None:
        states.move(doc, states.TASK, "active", now, previous=True, owner=job.doc["id"])
        doc.private.run_id = None
        doc.pop("nodeInfo", None)
        self.core.stamp(doc, now)
        self.core.save_task(job.key, doc)
        self.task_runs.count(job, "preparing", "active", slots)
        job.queue.appendleft(QueuedTask(job.key, doc["id"].lower(), slots))

    def excluded_nodes(self, job: JobRecord) -> frozenset[str]:
        """Nodes where the job's preparation task failed: none of its tasks go there."""
        if not job.prep:
            return frozenset()
        return frozenset(node_id for node_id, status in job.prep.items() if _prep_state(status) == "failed")

    # --- release ----------------------------------------------------------------------------------

    def start_releases(self, job: JobRecord) -> None:
        """Run the release task on every node that ran the preparation task (once per job)."""
        release = job.doc.get("jobReleaseTask")
        if not release or job.private.released:
            return
        job.private.released = True
        now = self.core.now()
        for node_id, status in job.prep.items():
            node = self.nodes.get(node_id)
            if node is None or node.session is None or "jobPreparationTaskExecutionInfo" not in status:
                continue
            run_id = release_run_id(job.key)
            node.runs[run_id] = NodeRun(job.key, "", 0, run_id, RunKind.RELEASE)
            status["jobReleaseTaskExecutionInfo"] = {
                "state": "running",
                "startTime": iso(now),
                "taskRootDirectory": f"workitems/{job.doc['id']}/job-1/{RELEASE_DIR}",
            }
            self.store.put_prep_status(job.key, node_id, status)
            spec = dict(release)
            spec.setdefault("maxWallClockTime", "PT15M")
            node.session.send({"t": "run", "runs": [self._job_task_run(job, node, spec, run_id, RELEASE_DIR, 0)]})

    def releases_pending(self, job: JobRecord) -> bool:
        run_id = release_run_id(job.key)
        return any(run_id in node.runs for node in self.nodes.values())

    def _release_done(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        job = self.jobs.get(run.job_key)
        if job is None or node.id not in job.prep:
            return
        status = job.prep[node.id]
        info = status.setdefault("jobReleaseTaskExecutionInfo", {"startTime": iso(now)})
        _finish_info(info, result, failure_of(result), now)
        release_id = (job.doc.get("jobReleaseTask") or {}).get("id") or RELEASE_DIR
        self.core.emit(SpecialTaskEnded("release", release_id, job, node, dict(info), now))
        self.store.put_prep_status(job.key, node.id, status)
        if not self.releases_pending(job):
            self.core.emit(ReleasesFinished(job))

    @loses_runs(RunKind.PREPARATION)
    def _preparation_lost(self, node: NodeRecord, run: NodeRun, now: datetime) -> bool:
        job = self.jobs.get(run.job_key)
        if job is not None and job.prep.pop(node.id, None) is not None:
            self.store.delete_prep_status(job.key, node.id)  # it runs again with the next task there
        return True

    @loses_runs(RunKind.RELEASE)
    def _release_lost(self, node: NodeRecord, run: NodeRun, now: datetime) -> bool:
        job = self.jobs.get(run.job_key)
        if job is not None and node.id in job.prep:
            info = job.prep[node.id].setdefault("jobReleaseTaskExecutionInfo", {"startTime": iso(now)})
            lost = {"category": "servererror", "code": "NodeLost", "message": "The node was lost."}
            _finish_info(info, {}, lost, now)
            self.store.put_prep_status(job.key, node.id, job.prep[node.id])
            if not self.releases_pending(job):
                self.core.emit(ReleasesFinished(job))
        return True

    # --- reboots ------------------------------------------------------------------------------------

    @reacts_to(NodeBooting)
    def _forget_preparations_on_boot(self, event: NodeBooting) -> None:
        self.forget_preparations(event.node)

    def forget_preparations(self, node: NodeRecord) -> None:
        """After a node boots again: preparation reruns where rerunOnNodeRebootAfterSuccess says so."""
        for job in self.jobs.values():
            status = job.prep.get(node.id)
            if status is None:
                continue
            prep = job.doc.get("jobPreparationTask") or {}
            if _prep_state(status) != "succeeded" or prep.get("rerunOnNodeRebootAfterSuccess", True):
                del job.prep[node.id]
                self.store.delete_prep_status(job.key, node.id)


def _prep_state(status: dict[str, Any] | None) -> str | None:
    """None (never ran), running, succeeded or failed."""
    if not status or "jobPreparationTaskExecutionInfo" not in status:
        return None
    info = status["jobPreparationTaskExecutionInfo"]
    if info.get("state") == "running":
        return "running"
    return "succeeded" if info.get("result") == "success" else "failed"


def _finish_info(info: dict[str, Any], result: dict[str, Any], failure: dict[str, Any] | None, now: datetime) -> None:
    info["state"] = "completed"
    info["startTime"] = result.get("start") or info.get("startTime")
    info["endTime"] = result.get("end") or iso(now)
    if result.get("exit") is not None:
        info["exitCode"] = result["exit"]
    if result.get("container"):
        info["containerInfo"] = result["container"]
    info["result"] = "failure" if failure else "success"
    if failure:
        info["failureInfo"] = failure
    else:
        info.pop("failureInfo", None)
