"""The whole engine, composed: each concern is built with the core and the concerns it calls.

A concern calls another only in the direction of this list (earlier ones know nothing of later ones);
what an earlier concern must tell a later one is a domain event (events.py). Reactions to one event run
by their `order`, then in this order.
"""

from __future__ import annotations

from batchyard.providers.registry import ProviderRegistry
from batchyard.service.clock import Clock
from batchyard.service.config import Settings
from batchyard.service.engine.autoscale import AutoscaleOps
from batchyard.service.engine.certificates import CertificateOps
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.endpoint_forwarding import EndpointForwarding
from batchyard.service.engine.formulas import Formulas
from batchyard.service.engine.jobs import JobOps
from batchyard.service.engine.multi_instance import MultiInstanceOps
from batchyard.service.engine.node_actions import NodeActionOps
from batchyard.service.engine.node_sessions import AgentSessionOps
from batchyard.service.engine.nodes import NodeOps
from batchyard.service.engine.pools import PoolOps
from batchyard.service.engine.preemption import PreemptionOps
from batchyard.service.engine.preparation import PreparationOps
from batchyard.service.engine.rounds import SchedulingRounds
from batchyard.service.engine.schedules import ScheduleOps
from batchyard.service.engine.scheduling_errors import SchedulingErrors
from batchyard.service.engine.service_logs import ServiceLogOps
from batchyard.service.engine.task_runs import TaskRunOps
from batchyard.service.engine.tasks import TaskOps
from batchyard.service.engine.usage import UsageOps
from batchyard.service.ports import Store
from batchyard.service.storage.runs import RunResources


class Engine(Concern):
    """Pools, nodes, jobs and tasks, job schedules, autoscale and node actions, on one event loop.

    Its callers (the facade, the gateway, tests) read the core's records under the names every concern
    uses, and call the concerns below."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        providers: ProviderRegistry,
        clock: Clock | None = None,
        resources: RunResources | None = None,
    ) -> None:
        core = EngineCore(settings, store, providers, clock, resources)
        super().__init__(core)
        self.clock = core.clock
        self.reactions = core.reactions

        formulas = Formulas()
        self.node_ops = NodeOps(core)
        self.sessions = AgentSessionOps(core, self.node_ops)
        self.certificate_ops = CertificateOps(core)
        self.pool_ops = PoolOps(core, self.node_ops, self.certificate_ops, formulas)
        self.preemption = PreemptionOps(core, self.node_ops)
        self.task_runs = TaskRunOps(core)
        self.task_ops = TaskOps(core, self.node_ops, self.task_runs)
        self.node_actions = NodeActionOps(core, self.node_ops, self.sessions, self.task_runs, self.certificate_ops)
        self.service_logs = ServiceLogOps(self.node_actions)
        self.preparation = PreparationOps(core, self.task_runs)
        self.job_ops = JobOps(core, self.node_ops, self.pool_ops, self.task_runs, self.task_ops, self.preparation)
        self.schedule_ops = ScheduleOps(core, self.pool_ops, self.job_ops)
        self.autoscale = AutoscaleOps(core, self.pool_ops, formulas)
        self.usage_ops = UsageOps(core, self.schedule_ops, self.autoscale)
        self.multi_instance = MultiInstanceOps(core, self.node_ops, self.task_runs, self.task_ops, self.preparation)
        self.rounds = SchedulingRounds(core, self.preparation, self.multi_instance)
        self.scheduling_errors = SchedulingErrors(core)
        self.endpoint_forwarding = EndpointForwarding(core)
        # Reactions to one event at the same `order` run in this sequence (see Reactions.describe()).
        for concern in (
            self.node_ops,
            self.sessions,
            self.pool_ops,
            self.task_runs,
            self.task_ops,
            self.certificate_ops,
            self.node_actions,
            self.service_logs,
            self.preemption,
            self.preparation,
            self.job_ops,
            self.schedule_ops,
            self.autoscale,
            self.usage_ops,
            self.multi_instance,
            self.rounds,
            self.scheduling_errors,
            self.endpoint_forwarding,
        ):
            core.reactions.add(concern)

    async def start(self) -> None:
        await self.core.start()

    async def stop(self) -> None:
        with self.core.store.transaction():
            self.usage_ops.save_usage()  # the totals since the last tick (engine/usage.py)
        await self.core.stop()

    async def abandon(self) -> None:
        await self.core.abandon()

    def housekeeping(self) -> None:
        """One round of the periodic checks (tests call it to move time on)."""
        self.core.housekeeping()
