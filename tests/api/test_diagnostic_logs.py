"""Diagnostic logs (Service Logs): each event's record, with the fields and shapes Azure Batch's reference
documents, in Azure Monitor's hourly blobs of a real Azurite, written by a real service that the official
SDK drives."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.batch import models as m

from batchyard.service.storage.linked import LinkedStorage
from tests.api.diagnostics_support import ENVELOPE, LogTarget, event_stream, of
from tests.api.helpers import (
    create_job,
    create_pool,
    idle_nodes,
    pool_exists,
    run_task,
    signed_request,
    vm_config,
)
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


def test_an_auto_pool_is_logged_as_one(logged: Service, target: LogTarget) -> None:
    client = make_client(logged.url)
    job_id = f"auto-{uuid.uuid4().hex[:6]}"
    spec = m.BatchPoolSpecification(
        vm_size="standard_d2s_v3", virtual_machine_configuration=vm_config(), target_dedicated_nodes=0
    )
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(
                auto_pool_specification=m.BatchAutoPoolSpecification(pool_lifetime_option="job", pool=spec)
            ),
        )
    )
    pool_id = client.get_job(job_id).execution_info.pool_id
    (created,) = wait_for(lambda: of(target.records(), "PoolCreateEvent", id=pool_id), what="the auto pool's record")
    assert created["isAutoPool"] is True
    (resize,) = of(target.records(), "PoolResizeStartEvent", id=pool_id)
    assert resize["isAutoPool"] is True
    client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=60)


# --- exactly once across kill -9 ----------------------------------------------------------------------


def test_no_record_is_lost_or_written_twice_across_kill_9(tmp_path: Path, storage: LinkedStorage) -> None:
    target = LogTarget(storage)
    # SQLite whatever --store says: the end reads the outbox's numbering from the database file
    svc = start_service(tmp_path / "killed", *target.serve_args(), "--database", "")
    try:
        client = make_client(svc.url)
        create_pool(client, "p", nodes=1, slots=4)
        wait_for(lambda: idle_nodes(client, "p", 1), timeout=60, what="an idle node")
        create_job(client, "j", "p")
        task_ids = [f"t{n:02d}" for n in range(24)]
        client.create_task_collection(
            "j",
            m.BatchTaskGroup(
                task_values=[m.BatchTaskCreateOptions(id=task_id, command_line="sleep 0.3") for task_id in task_ids]
            ),
        )
        for shipped_before_kill in (4, 12, 20):  # killed three times, each time while tasks run and records ship
            wait_for(
                lambda n=shipped_before_kill: len(of(target.records(), "TaskCompleteEvent")) >= n,
                timeout=60,
                what=f"{shipped_before_kill} task complete records",
            )
            svc.stop(signal.SIGKILL)
            svc.restart()
        client = make_client(svc.url)
        wait_for(
            lambda: client.get_job_task_counts("j").task_counts.completed == len(task_ids),
            timeout=120,
            what="every task completed",
        )
        wait_for(
            lambda: len(of(target.records(), "TaskCompleteEvent")) >= len(task_ids),
            timeout=30,
            what="every task complete record",
        )
        time.sleep(2)  # a duplicate would be shipped by now
        lines = [line for _, line in target.lines()]
        assert len(lines) == len(set(lines)), "a record was written twice"
        records = [orjson.loads(line) for line in lines]
        completes = Counter(body["id"] for body in of(records, "TaskCompleteEvent", jobId="j"))
        assert completes == Counter(task_ids)  # each task's completion, exactly once
        assert len(of(records, "PoolCreateEvent", id="p")) == 1
        started = {body["id"] for body in of(records, "TaskStartEvent", jobId="j")}
        assert started == set(task_ids)
        assert svc.stop() == 0
        with sqlite3.connect(svc.data_dir / "batchyard.db") as db:
            (written,) = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            (shipped,) = db.execute("SELECT v FROM meta WHERE k = 'diagnostic_logs_shipped'").fetchone()
        # Every record the service ever wrote is in the blobs once: the blobs hold as many lines as the
        # outbox numbered, and the store noted the last one shipped.
        assert len(of_lines(target)) == written == int(shipped)
    finally:
        svc.stop()


def of_lines(target: LogTarget) -> list[bytes]:
    return [line for _, line in target.lines()]


# --- the live stream ---------------------------------------------------------------------------------


def test_the_stream_shows_records_as_they_happen_and_resumes_after_last_event_id(
    logged: Service, target: LogTarget
) -> None:
    client = make_client(logged.url)
    pool_id = f"live-{uuid.uuid4().hex[:6]}"
    with event_stream(logged.url) as events:  # from now on
        create_pool(client, pool_id, nodes=0)
        first = next(events)
        assert (first.name, first.record["properties"]["id"]) == ("PoolCreateEvent", pool_id)
        second = next(events)
        assert (second.name, second.id) == ("PoolResizeStartEvent", first.id + 1)
        assert first.record == of_line(target, "PoolCreateEvent", pool_id)  # what the blob gets
    with event_stream(logged.url, last_event_id=first.id) as events:  # an EventSource reconnecting
        again = next(events)
        assert (again.id, again.name) == (second.id, "PoolResizeStartEvent")
    with event_stream(logged.url, **{"from": "0"}) as events:  # every record kept
        assert next(events).id == 1
    client.begin_delete_pool(pool_id, polling_interval=POLL)


def of_line(target: LogTarget, operation: str, resource: str) -> dict[str, Any]:
    found = wait_for(
        lambda: [r for r in target.records() if r["operationName"] == operation and r["properties"]["id"] == resource],
        what=f"the {operation} record of {resource} in the blob",
    )
    return found[0]


def test_the_stream_refuses_bad_positions(logged: Service) -> None:
    answer = signed_request(logged.url, "GET", "/_batchyard/events", headers={"last-event-id": "x"})
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidHeaderValue"
    answer = signed_request(logged.url, "GET", "/_batchyard/events", params={"from": "-1"})
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidQueryParameterValue"
    answer = signed_request(logged.url, "GET", "/_batchyard/events", key="d3Jvbmcga2V5")
    assert answer.status_code == 403 and answer.json()["code"] == "AuthenticationFailed"


# --- off by default -----------------------------------------------------------------------------------


def test_off_by_default_no_record_is_kept_and_the_stream_says_so(service: Service, client: Any) -> None:
    pool_id = f"quiet-{uuid.uuid4().hex[:6]}"
    create_pool(client, pool_id, nodes=0)
    client.begin_delete_pool(pool_id, polling_interval=POLL)
    assert _outbox_count(service) == 0
    answer = signed_request(service.url, "GET", "/_batchyard/events")
    assert answer.status_code == 409
    assert answer.json()["code"] == "OperationInvalidForCurrentState"
    assert "--diagnostic-logs" in answer.json()["message"]["value"]


def _outbox_count(service: Service) -> int:
    """Rows in the service's outbox, in whichever database it keeps its state (tests may run on PostgreSQL)."""
    url = service.args[service.args.index("--database") + 1] if "--database" in service.args else ""
    if url:
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM outbox").fetchone()
    else:
        with sqlite3.connect(service.data_dir / "batchyard.db") as db:
            row = db.execute("SELECT count(*) FROM outbox").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ("linked", "--diagnostic-logs linked needs a linked storage account"),
        ("AccountName=x", "the connection string needs AccountName and AccountKey"),
    ],
)
def test_serve_refuses_a_destination_it_cannot_write_to(tmp_path: Path, destination: str, problem: str) -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "serve", "--data-dir", str(tmp_path), "--port", "0"]
        + ["--diagnostic-logs", destination],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")},
    )
    assert answer.returncode == 2
    assert problem in answer.stderr


def test_stream_only_keeps_records_for_the_stream_and_writes_no_blob(tmp_path: Path, storage: LinkedStorage) -> None:
    target = LogTarget(storage)  # linked, but the records go nowhere but the stream
    args = target.serve_args()
    args[args.index("linked")] = "stream"
    svc = start_service(tmp_path / "stream-only", *args)
    try:
        client = make_client(svc.url)
        with event_stream(svc.url, **{"from": "0"}) as events:
            create_pool(client, "only", nodes=0)
            assert [next(events).name for _ in range(3)] == [
                "PoolCreateEvent",
                "PoolResizeStartEvent",
                "PoolResizeCompleteEvent",
            ]
        time.sleep(1.5)  # a shipper with an account would have written by now
        assert target.blobs() == {}
    finally:
        svc.stop()
