"""Tasks that can never be scheduled say why: the job's executionInfo.schedulingError, through the SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.batch import models as m
from azure.batch.models._models import BatchNodeRebootOptions  # azure-batch 15.1.0 does not export it

from tests.api.helpers import (
    completed,
    create_job,
    delete_pool_quietly,
    idle_nodes,
    signed_request,
    temp_pool,
    vm_config,
)
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]
POLL = 0.2


def _scheduling_error(client: Any, job_id: str) -> Any:
    return client.get_job(job_id).execution_info.scheduling_error


def _error_with_code(client: Any, job_id: str, code: str) -> Any:
    error = _scheduling_error(client, job_id)
    return error if error is not None and error.code == code else None


def test_a_job_on_a_missing_pool_says_so_until_the_pool_exists(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("later"), unique("job")
    create_job(client, job_id, pool_id)  # Azure accepts it: the tasks wait for such a pool
    try:
        # No task yet: nothing waits, nothing to explain.
        assert _scheduling_error(client, job_id) is None
        client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
        error = wait_for(lambda: _error_with_code(client, job_id, "PoolNotFound"), what="the job's scheduling error")
        assert error.category == "usererror"
        assert pool_id in error.message
        assert [(d.name, d.value) for d in error.details] == [("PoolId", pool_id)]
        assert client.get_task(job_id, "t").state == "active"
        assert client.get_job(job_id).state == "active"

        with temp_pool(client, pool_id):
            wait_for(lambda: completed(client, job_id, "t"), what="the task to run on the new pool")
            wait_for(lambda: _scheduling_error(client, job_id) is None or None, what="the error to clear")
    finally:
        client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)


def test_a_task_needing_more_slots_than_a_node_has_is_named(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("slots"), unique("job")
    with temp_pool(client, pool_id, nodes=1, slots=2):
        create_job(client, job_id, pool_id)
        try:
            client.create_tasks(
                job_id,
                [
                    m.BatchTaskCreateOptions(id="big", command_line="/bin/true", required_slots=3),
                    m.BatchTaskCreateOptions(id="fits", command_line="/bin/true", required_slots=2),
                ],
            )
            error = wait_for(
                lambda: _error_with_code(client, job_id, "TaskRequiredSlotsExceedNodeSlots"),
                what="the job's scheduling error",
            )
            assert error.category == "usererror"
            assert {(d.name, d.value) for d in error.details} == {
                ("TaskSlotsPerNode", "2"),
                ("Task:big", "requiredSlots=3"),
            }
            # The task that fits is not held up by the one that cannot run.
            wait_for(lambda: completed(client, job_id, "fits"), what="the task that fits to run")
            assert client.get_task(job_id, "big").state == "active"

            # Once the task is gone, nothing waits for what cannot come.
            client.delete_task(job_id, "big")
            wait_for(lambda: _scheduling_error(client, job_id) is None or None, what="the error to clear")
        finally:
            client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)


def test_a_pool_whose_nodes_all_failed_their_start_task_is_reported(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("failstart"), unique("job")
    with temp_pool(
        client,
        pool_id,
        nodes=2,
        start_task=m.BatchStartTask(command_line="/bin/bash -c 'exit 7'", wait_for_success=True),
    ):
        create_job(client, job_id, pool_id)
        try:
            client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
            error = wait_for(
                lambda: _error_with_code(client, job_id, "PoolNodesUnusable"),
                timeout=60,
                what="the job's scheduling error",
            )
            nodes = {node.id for node in client.list_nodes(pool_id)}
            assert error.category == "usererror"
            assert pool_id in error.message
            assert {(d.name, d.value) for d in error.details} == {(node, "starttaskfailed") for node in nodes}
            assert client.get_task(job_id, "t").state == "active"

            # A start task that succeeds and a reboot bring the nodes back: the task runs, the error goes.
            client.update_pool(pool_id, m.BatchPoolUpdateOptions(start_task=m.BatchStartTask(command_line="/bin/true")))
            for node in nodes:
                client.begin_reboot_node(
                    pool_id, node, BatchNodeRebootOptions(node_reboot_kind="requeue"), polling_interval=POLL
                ).result(timeout=60)
            wait_for(lambda: completed(client, job_id, "t"), timeout=60, what="the task to run")
            # (the error is looked at every second: it goes at the next look after the queue emptied)
            wait_for(lambda: _scheduling_error(client, job_id) is None or None, what="the error to clear")
            assert idle_nodes(client, pool_id, 1)
        finally:
            client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)
            delete_pool_quietly(client, pool_id)


def _auto_pool(**pool: Any) -> m.BatchPoolInfo:
    return m.BatchPoolInfo(
        auto_pool_specification=m.BatchAutoPoolSpecification(
            pool_lifetime_option=pool.pop("lifetime", "job"),
            pool=m.BatchPoolSpecification(vm_size="standard_d2s_v3", virtual_machine_configuration=vm_config(), **pool),
        )
    )


def test_an_auto_pool_that_cannot_be_made_completes_the_job_with_its_error(
    client: Any, service: Service, unique: Unique
) -> None:
    pools_before = {pool.id for pool in client.list_pools()}
    manager = m.BatchJobManagerTask(id="jm", command_line="/bin/true")
    bad_formula, bad_certificate = unique("autoformula"), unique("autocert")
    # Azure accepts such a job, then completes it with the pool creation error.
    client.create_job(
        m.BatchJobCreateOptions(
            id=bad_formula,
            pool_info=_auto_pool(enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes = ;"),
            job_manager_task=manager,
        )
    )
    # azure-batch 15.1 has no certificate models (certificates were retired): the body is written by hand.
    pool = {
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": vm_config().as_dict(),
        "certificateReferences": [{"thumbprint": "ab" * 20, "thumbprintAlgorithm": "sha1"}],
    }
    body = {
        "id": bad_certificate,
        "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": pool}},
        "jobManagerTask": manager.as_dict(),
    }
    assert signed_request(service.url, "POST", "/jobs", body=body).status_code == 201
    try:
        for job_id, code, detail in (
            (bad_formula, "InvalidAutoScaleFormulaInAutoPool", "Message"),
            (bad_certificate, "InvalidCertificatesInAutoPool", "PropertyValue"),
        ):
            job = client.get_job(job_id)
            assert job.state == "completed"
            info = job.execution_info
            assert info.end_time is not None and info.pool_id is None
            assert (info.scheduling_error.category, info.scheduling_error.code) == ("usererror", code)
            assert detail in {d.name for d in info.scheduling_error.details}  # the refusal's own values
            assert not list(client.list_tasks(job_id))  # the job manager never ran
    finally:
        for job_id in (bad_formula, bad_certificate):
            client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=30)
    assert {pool.id for pool in client.list_pools()} <= pools_before  # no pool was made


def test_a_schedules_job_whose_shared_auto_pool_cannot_be_made_is_completed_with_the_error(
    client: Any, unique: Unique
) -> None:
    schedule_id = unique("autosched")
    pool_info = _auto_pool(
        lifetime="jobschedule", enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes = ;"
    )
    client.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id=schedule_id,
            schedule=m.BatchJobScheduleConfiguration(),
            job_specification=m.BatchJobSpecification(pool_info=pool_info),
        )
    )
    try:
        job_id = f"{schedule_id}:job-1"
        job = wait_for(lambda: next((j for j in client.list_jobs() if j.id == job_id), None), what="the job")
        wait_for(lambda: client.get_job(job_id).state == "completed" or None, what="the job to complete")
        error = client.get_job(job_id).execution_info.scheduling_error
        assert (error.category, error.code) == ("usererror", "InvalidAutoScaleFormulaInAutoPool")
        assert job.execution_info.pool_id is None
    finally:
        client.begin_delete_job_schedule(schedule_id, polling_interval=POLL).result(timeout=30)


def test_a_container_task_of_an_auto_pool_without_containers_is_added_and_its_run_fails(
    client: Any, unique: Unique
) -> None:
    """Azure accepts the task (azure-batch's own test_batch_tasks adds one to such a job); it cannot run."""
    job_id = unique("autocontainer")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=_auto_pool(target_dedicated_nodes=1)))
    try:
        settings = m.BatchTaskContainerSettings(image_name="busybox:latest")
        client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="true", container_settings=settings))
        assert client.get_task(job_id, "t").container_settings.image_name == "busybox:latest"
        task = wait_for(lambda: completed(client, job_id, "t"), timeout=60, what="the task's run to fail")
        assert task.execution_info.result == m.BatchTaskExecutionResult.FAILURE
        assert task.execution_info.failure_info.code == "ContainerSettingsNotSupported"
    finally:
        client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=60)
