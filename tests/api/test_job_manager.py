"""Job manager tasks: a splitter adds the job's tasks with a job-scoped token, retries safely, ends the job."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from batchyard.service.auth import format_ocp_date
from tests.api.helpers import completed, create_job, idle_nodes, own_python_identity, temp_pool
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def pool(client: Any) -> Iterator[str]:
    pool_id = f"jm-pool-{os.getpid()}"
    with temp_pool(client, pool_id, nodes=2, slots=4):
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        yield pool_id


def manager(command: str, **kwargs: Any) -> m.BatchJobManagerTask:
    task = m.BatchJobManagerTask(id="manager", command_line=command, user_identity=own_python_identity(), **kwargs)
    # azure-batch 15.1 has no model for it, but the contract does: set the wire property directly.
    task["authenticationTokenSettings"] = {"access": ["job"]}
    return task


def splitter(frames: int, fail_after: int | None = None) -> tuple[str, list[m.EnvironmentSetting]]:
    env = [
        m.EnvironmentSetting(name="START_FRAME", value="1"),
        m.EnvironmentSetting(name="END_FRAME", value=str(frames)),
        m.EnvironmentSetting(name="PYTHONPATH", value=os.pathsep.join(sys.path)),
    ]
    if fail_after is not None:
        env.append(m.EnvironmentSetting(name="FAIL_FIRST_ATTEMPT_AFTER", value=str(fail_after)))
    return f"{sys.executable} {EXAMPLES / 'job_manager_split.py'}", env


def test_job_manager_splits_a_job_into_100_tasks(client: Any, pool: str, unique: Unique) -> None:
    job_id = unique("jm")
    command, env = splitter(100)
    create_job(
        client,
        job_id,
        pool,
        all_tasks_complete_mode="terminatejob",
        job_manager_task=manager(command, environment_settings=env, kill_job_on_completion=False),
    )
    job = wait_for(lambda: (j := client.get_job(job_id)).state == "completed" and j, timeout=90, what="the job")
    assert job.execution_info.termination_reason == "AllTasksComplete"
    counts = client.get_job_task_counts(job_id).task_counts
    assert (counts.succeeded, counts.failed) == (101, 0)  # 100 frames and the manager itself
    out = b"".join(client.download_task_file(job_id, "manager", "stdout.txt")).decode()
    assert "added 100 tasks (0 already existed)" in out


def test_a_retried_job_manager_adds_only_what_is_missing(client: Any, pool: str, unique: Unique) -> None:
    job_id = unique("jmretry")
    command, env = splitter(30, fail_after=12)
    create_job(
        client,
        job_id,
        pool,
        job_manager_task=manager(
            command,
            environment_settings=env,
            kill_job_on_completion=False,
            constraints=m.BatchTaskConstraints(max_task_retry_count=1),
        ),
    )
    task = wait_for(lambda: completed(client, job_id, "manager"), timeout=60, what="the manager")
    assert task.execution_info.retry_count == 1
    assert task.execution_info.exit_code == 0
    out = b"".join(client.download_task_file(job_id, "manager", "stdout.txt")).decode()
    assert "added 18 tasks (12 already existed)" in out
    assert len(list(client.list_tasks(job_id))) == 31


def test_kill_job_on_completion_ends_the_job_when_the_manager_ends(client: Any, pool: str, unique: Unique) -> None:
    job_id = unique("jmkill")
    create_job(client, job_id, pool, job_manager_task=m.BatchJobManagerTask(id="jm", command_line="/bin/true"))
    job = wait_for(lambda: (j := client.get_job(job_id)).state == "completed" and j, what="the job to end")
    assert job.execution_info.termination_reason == "JMComplete"
    assert client.get_task(job_id, "jm").execution_info.exit_code == 0


def test_job_token_only_opens_its_own_job(service: Service, client: Any, pool: str, unique: Unique) -> None:
    job_id, other = unique("jmtoken"), unique("other")
    create_job(client, other, pool)
    # The manager prints its token; the test then uses it the way task code would.
    create_job(
        client,
        job_id,
        pool,
        job_manager_task=manager("/bin/bash -c 'echo $AZ_BATCH_AUTHENTICATION_TOKEN'", kill_job_on_completion=False),
    )
    wait_for(lambda: completed(client, job_id, "manager"), what="the manager")
    token = b"".join(client.download_task_file(job_id, "manager", "stdout.txt")).decode().strip()
    headers = {"Authorization": f"Bearer {token}", "ocp-date": format_ocp_date()}
    own = httpx.get(f"{service.url}/jobs/{job_id}/tasks?api-version=2025-06-01", headers=headers)
    assert own.status_code == 200
    assert [t["id"] for t in own.json()["value"]] == ["manager"]
    for path in (f"/jobs/{other}", "/pools", "/jobs"):
        denied = httpx.get(f"{service.url}{path}?api-version=2025-06-01", headers=headers)
        assert denied.status_code == 403, path
    forged = httpx.get(
        f"{service.url}/jobs/{job_id}?api-version=2025-06-01",
        headers={"Authorization": f"Bearer {token[:-2]}xx", "ocp-date": format_ocp_date()},
    )
    assert forged.status_code == 403


def test_job_token_dies_with_its_job(service: Service, client: Any, pool: str, unique: Unique) -> None:
    job_id = unique("jmgone")
    command = "/bin/bash -c 'echo $AZ_BATCH_AUTHENTICATION_TOKEN'"
    create_job(client, job_id, pool, job_manager_task=manager(command, kill_job_on_completion=False))
    wait_for(lambda: completed(client, job_id, "manager"), what="the manager")
    token = b"".join(client.download_task_file(job_id, "manager", "stdout.txt")).decode().strip()
    headers = {"Authorization": f"Bearer {token}", "ocp-date": format_ocp_date()}
    assert httpx.get(f"{service.url}/jobs/{job_id}?api-version=2025-06-01", headers=headers).status_code == 200
    client.begin_delete_job(job_id, polling_interval=0.2).result()
    create_job(client, job_id, pool)  # a new job with the same id is not the one the token was given for
    for method, path in (("GET", f"/jobs/{job_id}"), ("GET", f"/jobs/{job_id}/tasks"), ("DELETE", f"/jobs/{job_id}")):
        denied = httpx.request(method, f"{service.url}{path}?api-version=2025-06-01", headers=headers)
        assert denied.status_code == 403, (method, path, denied.status_code)
        assert denied.json()["code"] == "AuthenticationFailed"
    assert client.get_job(job_id).state == "active"


def test_tasks_without_token_settings_get_no_token(client: Any, pool: str, unique: Unique) -> None:
    job_id = unique("notoken")
    create_job(client, job_id, pool)
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/usr/bin/env"))
    wait_for(lambda: completed(client, job_id, "t"), what="the task")
    env = b"".join(client.download_task_file(job_id, "t", "stdout.txt")).decode()
    assert "AZ_BATCH_AUTHENTICATION_TOKEN" not in env
    with pytest.raises(HttpResponseError):
        client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))


def test_run_exclusive_manager_has_its_node_to_itself(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("excl"), unique("exclusive")
    with temp_pool(client, pool_id, nodes=1, slots=2):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the node")
        create_job(
            client,
            job_id,
            pool_id,
            job_manager_task=m.BatchJobManagerTask(id="jm", command_line="/bin/sleep 2", kill_job_on_completion=False),
        )
        client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
        jm = wait_for(lambda: completed(client, job_id, "jm"), what="the manager")
        task = wait_for(lambda: completed(client, job_id, "t"), what="the task")
        assert task.execution_info.start_time >= jm.execution_info.end_time


def test_task_processor_example(client: Any, pool: str, unique: Unique) -> None:
    job_id = unique("proc")
    create_job(client, job_id, pool)
    env = [m.EnvironmentSetting(name="PYTHONPATH", value=os.pathsep.join(sys.path))]
    script = EXAMPLES / "task_processor_count.py"
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="count",
            environment_settings=env,
            command_line=f"/bin/bash -c 'echo one two three > words.txt && {sys.executable} {script} words.txt'",
            user_identity=own_python_identity(),
        ),
    )
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="missing",
            environment_settings=env,
            command_line=f"{sys.executable} {script} nothing.txt",
            user_identity=own_python_identity(),
        ),
    )
    assert wait_for(lambda: completed(client, job_id, "count"), what="count").execution_info.exit_code == 0
    assert b"".join(client.download_task_file(job_id, "count", "wd/result.txt")) == b"3\n"
    missing = wait_for(lambda: completed(client, job_id, "missing"), what="missing")
    assert missing.execution_info.exit_code == 1  # the template's code for an expected failure
    assert b"input nothing.txt is missing" in b"".join(client.download_task_file(job_id, "missing", "stderr.txt"))


def test_a_restarted_job_manager_goes_before_higher_priority_work(client: Any, unique: Unique, tmp_path: Path) -> None:
    pool_id, busy, managed = unique("jmprio"), unique("busy"), unique("managed")
    marker = tmp_path / "first-attempt"
    with temp_pool(client, pool_id, nodes=1, slots=1):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the node")
        # First attempt: fails after the busy job's tasks are queued; the retry must still run first.
        command = f"/bin/bash -c 'if [ -e {marker} ]; then exit 0; else touch {marker}; sleep 1; exit 3; fi'"
        create_job(
            client,
            managed,
            pool_id,
            priority=0,
            job_manager_task=m.BatchJobManagerTask(
                id="jm",
                command_line=command,
                kill_job_on_completion=False,
                constraints=m.BatchTaskConstraints(max_task_retry_count=1),
            ),
        )
        wait_for(lambda: client.get_task(managed, "jm").state == "running", what="the manager to start")
        create_job(client, busy, pool_id, priority=1000)
        client.create_task_collection(
            busy,
            m.BatchTaskGroup(
                task_values=[m.BatchTaskCreateOptions(id=f"b{i}", command_line="/bin/sleep 0.2") for i in range(5)]
            ),
        )
        jm = wait_for(lambda: completed(client, managed, "jm"), what="the manager's retry")
        assert jm.execution_info.retry_count == 1
        wait_for(lambda: client.get_job_task_counts(busy).task_counts.completed == 5, what="the busy job")
        first_busy = min(t.execution_info.start_time for t in client.list_tasks(busy))
        assert jm.execution_info.start_time <= first_busy  # the retry started before any higher-priority task
