"""The scheduler: a pure function from a snapshot of queued tasks and free node slots to assignments.

Rules (as the Azure Batch documentation states them): within a pool, tasks of higher-priority jobs
start first; jobs of equal priority share the pool (round robin); running tasks are never preempted;
a node never runs more than its task slots; `spread` places each task on the node with the most free
slots, `pack` fills one node before the next. A multi-instance task (`gangs`: task key -> instances) is
placed on that many distinct nodes in one round or not at all, so no partial gang ever holds nodes.

So that a stream of small tasks cannot starve a gang, the first gang of a round that does not fit
although the pool has enough nodes for it (`pool_nodes`) reserves the free nodes it could use: no
task after it in the round takes them. Rounds see the queues in the same order, so that gang keeps
its reservation and gathers nodes as they free up; only one gang reserves, so two cannot deadlock.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby


@dataclass(frozen=True, slots=True)
class QueuedTask:
    job_key: str
    task_key: str
    slots: int


@dataclass(frozen=True, slots=True)
class JobQueueView:
    priority: int
    order: int  # creation order, a stable tie-break between jobs of equal priority
    tasks: Iterable[QueuedTask]  # in queue order; only read, never changed
    excluded: frozenset[str] = frozenset()  # nodes this job's tasks may not go to
    gangs: Mapping[str, int] = field(default_factory=dict)  # multi-instance task key -> number of instances (nodes)


@dataclass(frozen=True, slots=True)
class NodeSlots:
    node_id: str
    free: int
    order: int  # stable tie-break (node creation order)


@dataclass(frozen=True, slots=True)
class Assignment:
    task: QueuedTask
    node_id: str  # for a multi-instance task: the master node (the primary runs there)
    others: tuple[str, ...] = ()  # a multi-instance task's subtask nodes, in subtask id order


# A queue head that fits on no node is skipped; stop looking after this many such skips so a
# queue of 100,000 oversized tasks costs bounded work per round.
MAX_SKIPPED = 256


def schedule(
    jobs: Sequence[JobQueueView],
    nodes: Sequence[NodeSlots],
    fill_type: str,
    pool_nodes: Collection[str] = (),
) -> list[Assignment]:
    """Assignments for this round; `pool_nodes`: every schedulable node of the pool, busy ones too
    (what a waiting gang may reserve for; none given, no gang reserves)."""
    free = {node.node_id: node.free for node in nodes if node.free > 0}
    if not free or not jobs:
        return []
    order = {node.node_id: node.order for node in nodes}
    picker = _SpreadPicker(free, order) if fill_type == "spread" else _PackPicker(free, order)
    reserver = _Reserver(frozenset(pool_nodes))
    assignments: list[Assignment] = []
    ranked = sorted(jobs, key=lambda job: (-job.priority, job.order))
    for _, level in groupby(ranked, key=lambda job: job.priority):
        _fill_level([(iter(job.tasks), job.excluded, job.gangs) for job in level], picker, reserver, assignments)
        if picker.total_free == 0:
            break
    return assignments


@dataclass(slots=True)
class _Reserver:
    pool_nodes: frozenset[str]
    done: bool = False  # one reservation per round

    def reserve(self, picker: _Picker, slots: int, count: int, excluded: frozenset[str]) -> None:
        """Take out of this round the free nodes a gang that did not fit could use, if it ever can."""
        if self.done or len(self.pool_nodes - excluded) < count:
            return
        self.done = True
        held: set[str] = set()
        while len(held) < count and (node_id := picker.take(slots, excluded | held)) is not None:
            held.add(node_id)


_Queue = tuple[Iterator[QueuedTask], frozenset[str], Mapping[str, int]]


def _fill_level(queues: list[_Queue], picker: _Picker, reserver: _Reserver, out: list[Assignment]) -> None:
    """Round robin over the jobs of one priority level until slots or tasks run out."""
    skipped = 0
    while queues and picker.total_free > 0 and skipped < MAX_SKIPPED:
        still_open: list[_Queue] = []
        for queue, excluded, gangs in queues:
            task = next(queue, None)
            if task is None:
                continue
            still_open.append((queue, excluded, gangs))
            instances = gangs.get(task.task_key, 1) if gangs else 1
            if instances > 1:
                chosen = picker.take_gang(task.slots, instances, excluded)
                if chosen is None:
                    reserver.reserve(picker, task.slots, instances, excluded)
                    skipped += 1
                    continue
                out.append(Assignment(task, chosen[0], tuple(chosen[1:])))
                if picker.total_free == 0:
                    return
                continue
            node_id = picker.take(task.slots, excluded)
            if node_id is None:
                skipped += 1
                continue
            out.append(Assignment(task, node_id))
            if picker.total_free == 0:
                return
        queues = still_open


class _Picker(ABC):
    total_free: int

    @abstractmethod
    def take(self, slots: int, excluded: frozenset[str] = frozenset()) -> str | None:
        """A node with `slots` free (now taken), or None."""

    @abstractmethod
    def take_gang(self, slots: int, count: int, excluded: frozenset[str]) -> list[str] | None:
        """`count` distinct nodes with `slots` free each, all taken, or None and nothing taken."""


class _SpreadPicker(_Picker):
    """Most free slots first: a max-heap of (free, node)."""

    def __init__(self, free: dict[str, int], order: dict[str, int]) -> None:
        self.free = free
        self.order = order
        self.total_free = sum(free.values())
        self.heap = [(-slots, order[node_id], node_id) for node_id, slots in free.items()]
        heapq.heapify(self.heap)

    def take(self, slots: int, excluded: frozenset[str] = frozenset()) -> str | None:
        skipped = []
        chosen = None
        while self.heap and -self.heap[0][0] >= slots:
            entry = heapq.heappop(self.heap)
            if entry[2] in excluded:
                skipped.append(entry)
                continue
            chosen = entry
            break
        for entry in skipped:
            heapq.heappush(self.heap, entry)
        if chosen is None:
            return None
        neg_free, rank, node_id = chosen
        left = -neg_free - slots
        self.free[node_id] = left
        self.total_free -= slots
        if left > 0:
            heapq.heappush(self.heap, (-left, rank, node_id))
        return node_id

    def take_gang(self, slots: int, count: int, excluded: frozenset[str]) -> list[str] | None:
        popped: list[tuple[int, int, str]] = []
        chosen: list[tuple[int, int, str]] = []
        while self.heap and len(chosen) < count and -self.heap[0][0] >= slots:
            entry = heapq.heappop(self.heap)
            popped.append(entry)
            if entry[2] not in excluded:
                chosen.append(entry)
        if len(chosen) < count:
            for entry in popped:
                heapq.heappush(self.heap, entry)
            return None
        for entry in popped:
            if entry not in chosen:
                heapq.heappush(self.heap, entry)
        for neg_free, rank, node_id in chosen:
            left = -neg_free - slots
            self.free[node_id] = left
            self.total_free -= slots
            if left > 0:
                heapq.heappush(self.heap, (-left, rank, node_id))
        return [node_id for _, _, node_id in chosen]


class _PackPicker(_Picker):
    """Fill the first node (in node order) that fits before moving on."""

    def __init__(self, free: dict[str, int], order: dict[str, int]) -> None:
        self.free = free
        self.total_free = sum(free.values())
        self.nodes = sorted(free, key=lambda node_id: order[node_id])

    def take(self, slots: int, excluded: frozenset[str] = frozenset()) -> str | None:
        for node_id in self.nodes:
            if self.free[node_id] >= slots and node_id not in excluded:
                self.free[node_id] -= slots
                self.total_free -= slots
                return node_id
        return None

    def take_gang(self, slots: int, count: int, excluded: frozenset[str]) -> list[str] | None:
        chosen = [n for n in self.nodes if self.free[n] >= slots and n not in excluded][:count]
        if len(chosen) < count:
            return None
        for node_id in chosen:
            self.free[node_id] -= slots
            self.total_free -= slots
        return chosen
