"""Node actions through azure-batch 15.x: reboot, reimage, disable/enable scheduling, deallocate/start.

Every option is shown with a task running on the node: requeue (killed and run again), terminate
(completed as ended, never rerun), taskcompletion (finishes first), retaineddata (finishes, then the
node waits for the task's retention time). One single-node pool serves the whole module: tasks
come back to the same node after its reboot, so a marker file outside the node tells a rerun.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.batch.models._models import (  # azure-batch 15.1.0 does not export these option models
    BatchNodeDeallocateOptions,
    BatchNodeRebootOptions,
    BatchNodeReimageOptions,
)
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import completed, create_job, create_pool, delete_pool_quietly, error_code
from tests.conftest import Service, wait_for

BOOT_LOG = "boots.txt"


@pytest.fixture(scope="module")
def pool(client: Any) -> Iterator[tuple[str, str]]:
    """(pool id, node id) of a one-node pool whose start task counts boots in the shared directory."""
    pool_id = "node-actions-pool"
    create_pool(
        client,
        pool_id,
        nodes=1,
        start_task=m.BatchStartTask(
            command_line=f"/bin/bash -c 'echo boot >> $AZ_BATCH_NODE_SHARED_DIR/{BOOT_LOG}'", wait_for_success=True
        ),
    )
    create_job(client, "node-actions-job", pool_id)
    node = wait_for(lambda: _idle_node(client, pool_id), timeout=60, what="an idle node")
    yield pool_id, node.id
    client.begin_delete_job("node-actions-job", polling_interval=0.2)
    delete_pool_quietly(client, pool_id)


def _idle_node(client: Any, pool_id: str) -> Any:
    nodes = [node for node in client.list_nodes(pool_id) if node.state == "idle"]
    return nodes[0] if nodes else None


def _hanging_task(client: Any, task_id: str, marker: Path) -> None:
    """A task that hangs on its first run and finishes at once on a rerun (the marker tells)."""
    command = f"/bin/bash -c 'if [ -e {marker} ]; then echo rerun; else touch {marker}; sleep 60; fi'"
    client.create_task("node-actions-job", m.BatchTaskCreateOptions(id=task_id, command_line=command))
    wait_for(lambda: client.get_task("node-actions-job", task_id).state == "running", what=f"{task_id} running")
    # `running` is set when the task is sent to the node; the marker shows its process really started.
    wait_for(marker.exists, what=f"{task_id}'s process to start")


def _boots(client: Any, pool_id: str, node_id: str) -> int:
    data = b"".join(client.download_node_file(pool_id, node_id, f"shared/{BOOT_LOG}"))
    return data.decode().count("boot")


def _back_idle(client: Any, pool_id: str, node_id: str, after: dt.datetime) -> Any:
    def check() -> Any:
        node = client.get_node(pool_id, node_id)
        return node if node.state == "idle" and node.last_boot_time > after else None

    return wait_for(check, timeout=60, what="the node to boot again and be idle")


@pytest.mark.parametrize("kind", ["reboot", "reimage"])
def test_requeue_kills_the_task_and_runs_it_again_after_the_boot(
    client: Any, pool: tuple[str, str], tmp_path: Path, kind: str
) -> None:
    pool_id, node_id = pool
    task_id = f"{kind}-requeue"
    _hanging_task(client, task_id, tmp_path / "marker")
    before = client.get_node(pool_id, node_id)
    if kind == "reboot":
        poller = client.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"))
        assert client.get_node(pool_id, node_id).state in ("rebooting", "starting", "idle", "running")
    else:
        poller = client.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"))
    poller.wait(0)
    task = wait_for(lambda: completed(client, "node-actions-job", task_id), timeout=60, what="the rerun")
    assert task.execution_info.result == "success"
    assert task.execution_info.requeue_count == 1
    assert task.execution_info.retry_count == 0
    assert b"".join(client.download_task_file("node-actions-job", task_id, "stdout.txt")) == b"rerun\n"
    node = _back_idle(client, pool_id, node_id, before.last_boot_time)
    assert node.start_task_info.state == "completed"
    # A reboot keeps the disk (the start task appended a second line); a reimage starts from a new one.
    if kind == "reboot":
        assert _boots(client, pool_id, node_id) >= 2
    else:
        assert _boots(client, pool_id, node_id) == 1


@pytest.mark.parametrize("kind", ["reboot", "reimage"])
def test_terminate_ends_the_task_for_good(client: Any, pool: tuple[str, str], tmp_path: Path, kind: str) -> None:
    pool_id, node_id = pool
    task_id = f"{kind}-terminate"
    _hanging_task(client, task_id, tmp_path / "marker")
    before = client.get_node(pool_id, node_id)
    if kind == "reboot":
        client.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="terminate"))
    else:
        client.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="terminate"))
    task = wait_for(lambda: completed(client, "node-actions-job", task_id), what="the ended task")
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.requeue_count == 0
    _back_idle(client, pool_id, node_id, before.last_boot_time)
    assert completed(client, "node-actions-job", task_id).execution_info.requeue_count == 0


@pytest.mark.parametrize("kind", ["reboot", "reimage"])
def test_taskcompletion_lets_the_task_finish_and_schedules_nothing_new_meanwhile(
    client: Any, pool: tuple[str, str], kind: str
) -> None:
    pool_id, node_id = pool
    task_id, late_id = f"{kind}-taskcompletion", f"{kind}-taskcompletion-late"
    client.create_task("node-actions-job", m.BatchTaskCreateOptions(id=task_id, command_line="/bin/sleep 2"))
    wait_for(lambda: client.get_task("node-actions-job", task_id).state == "running", what="running task")
    before = client.get_node(pool_id, node_id)
    if kind == "reboot":
        client.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="taskcompletion"))
    else:
        client.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="taskcompletion"))
    node = client.get_node(pool_id, node_id)
    assert node.state == ("rebooting" if kind == "reboot" else "reimaging")
    assert node.running_tasks_count == 1
    client.create_task("node-actions-job", m.BatchTaskCreateOptions(id=late_id, command_line="/bin/true"))
    task = wait_for(lambda: completed(client, "node-actions-job", task_id), what="the task to finish")
    assert task.execution_info.result == "success"
    node = _back_idle(client, pool_id, node_id, before.last_boot_time)
    late = wait_for(lambda: completed(client, "node-actions-job", late_id), what="the late task")
    # The late task waited for the reboot: it started after the node's new boot.
    assert late.execution_info.start_time >= node.last_boot_time


def _running_task_keeping_data_4s(client: Any, pool_id: str, job_id: str, task_id: str) -> str:
    """A job on the pool with a 1 s task that keeps its data 4 s, running; the node it runs on."""
    create_job(client, job_id, pool_id)
    node_id = wait_for(lambda: _idle_node(client, pool_id), timeout=60, what="an idle node").id
    retention = m.BatchTaskConstraints(retention_time=dt.timedelta(seconds=4))
    client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line="/bin/sleep 1", constraints=retention))
    wait_for(lambda: client.get_task(job_id, task_id).state == "running", what="running task")
    return node_id


def test_retaineddata_waits_for_the_task_retention_time(client: Any) -> None:
    # A pool of its own: tasks keep their data 7 days by default, and retaineddata waits for all of it.
    pool_id, job_id, task_id = "retaineddata-pool", "retaineddata-job", "short-retention"
    create_pool(client, pool_id, nodes=1)
    try:
        node_id = _running_task_keeping_data_4s(client, pool_id, job_id, task_id)
        before = client.get_node(pool_id, node_id)
        client.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="retaineddata"))
        task = wait_for(lambda: completed(client, job_id, task_id), what="the task to finish")
        assert task.execution_info.result == "success"
        assert client.get_node(pool_id, node_id).state == "rebooting"  # its data is still kept
        node = _back_idle(client, pool_id, node_id, before.last_boot_time)
        assert node.last_boot_time >= task.execution_info.end_time + dt.timedelta(seconds=3)

        # A reimage wipes the disk and so what it retained: a task keeping its data for the default
        # 7 days holds up a retaineddata reboot only until the node is reimaged.
        client.create_task(job_id, m.BatchTaskCreateOptions(id="keeps-a-week", command_line="/bin/true"))
        wait_for(lambda: completed(client, job_id, "keeps-a-week"), what="the task to finish")
        client.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"))
        node = _back_idle(client, pool_id, node_id, node.last_boot_time)
        client.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="retaineddata"))
        _back_idle(client, pool_id, node_id, node.last_boot_time)
    finally:
        client.begin_delete_job(job_id, polling_interval=0.2)
        delete_pool_quietly(client, pool_id)


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion"])
def test_disable_scheduling_options_then_offline_and_enable(
    client: Any, pool: tuple[str, str], tmp_path: Path, option: str
) -> None:
    pool_id, node_id = pool
    task_id = f"disable-{option}"
    if option == "taskcompletion":
        client.create_task("node-actions-job", m.BatchTaskCreateOptions(id=task_id, command_line="/bin/sleep 2"))
        wait_for(lambda: client.get_task("node-actions-job", task_id).state == "running", what="running task")
    else:
        _hanging_task(client, task_id, tmp_path / "marker")
    client.disable_node_scheduling(
        pool_id, node_id, m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option=option)
    )
    assert client.get_node(pool_id, node_id).scheduling_state == "disabled"
    if option == "taskcompletion":
        assert client.get_node(pool_id, node_id).state == "running"
    wait_for(lambda: client.get_node(pool_id, node_id).state == "offline", what="offline node")
    task = client.get_task("node-actions-job", task_id)
    if option == "requeue":
        assert task.state == "active" and task.execution_info.requeue_count == 1  # waits: no node takes it
    elif option == "terminate":
        assert task.state == "completed" and task.execution_info.failure_info.code == "TaskEnded"
    else:
        assert task.state == "completed" and task.execution_info.result == "success"

    with pytest.raises(HttpResponseError) as again:
        client.disable_node_scheduling(
            pool_id, node_id, m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue")
        )
    assert again.value.status_code == 409 and error_code(again.value) == "NodeAlreadyInTargetSchedulingState"

    client.enable_node_scheduling(pool_id, node_id)
    assert client.get_node(pool_id, node_id).scheduling_state == "enabled"
    try:
        task = wait_for(lambda: completed(client, "node-actions-job", task_id), timeout=60, what="the task")
    except AssertionError as timeout:  # say what the node and the task look like, to find the cause
        node_now = client.get_node(pool_id, node_id).as_dict()
        task_now = client.get_task("node-actions-job", task_id).as_dict()
        raise AssertionError(f"task not rerun after enabling: node={node_now} task={task_now}") from timeout
    if option == "requeue":
        assert b"".join(client.download_task_file("node-actions-job", task_id, "stdout.txt")) == b"rerun\n"
    wait_for(lambda: client.get_node(pool_id, node_id).state == "idle", what="idle node")
    with pytest.raises(HttpResponseError) as again:
        client.enable_node_scheduling(pool_id, node_id)
    assert error_code(again.value) == "NodeAlreadyInTargetSchedulingState"


def test_deallocate_and_start(client: Any, pool: tuple[str, str], tmp_path: Path) -> None:
    pool_id, node_id = pool
    _hanging_task(client, "deallocate-requeue", tmp_path / "marker")
    client.begin_deallocate_node(pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="requeue"))
    wait_for(lambda: client.get_node(pool_id, node_id).state == "deallocated", what="deallocated node")
    assert client.get_task("node-actions-job", "deallocate-requeue").state == "active"
    counts = next(c for c in client.list_pool_node_counts() if c.pool_id == pool_id)
    assert counts.dedicated.deallocated == 1
    with pytest.raises(HttpResponseError) as conflict:
        client.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"))
    assert conflict.value.status_code == 409
    before = client.get_node(pool_id, node_id)
    client.begin_start_node(pool_id, node_id)
    task = wait_for(lambda: completed(client, "node-actions-job", "deallocate-requeue"), what="the rerun")
    assert task.execution_info.requeue_count == 1
    _back_idle(client, pool_id, node_id, before.last_boot_time or dt.datetime.min.replace(tzinfo=dt.UTC))


@pytest.mark.parametrize("option", ["terminate", "taskcompletion"])
def test_deallocate_options(client: Any, pool: tuple[str, str], tmp_path: Path, option: str) -> None:
    pool_id, node_id = pool
    task_id = f"deallocate-{option}"
    if option == "taskcompletion":
        client.create_task("node-actions-job", m.BatchTaskCreateOptions(id=task_id, command_line="/bin/sleep 2"))
        wait_for(lambda: client.get_task("node-actions-job", task_id).state == "running", what="running task")
    else:
        _hanging_task(client, task_id, tmp_path / "marker")
    client.begin_deallocate_node(pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option=option))
    if option == "taskcompletion":
        assert client.get_node(pool_id, node_id).state == "deallocating"  # the task finishes first
    wait_for(lambda: client.get_node(pool_id, node_id).state == "deallocated", what="deallocated node")
    task = client.get_task("node-actions-job", task_id)
    assert task.state == "completed"
    if option == "terminate":
        assert task.execution_info.failure_info.code == "TaskEnded"
    else:
        assert task.execution_info.result == "success"
    before = client.get_node(pool_id, node_id)
    client.begin_start_node(pool_id, node_id)
    _back_idle(client, pool_id, node_id, before.last_boot_time or dt.datetime.min.replace(tzinfo=dt.UTC))


@pytest.mark.parametrize("kind", ["reimage", "deallocate"])
def test_retaineddata_reimage_and_deallocate_wait_for_the_retention_time(client: Any, kind: str) -> None:
    pool_id, job_id, task_id = f"retained-{kind}-pool", f"retained-{kind}-job", "short-retention"
    create_pool(client, pool_id, nodes=1)
    try:
        node_id = _running_task_keeping_data_4s(client, pool_id, job_id, task_id)
        if kind == "reimage":
            client.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="retaineddata"))
        else:
            client.begin_deallocate_node(
                pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="retaineddata")
            )
        task = wait_for(lambda: completed(client, job_id, task_id), what="the task to finish")
        assert task.execution_info.result == "success"
        assert client.get_node(pool_id, node_id).state in ("reimaging", "deallocating")  # its data is still kept
        if kind == "reimage":
            node = _back_idle(client, pool_id, node_id, task.execution_info.end_time)
            assert node.last_boot_time >= task.execution_info.end_time + dt.timedelta(seconds=3)
        else:
            wait_for(lambda: client.get_node(pool_id, node_id).state == "deallocated", what="deallocated node")
            elapsed = dt.datetime.now(dt.UTC) - task.execution_info.end_time
            assert elapsed >= dt.timedelta(seconds=3)
    finally:
        client.begin_delete_job(job_id, polling_interval=0.2)
        delete_pool_quietly(client, pool_id)


def test_client_mistakes_get_batch_errors(client: Any, service: Service, pool: tuple[str, str]) -> None:
    from tests.api.helpers import signed_request

    pool_id, node_id = pool
    with pytest.raises(HttpResponseError) as missing:
        client.begin_reboot_node(pool_id, "tvmps_nosuchnode_d", BatchNodeRebootOptions(node_reboot_kind="requeue"))
    assert missing.value.status_code == 404 and error_code(missing.value) == "NodeNotFound"
    with pytest.raises(HttpResponseError) as no_pool:
        client.disable_node_scheduling(
            "no-such-pool", node_id, m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue")
        )
    assert error_code(no_pool.value) == "PoolNotFound"
    base = service.url
    bad = signed_request(base, "POST", f"/pools/{pool_id}/nodes/{node_id}/reboot", body={"nodeRebootOption": "now"})
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidPropertyValue"
    bad = signed_request(base, "POST", f"/pools/{pool_id}/nodes/{node_id}/reimage", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidRequestBody"
    # No body at all is the same as the defaults (requeue), as the contract's optional body says.
    before = client.get_node(pool_id, node_id)
    assert signed_request(base, "POST", f"/pools/{pool_id}/nodes/{node_id}/reboot").status_code == 202
    twice = signed_request(base, "POST", f"/pools/{pool_id}/nodes/{node_id}/reboot")
    assert twice.status_code == 409 and twice.json()["code"] in ("NodeBeingRebooted", "NodeBeingStarted")
    _back_idle(client, pool_id, node_id, before.last_boot_time)
