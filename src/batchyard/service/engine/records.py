"""The engine's in-memory records (pool, node, job, a run on a node), kept beside the stored documents.

A record's `doc` is its wire document; what only the engine uses is in its typed `private` fields,
which the store keeps apart from the document (service/documents.py).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from batchyard.service.engine.account_keys import account_of, scoped_key
from batchyard.service.engine.dependencies import DependencyGraph
from batchyard.service.engine.scheduler import QueuedTask

if TYPE_CHECKING:
    from batchyard.service.ports import AgentChannel


@dataclass(slots=True)
class PoolPrivate:
    deallocation_option: str = "requeue"  # for the nodes the current resize removes
    resize_started: str | None = None  # when the current resize began (its resizeTimeout counts from it)
    autoscale_next: str | None = None  # when the autoscale formula is next evaluated
    autoscale_enabled_at: str | None = None  # the last enable (enable requests are rate-limited)
    auto_pool_for: str | None = None  # the job (key) or schedule whose auto pool this is
    auto_pool_lifetime: str | None = None  # poolLifetimeOption: "job" or "jobschedule"
    keep_alive: bool = False  # an auto pool that stays after its job or schedule


@dataclass(eq=False)
class PoolRecord:
    key: str
    seq: int
    doc: dict[str, Any]
    private: PoolPrivate = field(default_factory=PoolPrivate)
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


@dataclass(slots=True)
class NodePrivate:
    provider: str | None = None  # where the node comes from (providers/registry.py); None: the default
    leaving: str | None = None  # the deallocation option while it leaves its pool
    claimed: bool = False  # an external node an agent has joined as
    action: dict[str, Any] | None = None  # a restart or deallocation in progress: {"kind", "option"}
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # node user accounts (password hashes)
    certificates: list[str] = field(default_factory=list)  # keys of the certificates installed on it
    boot: str | None = None  # the agent's boot id: a new one is a fresh boot
    endpoint_index: int | None = None  # its index in a pool with inbound NAT pools (engine/endpoints.py)
    # Its SSH server's address and port, forwarded from the IPv6 loopback (a dual-stack pool's remote login).
    ipv6_login_address: str | None = None
    ipv6_login_port: int | None = None


@dataclass(eq=False)
class NodeRecord:
    id: str
    pool_key: str
    seq: int
    doc: dict[str, Any]
    private: NodePrivate = field(default_factory=NodePrivate)
    session: AgentChannel | None = None
    # aid -> run on this node (tasks and the start task)
    runs: dict[str, NodeRun] = field(default_factory=dict)
    slots_used: int = 0
    lost_at: float | None = None  # monotonic time the agent connection was lost
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
    def dedicated(self) -> bool:
        """False for a Spot/low-priority node: one its provider (or a developer) may preempt."""
        return bool(self.doc.get("isDedicated", True))

    @property
    def schedulable(self) -> bool:
        return (
            self.session is not None
            and self.greeted
            and self.private.leaving is None
            and self.doc["state"] in ("idle", "running")
            and self.doc.get("schedulingState", "enabled") == "enabled"
        )


@dataclass(slots=True)
class JobPrivate:
    schedule: str | None = None  # the job schedule (key) that made it
    released: bool = False  # its job release tasks were started


@dataclass(eq=False)
class JobRecord:
    key: str
    seq: int
    doc: dict[str, Any]
    private: JobPrivate = field(default_factory=JobPrivate)
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
        return scoped_key(account_of(self.key), pool_id) if pool_id else None

    @property
    def priority(self) -> int:
        return int(self.doc.get("priority", 0))

    @property
    def schedulable(self) -> bool:
        return self.doc["state"] == "active"

    @property
    def unfinished(self) -> int:
        return self.counts["active"] + self.counts["preparing"] + self.counts["running"]
