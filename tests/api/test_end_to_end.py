"""The core loop through the official SDK: pool → nodes → job → task → process → result → files."""

from __future__ import annotations

from typing import Any

from azure.batch import models as m

from tests.api.helpers import completed, create_job, create_pool, idle_nodes
from tests.conftest import wait_for


def test_task_runs_on_a_node_and_reports_output(client: Any, unique: Any) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    create_pool(client, pool_id, nodes=1)
    wait_for(lambda: idle_nodes(client, pool_id, 1), what="an idle node")
    create_job(client, job_id, pool_id)
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="hello",
            command_line="/bin/bash -c 'echo hello $AZ_BATCH_TASK_ID from $AZ_BATCH_JOB_ID; echo oops >&2'",
            environment_settings=[m.EnvironmentSetting(name="GREETING", value="hi")],
        ),
    )
    task = wait_for(lambda: completed(client, job_id, "hello"), what="task completion")
    assert task.execution_info.exit_code == 0
    assert task.execution_info.result == "success"
    assert task.previous_state == "running"
    assert task.node_info.pool_id == pool_id
    stdout = b"".join(client.download_task_file(job_id, "hello", "stdout.txt")).decode()
    assert stdout == f"hello hello from {job_id}\n"
    stderr = b"".join(client.download_task_file(job_id, "hello", "stderr.txt")).decode()
    assert stderr == "oops\n"
    names = {f.name for f in client.list_task_files(job_id, "hello")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= names


def test_failed_task_is_retried_up_to_its_limit(client: Any, unique: Any) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    create_pool(client, pool_id, nodes=1)
    create_job(client, job_id, pool_id)
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="flaky",
            command_line="/bin/bash -c 'exit 3'",
            constraints=m.BatchTaskConstraints(max_task_retry_count=2),
        ),
    )
    task = wait_for(lambda: completed(client, job_id, "flaky"), what="task completion")
    assert task.execution_info.exit_code == 3
    assert task.execution_info.retry_count == 2
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.category == "usererror"
    counts = client.get_job_task_counts(job_id)
    assert counts.task_counts.failed == 1
    assert counts.task_counts.completed == 1


def test_task_statistics_come_from_the_process(client: Any, unique: Any) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    create_pool(client, pool_id, nodes=1)
    create_job(client, job_id, pool_id)
    busy = "python3 -c 'import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass'"
    client.create_task(job_id, m.BatchTaskCreateOptions(id="busy", command_line=busy))
    wait_for(lambda: completed(client, job_id, "busy"), what="task completion")
    task = client.get_task(job_id, "busy", expand=["stats"])
    assert task.execution_info.exit_code == 0
    stats = task.task_statistics
    assert stats.user_cpu_time.total_seconds() + stats.kernel_cpu_time.total_seconds() >= 0.25
    assert task.task_statistics.wall_clock_time.total_seconds() >= 0.25
    plain = client.get_task(job_id, "busy")
    assert plain.task_statistics is None
    listed = next(iter(client.list_tasks(job_id, expand=["stats"])))
    assert listed.task_statistics.user_cpu_time == stats.user_cpu_time
    client.begin_delete_pool(pool_id)


def test_task_directory_is_removed_after_its_retention_time(client: Any, service: Any, unique: Any) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    create_pool(client, pool_id, nodes=1)
    create_job(client, job_id, pool_id)
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="short", command_line="/bin/echo hi", constraints=m.BatchTaskConstraints(retention_time="PT1S")
        ),
    )
    client.create_task(job_id, m.BatchTaskCreateOptions(id="kept", command_line="/bin/echo hi"))
    task = wait_for(lambda: completed(client, job_id, "short"), what="task completion")
    wait_for(lambda: completed(client, job_id, "kept"), what="task completion")
    root = service.data_dir / "nodes" / task.node_info.node_id
    short_dir = root / task.node_info.task_root_directory
    wait_for(lambda: not short_dir.exists(), timeout=10, what="the retained directory to go")
    assert (root / f"workitems/{job_id}/job-1/kept/stdout.txt").exists()
    client.begin_delete_pool(pool_id)
