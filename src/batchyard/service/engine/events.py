"""Domain events inside the engine: what happened, and which concerns react to it.

A concern (nodes, pools, tasks, preparation, autoscale, ...) marks each method that reacts to an event
with `@reacts_to(EventType)`; the engine collects the marked methods once, when it is built, and
`emit` calls them in a fixed order: by `order` (lower first), then in the order the engine composes its
concerns (engine.py). `Reactions.describe()` lists who reacts to what, so "what happens when a node is freed?" has
one answer in one place.

Events are facts (past tense), raised by the concern that owns the change, inside the caller's unit
of work; reactions run synchronously in it.

(Over 400 lines on purpose: the engine's one catalogue of events, so every fact it tells is found here.)
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from batchyard.service.documents import TaskDocument
    from batchyard.service.engine.records import JobRecord, NodeRecord, NodeRun, PoolRecord


# --- the events -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """Housekeeping: timers, limits, retention and lost nodes are checked (every second by default)."""

    now: datetime


@dataclass(frozen=True, slots=True)
class RoundDue:
    """A scheduling round was asked for (`EngineCore.kick`): free slots get queued tasks."""

    now: datetime


@dataclass(frozen=True, slots=True)
class EngineStarted:
    """The engine is up, with the state of the previous service process loaded."""

    now: datetime


@dataclass(frozen=True, slots=True)
class NodeGreeted:
    """A node's agent said hello (after its start, a reconnect, or a service restart) and was welcomed."""

    node: NodeRecord
    hello: dict[str, Any]
    fresh_boot: bool


@dataclass(frozen=True, slots=True)
class NodeBooting:
    """A node boots afresh (its first agent, a reboot or a reimage): before its start task runs."""

    node: NodeRecord
    pool: PoolRecord | None
    now: datetime


@dataclass(frozen=True, slots=True)
class StartTaskFinished:
    node: NodeRecord
    now: datetime


@dataclass(frozen=True, slots=True)
class NodeFreed:
    """Runs on the node ended (finished, lost or ended): slots may be free, pending actions may go on."""

    node: NodeRecord
    now: datetime


@dataclass(frozen=True, slots=True)
class NodeForgotten:
    """The node left its pool for good; nothing about it is kept."""

    node: NodeRecord


@dataclass(frozen=True, slots=True)
class NodeLeaving:
    """The node leaves its pool (resize, removal, deletion): its runs end as `option` says
    (requeue, terminate; taskcompletion and retaineddata wait for them)."""

    node: NodeRecord
    option: str
    now: datetime


@dataclass(frozen=True, slots=True)
class RunLost:
    """A run is gone with its node (the node was lost, or its new agent no longer has it)."""

    node: NodeRecord
    run: NodeRun
    now: datetime


@dataclass(frozen=True, slots=True)
class TaskRunFinished:
    """A node reported the end of a task's run (its process exited, or was ended). `doc`: the task's stored
    document, read once for every reaction (None when the task is gone)."""

    node: NodeRecord
    run: NodeRun
    result: dict[str, Any]
    now: datetime
    doc: TaskDocument | None


@dataclass(frozen=True, slots=True)
class PoolChanged:
    """A pool was created or its target, autoscale setting or nodes changed."""

    pool: PoolRecord
    now: datetime


@dataclass(frozen=True, slots=True)
class PoolCreated:
    """A pool was created (by the API or as a job's auto pool)."""

    pool: PoolRecord
    now: datetime


@dataclass(frozen=True, slots=True)
class PoolAdded:
    """A pool was added to the account, before its first resize starts (`PoolCreated` follows)."""

    pool: PoolRecord
    now: datetime


@dataclass(frozen=True, slots=True)
class PoolResizeStarted:
    """A pool's resize began (`option`: how shrinking nodes leave; None when it grows)."""

    pool: PoolRecord
    option: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class PoolResizeEnded:
    """A pool's resize that began at `started` is over: steady, or stopped by `error` (a resize error)."""

    pool: PoolRecord
    started: str | None
    error: dict[str, Any] | None
    now: datetime


