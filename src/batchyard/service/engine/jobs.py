"""Jobs: creation (with auto pools), updates, disable/enable, terminate, delete, and completion rules."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from batchyard.service import errors
from batchyard.service.clock import iso, parse_iso
from batchyard.service.engine import states
from batchyard.service.engine.account_keys import account_of, scoped_key
from batchyard.service.engine.container_rules import container_refusal, job_pool_doc
from batchyard.service.engine.core import Concern, EngineCore, limit_seconds
from batchyard.service.engine.events import (
    EngineStarted,
    JobActionRequested,
    JobManagerCompleted,
    JobPoolChanged,
    ReleasesFinished,
    TaskEnded,
    Tick,
    reacts_to,
)
from batchyard.service.engine.job_errors import auto_pool_error
from batchyard.service.engine.nodes import NodeOps
from batchyard.service.engine.pools import PoolOps
from batchyard.service.engine.preparation import PreparationOps
from batchyard.service.engine.records import JobRecord
from batchyard.service.engine.scheduler import QueuedTask
from batchyard.service.engine.task_runs import TASK_ENDED, TaskRunOps
from batchyard.service.engine.tasks import TaskOps


class JobOps(Concern):
    def __init__(
        self,
        core: EngineCore,
        node_ops: NodeOps,
        pool_ops: PoolOps,
        task_runs: TaskRunOps,
        task_ops: TaskOps,
        preparation: PreparationOps,
    ) -> None:
        super().__init__(core)
        self.node_ops = node_ops
        self.pool_ops = pool_ops
        self.task_runs = task_runs
        self.task_ops = task_ops
        self.preparation = preparation

    def get_job(self, key: str) -> JobRecord:
        """The job of that key (account_keys.scoped_key), or JobNotFound."""
        job = self.jobs.get(key)
        if job is None:
            raise errors.not_found("JobNotFound", "The specified job does not exist.")
        return job

    def create_job(self, spec: dict[str, Any], account: str | None) -> JobRecord:
        key = scoped_key(account, spec["id"])
        if key in self.jobs:
            if self.jobs[key].doc["state"] == "deleting":
                raise errors.conflict(
                    "JobBeingDeleted", "The specified job has been marked for deletion and is being deleted."
                )
            raise errors.conflict("JobExists", "The specified job already exists.")
        manager = spec.get("jobManagerTask") or {}
        pool_doc = job_pool_doc(self.pools, account, spec["poolInfo"])
        if (refused := container_refusal(manager, pool_doc, "jobManagerTask.containerSettings")) is not None:
            raise refused  # before anything is made (an auto pool)
        now = self.core.now()
        doc = dict(spec)
        pool_info = doc["poolInfo"]
        pool_id = pool_info.get("poolId")
        auto = pool_info.get("autoPoolSpecification")
        failure = auto_pool_error(self.pool_ops, account, auto) if auto else None
        if auto and failure is None:
            pool_id = self.create_auto_pool(key, auto)
        doc.update(
            {
                "creationTime": iso(now),
                "state": "active",
                "stateTransitionTime": iso(now),
                "executionInfo": {"startTime": iso(now), "poolId": pool_id},
            }
        )
        self.core.stamp(doc, now)
        job = JobRecord(key, self.store.next_seq(), doc)
        self.jobs[key] = job
        if job.pool_key:
            self.pool_jobs[job.pool_key].add(key)
        if failure is not None:  # as Azure: the job is made, and completed with the pool's error
            doc["executionInfo"].update({"endTime": iso(now), "schedulingError": failure})
            self._move(job, "completed", now)
            self.core.save_job(job)
            return job
        self.core.save_job(job)
        if doc.get("jobManagerTask"):
            self._add_job_manager(job, doc["jobManagerTask"])
        self.after_task_completed(job)
        return job

    def _add_job_manager(self, job: JobRecord, manager: dict[str, Any]) -> None:
        """The job manager is the job's first task; runExclusive makes it take a whole node."""
        spec = {key: value for key, value in manager.items() if key in _TASK_FIELDS}
        (result,) = self.task_ops.add_tasks(job, [spec])
        if isinstance(result, errors.BatchError):
            raise result
        result.private.job_manager = True
        self.core.save_task(job.key, result)
        pool = self.pools.get(job.pool_key or "")
        if manager.get("runExclusive", True) and pool is not None and job.queue:
            queued = job.queue.popleft()
            job.queue.appendleft(QueuedTask(job.key, queued.task_key, max(queued.slots, pool.slots_per_node)))

    @reacts_to(JobManagerCompleted)
    def _on_job_manager_completed(self, event: JobManagerCompleted) -> None:
        self.job_manager_done(event.job)

    def job_manager_done(self, job: JobRecord) -> None:
        if (job.doc.get("jobManagerTask") or {}).get("killJobOnCompletion", True):
            if job.doc["state"] in ("active", "disabling", "disabled", "enabling"):
                self.terminate_job(job, "JMComplete")

    def create_auto_pool(self, owner_key: str, spec: dict[str, Any]) -> str:
        """The id of a new auto pool for the job or job schedule of that key, in its account."""
        prefix = spec.get("autoPoolIdPrefix") or ""
        pool_id = f"{prefix}_{uuid.uuid4()}" if prefix else str(uuid.uuid4())
        pool_spec = dict(spec.get("pool") or {})
        pool_spec["id"] = pool_id[:64]
        pool = self.pool_ops.create_pool(pool_spec, account_of(owner_key), auto_pool_for=owner_key)
        pool.private.auto_pool_lifetime = spec.get("poolLifetimeOption", "job")
        pool.private.keep_alive = bool(spec.get("keepAlive", False))
        self.core.save_pool(pool)
        return pool.doc["id"]

    # --- updates --------------------------------------------------------------------------------

    def update_job(self, job: JobRecord, changes: dict[str, Any], replace: bool) -> None:
        state = job.doc["state"]
        if state in ("completed", "terminating", "deleting"):
            raise errors.conflict(
                {"completed": "JobCompleted", "terminating": "JobBeingTerminated", "deleting": "JobBeingDeleted"}[
                    state
                ],
                f"The specified job is {state}.",
            )
        if "poolInfo" in changes and state != "disabled":
            raise errors.conflict("JobNotDisabled", "The pool of a job can only be changed while it is disabled.")
        now = self.core.now()
        if replace:
            for key, default in (
                ("priority", 0),
                ("constraints", {}),
                ("onAllTasksComplete", "noaction"),
                ("metadata", []),
                ("allowTaskPreemption", False),
            ):
                job.doc[key] = default
            job.doc.pop("maxParallelTasks", None)
        old_pool = job.pool_key
        job.doc.update(changes)
        if "poolInfo" in changes:
            job.doc["executionInfo"]["poolId"] = changes["poolInfo"].get("poolId")
            if old_pool:
                self.pool_jobs[old_pool].discard(job.key)
            if job.pool_key:
                self.pool_jobs[job.pool_key].add(job.key)
        self.core.stamp(job.doc, now)
        self.core.save_job(job)
        self.after_task_completed(job)
        self.core.kick()
        if "poolInfo" in changes:
            self.core.emit(JobPoolChanged(job))

    def disable_job(self, job: JobRecord, option: str) -> None:
        if job.doc["state"] in ("disabling", "disabled"):
            return  # the contract: only states other than active/disabling/disabled are a conflict
        if job.doc["state"] != "active":
            raise errors.conflict(
                "JobNotActive" if job.doc["state"] != "disabled" else "JobDisabled",
                "The specified job is not in the active state.",
            )
        now = self.core.now()
        self._move(job, "disabling", now)
        if option in ("requeue", "terminate"):
            for node in list(self.nodes.values()):
                runs = [run for run in node.runs.values() if run.job_key == job.key]
                for run in runs:
                    doc = self.store.get_task(job.key, run.task_key)
                    if doc is not None:
                        self.task_runs.kill_run(doc, option)
                        self.core.save_task(job.key, doc)
        # Disabling until its running tasks have been dealt with (killed, or finished for "wait").
        self.core.save_job(job)
        self._maybe_finish_disabling(job)

    def _maybe_finish_disabling(self, job: JobRecord) -> None:
        if job.doc["state"] == "disabling" and job.counts["running"] + job.counts["preparing"] == 0:
            self._move(job, "disabled", self.core.now())
            self.core.save_job(job)

    def enable_job(self, job: JobRecord) -> None:
        if job.doc["state"] != "disabled":
            raise errors.conflict("JobNotDisabled", "The specified job is not in the disabled state.")
        now = self.core.now()
        self._move(job, "enabling", now)
        self._move(job, "active", now)
        self.core.save_job(job)
        self.core.kick()

    def terminate_job(self, job: JobRecord, reason: str | None) -> None:
        state = job.doc["state"]
        if state == "completed":
            raise errors.conflict("JobCompleted", "The specified job is already in a completed state.")
        if state == "deleting":
            raise errors.conflict(
                "JobBeingDeleted", "The specified job has been marked for deletion and is being deleted."
            )
        if state == "terminating":
            return
        now = self.core.now()
        job.doc["executionInfo"]["terminateReason"] = reason or "UserTerminate"
        self._move(job, "terminating", now)
        self.core.save_job(job)
        self._end_running_tasks(job)
        self.preparation.start_releases(job)
        self._maybe_complete_job(job)

    def delete_job(self, job: JobRecord) -> None:
        if job.doc["state"] == "deleting":
            return
        now = self.core.now()
        self._move(job, "deleting", now)
        for node in list(self.nodes.values()):
            for run_id, run in list(node.runs.items()):
                if run.job_key == job.key:
                    node.runs.pop(run_id)
                    node.slots_used -= run.slots
                    if node.session is not None:
                        node.session.send({"t": "kill", "aids": [run_id]})
                    self.node_ops.mark_node_free(node, now)
        self.preparation.start_releases(job)
        if self.preparation.releases_pending(job):
            self.core.save_job(job)  # gone once the release tasks are done
            return
        self._finish_delete(job)

    def _finish_delete(self, job: JobRecord) -> None:
        for node in self.nodes.values():
            if node.session is not None:
                node.session.send({"t": "cleanup", "paths": [f"workitems/{job.doc['id']}"]})
        self.jobs.pop(job.key, None)
        if job.pool_key:
            self.pool_jobs[job.pool_key].discard(job.key)
        self.store.delete_job(job.key)
        self._release_auto_pool(job)
        self.core.kick()

    @reacts_to(ReleasesFinished)
    def _on_releases_finished(self, event: ReleasesFinished) -> None:
        self.releases_finished(event.job)

    def releases_finished(self, job: JobRecord) -> None:
        if job.doc["state"] == "terminating":
            self._maybe_complete_job(job)
        elif job.doc["state"] == "deleting":
            self._finish_delete(job)

    @reacts_to(EngineStarted)
    def _finish_deletions_of_the_previous_process(self, event: EngineStarted) -> None:
        for job in list(self.jobs.values()):
            if job.doc["state"] == "deleting" and not self.preparation.releases_pending(job):
                self._finish_delete(job)

    @reacts_to(JobActionRequested)
    def _on_job_action_requested(self, event: JobActionRequested) -> None:
        self.job_action(event.job, event.action)

    def job_action(self, job: JobRecord, action: str) -> None:
        """A task's exitOptions.jobAction, for jobs whose onTaskFailure is performexitoptionsjobaction."""
        if action == "terminate" and job.doc["state"] in ("active", "disabling", "disabled", "enabling"):
            self.terminate_job(job, "TaskFailed")
        elif action == "disable" and job.doc["state"] == "active":
            self.disable_job(job, "requeue")  # the contract: the same as disable with requeue

    # --- completion -----------------------------------------------------------------------------

    @reacts_to(TaskEnded)
    def _on_task_ended(self, event: TaskEnded) -> None:
        self.after_task_completed(event.job)

    def after_task_completed(self, job: JobRecord) -> None:
        """onAllTasksComplete and the end of a terminating job."""
        state = job.doc["state"]
        if state == "terminating":
            self._maybe_complete_job(job)
        elif state == "disabling":
            self._maybe_finish_disabling(job)
        elif state == "active" and job.doc.get("onAllTasksComplete") == "terminatejob" and job.unfinished == 0:
            job.doc["executionInfo"]["terminateReason"] = "AllTasksComplete"
            self._move(job, "terminating", self.core.now())
            self.core.save_job(job)
            self._maybe_complete_job(job)

    def _end_running_tasks(self, job: JobRecord) -> None:
        for node in list(self.nodes.values()):
            for run in [run for run in node.runs.values() if run.job_key == job.key]:
                doc = self.store.get_task(job.key, run.task_key)
                if doc is None:
                    continue
                if node.session is None:
                    node.runs.pop(run.run_id)
                    node.slots_used -= run.slots
                    self.task_runs.complete(job, doc, run.slots, TASK_ENDED, self.core.now(), from_state=doc["state"])
                else:
                    self.task_runs.kill_run(doc, "terminate")
                    self.core.save_task(job.key, doc)

    def _maybe_complete_job(self, job: JobRecord) -> None:
        if job.doc["state"] != "terminating" or job.counts["running"] + job.counts["preparing"] > 0:
            return
        if self.preparation.releases_pending(job):
            return  # completed once its release tasks are done
        now = self.core.now()
        job.doc["executionInfo"]["endTime"] = iso(now)
        self._move(job, "completed", now)
        self.core.save_job(job)
        self._release_auto_pool(job)

    def _release_auto_pool(self, job: JobRecord) -> None:
        pool_key = job.pool_key
        pool = self.pools.get(pool_key) if pool_key else None
        if pool is not None and pool.private.auto_pool_for == job.key and pool.private.auto_pool_lifetime == "job":
            if not pool.private.keep_alive:
                self.pool_ops.delete_pool(pool)

    def _move(self, job: JobRecord, state: str, now: datetime) -> None:
        states.move(job.doc, states.JOB, state, now, previous=True)
        self.core.stamp(job.doc, now)

    @reacts_to(Tick)
    def _enforce_job_limits(self, event: Tick) -> None:
        now = self.core.now()
        for job in list(self.jobs.values()):
            if job.doc["state"] not in ("active", "disabled"):
                continue
            limit = (job.doc.get("constraints") or {}).get("maxWallClockTime")
            seconds = limit_seconds(limit)
            if seconds is not None and now - parse_iso(job.doc["creationTime"]) > timedelta(seconds=seconds):
                self.terminate_job(job, "MaxWallClockTimeExpiry")


# BatchJobManagerTask properties that make up the task it becomes.
_TASK_FIELDS = (
    "id",
    "displayName",
    "commandLine",
    "containerSettings",
    "resourceFiles",
    "outputFiles",
    "environmentSettings",
    "constraints",
    "requiredSlots",
    "userIdentity",
    "applicationPackageReferences",
    "authenticationTokenSettings",
)
