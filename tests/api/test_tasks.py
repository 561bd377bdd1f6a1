"""Tasks through the SDK over HTTP: adding (one, collections, the SDK's bulk helper), listing, lifecycle,
constraints, retries, counts, the task environment, command lines and resource files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, DEV_ACCOUNT_SECONDARY_KEY
from tests.api.helpers import (
    completed,
    create_job,
    error_code,
    idle_nodes,
    processes_with,
    read_task_file,
    run_task,
    serve_directory,
    signed_request,
    temp_pool,
    unique_sleep,
)
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]
SLOTS = 4


@pytest.fixture(scope="module")
def pool(client: Any) -> Iterator[str]:
    """One node with four slots, shared by this module's tests (each uses its own job)."""
    pool_id = f"tasks-pool-{os.getpid()}"
    with temp_pool(client, pool_id, nodes=1, slots=SLOTS):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the task pool's node")
        yield pool_id


@pytest.fixture
def job(client: Any, pool: str, unique: Unique) -> Iterator[str]:
    job_id = unique("job")
    create_job(client, job_id, pool)
    yield job_id
    try:
        client.begin_delete_job(job_id, polling_interval=0.2)
    except ResourceNotFoundError:
        pass


@pytest.fixture
def idle_job(client: Any, unique: Unique) -> Iterator[str]:
    """A job on a pool without nodes: its tasks stay active."""
    job_id = unique("idlejob")
    create_job(client, job_id, unique("nopool"))
    yield job_id
    client.begin_delete_job(job_id, polling_interval=0.2)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for resource files: (base URL, directory it serves)."""
    root = tmp_path_factory.mktemp("web")
    with serve_directory(root) as base:
        yield base, root


def _task(task_id: str, command_line: str = "/bin/true", **kwargs: Any) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=command_line, **kwargs)


def _running(client: Any, job_id: str, task_id: str) -> Any:
    task = client.get_task(job_id, task_id)
    return task if task.state == "running" else None


# --- adding -----------------------------------------------------------------------------------------


def test_create_and_get_task(client: Any, idle_job: str, service: Service) -> None:
    status, headers = client.create_task(
        idle_job,
        _task(
            "t1", "/bin/echo hi", display_name="first", environment_settings=[m.EnvironmentSetting(name="A", value="1")]
        ),
        cls=lambda resp, body, headers: (resp.http_response.status_code, resp.http_response.headers),
    )
    assert status == 201
    assert headers["DataServiceId"] == f"{service.url}/jobs/{idle_job}/tasks/t1"
    task = client.get_task(idle_job, "t1")
    assert task.id == "t1"
    assert task.etag == headers["ETag"]
    assert task.state == "active"
    assert task.command_line == "/bin/echo hi"
    assert task.display_name == "first"
    assert task.required_slots == 1
    assert task.constraints.max_task_retry_count == 0  # the job's default
    assert task.constraints.retention_time == timedelta(days=7)
    assert task.execution_info.retry_count == 0
    assert task.environment_settings[0].value == "1"
    assert task.url == f"{service.url}/jobs/{idle_job}/tasks/t1"
    with pytest.raises(ResourceExistsError) as info:
        client.create_task(idle_job, _task("T1"))
    assert error_code(info.value) == "TaskExists"
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_task(idle_job, "nope")
    assert error_code(info.value) == "TaskNotFound"


def test_task_inherits_the_jobs_retry_count(client: Any, unique: Unique) -> None:
    job_id = unique("retryjob")
    create_job(client, job_id, unique("nopool"), constraints=m.BatchJobConstraints(max_task_retry_count=3))
    client.create_task(job_id, _task("inherits"))
    client.create_task(job_id, _task("own", constraints=m.BatchTaskConstraints(max_task_retry_count=1)))
    assert client.get_task(job_id, "inherits").constraints.max_task_retry_count == 3
    assert client.get_task(job_id, "own").constraints.max_task_retry_count == 1


def test_add_collection_of_100_with_duplicates(client: Any, idle_job: str) -> None:
    result = client.create_task_collection(
        idle_job, m.BatchTaskGroup(task_values=[_task(f"c{i:03}") for i in range(100)])
    )
    assert len(result.result_values) == 100
    assert all(r.status == "success" and r.etag and r.location for r in result.result_values)
    assert {r.task_id for r in result.result_values} == {f"c{i:03}" for i in range(100)}

    # Two already exist, one is repeated within the request.
    mixed = [_task("c000"), _task("C001"), _task("new1"), _task("new2"), _task("new1")]
    result = client.create_task_collection(idle_job, m.BatchTaskGroup(task_values=mixed))
    outcome = [(r.task_id, r.status, r.error.code if r.error else None) for r in result.result_values]
    assert sorted(outcome) == sorted(
        [
            ("c000", "clienterror", "TaskExists"),
            ("C001", "clienterror", "TaskExists"),
            ("new1", "success", None),
            ("new2", "success", None),
            ("new1", "clienterror", "TaskExists"),
        ]
    )
    assert client.get_job_task_counts(idle_job).task_counts.active == 102


def test_add_collection_over_100_tasks_is_rejected(client: Any, idle_job: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        client.create_task_collection(idle_job, m.BatchTaskGroup(task_values=[_task(f"x{i}") for i in range(101)]))
    assert info.value.status_code in (400, 413)
    assert error_code(info.value) in ("InvalidPropertyValue", "RequestBodyTooLarge")
    assert client.get_job_task_counts(idle_job).task_counts.active == 0


def test_add_collection_over_1mb_is_request_body_too_large(client: Any, idle_job: str) -> None:
    big = "x" * 20_000
    tasks = [_task(f"big{i}", environment_settings=[m.EnvironmentSetting(name="BIG", value=big)]) for i in range(60)]
    with pytest.raises(HttpResponseError) as info:
        client.create_task_collection(idle_job, m.BatchTaskGroup(task_values=tasks))
    assert info.value.status_code == 413
    assert error_code(info.value) == "RequestBodyTooLarge"
    assert client.get_job_task_counts(idle_job).task_counts.active == 0
    # The SDK's bulk helper splits what is too large and gets everything in.
    result = client.create_tasks(idle_job, tasks)
    assert len(result.result_values) == 60
    assert client.get_job_task_counts(idle_job).task_counts.active == 60


def test_sdk_create_tasks_adds_250(client: Any, idle_job: str) -> None:
    tasks = [_task(f"bulk{i:03}", f"/bin/echo {i}") for i in range(250)]
    result = client.create_tasks(idle_job, tasks, max_concurrency=3)
    assert len(result.result_values) == 250
    assert all(r.status == "success" for r in result.result_values)
    listed = [task.id for task in client.list_tasks(idle_job, max_results=40)]
    assert sorted(listed) == sorted(f"bulk{i:03}" for i in range(250))
    assert len(listed) == 250
    assert client.get_task(idle_job, "bulk123").command_line == "/bin/echo 123"


def test_list_tasks_pages_in_order(client: Any, idle_job: str, service: Service) -> None:
    ids = [f"p{i:02}" for i in range(20)]
    for task_id in ids:
        client.create_task(idle_job, _task(task_id))
    assert [t.id for t in client.list_tasks(idle_job, max_results=7)] == ids
    raw = signed_request(service.url, "GET", f"/jobs/{idle_job}/tasks", params={"maxresults": "7"}).json()
    assert [t["id"] for t in raw["value"]] == ids[:7]
    assert "odata.nextLink" in raw
    selected = list(client.list_tasks(idle_job, select=["id", "state"]))
    assert all(t.command_line is None and t.state == "active" for t in selected)


def test_delete_task(client: Any, job: str) -> None:
    command = unique_sleep(30)
    client.create_task(job, _task("doomed", command))
    wait_for(lambda: _running(client, job, "doomed"), what="the task to run")
    client.delete_task(job, "doomed")
    with pytest.raises(ResourceNotFoundError):
        client.get_task(job, "doomed")
    wait_for(lambda: not processes_with(command), what="the deleted task's process to end")
    counts = client.get_job_task_counts(job).task_counts
    assert (counts.active, counts.running, counts.completed) == (0, 0, 0)
    with pytest.raises(ResourceNotFoundError):
        client.delete_task(job, "doomed")


# --- lifecycle ----------------------------------------------------------------------------------------


def test_terminate_running_task(client: Any, job: str) -> None:
    command = unique_sleep(30)
    client.create_task(job, _task("t", command))
    wait_for(lambda: _running(client, job, "t"), what="the task to run")
    wait_for(lambda: processes_with(command), what="the process")
    client.terminate_task(job, "t")
    task = wait_for(lambda: completed(client, job, "t"), what="the task to complete")
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.failure_info.category == "usererror"
    assert task.execution_info.retry_count == 0
    assert task.previous_state == "running"
    assert not processes_with(command)


def test_terminate_active_task(client: Any, idle_job: str) -> None:
    """An active task completes at once, without running."""
    client.create_task(idle_job, _task("never", "/bin/true"))
    client.terminate_task(idle_job, "never")
    task = client.get_task(idle_job, "never")
    assert task.state == "completed"
    assert task.previous_state == "active"
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.result == "failure"
    assert task.node_info is None
    counts = client.get_job_task_counts(idle_job).task_counts
    assert (counts.active, counts.completed, counts.failed) == (0, 1, 1)


def test_replace_task_updates_constraints(client: Any, idle_job: str) -> None:
    client.create_task(idle_job, _task("t", constraints=m.BatchTaskConstraints(max_task_retry_count=1)))
    client.replace_task(
        idle_job,
        "t",
        m.BatchTask(
            constraints=m.BatchTaskConstraints(
                max_task_retry_count=5, max_wall_clock_time=timedelta(minutes=10), retention_time=timedelta(days=1)
            )
        ),
    )
    task = client.get_task(idle_job, "t")
    assert task.constraints.max_task_retry_count == 5
    assert task.constraints.max_wall_clock_time == timedelta(minutes=10)
    assert task.constraints.retention_time == timedelta(days=1)


def test_reactivate_failed_task(client: Any, job: str, unique: Unique) -> None:
    counter = f"$AZ_BATCH_NODE_SHARED_DIR/{unique('runs')}"
    # Fails on its first two runs (the first try and its one retry), succeeds from the third on.
    script = f'echo run >> "{counter}"; test $(wc -l < "{counter}") -gt 2 || exit 2'
    task = run_task(
        client, job, "flaky", f"/bin/bash -c '{script}'", constraints=m.BatchTaskConstraints(max_task_retry_count=1)
    )
    assert task.execution_info.result == "failure"
    assert task.execution_info.exit_code == 2
    assert task.execution_info.retry_count == 1
    assert task.execution_info.failure_info.code == "FailureExitCode"
    assert client.get_job_task_counts(job).task_counts.failed == 1

    client.reactivate_task(job, "flaky")
    task = client.get_task(job, "flaky")
    assert task.state in ("active", "running")
    assert task.execution_info.retry_count == 0  # reset by reactivation
    assert task.execution_info.failure_info is None and task.execution_info.exit_code is None
    task = wait_for(lambda: completed(client, job, "flaky"), what="the reactivated task")
    assert task.execution_info.result == "success"
    assert task.execution_info.exit_code == 0
    assert task.execution_info.failure_info is None
    assert task.execution_info.retry_count == 0
    counts = client.get_job_task_counts(job).task_counts
    assert (counts.succeeded, counts.failed) == (1, 0)
    with pytest.raises(HttpResponseError) as info:
        client.reactivate_task(job, "flaky")  # succeeded: nothing to reactivate
    assert info.value.status_code == 409


def test_task_counts_with_slot_counts(client: Any, job: str) -> None:
    command = unique_sleep(30)
    client.create_task(job, _task("ok", "/bin/true", required_slots=2))
    client.create_task(job, _task("bad", "/bin/false", required_slots=1))
    wait_for(lambda: completed(client, job, "ok") and completed(client, job, "bad"), what="two tasks to complete")
    client.create_task(job, _task("busy", command, required_slots=3))
    wait_for(lambda: _running(client, job, "busy"), what="the 3-slot task to run")
    result = client.get_job_task_counts(job)
    counts, slots = result.task_counts, result.task_slot_counts
    assert (counts.active, counts.running, counts.completed, counts.succeeded, counts.failed) == (0, 1, 2, 1, 1)
    assert (slots.active, slots.running, slots.completed, slots.succeeded, slots.failed) == (0, 3, 3, 2, 1)
    # A 2-slot task does not fit beside the 3-slot one on a 4-slot node: it waits.
    client.create_task(job, _task("waits", "/bin/true", required_slots=2))
    result = client.get_job_task_counts(job)
    assert result.task_counts.active == 1 and result.task_slot_counts.active == 2
    node = client.get_node(
        client.get_task(job, "busy").node_info.pool_id, client.get_task(job, "busy").node_info.node_id
    )
    assert node.running_task_slots_count == 3
    assert node.running_tasks_count == 1
    assert client.get_task(job, "waits").state == "active"
    client.terminate_task(job, "busy")
    wait_for(lambda: completed(client, job, "waits"), what="the waiting task once slots free up")


def test_max_wall_clock_time_kills_the_task(client: Any, job: str) -> None:
    command = unique_sleep(60)
    task = run_task(
        client,
        job,
        "slow",
        command,
        timeout=20,
        constraints=m.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=1), max_task_retry_count=0),
    )
    info = task.execution_info
    assert info.result == "failure"
    assert info.failure_info is not None
    assert info.exit_code != 0
    assert info.end_time - info.start_time < timedelta(seconds=15)
    assert not processes_with(command)


def test_unlimited_retries(client: Any, job: str) -> None:
    client.create_task(job, _task("forever", "/bin/false", constraints=m.BatchTaskConstraints(max_task_retry_count=-1)))
    task = wait_for(
        lambda: (t := client.get_task(job, "forever")).execution_info.retry_count >= 3 and t,
        what="three retries",
    )
    assert task.state != "completed"
    assert task.constraints.max_task_retry_count == -1
    assert task.execution_info.last_retry_time is not None
    client.terminate_task(job, "forever")
    task = wait_for(lambda: completed(client, job, "forever"), what="the task to end")
    assert task.execution_info.result == "failure"


def test_retries_stop_at_the_limit(client: Any, job: str) -> None:
    task = run_task(
        client,
        job,
        "twice",
        "/bin/bash -c 'echo run $AZ_BATCH_TASK_RETRY_COUNT; exit 7'",
        constraints=m.BatchTaskConstraints(max_task_retry_count=2),
    )
    assert task.execution_info.retry_count == 2
    assert task.execution_info.exit_code == 7
    assert read_task_file(client, job, "twice", "stdout.txt") == "run 2\n"


# --- what a task sees -------------------------------------------------------------------------------------


def _env_of(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_task_environment(client: Any, job: str, pool: str, service: Service) -> None:
    task = run_task(
        client,
        job,
        "env",
        "/bin/bash -c '/usr/bin/env; exit $((1 - AZ_BATCH_TASK_RETRY_COUNT))'",
        environment_settings=[m.EnvironmentSetting(name="MINE", value="value with spaces")],
        constraints=m.BatchTaskConstraints(max_task_retry_count=1),
    )
    assert task.execution_info.result == "success"
    assert task.execution_info.retry_count == 1
    env = _env_of(read_task_file(client, job, "env", "stdout.txt"))
    node_id = task.node_info.node_id
    root = str((service.data_dir / "nodes" / node_id).resolve())
    task_dir = f"{root}/workitems/{job}/job-1/env"
    assert env["AZ_BATCH_NODE_ROOT_DIR"] == root
    assert env["AZ_BATCH_NODE_SHARED_DIR"] == f"{root}/shared"
    assert env["AZ_BATCH_NODE_STARTUP_DIR"] == f"{root}/startup"
    assert env["AZ_BATCH_TASK_DIR"] == task_dir
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == f"{task_dir}/wd"
    assert env["AZ_BATCH_JOB_ID"] == job
    assert env["AZ_BATCH_TASK_ID"] == "env"
    assert env["AZ_BATCH_NODE_ID"] == node_id
    assert env["AZ_BATCH_POOL_ID"] == pool
    assert env["AZ_BATCH_ACCOUNT_NAME"] == DEV_ACCOUNT_NAME
    assert env["AZ_BATCH_ACCOUNT_URL"] == service.url
    assert env["AZ_BATCH_TASK_RETRY_COUNT"] == "1"
    assert env["MINE"] == "value with spaces"
    assert task.node_info.task_root_directory == f"workitems/{job}/job-1/env"
    for directory in (env["AZ_BATCH_NODE_SHARED_DIR"], env["AZ_BATCH_TASK_WORKING_DIR"]):
        assert Path(directory).is_dir()


def test_task_environment_holds_no_secrets(client: Any, job: str, service: Service) -> None:
    task = run_task(client, job, "secrets", "/usr/bin/env")
    assert task.execution_info.result == "success"
    env = _env_of(read_task_file(client, job, "secrets", "stdout.txt"))
    assert env, "the task printed no environment"
    for name, value in env.items():
        assert not name.startswith("BATCHYARD_"), name
        assert "TOKEN" not in name.upper(), name
        assert DEV_ACCOUNT_KEY not in value and DEV_ACCOUNT_SECONDARY_KEY not in value, name
    # Nor is the service's own environment leaked to the task. (As root, a task user has no passwd
    # entry: nss_wrapper's variables let `whoami` find it, see agent/task_users.py.)
    lookup = {"LD_PRELOAD", "NSS_WRAPPER_PASSWD", "NSS_WRAPPER_GROUP"}
    assert set(env) - {"PATH", "LANG", "HOME", "PWD", "SHLVL", "_"} - lookup <= {
        name for name in env if name.startswith("AZ_BATCH_")
    }
    # The node token is in neither the task's environment nor its agent's (readable in /proc).
    node_root = Path(env["AZ_BATCH_NODE_ROOT_DIR"])
    agents = processes_with(f"--root {node_root}") or processes_with(str(node_root))
    assert agents, "the node's agent process was not found"
    for pid in agents:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert "BATCHYARD_NODE_TOKEN" not in environ
        assert DEV_ACCOUNT_KEY not in environ


def test_command_line_runs_without_a_shell(client: Any, job: str) -> None:
    task = run_task(client, job, "noshell", "/bin/echo $HOME 'two words' a|b > out.txt")
    assert task.execution_info.result == "success"
    assert read_task_file(client, job, "noshell", "stdout.txt") == "$HOME two words a|b > out.txt\n"


def test_missing_executable_fails_with_failure_info(client: Any, job: str) -> None:
    task = run_task(
        client, job, "missing", "/no/such/program --flag", constraints=m.BatchTaskConstraints(max_task_retry_count=1)
    )
    info = task.execution_info
    assert info.result == "failure"
    assert info.failure_info is not None
    assert info.failure_info.category == "usererror"
    assert info.failure_info.code
    assert info.exit_code is None
    assert info.retry_count == 1
    assert client.get_job_task_counts(job).task_counts.failed == 1


# --- resource files ---------------------------------------------------------------------------------


def test_http_resource_files_are_downloaded_before_the_command(
    client: Any, job: str, web: tuple[str, Path], unique: Unique
) -> None:
    base, root = web
    name = unique("data")
    (root / f"{name}.txt").write_text("payload\n")
    (root / f"{name}.sh").write_text("#!/bin/sh\necho script ran; cat input/data.txt\n")
    task = run_task(
        client,
        job,
        "files",
        "./run.sh",
        resource_files=[
            m.ResourceFile(http_url=f"{base}/{name}.txt", file_path="input/data.txt"),
            m.ResourceFile(http_url=f"{base}/{name}.sh", file_path="run.sh", file_mode="0755"),
        ],
    )
    assert task.execution_info.result == "success", task.execution_info
    assert read_task_file(client, job, "files", "stdout.txt") == "script ran\npayload\n"
    assert read_task_file(client, job, "files", "wd/input/data.txt") == "payload\n"


def test_missing_resource_file_fails_the_task(client: Any, job: str, web: tuple[str, Path], unique: Unique) -> None:
    base, _ = web
    marker = unique("neverran")
    task = run_task(
        client,
        job,
        "nofile",
        f"/bin/touch $AZ_BATCH_NODE_SHARED_DIR/{marker}",
        resource_files=[m.ResourceFile(http_url=f"{base}/does-not-exist-{marker}.txt", file_path="x.txt")],
        constraints=m.BatchTaskConstraints(max_task_retry_count=1),
    )
    info = task.execution_info
    assert info.result == "failure"
    assert info.failure_info.category == "usererror"
    assert info.failure_info.code
    assert info.exit_code is None
    assert info.retry_count == 1  # retried up to its limit, not beyond
    assert client.get_job_task_counts(job).task_counts.failed == 1