@dataclass(frozen=True, slots=True)
class PoolDeleting:
    """A pool's deletion began (its state is `deleting`)."""

    pool: PoolRecord
    now: datetime


@dataclass(frozen=True, slots=True)
class PoolDeleted:
    """A pool whose deletion began at `started` is gone, with its last node."""

    pool: PoolRecord
    started: str
    now: datetime


@dataclass(frozen=True, slots=True)
class SpecialTaskEnded:
    """A run of a start task, job preparation or job release task ended on a node (`info`: its
    execution information; `job` None for a start task)."""

    kind: str  # records.RunKind value: "start", "prep" or "release"
    task_id: str
    job: JobRecord | None
    node: NodeRecord
    info: dict[str, Any]
    now: datetime


@dataclass(frozen=True, slots=True)
class TaskScheduleFailed:
    """A task placed on a node could not run there (`error`: why, e.g. the job preparation failed) and
    went back to the queue."""

    job: JobRecord
    doc: TaskDocument
    node: NodeRecord
    error: dict[str, Any]
    now: datetime


@dataclass(frozen=True, slots=True)
class JobPoolChanged:
    """A job now runs on another pool (poolInfo updated)."""

    job: JobRecord


@dataclass(frozen=True, slots=True)
class TaskEnded:
    """A task of the job completed, or went back to the queue: the job's counters changed."""

    job: JobRecord


@dataclass(frozen=True, slots=True)
class TasksAdded:
    """Tasks were added to the job (their documents, as stored)."""

    job: JobRecord
    docs: list[TaskDocument]


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A run of the task was sent to a node: the task is `running` (its document, as stored)."""

    job: JobRecord
    doc: TaskDocument
    now: datetime


@dataclass(frozen=True, slots=True)
class AutoscaleEvaluated:
    """A pool's automatic scaling run (when enabled, then on its interval) evaluated its formula (`ok`: no error)."""

    pool: PoolRecord
    ok: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class TaskCompleted:
    """A task completed (after `TaskEnded`)."""

    job: JobRecord
    doc: TaskDocument
    now: datetime


@dataclass(frozen=True, slots=True)
class TaskBackInQueue:
    """A task left its node for the queue: a retry, a requeue, or a held task whose node failed (after
    `TaskEnded`)."""

    job: JobRecord
    doc: TaskDocument
    now: datetime


@dataclass(frozen=True, slots=True)
class TaskDeleted:
    """A task was deleted (its document is gone from the store)."""

    job: JobRecord
    doc: TaskDocument
    now: datetime


@dataclass(frozen=True, slots=True)
class GangEndRequested:
    """A user or the job asked to end a multi-instance task's runs (the `reason`: terminate or requeue)."""

    doc: TaskDocument
    reason: str


@dataclass(frozen=True, slots=True)
class PreparationRunEnded:
    """A run of a job's preparation task ended on a node (its status says whether it runs again)."""

    job: JobRecord
    node: NodeRecord
    now: datetime


@dataclass(frozen=True, slots=True)
class JobManagerCompleted:
    """The job's Job Manager task completed (killJobOnCompletion may end the job)."""

    job: JobRecord


@dataclass(frozen=True, slots=True)
class JobActionRequested:
    """A task's exit conditions ask for a job action (disable or terminate)."""

    job: JobRecord
    action: str


@dataclass(frozen=True, slots=True)
class ReleasesFinished:
    """Every job release task of the job has ended on every node that ran the job."""

    job: JobRecord


# --- reacting --------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])
Reaction = Callable[[Any], None]


# Marked methods (plain functions, as defined in their classes, which live as long as the process) -> what
# they react to or handle.
_REACTIONS: dict[Callable[..., Any], list[tuple[type, int]]] = {}
_MESSAGE_HANDLERS: dict[Callable[..., Any], str] = {}


