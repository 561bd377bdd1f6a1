"""The engine's facade: one method per operation of the API, each owning its unit of work.

Routes (service/api) parse a request, call one method here and present the answer; they never see
the store. A method looks up what it works on, checks the request's conditions against it (`check`),
and makes its changes in one store transaction, so a refused request leaves nothing half-written.
The operations are grouped by resource in engine/operations/; the `Engine` does the work.
"""

from __future__ import annotations

from batchyard.service.engine.engine import Engine
from batchyard.service.engine.operations.account import AccountOperations
from batchyard.service.engine.operations.jobs import JobOperations
from batchyard.service.engine.operations.nodes import NodeOperations
from batchyard.service.engine.operations.pools import PoolOperations
from batchyard.service.engine.operations.schedules import ScheduleOperations
from batchyard.service.engine.operations.service import ServiceOperations
from batchyard.service.engine.operations.tasks import TaskOperations
from batchyard.service.storage.applications import ApplicationRegistry


class BatchService(
    PoolOperations,
    NodeOperations,
    JobOperations,
    TaskOperations,
    ScheduleOperations,
    AccountOperations,
    ServiceOperations,
):
    """Everything the API can ask of the service."""

    def __init__(self, engine: Engine, applications: ApplicationRegistry) -> None:
        super().__init__(engine)
        # Applications and their packages keep their own registry (linked storage, its own writes).
        self.applications = applications
