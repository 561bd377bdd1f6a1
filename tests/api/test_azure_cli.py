"""azure-cli against the service: every `az batch` data-plane command group, with flags and with --json-file.

azure-cli 2.91.0 pins azure-batch 15.0.0b1, sends api-version 2024-02-01.19.0 and sends the numbers of its
flags as JSON strings (`"targetDedicatedNodes": "2"`), which Azure accepts. az starts in about a second, so
each group runs a few commands that together send each kind of request body the group has.
Left out: az 2.91.0 has no data-plane certificate commands, and `az batch application package` is
management-plane (Azure Resource Manager); `task file show` and `node file show` fail inside az itself (its
output transform is given the SDK's raw response), and `node scheduling disable --node-disable-scheduling-option`
sends the option nested in itself (`{"nodeDisableSchedulingOption": {"nodeDisableSchedulingOption": ...}}`),
which is refused (an object where the contract has a string), so the test disables scheduling with the default option.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.api.az_support import Az, az_program
from tests.api.helpers import (
    README_ENDPOINT,
    completed,
    delete_pool_quietly,
    idle_nodes,
    pool_exists,
    readme_code_block,
)
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]
IMAGE = "canonical:0001-com-ubuntu-server-jammy:22_04-lts"
AGENT = "batch.node.ubuntu 22.04"


@pytest.fixture(scope="module")
def az(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Az:
    program = az_program()
    if program is None:
        pytest.skip("azure-cli is not installed: scripts/test.sh installs it into .venv-az (see its output)")
    return Az(program, service.url, tmp_path_factory.mktemp("azconfig"), tmp_path_factory.mktemp("azfiles"))


@pytest.fixture(scope="module")
def pool(az: Az, client: Any) -> Iterator[str]:
    """A pool of one node made with flags, every number among them sent as a JSON string by az."""
    pool_id = f"az-pool-{os.getpid()}"
    az(
        "pool", "create", "--id", pool_id, "--vm-size", "standard_d2s_v3", "--image", IMAGE,
        "--node-agent-sku-id", AGENT, "--target-dedicated-nodes", "1", "--task-slots-per-node", "2",
        "--start-task-command-line", "/bin/true", "--start-task-max-task-retry-count", "1",
        "--start-task-wait-for-success", "--enable-inter-node-communication",
        "--resize-timeout", "PT10M", "--metadata", "made=flags",
        # the account given by flags once, instead of the environment
        "--account-name", DEV_ACCOUNT_NAME, "--account-key", DEV_ACCOUNT_KEY, "--account-endpoint", az.endpoint,
    )  # fmt: skip
    try:
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the az pool's node")
        yield pool_id
    finally:
        delete_pool_quietly(client, pool_id)


def _future(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pool_commands(az: Az, pool: str, unique: Unique, client: Any) -> None:
    shown = az("pool", "show", "--pool-id", pool)
    assert (shown["targetDedicatedNodes"], shown["taskSlotsPerNode"]) == (1, 2)
    assert shown["startTask"]["maxTaskRetryCount"] == 1 and shown["startTask"]["waitForSuccess"] is True
    assert shown["metadata"] == [{"name": "made", "value": "flags"}]
    assert pool in [p["id"] for p in az("pool", "list", "--query", "[].{id:id}")]

    az("pool", "set", "--pool-id", pool, "--start-task-command-line", "/bin/echo set",
       "--start-task-max-task-retry-count", "2", "--metadata", "k=v")  # fmt: skip
    patch = {"startTask": {"commandLine": "/bin/echo json", "maxTaskRetryCount": "3"}}
    az("pool", "set", "--pool-id", pool, "--json-file", az.json_file("pool-set.json", patch))
    shown = az("pool", "show", "--pool-id", pool)
    assert shown["startTask"] == {**shown["startTask"], "commandLine": "/bin/echo json", "maxTaskRetryCount": 3}
    assert shown["metadata"] == [{"name": "k", "value": "v"}]
    az("pool", "reset", "--pool-id", pool, "--start-task-command-line", "/bin/true",
       "--start-task-max-task-retry-count", "1", "--metadata", "made=reset")  # fmt: skip
    shown = az("pool", "show", "--pool-id", pool)
    assert shown["startTask"]["maxTaskRetryCount"] == 1 and shown["metadata"] == [{"name": "made", "value": "reset"}]

    # Resize up (the command), stop the resize, and back down.
    az("pool", "resize", "--pool-id", pool, "--target-dedicated-nodes", "2", "--resize-timeout", "PT5M")
    assert az("pool", "show", "--pool-id", pool)["targetDedicatedNodes"] == 2
    az("pool", "resize", "--pool-id", pool, "--abort")
    wait_for(lambda: client.get_pool(pool).allocation_state == "steady", what="the stopped resize")
    az("pool", "resize", "--pool-id", pool, "--target-dedicated-nodes", "1", "--node-deallocation-option", "requeue")
    wait_for(lambda: client.get_pool(pool).allocation_state == "steady", what="the resize back to one node")
    assert az("pool", "show", "--pool-id", pool)["targetDedicatedNodes"] == 1

    counts = az("pool", "node-counts", "list")
    assert pool in [c["poolId"] for c in counts]
    assert isinstance(az("pool", "usage-metrics", "list"), list)
    images = az("pool", "supported-images", "list")
    assert any(i["nodeAgentSkuId"] == AGENT for i in images)

    # A pool from --json-file, with autoscale, and without any target (Azure starts such a pool at 0).
    scaled = unique("az-json-pool")
    body = {
        "id": scaled,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
            "nodeAgentSKUId": AGENT,
        },
        "taskSlotsPerNode": "2",
        "enableAutoScale": "true",
        "autoScaleFormula": "$TargetDedicatedNodes = 0;",
        "autoScaleEvaluationInterval": "PT5M",
    }
    az("pool", "create", "--json-file", az.json_file("pool.json", body))
    try:
        shown = az("pool", "show", "--pool-id", scaled)
        assert (shown["enableAutoScale"], shown["taskSlotsPerNode"], shown["targetDedicatedNodes"]) == (True, 2, 0)
        evaluated = az("pool", "autoscale", "evaluate", "--pool-id", scaled, "--auto-scale-formula",
                       "$TargetDedicatedNodes = 1;")  # fmt: skip
        assert "$TargetDedicatedNodes=1" in evaluated["results"]
        az("pool", "autoscale", "disable", "--pool-id", scaled)
        assert az("pool", "show", "--pool-id", scaled)["enableAutoScale"] is False
        az("pool", "autoscale", "enable", "--pool-id", scaled, "--auto-scale-formula", "$TargetDedicatedNodes = 0;",
           "--auto-scale-evaluation-interval", "PT6M")  # fmt: skip
        assert az("pool", "show", "--pool-id", scaled)["autoScaleEvaluationInterval"] == "PT6M"
        az("pool", "delete", "--pool-id", scaled, "--yes")
        wait_for(lambda: not pool_exists(client, scaled), what="the deleted pool to go")
    finally:
        delete_pool_quietly(client, scaled)

    # What Azure refuses is still refused, with the documented error.
    error = az.fails("pool", "resize", "--pool-id", pool, "--target-dedicated-nodes", "1.5")
    assert "InvalidPropertyValue" in error and "targetDedicatedNodes" in error


def test_low_priority_flags(az: Az, unique: Unique, client: Any) -> None:
    """`--target-low-priority-nodes` on pool create and resize: Spot/low-priority nodes, counted as such."""
    pool_id = unique("az-spot")
    az("pool", "create", "--id", pool_id, "--vm-size", "standard_d2s_v3", "--image", IMAGE,
       "--node-agent-sku-id", AGENT, "--target-dedicated-nodes", "0", "--target-low-priority-nodes", "1")  # fmt: skip
    try:
        shown = az("pool", "show", "--pool-id", pool_id)
        assert (shown["targetDedicatedNodes"], shown["targetLowPriorityNodes"]) == (0, 1)
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the low-priority node")
        (node,) = az("node", "list", "--pool-id", pool_id)
        assert node["isDedicated"] is False and node["id"].endswith("_p")

        # az itself asks for --target-dedicated-nodes on every resize (before sending anything).
        az("pool", "resize", "--pool-id", pool_id, "--target-dedicated-nodes", "0", "--target-low-priority-nodes", "2")
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="two low-priority nodes")
        wait_for(lambda: client.get_pool(pool_id).allocation_state == "steady", what="the resize to end")
        shown = az("pool", "show", "--pool-id", pool_id)
        assert (shown["targetLowPriorityNodes"], shown["currentLowPriorityNodes"]) == (2, 2)
        assert (shown["targetDedicatedNodes"], shown["currentDedicatedNodes"]) == (0, 0)
        counts = next(c for c in az("pool", "node-counts", "list") if c["poolId"] == pool_id)
        assert (counts["lowPriority"]["total"], counts["dedicated"]["total"]) == (2, 0)

        # Both kinds in one resize; numbers az sends as strings, and what Azure refuses still refused.
        az("pool", "resize", "--pool-id", pool_id, "--target-dedicated-nodes", "1", "--target-low-priority-nodes", "0")
        wait_for(
            lambda: (
                (p := client.get_pool(pool_id)).allocation_state == "steady"
                and (p.current_dedicated_nodes, p.current_low_priority_nodes) == (1, 0)
            ),
            what="one dedicated node and no low-priority one",
        )
        error = az.fails(
            "pool", "resize", "--pool-id", pool_id, "--target-dedicated-nodes", "1", "--target-low-priority-nodes", "-1"
        )
        assert "InvalidPropertyValue" in error and "targetLowPriorityNodes" in error
    finally:
        delete_pool_quietly(client, pool_id)


def test_job_commands(az: Az, pool: str, unique: Unique) -> None:
    job = unique("az-job")
    az("job", "create", "--id", job, "--pool-id", pool, "--priority", "10", "--max-parallel-tasks", "2",
       "--job-max-task-retry-count", "1", "--job-max-wall-clock-time", "PT1H", "--uses-task-dependencies",
       "--allow-task-preemption", "--metadata", "a=b", "--on-all-tasks-complete", "noaction")  # fmt: skip
    shown = az("job", "show", "--job-id", job)
    assert (shown["priority"], shown["maxParallelTasks"], shown["usesTaskDependencies"]) == (10, 2, True)
    assert shown["constraints"] == {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 1}
    az("job", "set", "--job-id", job, "--priority", "5", "--job-max-task-retry-count", "2")
    az("job", "set", "--job-id", job, "--json-file", az.json_file("job-set.json", {"maxParallelTasks": "3"}))
    shown = az("job", "show", "--job-id", job)
    assert (shown["priority"], shown["maxParallelTasks"], shown["constraints"]["maxTaskRetryCount"]) == (5, 3, 2)
    az("job", "reset", "--job-id", job, "--pool-id", pool, "--priority", "-5", "--max-parallel-tasks", "4")
    reset = az("job", "reset", "--job-id", job, "--json-file",
               az.json_file("job-reset.json", {"poolInfo": {"poolId": pool}, "priority": "7"}))  # fmt: skip
    assert reset is None
    shown = az("job", "show", "--job-id", job)
    assert (shown["priority"], shown["maxParallelTasks"], shown["metadata"]) == (7, -1, [])
    assert job in [j["id"] for j in az("job", "list")]

    az("job", "disable", "--job-id", job, "--disable-tasks", "requeue")
    assert az("job", "show", "--job-id", job)["state"] in ("disabling", "disabled")
    az("job", "enable", "--job-id", job)
    assert az("job", "task-counts", "show", "--job-id", job)["taskCounts"]["active"] == 0
    az("job", "stop", "--job-id", job, "--terminate-reason", "done here")
    # api-version 2024-02-01 calls it terminateReason (terminationReason from 2024-07-01 on).
    stopped = wait_for(lambda: (j := az("job", "show", "--job-id", job))["state"] == "completed" and j, what="stop")
    assert stopped["executionInfo"]["terminateReason"] == "done here"
    az("job", "delete", "--job-id", job, "--yes")

    # --json-file with a preparation task: its status list, and numbers as strings anywhere in the body.
    prepared = unique("az-prep")
    body = {
        "id": prepared,
        "poolInfo": {"poolId": pool},
        "priority": "1",
        "constraints": {"maxTaskRetryCount": "0"},
        "jobPreparationTask": {"commandLine": "/bin/true", "waitForSuccess": "true"},
    }
    az("job", "create", "--json-file", az.json_file("job.json", body))
    az("task", "create", "--job-id", prepared, "--task-id", "t", "--command-line", "/bin/true")
    az("job", "set", "--job-id", prepared, "--on-all-tasks-complete", "terminatejob")
    wait_for(lambda: az("job", "show", "--job-id", prepared)["state"] == "completed", what="the prepared job")
    statuses = az("job", "prep-release-status", "list", "--job-id", prepared)
    assert [s["jobPreparationTaskExecutionInfo"]["state"] for s in statuses] == ["completed"]


def test_task_commands(az: Az, pool: str, unique: Unique, client: Any) -> None:
    job = unique("az-task-job")
    az("job", "create", "--id", job, "--pool-id", pool)
    try:
        az("task", "create", "--job-id", job, "--task-id", "flags", "--command-line", "/bin/sh -c 'echo from az'",
           "--max-task-retry-count", "1", "--max-wall-clock-time", "PT1H", "--retention-time", "P1D",
           "--environment-settings", "A=1")  # fmt: skip
        tasks = [
            {"id": "json1", "commandLine": "/bin/echo one", "constraints": {"maxTaskRetryCount": "2"}},
            {"id": "json2", "commandLine": "/bin/sleep 60", "requiredSlots": "1"},
        ]
        az("task", "create", "--job-id", job, "--json-file", az.json_file("tasks.json", tasks))
        single = {"id": "json3", "commandLine": "/bin/false", "constraints": {"maxTaskRetryCount": "0"}}
        az("task", "create", "--job-id", job, "--json-file", az.json_file("task.json", single))

        done = wait_for(lambda: completed(client, job, "flags"), what="the flags task")
        assert done.execution_info.exit_code == 0 and done.constraints.max_task_retry_count == 1
        shown = az("task", "show", "--job-id", job, "--task-id", "json1")
        assert shown["constraints"]["maxTaskRetryCount"] == 2
        assert {t["id"] for t in az("task", "list", "--job-id", job)} == {"flags", "json1", "json2", "json3"}

        az("task", "reset", "--job-id", job, "--task-id", "json2", "--max-task-retry-count", "3",
           "--max-wall-clock-time", "PT2H")  # fmt: skip
        constraints = az("task", "show", "--job-id", job, "--task-id", "json2")["constraints"]
        assert (constraints["maxTaskRetryCount"], constraints["maxWallClockTime"]) == (3, "PT2H")
        az("task", "reset", "--job-id", job, "--task-id", "json2", "--json-file",
           az.json_file("task-reset.json", {"constraints": {"maxTaskRetryCount": "4"}}))  # fmt: skip
        assert az("task", "show", "--job-id", job, "--task-id", "json2")["constraints"]["maxTaskRetryCount"] == 4
        wait_for(lambda: client.get_task(job, "json2").state == "running", what="the sleeping task")
        az("task", "stop", "--job-id", job, "--task-id", "json2")
        wait_for(lambda: completed(client, job, "json3"), what="the failing task")
        az("task", "reactivate", "--job-id", job, "--task-id", "json3")
        assert az("task", "subtask", "list", "--job-id", job, "--task-id", "flags") == []

        files = {f["name"] for f in az("task", "file", "list", "--job-id", job, "--task-id", "flags")}
        assert "stdout.txt" in files
        target = az.workdir / f"{job}-stdout.txt"
        az("task", "file", "download", "--job-id", job, "--task-id", "flags", "--file-path", "stdout.txt",
           "--destination", str(target))  # fmt: skip
        assert target.read_text() == "from az\n"
        az("task", "file", "delete", "--job-id", job, "--task-id", "flags", "--file-path", "stdout.txt", "--yes")
        az("task", "delete", "--job-id", job, "--task-id", "json1", "--yes")
        assert "json1" not in {t["id"] for t in az("task", "list", "--job-id", job)}
    finally:
        az("job", "delete", "--job-id", job, "--yes")


def test_job_schedule_commands(az: Az, pool: str, unique: Unique) -> None:
    schedule = unique("az-schedule")
    az("job-schedule", "create", "--id", schedule, "--pool-id", pool, "--recurrence-interval", "PT1H",
       "--do-not-run-until", _future(1), "--priority", "3", "--job-max-task-retry-count", "1",
       "--max-parallel-tasks", "2", "--metadata", "a=b")  # fmt: skip
    shown = az("job-schedule", "show", "--job-schedule-id", schedule)
    assert shown["jobSpecification"]["priority"] == 3
    assert shown["jobSpecification"]["constraints"]["maxTaskRetryCount"] == 1
    assert shown["schedule"]["recurrenceInterval"] == "PT1H"
    az("job-schedule", "set", "--job-schedule-id", schedule, "--priority", "4", "--pool-id", pool)
    assert az("job-schedule", "show", "--job-schedule-id", schedule)["jobSpecification"]["priority"] == 4
    az("job-schedule", "reset", "--job-schedule-id", schedule, "--pool-id", pool, "--priority", "6",
       "--do-not-run-until", _future(2))  # fmt: skip
    shown = az("job-schedule", "show", "--job-schedule-id", schedule)
    assert shown["jobSpecification"]["priority"] == 6 and "recurrenceInterval" not in shown["schedule"]
    assert schedule in [s["id"] for s in az("job-schedule", "list")]
    az("job-schedule", "disable", "--job-schedule-id", schedule)
    assert az("job-schedule", "show", "--job-schedule-id", schedule)["state"] == "disabled"
    az("job-schedule", "enable", "--job-schedule-id", schedule)
    az("job-schedule", "stop", "--job-schedule-id", schedule)
    assert az("job-schedule", "show", "--job-schedule-id", schedule)["state"] in ("terminating", "completed")
    az("job-schedule", "delete", "--job-schedule-id", schedule, "--yes")

    from_file = unique("az-schedule-json")
    body = {
        "id": from_file,
        "schedule": {"doNotRunUntil": _future(1), "recurrenceInterval": "PT2H"},
        "jobSpecification": {"poolInfo": {"poolId": pool}, "priority": "8", "usesTaskDependencies": "true"},
    }
    az("job-schedule", "create", "--json-file", az.json_file("schedule.json", body))
    spec = az("job-schedule", "show", "--job-schedule-id", from_file)["jobSpecification"]
    assert (spec["priority"], spec["usesTaskDependencies"]) == (8, True)
    az("job-schedule", "delete", "--job-schedule-id", from_file, "--yes")


def test_node_commands(az: Az, pool: str, client: Any) -> None:
    (node,) = az("node", "list", "--pool-id", pool, "--query", "[].id")
    assert az("node", "show", "--pool-id", pool, "--node-id", node)["state"] == "idle"

    az("node", "user", "create", "--pool-id", pool, "--node-id", node, "--name", "azflags", "--is-admin",
       "--expiry-time", _future(1), "--password", "Secret-1234")  # fmt: skip
    user = {"name": "azjson", "isAdmin": "false", "expiryTime": _future(2), "password": "Secret-1234"}
    az("node", "user", "create", "--pool-id", pool, "--node-id", node, "--json-file", az.json_file("user.json", user))
    az("node", "user", "reset", "--pool-id", pool, "--node-id", node, "--user-name", "azflags",
       "--expiry-time", _future(3), "--password", "Other-1234")  # fmt: skip
    az("node", "user", "delete", "--pool-id", pool, "--node-id", node, "--user-name", "azflags", "--yes")
    az("node", "user", "delete", "--pool-id", pool, "--node-id", node, "--user-name", "azjson", "--yes")
    settings = az("node", "remote-login-settings", "show", "--pool-id", pool, "--node-id", node)
    assert settings["remoteLoginPort"] > 0

    az("node", "scheduling", "disable", "--pool-id", pool, "--node-id", node)
    assert az("node", "show", "--pool-id", pool, "--node-id", node)["schedulingState"] == "disabled"
    az("node", "scheduling", "enable", "--pool-id", pool, "--node-id", node)

    files = {f["name"] for f in az("node", "file", "list", "--pool-id", pool, "--node-id", node, "--recursive")}
    assert "startup/stdout.txt" in files
    target = az.workdir / "node-stdout.txt"
    az("node", "file", "download", "--pool-id", pool, "--node-id", node, "--file-path", "startup/stdout.txt",
       "--destination", str(target))  # fmt: skip
    assert target.exists()
    az("node", "file", "delete", "--pool-id", pool, "--node-id", node, "--file-path", "startup/stdout.txt", "--yes")

    # Service logs: answered at once (the times read as Azure reads them); a container nobody listens on
    # shows afterwards as the node's error, which the reboot below clears.
    uploaded = az("node", "service-logs", "upload", "--pool-id", pool, "--node-id", node,
                  "--container-url", "http://127.0.0.1:9/logs?sig=x", "--start-time", _future(-1))  # fmt: skip
    assert uploaded["numberOfFilesUploaded"] == 1
    assert uploaded["virtualDirectoryName"].startswith(f"{pool}/{node}/")
    wait_for(
        lambda: (
            "UploadBatchServiceLogsFailed"
            in [e["code"] for e in az("node", "show", "--pool-id", pool, "--node-id", node).get("errors") or []]
        ),
        what="the failed upload as the node's error",
    )

    az("node", "reboot", "--pool-id", pool, "--node-id", node, "--node-reboot-option", "requeue")
    wait_for(lambda: idle_nodes(client, pool, 1), what="the node back from its reboot")
    assert not client.get_node(pool, node).errors
    az("node", "delete", "--pool-id", pool, "--node-list", node, "--node-deallocation-option", "requeue")
    wait_for(lambda: client.get_pool(pool).allocation_state == "steady", what="the node removed")


def test_application_summary_commands(az: Az) -> None:
    assert az("application", "summary", "list") == []
    error = az.fails("application", "summary", "show", "--application-id", "nothing-here")
    assert "ApplicationNotFound" in error, error


def test_the_readme_az_example(az: Az, tmp_path: Path) -> None:
    script = readme_code_block("The same with `az batch`", "sh")
    assert script.count(README_ENDPOINT) == 1
    env = az.env() | {"PATH": f"{az.program.parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-e", "-c", script.replace(README_ENDPOINT, az.endpoint)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "hello from az" in result.stdout, result.stdout
