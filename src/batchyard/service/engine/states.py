"""State machines as data: the allowed transitions of each entity, and the one function that moves state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from batchyard.service.clock import iso

TASK = {
    "active": {"preparing", "running", "completed"},
    "preparing": {"running", "active", "completed"},
    "running": {"completed", "active"},
    "completed": {"active"},  # reactivate
}

JOB = {
    "active": {"disabling", "terminating", "deleting", "completed"},
    "disabling": {"disabled", "terminating", "deleting"},
    "disabled": {"enabling", "terminating", "deleting"},
    "enabling": {"active", "terminating", "deleting"},
    "terminating": {"completed", "deleting"},
    "completed": {"deleting"},
    "deleting": set(),
}

POOL = {"active": {"deleting"}, "deleting": set()}

NODE = {
    "creating": {"starting", "unusable", "leavingpool", "unknown"},
    "starting": {"waitingforstarttask", "idle", "unusable", "leavingpool", "unknown", "starting"},
    "waitingforstarttask": {"idle", "starttaskfailed", "unusable", "leavingpool", "unknown", "starting"},
    "idle": {
        "running",
        "offline",
        "unusable",
        "leavingpool",
        "unknown",
        "starting",
        "rebooting",
        "reimaging",
        "deallocating",
    },
    "running": {
        "idle",
        "offline",
        "unusable",
        "leavingpool",
        "unknown",
        "starting",
        "rebooting",
        "reimaging",
        "deallocating",
    },
    "offline": {
        "idle",
        "running",
        "unusable",
        "leavingpool",
        "unknown",
        "starting",
        "rebooting",
        "reimaging",
        "deallocating",
    },
    "starttaskfailed": {"starting", "unusable", "leavingpool", "unknown", "rebooting", "reimaging"},
    "unusable": {"starting", "idle", "leavingpool", "unknown", "rebooting", "reimaging"},
    "unknown": {"starting", "idle", "running", "unusable", "leavingpool", "waitingforstarttask"},
    "leavingpool": {"unusable", "unknown"},
    "rebooting": {"starting", "unusable", "leavingpool", "unknown"},
    "reimaging": {"starting", "unusable", "leavingpool", "unknown"},
    "deallocating": {"deallocated", "unusable", "leavingpool", "unknown"},
    "deallocated": {"starting", "leavingpool"},
    # A low-priority node whose allocation was taken back (providers.base.NodeEvents.allocation_lost).
    "preempted": {"starting", "leavingpool", "unusable"},
}
for _state in ("creating", "starting", "waitingforstarttask", "idle", "running", "offline", "starttaskfailed"):
    NODE[_state].add("preempted")
for _state in ("unusable", "unknown"):
    NODE[_state].add("preempted")


class IllegalTransition(Exception):
    pass


def move(doc: dict[str, Any], table: dict[str, set[str]], new_state: str, now: datetime, *, previous: bool) -> bool:
    """Set `state` and its transition time (and `previousState` where the entity has one).

    Returns False when the entity is already in `new_state` (nothing recorded).
    """
    old = doc.get("state")
    if old == new_state:
        return False
    if old is not None and new_state not in table.get(old, ()):
        raise IllegalTransition(f"{old} -> {new_state}")
    stamp = iso(now)
    if previous and old is not None:
        doc["previousState"] = old
        doc["previousStateTransitionTime"] = doc.get("stateTransitionTime", stamp)
    doc["state"] = new_state
    doc["stateTransitionTime"] = stamp
    return True