def reacts_to(*events: type, order: int = 0) -> Callable[[F], F]:
    """Mark a concern's method as a reaction to these events (it takes the event as its argument)."""

    def mark(method: F) -> F:
        _REACTIONS.setdefault(method, []).extend((event, order) for event in events)
        return method

    return mark


def handles_message(kind: str) -> Callable[[F], F]:
    """Mark a concern's method as the handler of the agent messages of this kind (`t`); it takes the node
    and the message, and runs in a unit of work. One handler per kind."""

    def mark(method: F) -> F:
        _MESSAGE_HANDLERS[method] = kind
        return method

    return mark


_RUN_FINISHERS: dict[Callable[..., Any], Hashable] = {}
_RUN_LOSERS: dict[Callable[..., Any], Hashable] = {}


def finishes_runs(kind: Hashable) -> Callable[[F], F]:
    """Mark the method that takes the results of runs of this kind (records.RunKind): it takes the node,
    the run, the result and the time. One per kind; a task's result without one is `TaskRunFinished`."""

    def mark(method: F) -> F:
        _RUN_FINISHERS[method] = kind
        return method

    return mark


def loses_runs(kind: Hashable) -> Callable[[F], F]:
    """Mark the method that deals with runs of this kind that a node lost (node, run, time); it returns
    whether it dealt with the run (False: the task is requeued as any other)."""

    def mark(method: F) -> F:
        _RUN_LOSERS[method] = kind
        return method

    return mark


class Reactions:
    """The reactions of one engine, collected from its concerns' marked methods as they are added."""

    def __init__(self) -> None:
        self._found: dict[type, list[tuple[int, int, str, Reaction]]] = defaultdict(list)
        self._handlers: dict[type, list[tuple[str, Reaction]]] = {}
        self._messages: dict[str, Callable[..., None]] = {}
        self._finishers: dict[Hashable, Callable[..., None]] = {}
        self._losers: dict[Hashable, Callable[..., bool]] = {}
        self._concerns = 0

    def add(self, concern: object) -> None:
        """Collect a concern's marked methods; concerns added earlier react earlier at the same `order`."""
        position = self._concerns
        self._concerns += 1
        seen: set[str] = set()
        for cls in type(concern).__mro__:  # the most derived definition of a name wins
            for name, method in vars(cls).items():
                if not inspect.isfunction(method) or name in seen:
                    continue
                seen.add(name)
                bound = getattr(concern, name)
                label = f"{type(concern).__name__}.{name}"
                for event, order in _REACTIONS.get(method, ()):
                    self._found[event].append((order, position, label, bound))
                kind = _MESSAGE_HANDLERS.get(method)
                if kind is not None:
                    if kind in self._messages:
                        raise TypeError(f"two handlers of agent message {kind!r}")
                    self._messages[kind] = bound
                for table, registry in ((self._finishers, _RUN_FINISHERS), (self._losers, _RUN_LOSERS)):
                    run_kind = registry.get(method)
                    if run_kind is not None:
                        if run_kind in table:
                            raise TypeError(f"two handlers of {run_kind!r} runs")
                        table[run_kind] = bound
        self._handlers = {
            event: [(label, handler) for _, _, label, handler in sorted(entries, key=lambda e: (e[0], e[1]))]
            for event, entries in self._found.items()
        }

    def emit(self, event: object) -> None:
        for _, handler in self._handlers.get(type(event), ()):
            handler(event)

    def message_handler(self, kind: str) -> Callable[..., None] | None:
        """The handler of agent messages of this kind; None: nothing to do but note the agent is alive."""
        return self._messages.get(kind)

    def run_finisher(self, kind: Hashable) -> Callable[..., None] | None:
        return self._finishers.get(kind)

    def run_loser(self, kind: Hashable) -> Callable[..., bool] | None:
        return self._losers.get(kind)

    def describe(self) -> dict[str, list[str]]:
        """Event name -> the reactions to it, in the order they run."""
        return {event.__name__: [label for label, _ in handlers] for event, handlers in self._handlers.items()}
