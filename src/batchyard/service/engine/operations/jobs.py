"""Job operations: create, read, update, disable/enable/terminate, task counts, preparation statuses."""

from __future__ import annotations

from typing import Any

from batchyard.service import errors
from batchyard.service.engine.operations.base import Check, OperationsBase, no_check
from batchyard.service.engine.records import JobRecord


def _same_pool(given: dict[str, Any], current: dict[str, Any]) -> bool:
    """A poolInfo naming the job's current pool or repeating its auto-pool specification (PUT must send one;
    only a change needs a disabled job). Both are parsed with the same defaults, so equal means unchanged."""
    auto = given.get("autoPoolSpecification")
    if auto is not None:
        return "poolId" not in given and auto == current.get("autoPoolSpecification")
    pool_id = str(given.get("poolId") or "")
    return bool(pool_id) and pool_id.lower() == str(current.get("poolId") or "").lower()


class JobOperations(OperationsBase):
    # --- reads ----------------------------------------------------------------------------------

    def jobs(self) -> list[JobRecord]:
        return [job for key, job in self.engine.jobs.items() if self.owns(key)]

    def job(self, job_id: str) -> JobRecord:
        """The job, or JobNotFound."""
        return self.engine.job_ops.get_job(self.key(job_id))

    def task_counts(self, job_id: str) -> dict[str, dict[str, int]]:
        """The job's taskCounts and taskSlotCounts (preparing tasks count as running)."""
        job = self.engine.job_ops.get_job(self.key(job_id))
        counts, slots = job.counts, job.slot_counts
        return {
            "taskCounts": {
                "active": counts["active"],
                "running": counts["running"] + counts["preparing"],
                "completed": counts["completed"],
                "succeeded": job.succeeded,
                "failed": job.failed,
            },
            "taskSlotCounts": {
                "active": slots["active"],
                "running": slots["running"] + slots["preparing"],
                "completed": slots["completed"],
                "succeeded": job.succeeded_slots,
                "failed": job.failed_slots,
            },
        }

    def preparation_statuses(self, job_id: str) -> list[dict[str, Any]]:
        """The job's preparation and release task status per node (a conflict when it has neither task)."""
        job = self.engine.job_ops.get_job(self.key(job_id))
        if not job.doc.get("jobPreparationTask") and not job.doc.get("jobReleaseTask"):
            raise errors.conflict(
                "JobPreparationTaskOrReleaseTaskNotSpecified", "The job has no job preparation or release task."
            )
        return list(job.prep.values())

    # --- changes --------------------------------------------------------------------------------

    def create_job(self, spec: dict[str, Any]) -> JobRecord:
        self.engine.schedule_ops.check_job_quota(self.account)
        with self.store.transaction():
            return self.engine.job_ops.create_job(spec, self.account)

    def delete_job(self, job_id: str, check: Check = no_check) -> None:
        job = self.engine.job_ops.get_job(self.key(job_id))
        check(job.doc)
        with self.store.transaction():
            self.engine.job_ops.delete_job(job)

    def update_job(self, job_id: str, changes: dict[str, Any], replace: bool, check: Check = no_check) -> JobRecord:
        """Patch (replace=False) or replace the job's updatable properties."""
        job = self.engine.job_ops.get_job(self.key(job_id))
        check(job.doc)
        if "poolInfo" in changes and _same_pool(changes["poolInfo"], job.doc.get("poolInfo") or {}):
            changes = {k: v for k, v in changes.items() if k != "poolInfo"}
        if (
            not replace
            and changes.get("onAllTasksComplete") == "noaction"
            and job.doc.get("onAllTasksComplete") == "terminatejob"
        ):
            raise errors.invalid_property(
                "onAllTasksComplete", "noaction", "The value cannot be changed from terminatejob to noaction."
            )
        with self.store.transaction():
            self.engine.job_ops.update_job(job, changes, replace=replace)
        return job

    def disable_job(self, job_id: str, disable_tasks: str, check: Check = no_check) -> JobRecord:
        job = self.engine.job_ops.get_job(self.key(job_id))
        check(job.doc)
        with self.store.transaction():
            self.engine.job_ops.disable_job(job, disable_tasks)
        return job

    def enable_job(self, job_id: str, check: Check = no_check) -> JobRecord:
        job = self.engine.job_ops.get_job(self.key(job_id))
        check(job.doc)
        with self.store.transaction():
            self.engine.job_ops.enable_job(job)
        return job

    def terminate_job(self, job_id: str, reason: str | None, check: Check = no_check) -> JobRecord:
        job = self.engine.job_ops.get_job(self.key(job_id))
        check(job.doc)
        with self.store.transaction():
            self.engine.job_ops.terminate_job(job, reason)
        return job
