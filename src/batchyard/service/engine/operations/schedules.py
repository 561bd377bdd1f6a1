"""Job schedule operations: create, read, update, disable/enable/terminate/delete, and their jobs."""

from __future__ import annotations

from typing import Any

from batchyard.service.engine.operations.base import Check, OperationsBase, no_check
from batchyard.service.engine.records import JobRecord
from batchyard.service.engine.schedules import ScheduleRecord


class ScheduleOperations(OperationsBase):
    # --- reads ----------------------------------------------------------------------------------

    def schedules(self) -> list[ScheduleRecord]:
        return [schedule for key, schedule in self.engine.schedule_ops.schedules.items() if self.owns(key)]

    def schedule(self, schedule_id: str, check: Check = no_check) -> ScheduleRecord:
        """The job schedule, or JobScheduleNotFound."""
        schedule = self.engine.schedule_ops.get_schedule(self.key(schedule_id))
        check(schedule.doc)
        return schedule

    def find_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        return self.engine.schedule_ops.schedules.get(self.key(schedule_id))

    def schedule_jobs(self, schedule_id: str) -> list[JobRecord]:
        """The jobs the schedule has made that still exist."""
        return self.engine.schedule_ops.jobs_of_schedule(self.engine.schedule_ops.get_schedule(self.key(schedule_id)))

    # --- changes --------------------------------------------------------------------------------

    def create_schedule(self, spec: dict[str, Any]) -> ScheduleRecord:
        with self.store.transaction():
            return self.engine.schedule_ops.create_schedule(spec, self.account)

    def update_schedule(
        self, schedule_id: str, changes: dict[str, Any], replace: bool, check: Check = no_check
    ) -> ScheduleRecord:
        """Patch (replace=False) or replace the schedule's updatable properties."""
        schedule = self.schedule(schedule_id, check)
        with self.store.transaction():
            self.engine.schedule_ops.update_schedule(schedule, changes, replace=replace)
        return schedule

    def disable_schedule(self, schedule_id: str, check: Check = no_check) -> ScheduleRecord:
        schedule = self.schedule(schedule_id, check)
        with self.store.transaction():
            self.engine.schedule_ops.disable_schedule(schedule)
        return schedule

    def enable_schedule(self, schedule_id: str, check: Check = no_check) -> ScheduleRecord:
        schedule = self.schedule(schedule_id, check)
        with self.store.transaction():
            self.engine.schedule_ops.enable_schedule(schedule)
        return schedule

    def terminate_schedule(self, schedule_id: str, check: Check = no_check) -> ScheduleRecord:
        schedule = self.schedule(schedule_id, check)
        with self.store.transaction():
            self.engine.schedule_ops.terminate_schedule(schedule)
        return schedule

    def delete_schedule(self, schedule_id: str, check: Check = no_check) -> None:
        schedule = self.schedule(schedule_id, check)
        with self.store.transaction():
            self.engine.schedule_ops.delete_schedule(schedule)
