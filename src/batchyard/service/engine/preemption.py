"""Spot/low-priority nodes taken back and given back: eviction as on Azure, on demand or at random.

A node is preempted by its provider (`providers.base.NodeEvents.allocation_lost`), by a developer
(`batchyard nodes preempt POOL NODE`), or at random at a rate the pool sets. As on Azure, the node stays
in its pool in the `preempted` state and counts in the pool's `currentLowPriorityNodes`; the tasks it was
running go back to their jobs' queues (requeued: their retry count is not used) and run on other nodes.
Before they are requeued every process of the node is ended, so a task never runs twice at once, and its
disk is gone, as a deallocated VM's is. Once the capacity is back the node is reallocated: it boots
again on a fresh disk, start task included.

Two pool metadata items drive it, both read on the service's clock (so `--adjustable-clock` tests can
move hours forward):
* `batchyard-preemption-rate`: evictions per node-hour of each of the pool's low-priority nodes that is
  up (a Poisson process: 0.5 preempts a node about every two hours). Absent or 0: none at random.
* `batchyard-preemption-recovery-seconds`: how long a preempted node waits before it is reallocated
  (default 60).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from batchyard.protocol import messages
from batchyard.service import errors
from batchyard.service.clock import parse_iso
from batchyard.service.engine import states
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import EngineStarted, NodeForgotten, NodeFreed, RunLost, Tick, reacts_to
from batchyard.service.engine.nodes import NodeOps
from batchyard.service.engine.records import NodeRecord, NodeRun

RATE_KEY = "batchyard-preemption-rate"
RECOVERY_KEY = "batchyard-preemption-recovery-seconds"
DEFAULT_RECOVERY = 60.0

# States of a node that is up and may be preempted at random (one still allocating is not yet exposed).
_EXPOSED = frozenset({"idle", "running", "offline", "waitingforstarttask", "starttaskfailed", "unknown"})


def check_preemption_settings(metadata: list[dict[str, Any]] | None) -> None:
    """Refuse pool metadata whose preemption settings are not numbers >= 0 (InvalidPropertyValue)."""
    for item in metadata or []:
        if item.get("name") in (RATE_KEY, RECOVERY_KEY) and _non_negative(item.get("value")) is None:
            raise errors.invalid_property(
                "metadata",
                item.get("value"),
                f"{item.get('name')} must be a number >= 0.",
            )


def _setting(pool_doc: Mapping[str, Any], name: str, default: float) -> float:
    for item in pool_doc.get("metadata") or []:
        if item.get("name") == name:
            value = _non_negative(item.get("value"))
            return default if value is None else value
    return default


def _non_negative(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class PreemptionOps(Concern):
    def __init__(self, core: EngineCore, node_ops: NodeOps, chance: random.Random | None = None) -> None:
        super().__init__(core)
        self.node_ops = node_ops  # starts a reallocated node's agent
        self.chance = chance or random.Random()
        self._exposed_since: dict[str, datetime] = {}  # node id -> clock time of its last draw
        self._ending: dict[str, list[NodeRun]] = {}  # node id -> its runs, while its processes are ended
        self._started = core.now()

    # --- eviction -------------------------------------------------------------------------------

    def preempt(self, node: NodeRecord) -> None:
        """Preempt a low-priority node now, as its cloud would (a developer's request)."""
        if node.dedicated:
            raise errors.conflict(
                "OperationNotValidOnNode", "Only Spot/low-priority nodes can be preempted; this node is dedicated."
            )
        if not self.core.provider_of(node).starts_agents:
            raise errors.conflict("OperationNotValidOnNode", "Nodes on other hosts cannot be preempted.")
        state = node.doc["state"]
        if node.private.leaving is not None or node.removing or "preempted" not in states.NODE.get(state, ()):
            raise errors.conflict(
                "OperationInvalidForCurrentState", f"A node in the {state} state cannot be preempted."
            )
        self._evict(node, self.core.now())

    def _evict(self, node: NodeRecord, now: datetime) -> None:
        session, node.session = node.session, None
        if session is not None:  # what the dying agent still reports is not taken
            session.close(messages.AGENT_REFUSED, "the node was preempted")
        node.lost_at = None  # gone on purpose: not a lost node
        node.private.action = None
        self._exposed_since.pop(node.id, None)
        self.core.set_node_state(node, "preempted", now)
        self._end_runs(node, now)

    def _end_runs(self, node: NodeRecord, now: datetime) -> None:
        """The node's runs leave it now (it may leave its pool at once); they are requeued only once its
        processes are surely gone, so a task never runs twice at once."""
        runs = [run for run in node.runs.values() if run.occupies_node]
        node.runs.clear()
        node.slots_used = 0
        self._ending[node.id] = runs
        self.core.save_node(node)
        self.core.emit(NodeFreed(node, now))
        self.core.spawn(self._end_processes(node))

    async def _end_processes(self, node: NodeRecord) -> None:
        provider = self.core.provider_of(node)
        try:
            await provider.fence(node.id)  # the tasks first, at once, as a VM that is taken away
            await provider.stop_node(node.id, wipe=True)
        finally:
            runs = self._ending.pop(node.id, [])
        with self.store.transaction():
            now = self.core.now()
            for run in runs:
                self.core.emit(RunLost(node, run, now))  # back to their queues, retry count untouched
            if self.nodes.get(node.id) is node:
                node.private.users = {}  # the next allocation is a new VM: none of the old accounts,
                node.private.certificates = []
                self.store.forget_retained(node.id)  # nor the old task directories
                self.core.save_node(node)
            self.core.kick()

    @reacts_to(EngineStarted)
    def _finish_evictions_of_the_previous_process(self, event: EngineStarted) -> None:
        """A preempted node that still has runs was being evicted when the service stopped: finish it."""
        for node in list(self.nodes.values()):
            if node.doc["state"] == "preempted" and node.runs and node.id not in self._ending:
                self._end_runs(node, event.now)

    # --- reallocation and random evictions ----------------------------------------------------

    @reacts_to(Tick, order=-1)  # before the lost-node rules: a preempted node has no agent on purpose
    def _keep_preempted_nodes_out_of_the_lost_rules(self, event: Tick) -> None:
        for node in self.nodes.values():
            if node.doc["state"] == "preempted":
                node.lost_at = None

    @reacts_to(Tick)
    def _reallocate_and_preempt(self, event: Tick) -> None:
        now = self.core.now()
        for pool in list(self.pools.values()):
            if pool.doc["state"] != "active":
                continue
            rate = _setting(pool.doc, RATE_KEY, 0.0)
            recovery = _setting(pool.doc, RECOVERY_KEY, DEFAULT_RECOVERY)
            for node_id in list(pool.node_ids):
                node = self.nodes[node_id]
                if node.private.leaving is not None or node.removing:
                    continue
                if node.doc["state"] == "preempted":  # a provider may preempt a dedicated node too
                    self._maybe_reallocate(node, recovery, now)
                elif not node.dedicated:
                    self._maybe_preempt_at_random(node, rate, now)

    def _maybe_reallocate(self, node: NodeRecord, recovery: float, now: datetime) -> None:
        if node.id in self._ending:
            return
        if (now - parse_iso(node.doc["stateTransitionTime"])).total_seconds() < recovery:
            return
        self.core.set_node_state(node, "starting", now)
        self.core.spawn(self.node_ops.launch_agent(node))

    def _maybe_preempt_at_random(self, node: NodeRecord, rate: float, now: datetime) -> None:
        """Each node's exposure is drawn from tick to tick; the chance of an eviction in t hours is 1-e^(-rate*t)."""
        if node.doc["state"] not in _EXPOSED:
            self._exposed_since.pop(node.id, None)
            return
        since = self._exposed_since.get(node.id)
        if since is None:  # exposed since it entered this state (but not while the service was down)
            since = max(parse_iso(node.doc["stateTransitionTime"]), self._started)
        self._exposed_since[node.id] = now
        if rate <= 0:
            return
        hours = max(0.0, (now - since).total_seconds() / 3600.0)
        if self.chance.random() < -math.expm1(-rate * hours):
            self._evict(node, now)

    @reacts_to(NodeForgotten)
    def _forget(self, event: NodeForgotten) -> None:
        self._exposed_since.pop(event.node.id, None)
