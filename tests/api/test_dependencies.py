"""Task dependencies and exit conditions through the SDK: every scenario of the seed, and job actions."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import completed, create_job, error_code, idle_nodes, temp_pool
from tests.conftest import wait_for

Unique = Callable[[str], str]


@pytest.fixture(scope="module")
def pool(client: Any) -> Iterator[str]:
    pool_id = f"deps-pool-{os.getpid()}"
    with temp_pool(client, pool_id, nodes=1, slots=4):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the node")
        yield pool_id


@pytest.fixture
def job(client: Any, pool: str, unique: Unique) -> str:
    job_id = unique("deps")
    create_job(client, job_id, pool, uses_task_dependencies=True)
    return job_id


def task(task_id: str, command: str = "/bin/true", **kwargs: Any) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=command, **kwargs)


def on(*ids: str, ranges: tuple[tuple[int, int], ...] = ()) -> m.BatchTaskDependencies:
    return m.BatchTaskDependencies(
        task_ids=list(ids) or None, task_id_ranges=[m.BatchTaskIdRange(start=a, end=b) for a, b in ranges] or None
    )


def add(client: Any, job_id: str, *tasks: m.BatchTaskCreateOptions) -> None:
    result = client.create_task_collection(job_id, m.BatchTaskGroup(task_values=list(tasks)))
    assert all(r.status == "success" for r in result.result_values), [r.error for r in result.result_values]


def done(client: Any, job_id: str, task_id: str, timeout: float = 30) -> Any:
    return wait_for(lambda: completed(client, job_id, task_id), timeout=timeout, what=f"{task_id} to complete")


def test_one_to_one_runs_after_the_parent(client: Any, job: str) -> None:
    add(client, job, task("taskA", "/bin/sleep 1"), task("taskB", depends_on=on("taskA")))
    assert client.get_task(job, "taskB").state == "active"
    a, b = done(client, job, "taskA"), done(client, job, "taskB")
    assert b.execution_info.start_time >= a.execution_info.end_time


def test_one_to_many_and_many_to_many(client: Any, job: str) -> None:
    add(
        client,
        job,
        task("Rain"),
        task("Sun", "/bin/sleep 1"),
        task("Flowers", depends_on=on("Rain", "Sun")),
        task("C", depends_on=on("Rain", "Sun")),
        task("D", depends_on=on("Rain", "Sun")),
    )
    sun = done(client, job, "Sun")
    for child in ("Flowers", "C", "D"):
        assert done(client, job, child).execution_info.start_time >= sun.execution_info.end_time


def test_id_range(client: Any, job: str) -> None:
    add(client, job, task("1"), task("2", "/bin/sleep 1"), task("3"), task("4", depends_on=on(ranges=((1, 3),))))
    two = done(client, job, "2")
    assert done(client, job, "4").execution_info.start_time >= two.execution_info.end_time


def test_parent_added_after_the_child(client: Any, job: str) -> None:
    add(client, job, task("child", depends_on=on("later")))
    assert client.get_task(job, "child").state == "active"
    add(client, job, task("later"))
    assert done(client, job, "child").execution_info.result == "success"


def test_failed_parent_blocks_by_default_and_the_block_is_visible(client: Any, job: str) -> None:
    add(client, job, task("bad", "/bin/bash -c 'exit 1'"), task("after", depends_on=on("bad")))
    done(client, job, "bad")
    blocked = wait_for(
        lambda: (t := client.get_task(job, "after")).get("dependencyStatus") and t, what="the blocked marker"
    )
    assert blocked.state == "active"
    assert blocked["dependencyStatus"] == {"state": "blocked", "blockedBy": ["bad"]}
    # A child added later to the blocked parent is blocked at once.
    add(client, job, task("late", depends_on=on("bad")))
    assert client.get_task(job, "late")["dependencyStatus"]["state"] == "blocked"


def test_seed_dependency_actions(client: Any, job: str) -> None:
    conditions = m.ExitConditions(
        pre_processing_error=m.ExitOptions(dependency_action="block"),
        exit_codes=[
            m.ExitCodeMapping(code=10, exit_options=m.ExitOptions(dependency_action="block")),
            m.ExitCodeMapping(code=20, exit_options=m.ExitOptions(dependency_action="block")),
        ],
        default=m.ExitOptions(dependency_action="satisfy"),
    )
    add(
        client,
        job,
        task("A5", "/bin/bash -c 'exit 5'", exit_conditions=conditions),
        task("B5", depends_on=on("A5")),
        task("A10", "/bin/bash -c 'exit 10'", exit_conditions=conditions),
        task("B10", depends_on=on("A10")),
    )
    assert done(client, job, "B5").execution_info.result == "success"  # exit 5 falls to the default: satisfy
    done(client, job, "A10")
    wait_for(lambda: client.get_task(job, "B10").get("dependencyStatus"), what="B10 blocked")
    assert client.get_task(job, "B10").state == "active"


def test_pre_processing_error_can_satisfy(client: Any, job: str) -> None:
    conditions = m.ExitConditions(pre_processing_error=m.ExitOptions(dependency_action="satisfy"))
    missing = [m.ResourceFile(http_url="http://127.0.0.1:9/missing.txt", file_path="missing.txt")]
    add(
        client,
        job,
        task("fetch", resource_files=missing, exit_conditions=conditions),
        task("anyway", depends_on=on("fetch")),
    )
    assert done(client, job, "fetch").execution_info.failure_info is not None
    assert done(client, job, "anyway").execution_info.result == "success"


def test_dependencies_need_the_job_flag_and_no_cycles(client: Any, pool: str, job: str, unique: Unique) -> None:
    plain = unique("plain")
    create_job(client, plain, pool)
    with pytest.raises(HttpResponseError) as info:
        client.create_task(plain, task("x", depends_on=on("y")))
    assert error_code(info.value) == "TaskDependenciesNotSpecifiedOnJob"
    add(client, job, task("p", depends_on=on("q")))
    with pytest.raises(HttpResponseError) as info:
        client.create_task(job, task("q", depends_on=on("p")))
    assert error_code(info.value) == "InvalidPropertyValue"
    with pytest.raises(HttpResponseError):
        client.create_task(job, task("self", depends_on=on("self")))


def test_job_actions_on_task_failure(client: Any, pool: str, unique: Unique) -> None:
    terminating, disabling, ignoring = unique("jt"), unique("jd"), unique("jn")
    for job_id in (terminating, disabling, ignoring):
        create_job(client, job_id, pool, task_failure_mode="performexitoptionsjobaction")
    client.create_task(terminating, task("fails", "/bin/bash -c 'exit 1'"))  # default jobAction: terminate
    job = wait_for(lambda: (j := client.get_job(terminating)).state == "completed" and j, what="job terminated")
    assert job.execution_info.termination_reason == "TaskFailed"

    disable = m.ExitOptions(job_action="disable")
    to_disable = m.ExitConditions(exit_codes=[m.ExitCodeMapping(code=2, exit_options=disable)])
    client.create_task(disabling, task("two", "/bin/bash -c 'exit 2'", exit_conditions=to_disable))
    wait_for(lambda: client.get_job(disabling).state == "disabled", what="job disabled")

    keep = m.ExitConditions(default=m.ExitOptions(job_action="none"))
    client.create_task(ignoring, task("three", "/bin/bash -c 'exit 3'", exit_conditions=keep))
    done(client, ignoring, "three")
    assert client.get_job(ignoring).state == "active"
