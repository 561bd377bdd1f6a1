"""A task's state history: each transition `states.move` makes, with the counts after it, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from batchyard.service.documents import TaskDocument, TaskPrivate, dump_private, load_private
from batchyard.service.engine import states, task_history

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def new_task() -> TaskDocument:
    return TaskDocument(
        {
            "id": "t1",
            "state": "active",
            "creationTime": "2026-01-02T03:04:05.000000Z",
            "executionInfo": {"retryCount": 0},
        }
    )


def test_each_transition_is_kept_with_the_counts_after_it() -> None:
    doc = new_task()
    states.move(doc, states.TASK, "running", START, previous=True)
    doc["executionInfo"]["retryCount"] = 1  # as a failed run is retried: the count first, then back to active
    states.move(doc, states.TASK, "active", START + timedelta(seconds=1), previous=True)
    states.move(doc, states.TASK, "active", START + timedelta(seconds=2), previous=True)  # no change: not kept
    assert task_history.history(doc) == {
        "creationTime": "2026-01-02T03:04:05.000000Z",
        "transitions": [
            {"state": "running", "time": "2026-01-02T03:04:05.000000Z", "retryCount": 0, "requeueCount": 0},
            {"state": "active", "time": "2026-01-02T03:04:06.000000Z", "retryCount": 1, "requeueCount": 0},
        ],
        "truncated": False,
    }
    # kept with the private fields, not in the wire document
    assert "state_history" not in doc and load_private(TaskPrivate, dump_private(doc.private)) == doc.private


def test_only_the_last_transitions_are_kept() -> None:
    doc = new_task()
    for n in range(task_history.LIMIT + 10):
        states.move(
            doc, states.TASK, "running" if n % 2 == 0 else "active", START + timedelta(seconds=n), previous=True
        )
    shown = task_history.history(doc)
    assert len(shown["transitions"]) == task_history.LIMIT and shown["truncated"]
    assert shown["transitions"][-1]["time"] == "2026-01-02T03:05:04.000000Z"  # the 60th, 59 s after the first
    assert shown["transitions"][0]["time"] == "2026-01-02T03:04:15.000000Z"  # the 11th


def test_a_plain_document_keeps_no_history() -> None:
    doc = {"id": "t1", "state": "active"}  # a multi-instance subtask's, say
    states.move(doc, states.TASK, "running", START, previous=True)
    assert doc["state"] == "running" and set(doc) == {
        "id",
        "state",
        "stateTransitionTime",
        "previousState",
        "previousStateTransitionTime",
    }
