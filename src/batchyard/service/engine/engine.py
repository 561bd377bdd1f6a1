"""The whole engine: pools, nodes, jobs, tasks, schedules, autoscale and node actions on one event loop.

Each concern is a mixin over `EngineBase` (see the sibling modules); this class only combines them.
"""

from __future__ import annotations

from batchyard.service.engine.autoscale import AutoscaleOps
from batchyard.service.engine.multi_instance import MultiInstanceOps
from batchyard.service.engine.node_actions import NodeActionOps
from batchyard.service.engine.schedules import ScheduleOps
from batchyard.service.engine.usage import UsageOps


class Engine(MultiInstanceOps, UsageOps, AutoscaleOps, ScheduleOps, NodeActionOps):
    """Pools, nodes, jobs and tasks, job schedules, autoscale and node actions."""
