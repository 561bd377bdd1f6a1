"""The dependency graph and exit conditions: examples, and properties over random DAGs."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from batchyard.service.engine.dependencies import DependencyGraph, parent_keys
from batchyard.service.engine.exit_conditions import exit_outcome


def test_parent_keys_expand_ranges_and_lower_case() -> None:
    keys = parent_keys({"taskIds": ["Rain", "sun"], "taskIdRanges": [{"start": 1, "end": 3}]})
    assert keys == {"rain", "sun", "1", "2", "3"}


def test_child_waits_for_every_parent_then_is_ready_once() -> None:
    graph = DependencyGraph()
    assert graph.add("flowers", {"rain", "sun"}) == "waiting"
    assert graph.complete("rain", "satisfy") == ([], [])
    assert graph.complete("sun", "satisfy") == (["flowers"], [])
    assert not graph.is_waiting("flowers")


def test_a_blocking_parent_blocks_for_good() -> None:
    graph = DependencyGraph()
    graph.add("b", {"a", "x"})
    assert graph.complete("a", "block") == ([], ["b"])
    assert graph.complete("x", "satisfy") == ([], [])
    assert graph.blocked_by["b"] == {"a"}
    assert graph.add("c", {"a"}) == "blocked"  # outcomes are remembered for later children


def test_already_satisfied_parents_make_a_child_ready_at_once() -> None:
    graph = DependencyGraph()
    graph.complete("a", "satisfy")
    assert graph.add("b", {"a"}) == "ready"


def test_cycles_are_detected() -> None:
    graph = DependencyGraph()
    graph.add("a", {"b"})
    graph.add("b", {"c"})
    assert graph.would_cycle("c", {"a"})
    assert graph.would_cycle("x", {"x"})
    assert not graph.would_cycle("d", {"a"})


def test_exit_outcome_defaults_and_mappings() -> None:
    assert exit_outcome(None, 0, None).dependency_action == "satisfy"
    assert exit_outcome(None, 0, None).job_action == "none"
    failed = {"code": "FailureExitCode"}
    assert exit_outcome(None, 1, failed).dependency_action == "block"
    assert exit_outcome(None, 1, failed).job_action == "terminate"
    seed = {
        "exitCodes": [
            {"code": 10, "exitOptions": {"dependencyAction": "block"}},
            {"code": 20, "exitOptions": {"dependencyAction": "block"}},
        ],
        "preProcessingError": {"dependencyAction": "block"},
        "default": {"dependencyAction": "satisfy"},
    }
    assert exit_outcome(seed, 10, failed).dependency_action == "block"
    assert exit_outcome(seed, 5, failed).dependency_action == "satisfy"
    assert exit_outcome(seed, 0, None).dependency_action == "satisfy"
    assert exit_outcome(seed, None, {"code": "BlobNotFound"}).dependency_action == "block"
    ranges = {"exitCodeRanges": [{"start": 2, "end": 4, "exitOptions": {"jobAction": "disable"}}]}
    assert exit_outcome(ranges, 3, failed).job_action == "disable"
    assert exit_outcome(ranges, 5, failed).job_action == "terminate"


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, set[str]], dict[str, str], int]:
    size = draw(st.integers(1, 30))
    parents = {
        str(i): {str(p) for p in draw(st.sets(st.integers(0, i - 1), max_size=4))} if i else set() for i in range(size)
    }
    outcomes = {str(i): draw(st.sampled_from(["satisfy", "satisfy", "block"])) for i in range(size)}
    return parents, outcomes, draw(st.integers(0, 2**32))


@settings(max_examples=200, deadline=None)
@given(dags())
def test_random_dags_run_each_task_once_after_its_parents(dag: tuple[dict[str, set[str]], dict[str, str], int]) -> None:
    parents, outcomes, seed = dag
    rng = random.Random(seed)
    graph = DependencyGraph()
    order = list(parents)
    rng.shuffle(order)  # tasks are added in any order, parents possibly after children
    runnable: list[str] = []
    for task in order:
        if graph.add(task, parents[task]) == "ready":
            runnable.append(task)
    ran: list[str] = []
    while runnable:
        task = runnable.pop(rng.randrange(len(runnable)))
        ran.append(task)
        ready, _ = graph.complete(task, outcomes[task])
        runnable.extend(ready)
    # Exactly the tasks whose ancestors all satisfied ran, each once, after all of their parents.
    expected: set[str] = set()
    for task in sorted(parents, key=int):
        if all(p in expected and outcomes[p] == "satisfy" for p in parents[task]):
            expected.add(task)
    assert sorted(ran, key=int) == sorted(expected, key=int)
    position = {task: i for i, task in enumerate(ran)}
    for task in ran:
        assert all(position[p] < position[task] for p in parents[task])
