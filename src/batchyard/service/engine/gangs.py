"""A multi-instance task's gang: the nodes of its instances, their runs, and the marker of a task its pool
cannot run. Pure: no engine state (engine/multi_instance.py places and ends gangs)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from batchyard.protocol.messages import Run
from batchyard.service.engine.records import PoolRecord

MI_PREFIX = "mi:"
MASTER_PORT = 6000  # AZ_BATCH_MASTER_NODE is documented as IP:port
NEVER = sys.maxsize  # instances of a gang no node set can hold: the scheduler always skips it


@dataclass(eq=False)
class Gang:
    job_key: str
    task_key: str
    run_id: str  # the primary's application run (the task document's _aid)
    nodes: list[str]  # node id per subtask id; 0 is the master
    app_run: Run
    directory: str  # the task directory, the same under every node's root
    pending: set[int] = field(default_factory=set)  # instances whose coordination command is still running
    held: dict[int, Run] = field(default_factory=dict)  # coordination runs waiting for job preparation
    started: bool = False  # the application command was sent
    limit: float | None = None  # the task's maxWallClockTime in seconds
    clock_start: float | None = None  # monotonic time of the first run sent

    def sub_run_id(self, index: int) -> str:
        return f"{MI_PREFIX}{self.run_id}:{index}"

    def wall_left(self) -> float | None:
        """The wall-clock limit of a run sent now: what is left of the task's (its clock starts with the first)."""
        if self.limit is None:
            return None
        now = time.monotonic()
        if self.clock_start is None:
            self.clock_start = now
        return max(0.0, self.limit - (now - self.clock_start))


def mi_status(pool: PoolRecord | None, instances: int) -> dict[str, Any] | None:
    """The marker of a multi-instance task its pool cannot run (see README); None when it can."""
    if pool is None:
        return None
    if not pool.doc.get("enableInterNodeCommunication"):
        reason = "The pool does not have enableInterNodeCommunication set."
    elif pool.slots_per_node != 1:
        reason = "The pool's taskSlotsPerNode is greater than 1."
    else:
        target = int(pool.doc.get("targetDedicatedNodes", 0)) + int(pool.doc.get("targetLowPriorityNodes", 0))
        if max(target, len(pool.node_ids)) >= instances or pool.doc.get("enableAutoScale"):
            return None
        return {"state": "waitingfornodes", "reason": f"The task needs {instances} nodes; the pool has fewer."}
    return {"state": "cannotrun", "reason": reason}


def coordination_run(gang: Gang, index: int, settings: dict[str, Any], shared: list[Any]) -> Run:
    """The coordination command of one instance: the application run's context with its own command."""
    run = gang.app_run.copy()
    run["aid"] = gang.sub_run_id(index)
    run["cmd"] = settings.get("coordinationCommandLine") or "/bin/true"
    run["env"] = gang.app_run["env"] | {"AZ_BATCH_IS_CURRENT_NODE_MASTER": "true" if index == 0 else "false"}
    run["files"] = []
    run["sharedFiles"] = shared
    run["session"] = "linger"  # the background services it starts live until the task ends
    if index == 0:  # the primary's stdout.txt and stderr.txt are the application command's (README)
        run["stdout"] = "coordination-stdout.txt"
        run["stderr"] = "coordination-stderr.txt"
    run.pop("outputs", None)  # the application command's alone
    run.pop("packages", None)
    run.pop("prefail", None)
    return run
