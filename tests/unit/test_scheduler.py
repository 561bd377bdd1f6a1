"""The scheduler is a pure function: examples for each rule, and properties over random snapshots."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from batchyard.service.engine.scheduler import JobQueueView, NodeSlots, QueuedTask, schedule


def tasks(job: str, count: int, slots: int = 1) -> list[QueuedTask]:
    return [QueuedTask(job, f"{job}-{i}", slots) for i in range(count)]


def test_higher_priority_job_goes_first() -> None:
    jobs = [JobQueueView(0, 1, tasks("low", 5)), JobQueueView(10, 2, tasks("high", 5))]
    result = schedule(jobs, [NodeSlots("n1", 3, 1)], "spread")
    assert [a.task.job_key for a in result] == ["high"] * 3


def test_equal_priority_jobs_share_round_robin() -> None:
    jobs = [JobQueueView(0, 1, tasks("a", 5)), JobQueueView(0, 2, tasks("b", 5))]
    result = schedule(jobs, [NodeSlots("n1", 4, 1)], "spread")
    assert Counter(a.task.job_key for a in result) == {"a": 2, "b": 2}


def test_spread_balances_and_pack_fills_one_node_first() -> None:
    nodes = [NodeSlots("n1", 4, 1), NodeSlots("n2", 4, 2)]
    spread = schedule([JobQueueView(0, 1, tasks("j", 4))], nodes, "spread")
    assert Counter(a.node_id for a in spread) == {"n1": 2, "n2": 2}
    pack = schedule([JobQueueView(0, 1, tasks("j", 4))], nodes, "pack")
    assert Counter(a.node_id for a in pack) == {"n1": 4}


def test_task_needing_more_slots_than_free_is_skipped_not_blocking() -> None:
    queue = [QueuedTask("j", "big", 3), QueuedTask("j", "small", 1)]
    result = schedule([JobQueueView(0, 1, queue)], [NodeSlots("n1", 2, 1)], "spread")
    assert [a.task.task_key for a in result] == ["small"]


def test_queue_order_within_a_job_is_kept() -> None:
    result = schedule([JobQueueView(0, 1, tasks("j", 10))], [NodeSlots("n1", 5, 1)], "pack")
    assert [a.task.task_key for a in result] == [f"j-{i}" for i in range(5)]


def test_no_free_slots_means_no_work() -> None:
    assert schedule([JobQueueView(0, 1, tasks("j", 100_000))], [NodeSlots("n1", 0, 1)], "spread") == []


snapshots = st.tuples(
    st.lists(st.tuples(st.integers(-2, 2), st.lists(st.integers(1, 4), max_size=12)), min_size=1, max_size=5),
    st.lists(st.integers(0, 8), min_size=1, max_size=5),
    st.sampled_from(["spread", "pack"]),
)


@settings(max_examples=300, deadline=None)
@given(snapshots)
def test_properties(snapshot: tuple[list[tuple[int, list[int]]], list[int], str]) -> None:
    job_specs, free_slots, fill = snapshot
    jobs = [
        JobQueueView(priority, order, [QueuedTask(f"j{order}", f"j{order}-{i}", s) for i, s in enumerate(slots)])
        for order, (priority, slots) in enumerate(job_specs)
    ]
    nodes = [NodeSlots(f"n{i}", free, i) for i, free in enumerate(free_slots)]
    result = schedule(jobs, nodes, fill)

    # No task twice, and no node over its free slots.
    assert len({a.task.task_key for a in result}) == len(result)
    used: Counter[str] = Counter()
    for a in result:
        used[a.node_id] += a.task.slots
    for node in nodes:
        assert used[node.node_id] <= node.free
    # Work conservation: an unassigned task fits on no node's remaining slots (bounded scan aside).
    assigned = {a.task.task_key for a in result}
    left = {node.node_id: node.free - used[node.node_id] for node in nodes}
    for job in jobs:
        for task in job.tasks:
            if task.task_key not in assigned:
                assert all(free < task.slots for free in left.values())
    # Priority: an unassigned task did not fit even in the slots later given to lower-priority jobs.
    priority_of = {job.tasks[0].job_key: job.priority for job in jobs if job.tasks}
    for job in jobs:
        lower_used: Counter[str] = Counter()
        for a in result:
            if priority_of[a.task.job_key] < job.priority:
                lower_used[a.node_id] += a.task.slots
        for task in job.tasks:
            if task.task_key not in assigned:
                assert all(task.slots > left[n] + lower_used[n] for n in left)
