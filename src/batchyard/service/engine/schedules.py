"""Job schedules: recurring jobs from a job specification, at most one active job at a time.

Each schedule keeps its next opportunity (`executionInfo.nextRunTime`). When it is due and the
schedule has no active job, a job `<scheduleId>:job-<n>` is created; if the previous job is still
running, the opportunity waits until the start window closes (or the next recurrence, whichever
is first) and is then lost. Housekeeping drives it, so an adjusted clock moves schedules too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batchyard.service import errors
from batchyard.service.clock import iso, parse_iso
from batchyard.service.documents import dump_private, load_private
from batchyard.service.engine.account_keys import account_of, in_account, scoped_key
from batchyard.service.engine.core import Concern, EngineCore, limit_seconds
from batchyard.service.engine.events import Tick, reacts_to
from batchyard.service.engine.job_errors import auto_pool_error
from batchyard.service.engine.jobs import JobOps
from batchyard.service.engine.pools import PoolOps
from batchyard.service.engine.records import JobRecord

SCHEDULE = {
    "active": {"disabled", "terminating", "deleting", "completed"},
    "disabled": {"active", "terminating", "deleting", "completed"},
    "terminating": {"completed", "deleting"},
    "completed": {"deleting"},
    "deleting": set(),
}
_OPEN_JOB_STATES = ("active", "disabling", "disabled", "enabling", "terminating")


@dataclass(slots=True)
class SchedulePrivate:
    jobs_created: int = 0  # its jobs are named "<schedule id>:job-<n>"
    active_job: str | None = None  # the key of its current job
    auto_pool: str | None = None  # the id of its auto pool (poolLifetimeOption "jobschedule")


@dataclass(eq=False)
class ScheduleRecord:
    key: str
    seq: int
    doc: dict[str, Any]
    private: SchedulePrivate = field(default_factory=SchedulePrivate)


class ScheduleOps(Concern):
    def __init__(self, core: EngineCore, pool_ops: PoolOps, job_ops: JobOps) -> None:
        super().__init__(core)
        self.pool_ops = pool_ops
        self.job_ops = job_ops
        self.schedules: dict[str, ScheduleRecord] = {}
        for key, seq, doc, private in self.store.load_all("schedules"):
            schedule = ScheduleRecord(key, seq, doc, load_private(SchedulePrivate, private))
            self.schedules[schedule.key] = schedule

    def get_schedule(self, key: str) -> ScheduleRecord:
        """The job schedule of that key (account_keys.scoped_key), or JobScheduleNotFound."""
        schedule = self.schedules.get(key)
        if schedule is None:
            raise errors.not_found("JobScheduleNotFound", "The specified job schedule does not exist.")
        return schedule

    def save_schedule(self, schedule: ScheduleRecord) -> None:
        self.store.put_schedule(schedule.key, schedule.seq, schedule.doc, dump_private(schedule.private))

    # --- quota ----------------------------------------------------------------------------------

    def check_job_quota(self, account: str | None) -> None:
        """Active jobs and job schedules together may not exceed the account's quota."""
        active = sum(
            1 for key, job in self.jobs.items() if job.doc["state"] != "completed" and in_account(key, account)
        )
        active += sum(
            1 for key, s in self.schedules.items() if s.doc["state"] != "completed" and in_account(key, account)
        )
        if active >= self.settings.job_quota:
            raise errors.conflict(
                "ActiveJobAndScheduleQuotaReached",
                "The specified account has reached its quota of active jobs and job schedules.",
            )

    # --- operations -----------------------------------------------------------------------------

    def create_schedule(self, spec: dict[str, Any], account: str | None) -> ScheduleRecord:
        key = scoped_key(account, spec["id"])
        if key in self.schedules:
            raise errors.conflict("JobScheduleExists", "The specified job schedule already exists.")
        self.check_job_quota(account)
        now = self.core.now()
        doc = dict(spec)
        doc.update(
            {
                "creationTime": iso(now),
                "state": "active",
                "stateTransitionTime": iso(now),
                "executionInfo": {},
            }
        )
        timing = doc.setdefault("schedule", {})
        first = parse_iso(timing["doNotRunUntil"]) if timing.get("doNotRunUntil") else now
        doc["executionInfo"]["nextRunTime"] = iso(max(first, now))
        self.core.stamp(doc, now)
        schedule = ScheduleRecord(key, self.store.next_seq(), doc)
        self.schedules[key] = schedule
        self.save_schedule(schedule)
        self._run_schedule(schedule, now)
        return schedule

    def update_schedule(self, schedule: ScheduleRecord, changes: dict[str, Any], replace: bool) -> None:
        self._require_open(schedule)
        now = self.core.now()
        if replace:
            schedule.doc["metadata"] = []
        schedule.doc.update(changes)
        if "schedule" in changes:
            # A new schedule starts over from its own doNotRunUntil.
            timing = schedule.doc["schedule"]
            first = parse_iso(timing["doNotRunUntil"]) if timing.get("doNotRunUntil") else now
            schedule.doc["executionInfo"]["nextRunTime"] = iso(max(first, now))
        self._stamp_and_save(schedule, now)
        self._run_schedule(schedule, now)

    def disable_schedule(self, schedule: ScheduleRecord) -> None:
        self._require_open(schedule)
        if schedule.doc["state"] == "active":
            self._move_schedule(schedule, "disabled")

    def enable_schedule(self, schedule: ScheduleRecord) -> None:
        self._require_open(schedule)
        if schedule.doc["state"] == "disabled":
            self._move_schedule(schedule, "active")
            self._run_schedule(schedule, self.core.now())

    def terminate_schedule(self, schedule: ScheduleRecord) -> None:
        if schedule.doc["state"] in ("completed", "deleting"):
            raise errors.conflict("JobScheduleCompleted", "The specified job schedule is already completed.")
        if schedule.doc["state"] == "terminating":
            return
        self._move_schedule(schedule, "terminating")
        job = self._active_job(schedule)
        if job is not None and job.doc["state"] != "terminating":
            self.job_ops.terminate_job(job, "UserTerminate")
        self._run_schedule(schedule, self.core.now())

    def delete_schedule(self, schedule: ScheduleRecord) -> None:
        if schedule.doc["state"] == "deleting":
            return
        self._move_schedule(schedule, "deleting")
        for job in self.jobs_of_schedule(schedule):
            self.job_ops.delete_job(job)
        self._release_schedule_pool(schedule)
        self.schedules.pop(schedule.key, None)
        self.store.delete_schedule(schedule.key)

    def jobs_of_schedule(self, schedule: ScheduleRecord) -> list[JobRecord]:
        return [job for job in self.jobs.values() if job.private.schedule == schedule.key]

    # --- the clock ------------------------------------------------------------------------------

    @reacts_to(Tick)
    def _run_due_schedules(self, event: Tick) -> None:
        now = self.core.now()
        for schedule in list(self.schedules.values()):
            self._run_schedule(schedule, now)

    def _run_schedule(self, schedule: ScheduleRecord, now: datetime) -> None:
        doc = schedule.doc
        state = doc["state"]
        active_job = self._active_job(schedule)
        if state == "terminating":
            if active_job is None:
                self._complete_schedule(schedule, now)
            return
        if state not in ("active", "disabled"):
            return
        timing = doc.get("schedule") or {}
        info = doc["executionInfo"]
        not_after = parse_iso(timing["doNotRunAfter"]) if timing.get("doNotRunAfter") else None
        due_text = info.get("nextRunTime")
        while due_text is not None:
            due = parse_iso(due_text)
            if now < due or (not_after is not None and due > not_after):
                break
            window_end = self._window_end(timing, due)
            if now > window_end:
                due_text = self._next_due(timing, due)  # the opportunity is lost
                continue
            if state == "active" and active_job is None:
                active_job = self._create_scheduled_job(schedule, now)
                due_text = self._next_due(timing, due)
            break
        if due_text != info.get("nextRunTime"):
            if due_text is None:
                info.pop("nextRunTime", None)
            else:
                info["nextRunTime"] = due_text
            self._stamp_and_save(schedule, now)
        past_deadline = not_after is not None and now > not_after
        if active_job is None and (past_deadline or "nextRunTime" not in info):
            self._complete_schedule(schedule, now)

    def _window_end(self, timing: dict[str, Any], due: datetime) -> datetime:
        window = limit_seconds(timing.get("startWindow"))
        recurrence = limit_seconds(timing.get("recurrenceInterval"))
        if recurrence is not None:
            window = recurrence if window is None else min(window, recurrence)
        return due + timedelta(seconds=window) if window is not None else datetime.max.replace(tzinfo=due.tzinfo)

    def _next_due(self, timing: dict[str, Any], due: datetime) -> str | None:
        recurrence = limit_seconds(timing.get("recurrenceInterval"))
        return iso(due + timedelta(seconds=recurrence)) if recurrence is not None else None

    def _active_job(self, schedule: ScheduleRecord) -> JobRecord | None:
        job = self.jobs.get(schedule.private.active_job or "")
        return job if job is not None and job.doc["state"] in _OPEN_JOB_STATES else None

    def _create_scheduled_job(self, schedule: ScheduleRecord, now: datetime) -> JobRecord:
        doc = schedule.doc
        account = account_of(schedule.key)
        schedule.private.jobs_created += 1
        spec = dict(doc["jobSpecification"])
        spec["id"] = f"{doc['id']}:job-{schedule.private.jobs_created}"
        auto = (spec.get("poolInfo") or {}).get("autoPoolSpecification")
        # An auto pool that cannot be made is the job's scheduling error (job_ops.create_job), not a pool.
        if auto and auto.get("poolLifetimeOption") == "jobschedule":
            pool_id = self._schedule_pool(schedule)
            if pool_id is None and auto_pool_error(self.pool_ops, account, auto) is None:
                pool_id = self.job_ops.create_auto_pool(schedule.key, auto)
                schedule.private.auto_pool = pool_id
            if pool_id is not None:
                spec["poolInfo"] = {"poolId": pool_id}
        job = self.job_ops.create_job(spec, account)
        job.private.schedule = schedule.key
        self.core.save_job(job)
        schedule.private.active_job = job.key
        url = f"{self.core.account_url(schedule.key)}/jobs/{job.doc['id']}"
        doc["executionInfo"]["recentJob"] = {"id": job.doc["id"], "url": url}
        self._stamp_and_save(schedule, now)
        return job

    def _schedule_pool(self, schedule: ScheduleRecord) -> str | None:
        """The one auto pool all of a schedule's jobs share (poolLifetimeOption jobschedule), while it exists."""
        pool_id = schedule.private.auto_pool
        return str(pool_id) if pool_id and scoped_key(account_of(schedule.key), pool_id) in self.pools else None

    def _release_schedule_pool(self, schedule: ScheduleRecord) -> None:
        pool = self.pools.get(scoped_key(account_of(schedule.key), schedule.private.auto_pool or ""))
        if pool is not None and not pool.private.keep_alive:
            self.pool_ops.delete_pool(pool)

    def _complete_schedule(self, schedule: ScheduleRecord, now: datetime) -> None:
        schedule.doc["executionInfo"]["endTime"] = iso(now)
        schedule.doc["executionInfo"].pop("nextRunTime", None)
        self._move_schedule(schedule, "completed")
        self._release_schedule_pool(schedule)

    # --- helpers --------------------------------------------------------------------------------

    def _require_open(self, schedule: ScheduleRecord) -> None:
        state = schedule.doc["state"]
        if state in ("completed", "terminating", "deleting"):
            code = {
                "completed": "JobScheduleCompleted",
                "terminating": "JobScheduleBeingTerminated",
                "deleting": "JobScheduleBeingDeleted",
            }[state]
            raise errors.conflict(code, f"The specified job schedule is {state}.")

    def _move_schedule(self, schedule: ScheduleRecord, state: str) -> None:
        from batchyard.service.engine import states

        now = self.core.now()
        states.move(schedule.doc, SCHEDULE, state, now, previous=True)
        self._stamp_and_save(schedule, now)

    def _stamp_and_save(self, schedule: ScheduleRecord, now: datetime) -> None:
        self.core.stamp(schedule.doc, now)
        self.save_schedule(schedule)
