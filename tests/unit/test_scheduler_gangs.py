"""The pure scheduler's multi-instance (gang) placement: distinct nodes, all or none, never over capacity."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from batchyard.service.engine.scheduler import JobQueueView, NodeSlots, QueuedTask, schedule


def nodes(*free: int) -> list[NodeSlots]:
    return [NodeSlots(f"n{i}", slots, i) for i, slots in enumerate(free)]


def test_gang_takes_distinct_nodes_master_first() -> None:
    job = JobQueueView(0, 0, [QueuedTask("j", "g", 1)], gangs={"g": 3})
    (a,) = schedule([job], nodes(1, 1, 1, 1), "pack")
    assert (a.node_id, a.others) == ("n0", ("n1", "n2"))


def test_gang_that_does_not_fit_takes_nothing_and_others_still_run() -> None:
    job = JobQueueView(0, 0, [QueuedTask("j", "g", 1), QueuedTask("j", "t", 1)], gangs={"g": 3})
    assignments = schedule([job], nodes(1, 1), "spread")
    assert [(a.task.task_key, a.others) for a in assignments] == [("t", ())]


def test_gang_skips_excluded_nodes() -> None:
    job = JobQueueView(0, 0, [QueuedTask("j", "g", 1)], frozenset({"n1"}), gangs={"g": 2})
    (a,) = schedule([job], nodes(1, 1, 1), "spread")
    assert {a.node_id, *a.others} == {"n0", "n2"}


@given(
    free=st.lists(st.integers(0, 3), min_size=1, max_size=8),
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=10),
    fill=st.sampled_from(["spread", "pack"]),
)
def test_gangs_all_or_none_within_capacity(free: list[int], sizes: list[int], fill: str) -> None:
    tasks = [QueuedTask("j", f"t{i}", 1) for i in range(len(sizes))]
    job = JobQueueView(0, 0, tasks, gangs={f"t{i}": n for i, n in enumerate(sizes) if n > 1})
    assignments = schedule([job], nodes(*free), fill)
    used: Counter[str] = Counter()
    for a in assignments:
        placed = [a.node_id, *a.others]
        assert len(placed) == len(set(placed)) == sizes[int(a.task.task_key[1:])]
        used.update(placed)
    capacity = {node.node_id: node.free for node in nodes(*free)}
    assert all(used[node_id] <= capacity[node_id] for node_id in used)
    assert len({a.task.task_key for a in assignments}) == len(assignments)
