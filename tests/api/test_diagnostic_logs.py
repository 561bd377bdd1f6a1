"""Diagnostic logs (Service Logs): each event's record, with the fields and shapes Azure Batch's reference
documents, in Azure Monitor's hourly blobs of a real Azurite, written by a real service that the official
SDK drives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from azure.batch import models as m

from batchyard.service.storage.linked import LinkedStorage
from tests.api.diagnostics_support import ENVELOPE, LogTarget, of
from tests.api.helpers import create_job, create_pool, idle_nodes, pool_exists, run_task
from tests.api.storage_support import shared_azurite
from tests.conftest import Service, make_client, start_service, wait_for

POLL = 0.2
TASK_HEAD = {"jobId", "id", "taskType", "systemTaskVersion", "requiredSlots", "nodeInfo"}
TASK_SETTINGS = {"multiInstanceSettings", "constraints"}
RESIZE = {
    "id",
    "nodeDeallocationOption",
    "currentDedicatedNodes",
    "targetDedicatedNodes",
    "currentLowPriorityNodes",
    "targetLowPriorityNodes",
    "enableAutoScale",
    "isAutoPool",
}


@pytest.fixture(scope="module")
def storage() -> LinkedStorage:
    return shared_azurite()


@pytest.fixture(scope="module")
def target(storage: LinkedStorage) -> LogTarget:
    return LogTarget(storage)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, target: LogTarget) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("diagnostics"), *target.serve_args())
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def records(logged: Service, target: LogTarget) -> list[dict[str, Any]]:
    """Everything the events test scenario logs (one run for all the checks below)."""
    client = make_client(logged.url)
    pool_id, job_id, blocked_job = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("logs", "job", "blocked"))
    create_pool(
        client,
        pool_id,
        nodes=1,
        slots=2,
        display_name="Production Pool",
        start_task=m.BatchStartTask(command_line="true", wait_for_success=True),
    )
    wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=60, what="an idle node")
    create_job(
        client,
        job_id,
        pool_id,
        job_preparation_task=m.BatchJobPreparationTask(id="prep", command_line="true"),
        job_release_task=m.BatchJobReleaseTask(id="release", command_line="true"),
    )
    run_task(client, job_id, "ok", "true")
    run_task(client, job_id, "bad", "sh -c 'exit 3'", constraints=m.BatchTaskConstraints(max_task_retry_count=1))
    client.begin_terminate_job(job_id, {"terminateReason": "done"}, polling_interval=POLL).result(timeout=60)
    wait_for(lambda: _release_done(client, job_id), timeout=60, what="the job release task")

    create_job(
        client, blocked_job, pool_id, job_preparation_task=m.BatchJobPreparationTask(id="prep", command_line="false")
    )
    client.create_task(blocked_job, m.BatchTaskCreateOptions(id="waits", command_line="true"))
    wait_for(lambda: of(target.records(), "TaskScheduleFailEvent", jobId=blocked_job), what="the schedule failure")
    client.begin_terminate_job(blocked_job, {"terminateReason": "done"}, polling_interval=POLL).result(timeout=60)

    client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=POLL)
    wait_for(lambda: _steady(client, pool_id, 2), timeout=60, what="the pool grown to 2")
    client.begin_resize_pool(
        pool_id,
        m.BatchPoolResizeOptions(target_dedicated_nodes=1, node_deallocation_option="terminate"),
        polling_interval=POLL,
    )
    wait_for(lambda: _steady(client, pool_id, 1), timeout=60, what="the pool shrunk to 1")

    scaled = f"scaled-{uuid.uuid4().hex[:6]}"
    create_pool(
        client,
        scaled,
        nodes=None,
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 0;",
        auto_scale_evaluation_interval="PT5M",
    )
    for pool in (pool_id, scaled):
        client.begin_delete_pool(pool, polling_interval=POLL)
    wait_for(lambda: not pool_exists(client, pool_id), timeout=60, what="the pool gone")
    found = wait_for(
        lambda: (found := target.records()) and of(found, "PoolDeleteCompleteEvent", id=pool_id) and found,
        what="the pool delete complete record",
    )
    return [record | {"_scenario": (pool_id, job_id, blocked_job, scaled)} for record in found]


def _release_done(client: Any, job_id: str) -> bool:
    statuses = list(client.list_job_preparation_and_release_task_status(job_id))
    return bool(statuses) and all(
        status.job_release_task_execution_info is not None
        and status.job_release_task_execution_info.state == "completed"
        for status in statuses
    )


def _steady(client: Any, pool_id: str, nodes: int) -> bool:
    pool = client.get_pool(pool_id)
    return pool.allocation_state == "steady" and pool.current_dedicated_nodes == nodes


def scenario(records: list[dict[str, Any]]) -> tuple[str, str, str, str]:
    ids: tuple[str, str, str, str] = records[0]["_scenario"]
    return ids


def test_records_are_json_lines_in_azure_monitors_hourly_blobs(
    records: list[dict[str, Any]], target: LogTarget
) -> None:
    pattern = target.hour_path()
    lines = target.lines()
    assert lines and len(lines) == len(records)
    for name, line in lines:
        match = pattern.match(name)
        assert match, name
        record = orjson.loads(line)
        assert set(record) == ENVELOPE
        assert record["category"] == "ServiceLog"
        assert record["resourceId"] == target.resource_id + "/"
        assert record["operationVersion"] == "2017-06-01"
        assert len(record["Tenant"]) == 32 and int(record["Tenant"], 16) >= 0
        time = datetime.fromisoformat(record["time"][:26] + "+00:00")
        assert record["time"].endswith("Z") and len(record["time"].split(".")[1]) == 8  # seven digits and Z
        assert match.groups() == (f"{time.year:04d}", f"{time.month:02d}", f"{time.day:02d}", f"{time.hour:02d}")


def test_pool_create_then_resize_start_and_complete(records: list[dict[str, Any]]) -> None:
    pool_id = scenario(records)[0]
    (create,) = of(records, "PoolCreateEvent", id=pool_id)
    assert create == {
        "id": pool_id,
        "displayName": "Production Pool",
        "vmSize": "standard_d2s_v3",
        "imageType": "VirtualMachineConfiguration",
        "virtualMachineConfiguration": {
            "imageReference": {
                "publisher": "canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts",
                "version": "latest",
            },
            "nodeAgentId": "batch.node.ubuntu 22.04",
        },
        "resizeTimeout": "900000",  # the default 15 minutes, in milliseconds as the reference writes it
        "targetDedicatedNodes": 1,
        "targetLowPriorityNodes": 0,
        "taskSlotsPerNode": 2,
        "vmFillType": "Spread",
        "enableAutoScale": False,
        "enableInterNodeCommunication": False,
        "isAutoPool": False,
    }
    ours = [r["operationName"] for r in records if r["properties"].get("id") == pool_id]
    # "if the target size of the pool is greater than 0 compute nodes, a pool resize start event will follow
    # immediately after this event"
    assert ours[:2] == ["PoolCreateEvent", "PoolResizeStartEvent"]
    starts = of(records, "PoolResizeStartEvent", id=pool_id)
    assert [set(start) for start in starts] == [RESIZE] * 3
    assert [(s["nodeDeallocationOption"], s["currentDedicatedNodes"], s["targetDedicatedNodes"]) for s in starts] == [
        ("Invalid", 0, 1),
        ("Invalid", 1, 2),
        ("Terminate", 2, 1),
    ]
    completes = of(records, "PoolResizeCompleteEvent", id=pool_id)
    assert [set(done) for done in completes] == [RESIZE | {"startTime", "endTime", "resultCode", "resultMessage"}] * 3
    assert [(done["currentDedicatedNodes"], done["targetDedicatedNodes"]) for done in completes] == [
        (1, 1),
        (2, 2),
        (1, 1),
    ]
    for done in completes:
        assert (done["resultCode"], done["resultMessage"]) == ("Success", "The operation succeeded")
        assert done["startTime"] <= done["endTime"]


def test_pool_delete_start_and_complete(records: list[dict[str, Any]]) -> None:
    pool_id = scenario(records)[0]
    assert of(records, "PoolDeleteStartEvent", id=pool_id) == [{"id": pool_id}]
    (done,) = of(records, "PoolDeleteCompleteEvent", id=pool_id)
    assert set(done) == {"id", "startTime", "endTime"} and done["startTime"] <= done["endTime"]
    names = [r["operationName"] for r in records if r["properties"].get("id") == pool_id]
    assert names[-2:] == ["PoolDeleteStartEvent", "PoolDeleteCompleteEvent"]


def test_pool_autoscale(records: list[dict[str, Any]]) -> None:
    scaled = scenario(records)[3]
    (run,) = of(records, "PoolAutoScaleEvent", id=scaled)
    assert set(run) == {"id", "timestamp", "formula", "results"}  # no error: the run succeeded
    assert run["formula"] == "$TargetDedicatedNodes = 0;"
    assert "$TargetDedicatedNodes=0" in run["results"]
    assert of(records, "PoolCreateEvent", id=scaled)[0]["enableAutoScale"] is True


def test_task_start_complete_and_fail(records: list[dict[str, Any]]) -> None:
    pool_id, job_id = scenario(records)[:2]
    starts = of(records, "TaskStartEvent", jobId=job_id)
    assert [(s["id"], s["executionInfo"]) for s in starts] == [
        ("ok", {"retryCount": 0}),
        ("bad", {"retryCount": 0}),
        ("bad", {"retryCount": 1}),  # "if the task is retried ... this event will be emitted again"
    ]
    for start in starts:
        assert set(start) == TASK_HEAD | TASK_SETTINGS | {"executionInfo"}
        assert start["nodeInfo"]["poolId"] == pool_id and start["nodeInfo"]["nodeId"]
        assert (start["taskType"], start["systemTaskVersion"], start["requiredSlots"]) == ("User", 0, 1)
    (ok,) = of(records, "TaskCompleteEvent", jobId=job_id, id="ok")
    assert set(ok) == TASK_HEAD | TASK_SETTINGS | {"executionInfo"}
    assert ok["multiInstanceSettings"] == {"numberOfInstances": 1}
    assert ok["constraints"] == {"maxTaskRetryCount": 0}
    execution = ok["executionInfo"]
    assert set(execution) == {
        "startTime",
        "endTime",
        "exitCode",
        "retryCount",
        "requeueCount",
        "result",
        "schedulingError",
    }
    assert (execution["exitCode"], execution["retryCount"], execution["result"]) == (0, 0, "Success")
    assert execution["schedulingError"] == {"category": "", "code": "", "message": "", "details": []}
    assert of(records, "TaskFailEvent", id="ok", jobId=job_id) == []

    (bad,) = of(records, "TaskCompleteEvent", jobId=job_id, id="bad")
    # "This event will be emitted in addition to a task complete event", with the same body
    assert of(records, "TaskFailEvent", jobId=job_id) == [bad]
    assert bad["constraints"] == {"maxTaskRetryCount": 1}
    failed = bad["executionInfo"]
    assert (failed["exitCode"], failed["retryCount"], failed["requeueCount"], failed["result"]) == (3, 1, 0, "Failure")
    assert failed["schedulingError"]["category"] == "UserError"
    assert failed["schedulingError"]["code"] == "FailureExitCode"


def test_task_schedule_fail_when_the_job_preparation_failed(records: list[dict[str, Any]]) -> None:
    pool_id, _, blocked_job, _ = scenario(records)
    (failure,) = of(records, "TaskScheduleFailEvent", jobId=blocked_job)
    assert set(failure) == TASK_HEAD | TASK_SETTINGS | {"schedulingError"}
    assert failure["id"] == "waits" and failure["nodeInfo"]["poolId"] == pool_id
    assert failure["schedulingError"] == {
        "category": "UserError",
        "code": "JobPreparationTaskFailed",
        "message": "Task cannot run because the job preparation task failed on node",
    }


def test_special_tasks_start_task_job_preparation_and_release(records: list[dict[str, Any]]) -> None:
    pool_id, job_id, blocked_job, _ = scenario(records)
    ours = [s for s in of(records, "SpecialTaskEvent") if s["nodeInfo"]["poolId"] == pool_id]
    start_tasks = [s for s in ours if s["taskType"] == "StartTask"]
    assert start_tasks and all("jobId" not in s for s in start_tasks)  # "for pool start tasks ... omitted"
    (prep,) = [s for s in ours if s.get("jobId") == job_id and s["taskType"] == "JobPrep"]
    assert set(prep) == {"jobId", "taskName", "taskType", "nodeInfo", "executionInfo"}
    assert prep["taskName"] == "prep"
    assert set(prep["executionInfo"]) == {"startTime", "endTime", "exitCode", "result", "schedulingError"}
    assert (prep["executionInfo"]["exitCode"], prep["executionInfo"]["result"]) == (0, "success")
    assert prep["executionInfo"]["schedulingError"] == {"details": []}
    (release,) = [s for s in ours if s.get("jobId") == job_id and s["taskType"] == "JobRelease"]
    assert release["taskName"] == "release" and release["executionInfo"]["result"] == "success"
    (failed_prep,) = [s for s in ours if s.get("jobId") == blocked_job and s["taskType"] == "JobPrep"]
    assert (failed_prep["executionInfo"]["exitCode"], failed_prep["executionInfo"]["result"]) == (1, "failure")
    assert failed_prep["executionInfo"]["schedulingError"]["category"] == "UserError"
