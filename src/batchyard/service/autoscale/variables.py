"""Service-defined variables: the names of older API versions and the current service's.

Read-write: the targets and the deallocation option. Read-only: metric objects whose samples the
service records (`$X.GetSample(...)`); node counts and task slots also read as plain doubles.
"""

from __future__ import annotations

TARGET_DEDICATED = "$TargetDedicatedNodes"
TARGET_LOW_PRIORITY = "$TargetLowPriorityNodes"
DEALLOCATION = "$NodeDeallocationOption"

# Names of older API versions and the names they stand for.
ALIASES = {"$TargetDedicated": TARGET_DEDICATED}

READ_WRITE = (TARGET_DEDICATED, "$TargetDedicated", TARGET_LOW_PRIORITY, DEALLOCATION)

# Resource metrics come from the nodes' agents; absent while no node reports.
RESOURCE_METRICS = (
    "$CPUPercent",  # average CPU use of the reporting nodes, percent (0-100)
    "$WallClockSeconds",  # node-seconds covered by the sample
    "$MemoryBytes",  # average memory in use, megabytes (as the 2017 documentation defines it)
    "$DiskBytes",  # average local disk in use, gigabytes (as the 2017 documentation defines it)
    "$DiskReadBytes",
    "$DiskWriteBytes",
    "$DiskReadOps",
    "$DiskWriteOps",
    "$NetworkInBytes",
    "$NetworkOutBytes",
)
TASK_METRICS = ("$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks", "$FailedTasks")
# Node counts: a sample history and a current value.
COUNT_METRICS = (
    "$SampleNodeCount",
    "$CurrentDedicatedNodes",
    "$CurrentLowPriorityNodes",
    "$TaskSlotsPerNode",
    "$UsableNodeCount",
    "$PreemptedNodeCount",
)
READ_ONLY_ALIASES = {"$CurrentDedicated": "$CurrentDedicatedNodes"}

METRICS = RESOURCE_METRICS + TASK_METRICS + COUNT_METRICS
READ_ONLY = frozenset(METRICS) | frozenset(READ_ONLY_ALIASES)
# Which of them read as a double (their current value) as well as a sample history.
HAS_CURRENT_VALUE = frozenset(COUNT_METRICS) - {"$SampleNodeCount"}


def canonical(name: str) -> str:
    return ALIASES.get(name) or READ_ONLY_ALIASES.get(name) or name
