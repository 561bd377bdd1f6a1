"""State machines as data: the allowed transitions of each entity, and the one function that moves state."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from batchyard.service.clock import iso
from batchyard.service.documents import TaskDocument
from batchyard.service.engine.task_history import note_transition

log = logging.getLogger("batchyard.state")

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
    "creating": {"preempted", "starting", "unusable", "leavingpool", "unknown"},
    "starting": {"preempted", "waitingforstarttask", "idle", "unusable", "leavingpool", "unknown", "starting"},
    "waitingforstarttask": {"preempted", "idle", "starttaskfailed", "unusable", "leavingpool", "unknown", "starting"},
    "idle": {
        "preempted",
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
        "preempted",
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
        "preempted",
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
    "starttaskfailed": {"preempted", "starting", "unusable", "leavingpool", "unknown", "rebooting", "reimaging"},
    "unusable": {"preempted", "starting", "idle", "leavingpool", "unknown", "rebooting", "reimaging"},
    "unknown": {
        "starting",
        "idle",
        "running",
        "unusable",
        "leavingpool",
        "waitingforstarttask",
        "rebooting",
        "reimaging",
        "preempted",
    },
    "leavingpool": {"unusable", "unknown"},
    "rebooting": {"starting", "unusable", "leavingpool", "unknown"},
    "reimaging": {"starting", "unusable", "leavingpool", "unknown"},
    "deallocating": {"deallocated", "unusable", "leavingpool", "unknown"},
    "deallocated": {"starting", "leavingpool"},
    # A low-priority node whose allocation was taken back (providers.base.NodeEvents.allocation_lost).
    "preempted": {"starting", "leavingpool", "unusable"},
}

CERTIFICATE = {
    "active": {"deleting"},
    "deleting": {"deletefailed"},  # or gone
    "deletefailed": {"active", "deleting"},  # cancel deletion, or try again
}

_ENTITIES = {id(TASK): "task", id(JOB): "job", id(POOL): "pool", id(NODE): "node", id(CERTIFICATE): "certificate"}


class IllegalTransition(Exception):
    pass


def move(
    doc: dict[str, Any],
    table: dict[str, set[str]],
    new_state: str,
    now: datetime,
    *,
    previous: bool,
    owner: str | None = None,
) -> bool:
    """Set `state` and its transition time (and `previousState` where the entity has one).

    Returns False when the entity is already in `new_state` (nothing recorded). `owner` is the id of what
    the entity belongs to (a task's job, a node's pool), for the log line.
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
    if isinstance(doc, TaskDocument):
        note_transition(doc, stamp)
    entity = _ENTITIES.get(id(table), "entity")
    # Nodes and pools change seldom and matter to operators; tasks and jobs are many.
    level = logging.INFO if entity in ("node", "pool", "certificate") else logging.DEBUG
    if log.isEnabledFor(level):
        where = (doc.get("nodeInfo") or {}).get("nodeId")
        name = f"{owner}/{doc.get('id')}" if owner else doc.get("id")
        log.log(level, "%s %s: %s -> %s%s", entity, name, old, new_state, f" on {where}" if where else "")
    return True
