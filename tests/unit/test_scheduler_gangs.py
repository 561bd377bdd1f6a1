"""The pure scheduler's multi-instance (gang) placement: distinct nodes, all or none, never over capacity."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
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


def test_a_waiting_gang_reserves_free_nodes_when_the_pool_is_big_enough() -> None:
    # n0 is busy: the gang of 3 waits for it, and the small tasks behind it do not take n1 and n2.
    job = JobQueueView(
        0, 0, [QueuedTask("j", "g", 1), QueuedTask("j", "t1", 1), QueuedTask("j", "t2", 1)], gangs={"g": 3}
    )
    assert schedule([job], nodes(0, 1, 1), "spread", pool_nodes=["n0", "n1", "n2"]) == []
    # Once n0 is free too, the gang starts; the small tasks wait for the next free slot.
    (a,) = schedule([job], nodes(1, 1, 1), "spread", pool_nodes=["n0", "n1", "n2"])
    assert a.task.task_key == "g" and {a.node_id, *a.others} == {"n0", "n1", "n2"}


def test_only_the_first_waiting_gang_reserves_and_higher_priorities_go_first() -> None:
    first = JobQueueView(0, 0, [QueuedTask("a", "ga", 1)], gangs={"ga": 3})
    second = JobQueueView(0, 1, [QueuedTask("b", "gb", 1)], gangs={"gb": 2})
    urgent = JobQueueView(5, 2, [QueuedTask("u", "t", 1)])
    pool = ["n0", "n1", "n2", "n3"]
    assignments = schedule([first, second, urgent], nodes(0, 1, 1, 1), "pack", pool_nodes=pool)
    # The urgent task takes a node first; ga reserves the other two; gb, smaller, gets none of them.
    assert [(a.task.task_key, a.node_id) for a in assignments] == [("t", "n1")]
    (a,) = schedule([first, second], nodes(1, 1, 1, 1), "pack", pool_nodes=pool)
    assert a.task.task_key == "ga"


def test_a_gang_the_pool_cannot_hold_reserves_nothing() -> None:
    job = JobQueueView(0, 0, [QueuedTask("j", "g", 1), QueuedTask("j", "t", 1)], gangs={"g": 3})
    excluded = JobQueueView(0, 0, [QueuedTask("j", "g", 1), QueuedTask("j", "t", 1)], frozenset({"n2"}), {"g": 3})
    for view in (job, excluded):
        assignments = schedule(
            [view], nodes(1, 1, 0), "spread", pool_nodes=["n0", "n1", "n2"][: 2 if view is job else 3]
        )
        assert [a.task.task_key for a in assignments] == ["t"]


def test_gang_skips_excluded_nodes() -> None:
    job = JobQueueView(0, 0, [QueuedTask("j", "g", 1)], frozenset({"n1"}), gangs={"g": 2})
    (a,) = schedule([job], nodes(1, 1, 1), "spread")
    assert {a.node_id, *a.others} == {"n0", "n2"}


@given(
    free=st.lists(st.integers(0, 3), min_size=1, max_size=8),
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=10),
    fill=st.sampled_from(["spread", "pack"]),
    reserve=st.booleans(),
)
@settings(max_examples=200)
def test_gangs_all_or_none_within_capacity(free: list[int], sizes: list[int], fill: str, reserve: bool) -> None:
    tasks = [QueuedTask("j", f"t{i}", 1) for i in range(len(sizes))]
    job = JobQueueView(0, 0, tasks, gangs={f"t{i}": n for i, n in enumerate(sizes) if n > 1})
    pool = [f"n{i}" for i in range(len(free))] if reserve else []
    assignments = schedule([job], nodes(*free), fill, pool_nodes=pool)
    used: Counter[str] = Counter()
    for a in assignments:
        placed = [a.node_id, *a.others]
        assert len(placed) == len(set(placed)) == sizes[int(a.task.task_key[1:])]
        used.update(placed)
    capacity = {node.node_id: node.free for node in nodes(*free)}
    assert all(used[node_id] <= capacity[node_id] for node_id in used)
    assert len({a.task.task_key for a in assignments}) == len(assignments)
