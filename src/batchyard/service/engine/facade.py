"""The engine's facade: one method per operation of the API, each owning its unit of work.

Routes (service/api) parse a request, call one method here and present the answer; they never see
the store. A method looks up what it works on, checks the request's conditions against it (`check`),
and makes its changes in one store transaction, so a refused request leaves nothing half-written.
The operations are grouped by resource in engine/operations/; the `Engine` does the work.
"""

from __future__ import annotations

from batchyard.service.engine.account_keys import SERVICE_ACCOUNT
from batchyard.service.engine.engine import Engine
from batchyard.service.engine.operations.account import AccountOperations
from batchyard.service.engine.operations.jobs import JobOperations
from batchyard.service.engine.operations.nodes import NodeOperations
from batchyard.service.engine.operations.pools import PoolOperations
from batchyard.service.engine.operations.schedules import ScheduleOperations
from batchyard.service.engine.operations.service import ServiceOperations
from batchyard.service.engine.operations.tasks import TaskOperations
from batchyard.service.storage.applications import ApplicationRegistries, ApplicationRegistry


class BatchService(
    PoolOperations,
    NodeOperations,
    JobOperations,
    TaskOperations,
    ScheduleOperations,
    AccountOperations,
    ServiceOperations,
):
    """Everything the API can ask of the service, for one Batch account (`account`; None: the service's own)."""

    def __init__(
        self, engine: Engine, registries: ApplicationRegistries, account: str | None = SERVICE_ACCOUNT
    ) -> None:
        super().__init__(engine, account)
        self.registries = registries
        # Applications and their packages keep their own registry (linked storage, its own writes).
        self.applications: ApplicationRegistry = registries.of(account)
        self._views: dict[str | None, BatchService] = {account: self}

    def for_account(self, account: str | None) -> BatchService:
        """The same service acting for another account (engine/account_keys.py): one engine, one store."""
        view = self._views.get(account)
        if view is None:
            view = BatchService(self.engine, self.registries, account)
            view._views = self._views
            self._views[account] = view
        return view

    async def delete_account_data(self) -> None:
        """Delete everything of this account (it was deleted): its job schedules, jobs and pools as their
        deletes do it (the nodes go in the background), its certificates and its applications at once."""
        with self.store.transaction():
            for schedule in self.schedules():
                self.engine.schedule_ops.delete_schedule(schedule)
            for job in self.jobs():
                self.engine.job_ops.delete_job(job)
            for pool in self.pools():
                self.engine.pool_ops.delete_pool(pool)
            for key in [key for key in self.engine.certificate_ops.certificates if self.owns(key)]:
                self.engine.certificate_ops.forget_certificate(key)
        await self.applications.delete_all()

    def account_is_empty(self) -> bool:
        """Whether this account has nothing left in the engine: no pool (its nodes gone), job, job schedule or
        certificate."""
        engine = self.engine
        kept = (engine.pools, engine.jobs, engine.schedule_ops.schedules, engine.certificate_ops.certificates)
        return not any(self.owns(key) for records in kept for key in records)

    def forget_account(self, account: str) -> None:
        """After the account is deleted: its view and registry go (a new account of its name starts empty)."""
        self._views.pop(account, None)
        self.registries.forget(account)
