"""Entity documents as the service keeps them: the wire document (what the REST API shows), and beside
it, never inside it, the fields only the service uses.

Pools, nodes, jobs and schedules keep their private fields on their in-memory records
(engine/records.py) and give the store a `Private` mapping; tasks are not held in memory, so a task's
document carries its private fields as an attribute (`TaskDocument.private`). The store persists the
two apart (a `private` column beside the `doc` column), so a stored or listed document is exactly the
wire document.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# A record's private fields as the store keeps them (JSON).
Private = dict[str, Any]


@dataclass(slots=True)
class TaskPrivate:
    run_id: str | None = None  # the task's current run on a node (its agent's id for it)
    dependency_action: str | None = None  # how a completed task's dependents go on (its exit conditions)
    job_manager: bool = False  # the job's Job Manager task
    ending: str | None = None  # a user or the job asked its run to end: "terminate" or "requeue"
    run_stats: dict[str, Any] | None = None  # the last run's resource counters, for task statistics
    subtask_retention: str | None = None  # a multi-instance task's retentionTime at creation
    # its last state transitions, [state, time, retryCount, requeueCount] each (engine/task_history.py)
    state_history: list[list[Any]] | None = None


class TaskDocument(dict[str, Any]):
    """A task's wire document, with its private fields beside it (serialised as a plain dict).

    `TaskDocument(doc)` is dict's own constructor (no Python frame: tasks are made in hundreds of thousands)
    and keeps no private fields until one is read or set through `private`."""

    # The class default; an instance gets its own only when its private fields are first used (most tasks
    # are added and stored before any is).
    kept_private: TaskPrivate | None = None

    @classmethod
    def with_private(cls, doc: dict[str, Any], private: TaskPrivate | None) -> TaskDocument:
        document = cls(doc)
        if private is not None:
            document.kept_private = private
        return document

    @property
    def private(self) -> TaskPrivate:
        private = self.kept_private
        if private is None:
            private = self.kept_private = TaskPrivate()
        return private


def dump_private(private: DataclassInstance) -> Private:
    """A private-fields dataclass as the store keeps it (a shallow copy: the fields are JSON values)."""
    return {name: getattr(private, name) for name in _field_names(type(private))}


P = TypeVar("P", bound="DataclassInstance")


def load_private(cls: type[P], stored: Private | None) -> P:
    """A private-fields dataclass from what the store kept (fields it does not know are dropped)."""
    known = _field_names(cls)
    return cls(**{key: value for key, value in (stored or {}).items() if key in known})


@cache
def _field_names(cls: type[DataclassInstance]) -> frozenset[str]:
    return frozenset(field.name for field in fields(cls))
