"""A task's state history: its last transitions (state, time, retry and requeue counts after it), kept with
its private fields for the dashboard's task page (`GET /_batchyard/jobs/{job}/tasks/{task}/history`).

Not part of the task's wire document: the Batch contract shows only the current and the previous state.
Bounded (`LIMIT`), so a task retried or requeued many times keeps its most recent transitions.
"""

from __future__ import annotations

from typing import Any

from batchyard.service.documents import TaskDocument

LIMIT = 50


def note_transition(doc: TaskDocument, stamp: str) -> None:
    """Record the state `doc` has just moved to, at `stamp` (the wire form of the transition time)."""
    info = doc.get("executionInfo") or {}
    entry = [doc["state"], stamp, int(info.get("retryCount", 0)), int(info.get("requeueCount", 0))]
    kept = doc.private.state_history
    if kept is None:
        doc.private.state_history = [entry]
    else:  # in place: this runs at every transition of every task
        kept.append(entry)
        del kept[:-LIMIT]


def history(doc: TaskDocument) -> dict[str, Any]:
    """The task's history as `/_batchyard` shows it: its creation time, and the transitions kept, oldest
    first; `truncated` when LIMIT are kept (older ones may have been dropped)."""
    kept = doc.private.state_history or []
    transitions = [
        {"state": state, "time": time, "retryCount": retries, "requeueCount": requeues}
        for state, time, retries, requeues in kept
    ]
    return {
        "creationTime": doc.get("creationTime"),
        "transitions": transitions,
        "truncated": len(kept) >= LIMIT,
    }
