"""`$expand=stats` on jobs, job schedules and pools, and /poolusagemetrics, against what really ran.

Job and schedule statistics must equal the sums of their tasks' own measured statistics (every run,
retries included); pool statistics and usage metrics come from node core time on an adjustable clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m

from tests.api.helpers import create_job, create_pool, idle_nodes, signed_request
from tests.conftest import Service, advance_clock, make_client, start_service, wait_for

# Burns measurable user CPU and writes 1 MiB (fsync'd), then exits with the code given.
WORK = "python3 -c \"import os,sys\nx=0\nfor i in range(3000000): x+=i\nf=open('out.bin','wb'); f.write(b'x'*1048576); f.flush(); os.fsync(f.fileno()); sys.exit(int(sys.argv[1]))\" {code}"  # noqa: E501


def _seconds(value: timedelta | None) -> float:
    assert value is not None
    return value.total_seconds()


def test_job_statistics_are_the_sum_of_what_its_tasks_did(client: Any, unique: Any) -> None:
    pool_id, job_id = unique("st-pool"), unique("st-job")
    create_pool(client, pool_id, nodes=1, slots=2)
    create_job(client, job_id, pool_id)
    tasks = [m.BatchTaskCreateOptions(id=f"ok{i}", command_line=WORK.format(code=0)) for i in range(3)]
    tasks.append(
        m.BatchTaskCreateOptions(
            id="bad", command_line=WORK.format(code=3), constraints=m.BatchTaskConstraints(max_task_retry_count=1)
        )
    )
    client.create_task_collection(job_id, m.BatchTaskGroup(task_values=tasks))
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed == 4, timeout=60, what="the tasks")
    job = client.get_job(job_id, expand=["stats"])
    stats = job.job_statistics
    assert stats is not None
    assert (stats.succeeded_tasks_count, stats.failed_tasks_count, stats.task_retries_count) == (3, 1, 1)
    per_task = {t.id: t.task_statistics for t in client.list_tasks(job_id, expand=["stats"])}
    ok = [per_task[f"ok{i}"] for i in range(3)]
    # The retried task ran twice; its own statistics are those of its last run, the job's count both runs.
    bad = per_task["bad"]
    user = sum(_seconds(s.user_cpu_time) for s in ok)
    assert _seconds(stats.user_cpu_time) >= user + _seconds(bad.user_cpu_time) - 0.001
    assert _seconds(stats.user_cpu_time) > 4 * 0.05  # each run burns well over 50 ms of user CPU
    assert stats.write_iops >= 4 and stats.write_io_gib >= 5 * 2**20 / 2**30 * 0.99
    assert stats.write_io_gib == pytest.approx(sum(s.write_io_gib for s in ok) + 2 * bad.write_io_gib, rel=0.05)
    assert _seconds(stats.wall_clock_time) >= sum(_seconds(s.wall_clock_time) for s in ok) - 0.01
    assert stats.start_time == job.creation_time and stats.last_update_time >= stats.start_time
    # Without $expand there are no statistics; $select without stats drops them.
    assert client.get_job(job_id).job_statistics is None
    assert client.get_job(job_id, expand=["stats"], select=["id"]).job_statistics is None
    listed = [j for j in client.list_jobs(expand=["stats"], filter=f"id eq '{job_id}'")]
    assert listed[0].job_statistics.user_cpu_time == stats.user_cpu_time
    answer = signed_request(client._config.endpoint, "GET", f"/jobs/{job_id}", params={"$expand": "tasks"})
    assert (answer.status_code, answer.json()["code"]) == (400, "InvalidQueryParameterValue")
    client.begin_delete_pool(pool_id)


def test_schedule_statistics_follow_its_jobs(client: Any, unique: Any) -> None:
    pool_id, schedule_id = unique("ss-pool"), unique("ss")
    create_pool(client, pool_id, nodes=1)
    client.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id=schedule_id,
            schedule=m.BatchJobScheduleConfiguration(),
            job_specification=m.BatchJobSpecification(pool_info=m.BatchPoolInfo(pool_id=pool_id)),
        )
    )
    job_id = wait_for(lambda: [j.id for j in client.list_jobs_from_schedule(schedule_id)], what="its job")[0]
    client.create_task(job_id, m.BatchTaskCreateOptions(id="w", command_line=WORK.format(code=0)))
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed == 1, timeout=60, what="the task")
    job_stats = client.get_job(job_id, expand=["stats"]).job_statistics
    schedule = client.get_job_schedule(schedule_id, expand=["stats"])
    stats = schedule.job_schedule_statistics
    assert stats.user_cpu_time == job_stats.user_cpu_time and _seconds(stats.user_cpu_time) > 0.05
    assert (stats.succeeded_tasks_count, stats.failed_tasks_count) == (1, 0)
    listed = [j for j in client.list_jobs_from_schedule(schedule_id, expand=["stats"])]
    assert listed[0].job_statistics.user_cpu_time == job_stats.user_cpu_time
    found = [s for s in client.list_job_schedules(expand=["stats"], filter=f"id eq '{schedule_id}'")]
    assert found[0].job_schedule_statistics.write_iops == stats.write_iops
    client.begin_delete_job_schedule(schedule_id)
    client.begin_delete_pool(pool_id)


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(Path(tmp_path_factory.mktemp("clocked")), "--adjustable-clock")
    yield svc
    svc.stop()


def test_pool_statistics_and_usage_metrics(clocked: Service) -> None:
    client = make_client(clocked.url)
    create_pool(client, "metered", nodes=1)  # standard_d2s_v3 in the helpers: 2 cores
    create_pool(client, "empty", nodes=0)
    wait_for(lambda: idle_nodes(client, "metered", 1), what="the node")
    # Housekeeping accounts time as the clock moves: an hour of one 2-core node is 2 core hours.
    for _ in range(4):
        advance_clock(clocked, 900)
    stats = client.get_pool("metered", expand=["stats"]).pool_statistics
    core_hours = _seconds(stats.usage_statistics.dedicated_core_time) / 3600
    assert 2.0 <= core_hours < 2.1
    assert client.get_pool("empty", expand=["stats"]).pool_statistics.usage_statistics.dedicated_core_time == (
        timedelta(0)
    )
    assert client.get_pool("metered").pool_statistics is None
    listed = {p.id: p.pool_statistics for p in client.list_pools(expand=["stats"])}
    assert listed["metered"].resource_statistics is not None
    # The last finished 30-minute interval by default; a range with startTime/endtime; $filter on poolId.
    last = {u.pool_id: u for u in client.list_pool_usage_metrics()}
    assert set(last) == {"metered", "empty"}
    assert last["metered"].total_core_hours == pytest.approx(1.0, abs=0.05)  # 2 cores x 30 minutes
    assert last["metered"].vm_size == "standard_d2s_v3" and last["empty"].total_core_hours == 0
    assert last["metered"].end_time - last["metered"].start_time == timedelta(minutes=30)
    start = last["metered"].start_time - timedelta(hours=1)
    ranged = list(
        client.list_pool_usage_metrics(
            start_time=start, end_time=last["metered"].end_time, filter="poolId eq 'metered'"
        )
    )
    assert [u.pool_id for u in ranged] == ["metered"] * len(ranged) and len(ranged) >= 2
    # Finished intervals only: the one in progress (after the last) is not reported yet.
    assert 1.0 - 0.05 <= sum(u.total_core_hours for u in ranged) <= core_hours + 0.01
    answer = signed_request(clocked.url, "GET", "/poolusagemetrics", params={"$filter": "poolId ne 'x'"})
    assert (answer.status_code, answer.json()["code"]) == (400, "InvalidQueryParameterValue")
    answer = signed_request(clocked.url, "GET", "/poolusagemetrics", params={"startTime": "yesterday"})
    assert (answer.status_code, answer.json()["code"]) == (400, "InvalidQueryParameterValue")
