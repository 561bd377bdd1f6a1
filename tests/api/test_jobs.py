"""Jobs through the SDK over HTTP: CRUD, updates, disable/enable, terminate, completion rules, auto pools."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.api.helpers import (
    completed,
    create_job,
    delete_pool_quietly,
    error_code,
    error_values,
    idle_nodes,
    pool_exists,
    processes_with,
    signed_request,
    temp_pool,
    unique_sleep,
    vm_config,
)
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]
POLL = 0.2


@pytest.fixture(scope="module")
def pool(client: Any) -> Iterator[str]:
    """One node with four slots, shared by the tests of this module (each uses its own job)."""
    import os

    pool_id = f"jobs-pool-{os.getpid()}"
    with temp_pool(client, pool_id, nodes=1, slots=4):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the job pool's node")
        yield pool_id


@pytest.fixture
def job(client: Any, pool: str, unique: Unique) -> Iterator[str]:
    job_id = unique("job")
    create_job(client, job_id, pool)
    yield job_id
    try:
        client.begin_delete_job(job_id, polling_interval=POLL)
    except ResourceNotFoundError:
        pass


def _state(client: Any, job_id: str, task_id: str) -> Any:
    return client.get_task(job_id, task_id).state  # a str enum: compares equal to its wire value


def _job_state(client: Any, job_id: str) -> Any:
    return client.get_job(job_id).state


# --- CRUD -------------------------------------------------------------------------------------------


def test_create_get_list_delete(client: Any, unique: Unique, service: Service) -> None:
    ids = [unique("crud") for _ in range(3)]
    for index, job_id in enumerate(ids):
        headers = client.create_job(
            m.BatchJobCreateOptions(
                id=job_id,
                pool_info=m.BatchPoolInfo(pool_id="somepool"),
                priority=index * 10,
                display_name=f"job {index}",
                metadata=[m.BatchMetadataItem(name="i", value=str(index))],
                common_environment_settings=[m.EnvironmentSetting(name="A", value="b")],
            ),
            cls=lambda resp, body, headers: (resp.http_response.status_code, resp.http_response.headers),
        )
        status, raw = headers
        assert status == 201
        assert raw["DataServiceId"] == f"{service.url}/jobs/{job_id}"
        assert raw["ETag"]
    job = client.get_job(ids[1])
    assert job.id == ids[1]
    assert job.state == "active"
    assert job.priority == 10
    assert job.display_name == "job 1"
    assert job.pool_info.pool_id == "somepool"
    assert job.execution_info.pool_id == "somepool"
    assert job.execution_info.start_time is not None
    assert job.all_tasks_complete_mode == "noaction"
    assert job.task_failure_mode == "noaction"
    assert job.constraints.max_task_retry_count == 0
    assert job.common_environment_settings[0].name == "A"
    assert job.url == f"{service.url}/jobs/{ids[1]}"

    listed = [job.id for job in client.list_jobs(max_results=1)]
    assert len(listed) == len(set(listed))
    assert [job_id for job_id in listed if job_id in ids] == ids

    for job_id in ids:
        client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_job(ids[0])
    assert error_code(info.value) == "JobNotFound"
    assert not {job.id for job in client.list_jobs()} & set(ids)


def test_job_exists_and_not_found(client: Any, unique: Unique) -> None:
    job_id = unique("dup")
    create_job(client, job_id, "somepool")
    with pytest.raises(ResourceExistsError) as info:
        create_job(client, job_id, "otherpool")
    assert error_code(info.value) == "JobExists"
    assert client.get_job(job_id).pool_info.pool_id == "somepool"
    missing = unique("missing")
    for call in (
        lambda: client.get_job(missing),
        lambda: client.update_job(missing, m.BatchJobUpdateOptions(priority=1)),
        lambda: client.begin_terminate_job(missing, {"terminateReason": "x"}),
        lambda: client.create_task(missing, m.BatchTaskCreateOptions(id="t", command_line="/bin/true")),
        lambda: client.get_job_task_counts(missing),
    ):
        with pytest.raises(ResourceNotFoundError) as info:
            call()
        assert error_code(info.value) == "JobNotFound"


@pytest.mark.parametrize("priority", [1001, -1001, 5000])
def test_priority_out_of_range(client: Any, unique: Unique, priority: int) -> None:
    job_id = unique("prio")
    with pytest.raises(HttpResponseError) as info:
        create_job(client, job_id, "somepool", priority=priority)
    assert info.value.status_code == 400
    assert error_code(info.value) == "InvalidPropertyValue"
    assert error_values(info.value)["PropertyName"] == "priority"
    create_job(client, job_id, "somepool", priority=1000)
    with pytest.raises(HttpResponseError) as info:
        client.update_job(job_id, m.BatchJobUpdateOptions(priority=priority))
    assert error_code(info.value) == "InvalidPropertyValue"
    assert client.get_job(job_id).priority == 1000


# --- updates ----------------------------------------------------------------------------------------


def test_patch_changes_only_given_properties(client: Any, unique: Unique) -> None:
    job_id = unique("patch")
    create_job(
        client,
        job_id,
        "somepool",
        priority=1,
        metadata=[m.BatchMetadataItem(name="k", value="v")],
        constraints=m.BatchJobConstraints(max_task_retry_count=3),
    )
    before = client.get_job(job_id)
    client.update_job(job_id, m.BatchJobUpdateOptions(priority=500))
    job = client.get_job(job_id)
    assert job.priority == 500
    assert [(i.name, i.value) for i in job.metadata] == [("k", "v")]
    assert job.constraints.max_task_retry_count == 3
    assert job.etag != before.etag

    client.update_job(job_id, m.BatchJobUpdateOptions(max_parallel_tasks=2, metadata=[]))
    job = client.get_job(job_id)
    assert job.max_parallel_tasks == 2
    assert not job.metadata
    assert job.priority == 500


def test_patch_on_all_tasks_complete_cannot_go_back_to_noaction(client: Any, job: str) -> None:
    client.create_task(job, m.BatchTaskCreateOptions(id="hold", command_line=unique_sleep(30)))
    client.update_job(job, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    assert client.get_job(job).all_tasks_complete_mode == "terminatejob"
    with pytest.raises(HttpResponseError) as info:
        client.update_job(job, m.BatchJobUpdateOptions(all_tasks_complete_mode="noaction"))
    assert info.value.status_code == 400
    assert error_code(info.value) == "InvalidPropertyValue"
    assert client.get_job(job).all_tasks_complete_mode == "terminatejob"
    client.terminate_task(job, "hold")
    final = wait_for(lambda: (j := client.get_job(job)).state == "completed" and j, what="the job to complete")
    assert final.execution_info.termination_reason == "AllTasksComplete"


def test_replace_resets_omitted_properties(client: Any, unique: Unique) -> None:
    job_id = unique("put")
    create_job(
        client,
        job_id,
        "somepool",
        priority=10,
        metadata=[m.BatchMetadataItem(name="k", value="v")],
        constraints=m.BatchJobConstraints(max_task_retry_count=4),
        max_parallel_tasks=3,
    )
    client.replace_job(job_id, m.BatchJob(pool_info=m.BatchPoolInfo(pool_id="somepool"), priority=-5))
    job = client.get_job(job_id)
    assert job.priority == -5
    assert not job.metadata
    assert job.constraints.max_task_retry_count == 0
    assert job.max_parallel_tasks == -1
    assert job.all_tasks_complete_mode == "noaction"
    assert job.pool_info.pool_id == "somepool"

    # Moving the job to another pool needs it disabled first.
    with pytest.raises(HttpResponseError) as info:
        client.replace_job(job_id, m.BatchJob(pool_info=m.BatchPoolInfo(pool_id="elsewhere")))
    assert info.value.status_code == 409
    assert error_code(info.value) == "JobNotDisabled"
    client.begin_disable_job(job_id, m.BatchJobDisableOptions(disable_tasks="requeue"), polling_interval=POLL).result(
        timeout=30
    )
    client.replace_job(job_id, m.BatchJob(pool_info=m.BatchPoolInfo(pool_id="elsewhere"), priority=3))
    job = client.get_job(job_id)
    assert job.pool_info.pool_id == "elsewhere"
    assert job.execution_info.pool_id == "elsewhere"
    assert job.priority == 3


# --- disable / enable --------------------------------------------------------------------------------


def test_disable_requeue_then_enable(client: Any, job: str) -> None:
    command = unique_sleep(30)
    client.create_task(job, m.BatchTaskCreateOptions(id="t", command_line=command))
    wait_for(lambda: _state(client, job, "t") == "running", what="the task to run")
    wait_for(lambda: processes_with(command), what="the task's process")

    poller = client.begin_disable_job(job, m.BatchJobDisableOptions(disable_tasks="requeue"), polling_interval=POLL)
    assert _job_state(client, job) in ("disabling", "disabled")
    poller.result(timeout=30)
    assert _job_state(client, job) == "disabled"
    assert client.get_job(job).previous_state == "disabling"
    assert not processes_with(command)  # disabled: no task is running any more
    task = wait_for(lambda: (t := client.get_task(job, "t")).state == "active" and t, what="the task requeued")
    assert task.execution_info.retry_count == 0
    counts = client.get_job_task_counts(job).task_counts
    assert counts.active == 1 and counts.running == 0
    # Disabled jobs start nothing, even with free slots.
    client.create_task(job, m.BatchTaskCreateOptions(id="quick", command_line="/bin/true"))
    assert _state(client, job, "quick") == "active"

    client.begin_enable_job(job, polling_interval=POLL).result(timeout=30)
    assert _job_state(client, job) == "active"
    wait_for(lambda: completed(client, job, "quick"), what="the new task to run after enable")
    wait_for(lambda: _state(client, job, "t") == "running", what="the requeued task to run again")
    client.terminate_task(job, "t")


def test_disable_terminate_ends_running_tasks(client: Any, job: str) -> None:
    command = unique_sleep(30)
    client.create_task(job, m.BatchTaskCreateOptions(id="t", command_line=command))
    wait_for(lambda: _state(client, job, "t") == "running", what="the task to run")
    client.begin_disable_job(job, m.BatchJobDisableOptions(disable_tasks="terminate"), polling_interval=POLL).result(
        timeout=30
    )
    task = wait_for(lambda: completed(client, job, "t"), what="the task to end")
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert not processes_with(command)
    assert _job_state(client, job) == "disabled"
    # The contract: disabling a disabling or disabled job is not a conflict (only other states are).
    client.begin_disable_job(job, m.BatchJobDisableOptions(disable_tasks="wait"), polling_interval=POLL).result(
        timeout=30
    )
    assert _job_state(client, job) == "disabled"
    client.begin_enable_job(job, polling_interval=POLL).result(timeout=30)
    with pytest.raises(HttpResponseError) as info:
        client.begin_enable_job(job)
    assert info.value.status_code == 409
    assert error_code(info.value) == "JobNotDisabled"


def test_disable_wait_lets_running_tasks_finish(client: Any, job: str) -> None:
    client.create_task(job, m.BatchTaskCreateOptions(id="t", command_line="/bin/sleep 2"))
    wait_for(lambda: _state(client, job, "t") == "running", what="the task to run")
    client.begin_disable_job(job, m.BatchJobDisableOptions(disable_tasks="wait"), polling_interval=POLL)
    # Disabling, not disabled, while a task still runs (the contract: disabled means no task is running).
    assert _job_state(client, job) == "disabling"
    client.create_task(job, m.BatchTaskCreateOptions(id="later", command_line="/bin/true"))
    task = wait_for(lambda: completed(client, job, "t"), what="the running task to finish")
    assert task.execution_info.result == "success"
    assert task.execution_info.exit_code == 0
    wait_for(lambda: _job_state(client, job) == "disabled", what="the job to be disabled")
    assert client.get_job(job).previous_state == "disabling"
    assert _state(client, job, "later") == "active"
    client.begin_enable_job(job, polling_interval=POLL).result(timeout=30)
    wait_for(lambda: completed(client, job, "later"), what="the queued task after enable")


# --- terminate / delete ------------------------------------------------------------------------------


def test_terminate_with_reason_ends_running_tasks(client: Any, job: str) -> None:
    command = unique_sleep(30)
    client.create_task(job, m.BatchTaskCreateOptions(id="running", command_line=command))
    wait_for(lambda: _state(client, job, "running") == "running", what="the task to run")
    client.begin_terminate_job(job, {"terminateReason": "EnoughOfThis"}, polling_interval=POLL).result(timeout=30)
    final = client.get_job(job)
    assert final.state == "completed"
    assert final.execution_info.termination_reason == "EnoughOfThis"
    assert final.execution_info.end_time is not None
    task = client.get_task(job, "running")
    assert task.state == "completed"
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.result == "failure"
    assert not processes_with(command)
    # A completed job takes no new tasks and cannot be terminated again.
    with pytest.raises(HttpResponseError) as info:
        client.create_task(job, m.BatchTaskCreateOptions(id="late", command_line="/bin/true"))
    assert error_code(info.value) == "JobCompleted"
    with pytest.raises(HttpResponseError) as info:
        client.begin_terminate_job(job, {"terminateReason": "again"})
    assert error_code(info.value) == "JobCompleted"


def test_terminate_without_reason_is_user_terminate(client: Any, unique: Unique, service: Service) -> None:
    # azure-batch 15.1.0 cannot terminate without a reason (no options, or empty ones, fail to serialize a
    # None content-type) and its BatchJobTerminateOptions model is private (SDK calls here pass a dict):
    # so raw requests, without a body and with an empty one.
    for content in (None, b"{}"):
        job_id = unique("term")
        create_job(client, job_id, "somepool")
        client.create_task(job_id, m.BatchTaskCreateOptions(id="queued", command_line="/bin/true"))
        response = signed_request(service.url, "POST", f"/jobs/{job_id}/terminate", content=content)
        assert response.status_code == 202, response.text
        job = client.get_job(job_id)
        assert job.state == "completed"
        assert job.execution_info.termination_reason == "UserTerminate"
        # The contract: active tasks of a terminated job stay active (and are never scheduled).
        assert client.get_task(job_id, "queued").state == "active"


def test_delete_job_ends_running_tasks(client: Any, pool: str, unique: Unique) -> None:
    job_id = unique("del")
    create_job(client, job_id, pool)
    command = unique_sleep(30)
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=command))
    wait_for(lambda: _state(client, job_id, "t") == "running", what="the task to run")
    wait_for(lambda: processes_with(command), what="the task's process")
    client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)
    with pytest.raises(ResourceNotFoundError):
        client.get_job(job_id)
    wait_for(lambda: not processes_with(command), what="the task's process to end")
    node = wait_for(
        lambda: (n := next(iter(client.list_nodes(pool)))).running_tasks_count == 0 and n, what="the node to be free"
    )
    assert node.state == "idle"
    # Its files go from the node once its task has ended.
    wait_for(lambda: not _node_has(client, pool, node.id, f"workitems/{job_id}"), what="the job's files to go")
    # The id is free again.
    create_job(client, job_id, pool)
    client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)


def test_delete_running_task_ends_it_and_removes_its_files(client: Any, pool: str, job: str) -> None:
    command = unique_sleep(30)
    client.create_task(job, m.BatchTaskCreateOptions(id="doomed", command_line=command))
    wait_for(lambda: processes_with(command), what="the task's process")
    task = client.get_task(job, "doomed")
    client.delete_task(job, "doomed")
    wait_for(lambda: not processes_with(command), what="the task's process to end")
    node_id, directory = task.node_info.node_id, task.node_info.task_root_directory
    wait_for(lambda: not _node_has(client, pool, node_id, directory), what="the task's files to go")


def _node_has(client: Any, pool_id: str, node_id: str, path: str) -> bool:
    listing = client.list_node_files(pool_id, node_id, recursive=True)
    return any(f.name == path or f.name.startswith(path + "/") for f in listing)


# --- completion rules -------------------------------------------------------------------------------


def test_terminatejob_ends_the_job_when_the_last_task_completes(client: Any, job: str) -> None:
    client.create_task(job, m.BatchTaskCreateOptions(id="a", command_line="/bin/true"))
    client.create_task(job, m.BatchTaskCreateOptions(id="b", command_line="/bin/sleep 1"))
    client.update_job(job, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    final = wait_for(lambda: (j := client.get_job(job)).state == "completed" and j, what="the job to complete")
    assert final.execution_info.termination_reason == "AllTasksComplete"
    for task_id in ("a", "b"):
        task = client.get_task(job, task_id)
        assert task.state == "completed"
        assert task.execution_info.result == "success"


def test_terminatejob_with_no_tasks_completes_at_once(client: Any, unique: Unique) -> None:
    """The contract: a job without tasks has all its tasks complete."""
    job_id = unique("empty")
    create_job(client, job_id, "somepool", all_tasks_complete_mode="terminatejob")
    job = wait_for(lambda: (j := client.get_job(job_id)).state == "completed" and j, what="the job to complete")
    assert job.execution_info.termination_reason == "AllTasksComplete"


def test_auto_pool_for_the_job_lifetime(client: Any, unique: Unique) -> None:
    job_id = unique("auto")
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(
                auto_pool_specification=m.BatchAutoPoolSpecification(
                    auto_pool_id_prefix="ap",
                    pool_lifetime_option="job",
                    pool=m.BatchPoolSpecification(
                        vm_size="standard_d2s_v3",
                        virtual_machine_configuration=vm_config(),
                        target_dedicated_nodes=1,
                    ),
                )
            ),
        )
    )
    pool_id = client.get_job(job_id).execution_info.pool_id
    try:
        assert pool_id and pool_id.startswith("ap_")
        pool = client.get_pool(pool_id)
        assert pool.target_dedicated_nodes == 1
        assert pool.vm_size == "standard_d2s_v3"
        client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/echo auto"))
        task = wait_for(lambda: completed(client, job_id, "t"), what="the task on the auto pool")
        assert task.node_info.pool_id == pool_id
        assert task.execution_info.result == "success"
        assert pool_exists(client, pool_id)  # the job is still active: the pool stays
        client.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
        wait_for(lambda: _job_state(client, job_id) == "completed", what="the job to complete")
        wait_for(lambda: not pool_exists(client, pool_id), what="the auto pool to be deleted")
    finally:
        delete_pool_quietly(client, pool_id)


def _auto_pool_info(vm_size: str = "standard_d2s_v3") -> m.BatchPoolInfo:
    # No targetDedicatedNodes and no autoscale: Azure creates the pool with a target of 0.
    return m.BatchPoolInfo(
        auto_pool_specification=m.BatchAutoPoolSpecification(
            auto_pool_id_prefix="same",
            pool_lifetime_option="job",
            pool=m.BatchPoolSpecification(vm_size=vm_size, virtual_machine_configuration=vm_config()),
        )
    )


def test_replace_with_the_same_auto_pool_needs_no_disable(client: Any, unique: Unique) -> None:
    job_id = unique("autosame")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=_auto_pool_info()))
    pool_id = client.get_job(job_id).execution_info.pool_id
    try:
        assert client.get_pool(pool_id).target_dedicated_nodes == 0
        # The same specification it was created with, and the job as read back (GET then PUT): no change.
        client.replace_job(job_id, m.BatchJob(pool_info=_auto_pool_info(), priority=5))
        read = client.get_job(job_id)
        assert read.priority == 5
        client.replace_job(job_id, m.BatchJob(pool_info=read.pool_info, priority=6))
        client.update_job(job_id, m.BatchJobUpdateOptions(pool_info=read.pool_info))
        job = client.get_job(job_id)
        assert (job.state, job.priority, job.execution_info.pool_id) == ("active", 6, pool_id)
        # A real change of the pool still needs the job disabled.
        with pytest.raises(HttpResponseError) as info:
            client.replace_job(job_id, m.BatchJob(pool_info=_auto_pool_info("standard_d4s_v3")))
        assert (info.value.status_code, error_code(info.value)) == (409, "JobNotDisabled")
    finally:
        client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)
        delete_pool_quietly(client, pool_id)
