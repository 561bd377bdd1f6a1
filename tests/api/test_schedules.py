"""Job schedules through the SDK, on a service whose clock the test moves (--adjustable-clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.api.helpers import create_pool, error_code, idle_nodes
from tests.conftest import Service, advance_clock, make_client, start_service, wait_for


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Any]]:
    service = start_service(tmp_path_factory.mktemp("schedules"), "--adjustable-clock", "--job-quota", "20")
    client = make_client(service.url)
    create_pool(client, "p", nodes=1, slots=2)
    wait_for(lambda: idle_nodes(client, "p", 1), what="the node")
    yield service, client
    service.stop()


def spec(manager_command: str = "/bin/true") -> m.BatchJobSpecification:
    return m.BatchJobSpecification(
        pool_info=m.BatchPoolInfo(pool_id="p"),
        job_manager_task=m.BatchJobManagerTask(id="jm", command_line=manager_command),
    )


def jobs_of(client: Any, schedule_id: str) -> list[str]:
    return [job.id for job in client.list_jobs_from_schedule(schedule_id)]


def open_jobs(client: Any, schedule_id: str) -> list[str]:
    return [job.id for job in client.list_jobs_from_schedule(schedule_id) if job.state != "completed"]


def test_schedule_crud_and_errors(clocked: tuple[Service, Any]) -> None:
    _, client = clocked
    far = datetime.now(UTC) + timedelta(days=1)
    options = m.BatchJobScheduleCreateOptions(
        id="crud", schedule=m.BatchJobScheduleConfiguration(do_not_run_until=far), job_specification=spec()
    )
    client.create_job_schedule(options)
    with pytest.raises(ResourceExistsError) as info:
        client.create_job_schedule(options)
    assert error_code(info.value) == "JobScheduleExists"
    schedule = client.get_job_schedule("crud")
    assert schedule.state == "active"
    assert schedule.execution_info.next_run_time == far.replace(microsecond=far.microsecond)
    assert client.job_schedule_exists("crud") is True
    assert "crud" in {s.id for s in client.list_job_schedules()}
    metadata = [m.BatchMetadataItem(name="a", value="b")]
    client.update_job_schedule("crud", m.BatchJobScheduleUpdateOptions(metadata=metadata))
    assert client.get_job_schedule("crud").metadata[0].value == "b"
    client.disable_job_schedule("crud")
    assert client.get_job_schedule("crud").state == "disabled"
    client.enable_job_schedule("crud")
    assert client.get_job_schedule("crud").state == "active"
    assert jobs_of(client, "crud") == []
    client.begin_delete_job_schedule("crud", polling_interval=0.2).result(timeout=30)
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_job_schedule("crud")
    assert error_code(info.value) == "JobScheduleNotFound"


def test_recurring_schedule_runs_one_job_per_interval(clocked: tuple[Service, Any]) -> None:
    service, client = clocked
    client.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id="every-minute",
            schedule=m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(minutes=1)),
            job_specification=spec(),
        )
    )
    wait_for(lambda: jobs_of(client, "every-minute") == ["every-minute:job-1"], what="the first job")
    wait_for(lambda: not open_jobs(client, "every-minute"), what="job 1 to finish")  # its manager ends it
    advance_clock(service, 61)
    wait_for(lambda: len(jobs_of(client, "every-minute")) == 2, what="the second job")
    wait_for(lambda: not open_jobs(client, "every-minute"), what="job 2 to finish")
    advance_clock(service, 60)
    wait_for(lambda: len(jobs_of(client, "every-minute")) == 3, what="the third job")
    schedule = client.get_job_schedule("every-minute")
    assert schedule.execution_info.recent_job.id == "every-minute:job-3"
    client.begin_terminate_job_schedule("every-minute", polling_interval=0.2).result(timeout=30)
    assert wait_for(lambda: client.get_job_schedule("every-minute").state == "completed", what="completion")


def test_one_active_job_at_a_time_and_the_start_window(clocked: tuple[Service, Any]) -> None:
    service, client = clocked
    client.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id="windowed",
            schedule=m.BatchJobScheduleConfiguration(
                recurrence_interval=timedelta(minutes=10), start_window=timedelta(minutes=1)
            ),
            job_specification=spec("/bin/sleep 600"),
        )
    )
    wait_for(lambda: open_jobs(client, "windowed") == ["windowed:job-1"], what="the first job")
    advance_clock(service, 600)  # job 2 is due, but job 1 is still running
    assert jobs_of(client, "windowed") == ["windowed:job-1"]
    advance_clock(service, 61)  # the one-minute start window closes: this opportunity is lost
    client.begin_terminate_job("windowed:job-1", {"terminateReason": "stop"}, polling_interval=0.2).result(timeout=30)
    wait_for(lambda: not open_jobs(client, "windowed"), what="job 1 to end")
    assert jobs_of(client, "windowed") == ["windowed:job-1"]
    advance_clock(service, 540)  # the next recurrence (10 minutes after the lost one) creates the next job
    wait_for(lambda: "windowed:job-2" in jobs_of(client, "windowed"), what="the next job")
    client.begin_delete_job_schedule("windowed", polling_interval=0.2).result(timeout=30)
    assert not [j for j in client.list_jobs() if j.id.startswith("windowed:")]


def test_do_not_run_until_and_after(clocked: tuple[Service, Any]) -> None:
    service, client = clocked
    now = datetime.now(UTC)
    client.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id="later",
            schedule=m.BatchJobScheduleConfiguration(
                do_not_run_until=now + timedelta(hours=2),
                do_not_run_after=now + timedelta(hours=3),
                recurrence_interval=timedelta(hours=2),
            ),
            job_specification=spec(),
        )
    )
    advance_clock(service, 3600)
    assert jobs_of(client, "later") == []
    advance_clock(service, 3601 + 60)
    wait_for(lambda: jobs_of(client, "later") == ["later:job-1"], what="the job after doNotRunUntil")
    wait_for(lambda: not open_jobs(client, "later"), what="the job to end")
    advance_clock(service, 3600 * 2)
    schedule = wait_for(lambda: (s := client.get_job_schedule("later")).state == "completed" and s, what="completion")
    assert jobs_of(client, "later") == ["later:job-1"]
    assert schedule.execution_info.end_time is not None


def test_active_job_and_schedule_quota(tmp_path: Path) -> None:
    service = start_service(tmp_path / "quota", "--job-quota", "2")
    try:
        client = make_client(service.url)
        client.create_job(m.BatchJobCreateOptions(id="a", pool_info=m.BatchPoolInfo(pool_id="none")))
        client.create_job_schedule(
            m.BatchJobScheduleCreateOptions(
                id="s",
                schedule=m.BatchJobScheduleConfiguration(do_not_run_until=datetime.now(UTC) + timedelta(days=1)),
                job_specification=spec(),
            )
        )
        with pytest.raises(HttpResponseError) as info:
            client.create_job(m.BatchJobCreateOptions(id="b", pool_info=m.BatchPoolInfo(pool_id="none")))
        assert error_code(info.value) == "ActiveJobAndScheduleQuotaReached"
    finally:
        service.stop()
