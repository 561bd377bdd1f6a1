"""The engine's in-memory records (pool, node, job, a run on a node), kept beside the stored documents."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from batchyard.service.engine.dependencies import DependencyGraph
from batchyard.service.engine.scheduler import QueuedTask

if TYPE_CHECKING:
    from batchyard.service.ports import AgentChannel


@dataclass(eq=False)
class PoolRecord:
    key: str
    seq: int
    doc: dict[str, Any]
    node_ids: list[str] = field(default_factory=list)

    @property
    def slots_per_node(self) -> int:
        return int(self.doc.get("taskSlotsPerNode", 1))

    @property
    def fill_type(self) -> str:
        return (self.doc.get("taskSchedulingPolicy") or {}).get("nodeFillType", "spread")


class RunKind(StrEnum):
    """What a run on a node is; results and losses are dispatched on it."""

    TASK = "task"  # a task of a job (a multi-instance task's primary application command too)
    START = "start"  # the pool's start task
    PACKAGES = "packages"  # the pool's application packages, installed before the start task
    PREPARATION = "prep"  # a job preparation task
    RELEASE = "release"  # a job release task
    HELD = "held"  # a task placed on the node, waiting for the node's job preparation to succeed
    INSTANCE = "instance"  # one instance of a multi-instance task (coordination command, or a held slot)


@dataclass(eq=False)
class NodeRun:
    job_key: str
    task_key: str
    slots: int
    run_id: str  # the run's id on the node's agent
    kind: RunKind = RunKind.TASK

    @property
    def occupies_node(self) -> bool:
        """Whether the node counts as running tasks for it (everything but the start task)."""
        return self.kind is not RunKind.START


@dataclass(eq=False)
class NodeRecord:
    id: str
    pool_key: str
    seq: int
    doc: dict[str, Any]
    session: AgentChannel | None = None
    # aid -> run on this node (tasks and the start task)
    runs: dict[str, NodeRun] = field(default_factory=dict)
    slots_used: int = 0
    lost_at: float | None = None  # monotonic time the agent connection was lost
    leaving: str | None = None  # deallocation option while leaving the pool
    removing: bool = False  # its agent is being stopped; then it is gone
    dirty: bool = False  # counters changed since the document was last saved
    greeted: bool = False  # the current session's hello was handled
    fencing: bool = False  # the provider is ending a lost node's processes before its runs are requeued
    greeting: bool = False  # its agent's hello is being handled (its runs are matched with the agent's)
    heard_at: float = 0.0  # monotonic time of the agent's last message
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10))
    # Directories of the multi-instance tasks with an instance here: a new agent ends what others left there.
    gang_dirs: set[str] = field(default_factory=set)

    @property
    def schedulable(self) -> bool:
        return (
            self.session is not None
            and self.greeted
            and self.leaving is None
            and self.doc["state"] in ("idle", "running")
            and self.doc.get("schedulingState", "enabled") == "enabled"
        )


@dataclass(eq=False)
class JobRecord:
    key: str
    seq: int
    doc: dict[str, Any]
    counts: Counter[str] = field(default_factory=Counter)  # tasks by state
    slot_counts: Counter[str] = field(default_factory=Counter)
    succeeded: int = 0
    failed: int = 0
    succeeded_slots: int = 0
    failed_slots: int = 0
    queue: deque[QueuedTask] = field(default_factory=deque)
    restarts: deque[QueuedTask] = field(default_factory=deque)  # job manager runs again before anything else
    graph: DependencyGraph = field(default_factory=DependencyGraph)
    dependent_slots: dict[str, int] = field(default_factory=dict)  # waiting task -> its required slots
    prep: dict[str, dict[str, Any]] = field(default_factory=dict)  # node id -> prep/release status (wire shape)

    @property
    def pool_key(self) -> str | None:
        info = self.doc.get("executionInfo") or {}
        pool_id = info.get("poolId") or (self.doc.get("poolInfo") or {}).get("poolId")
        return pool_id.lower() if pool_id else None

    @property
    def priority(self) -> int:
        return int(self.doc.get("priority", 0))

    @property
    def schedulable(self) -> bool:
        return self.doc["state"] == "active"

    @property
    def unfinished(self) -> int:
        return self.counts["active"] + self.counts["preparing"] + self.counts["running"]
