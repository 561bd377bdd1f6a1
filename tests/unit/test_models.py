"""Request-body parsing: schema validation, service defaults, seed-era aliases and semantic rules."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from batchyard.service import models
from batchyard.service.errors import BatchError
from batchyard.service.models import UNLIMITED, schema

IMAGE = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}
VMC = {"imageReference": IMAGE, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}


def pool_body(**extra: Any) -> dict[str, Any]:
    body = {"id": "pool-1", "vmSize": "Standard_D2s_v3", "virtualMachineConfiguration": copy.deepcopy(VMC)}
    body["targetDedicatedNodes"] = 1
    body.update(extra)
    return body


def job_body(**extra: Any) -> dict[str, Any]:
    return {"id": "job-1", "poolInfo": {"poolId": "pool-1"}, **extra}


def task_body(**extra: Any) -> dict[str, Any]:
    return {"id": "task-1", "commandLine": "/bin/sh -c 'echo hi'", **extra}


def raises(code: str, prop: str, fn: Callable[..., Any], *args: Any) -> BatchError:
    with pytest.raises(BatchError) as info:
        fn(*args)
    err = info.value
    assert (err.code, err.values.get("PropertyName")) == (code, prop), err.values
    assert err.status == 400
    return err


def invalid(prop: str, fn: Callable[..., Any], *args: Any) -> BatchError:
    return raises("InvalidPropertyValue", prop, fn, *args)


def missing(prop: str, fn: Callable[..., Any], *args: Any) -> BatchError:
    return raises("MissingRequiredProperty", prop, fn, *args)


# --- defaults ------------------------------------------------------------------------------------------


def test_pool_create_defaults() -> None:
    pool = models.parse_pool_create(pool_body())
    assert pool == {
        "id": "pool-1",
        "vmSize": "standard_d2s_v3",  # the service reports vmSize lower-cased
        "virtualMachineConfiguration": {
            "imageReference": {**IMAGE, "version": "latest"},
            "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        },
        "targetDedicatedNodes": 1,
        "targetLowPriorityNodes": 0,
        "taskSlotsPerNode": 1,
        "taskSchedulingPolicy": {"nodeFillType": "spread"},
        "resizeTimeout": "PT15M",
        "enableAutoScale": False,
        "enableInterNodeCommunication": False,
        "targetNodeCommunicationMode": "default",
    }


def test_pool_start_task_defaults() -> None:
    pool = models.parse_pool_create(pool_body(startTask={"commandLine": "setup.sh"}))
    assert pool["startTask"] == {
        "commandLine": "setup.sh",
        "maxTaskRetryCount": 0,
        "waitForSuccess": True,
        "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
    }


def test_autoscale_pool_defaults() -> None:
    body = pool_body(enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes = 1;")
    del body["targetDedicatedNodes"]
    pool = models.parse_pool_create(body)
    assert pool["autoScaleEvaluationInterval"] == "PT15M"
    assert (pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"]) == (0, 0)


def test_job_create_defaults() -> None:
    job = models.parse_job_create(job_body())
    assert job == {
        "id": "job-1",
        "poolInfo": {"poolId": "pool-1"},
        "priority": 0,
        "maxParallelTasks": -1,
        "allowTaskPreemption": False,
        "usesTaskDependencies": False,
        "onAllTasksComplete": "noaction",
        "onTaskFailure": "noaction",
        "constraints": {"maxWallClockTime": UNLIMITED, "maxTaskRetryCount": 0},
    }


def test_job_special_task_defaults() -> None:
    job = models.parse_job_create(
        job_body(
            constraints={"maxTaskRetryCount": 3},
            jobManagerTask={"id": "manager", "commandLine": "manage"},
            jobPreparationTask={"commandLine": "prep"},
            jobReleaseTask={"commandLine": "release"},
        )
    )
    auto_user = {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert job["constraints"] == {"maxTaskRetryCount": 3, "maxWallClockTime": UNLIMITED}
    assert job["jobManagerTask"] == {
        "id": "manager",
        "commandLine": "manage",
        "killJobOnCompletion": True,
        "runExclusive": True,
        "allowLowPriorityNode": True,
        "requiredSlots": 1,
        "constraints": {"maxWallClockTime": UNLIMITED, "retentionTime": "P7D", "maxTaskRetryCount": 3},
        "userIdentity": auto_user,
    }
    assert job["jobPreparationTask"] == {
        "commandLine": "prep",
        "id": "jobpreparation",
        "waitForSuccess": True,
        "rerunOnNodeRebootAfterSuccess": True,
        "constraints": {"maxWallClockTime": UNLIMITED, "retentionTime": "P7D", "maxTaskRetryCount": 0},
        "userIdentity": auto_user,
    }
    assert job["jobReleaseTask"] == {
        "commandLine": "release",
        "id": "jobrelease",
        "maxWallClockTime": "PT15M",
        "retentionTime": "P7D",
        "userIdentity": auto_user,
    }


def test_auto_pool_defaults() -> None:
    spec = {
        "poolLifetimeOption": "Job",
        "pool": {"vmSize": "STANDARD_D2_V3", "virtualMachineConfiguration": VMC},
    }
    spec["pool"]["targetDedicatedNodes"] = 2
    job = models.parse_job_create({"id": "j", "poolInfo": {"autoPoolSpecification": spec}})
    auto = job["poolInfo"]["autoPoolSpecification"]
    assert auto["poolLifetimeOption"] == "job" and auto["keepAlive"] is False
    assert auto["pool"]["vmSize"] == "standard_d2_v3"
    assert auto["pool"]["taskSlotsPerNode"] == 1 and auto["pool"]["resizeTimeout"] == "PT15M"


def test_task_create_defaults() -> None:
    task = models.parse_task_create(task_body())
    assert task == {
        "id": "task-1",
        "commandLine": "/bin/sh -c 'echo hi'",
        "requiredSlots": 1,
        "constraints": {"maxWallClockTime": UNLIMITED, "retentionTime": "P7D"},  # retry count: from the job
        "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
    }


def test_task_keeps_given_values() -> None:
    task = models.parse_task_create(
        task_body(
            constraints={"maxTaskRetryCount": 2, "maxWallClockTime": "PT1H"},
            requiredSlots=2,
            userIdentity={"username": "batchuser"},
            multiInstanceSettings=None,
        )
    )
    assert task["constraints"] == {"maxTaskRetryCount": 2, "maxWallClockTime": "PT1H", "retentionTime": "P7D"}
    assert task["requiredSlots"] == 2 and task["userIdentity"] == {"username": "batchuser"}
    assert "multiInstanceSettings" not in task  # JSON null = not given


def test_multi_instance_defaults() -> None:
    task = models.parse_task_create(task_body(multiInstanceSettings={"coordinationCommandLine": "coord"}))
    assert task["multiInstanceSettings"] == {"coordinationCommandLine": "coord", "numberOfInstances": 1}


def test_task_collection() -> None:
    tasks = models.parse_task_collection({"value": [task_body(id=f"t{i}") for i in range(3)]})
    assert [t["id"] for t in tasks] == ["t0", "t1", "t2"]
    assert all(t["requiredSlots"] == 1 for t in tasks)


def test_pool_update_replace_resize_remove() -> None:
    assert models.parse_pool_update({"metadata": [], "targetNodeCommunicationMode": "Simplified"}) == {
        "metadata": [],
        "targetNodeCommunicationMode": "simplified",
    }
    update = models.parse_pool_update({"startTask": {"commandLine": "x"}, "vmSize": "Standard_A1_v2"})
    assert update["startTask"]["waitForSuccess"] is True and update["vmSize"] == "standard_a1_v2"
    assert models.parse_pool_replace({"applicationPackageReferences": [], "metadata": []}) == {
        "applicationPackageReferences": [],
        "metadata": [],
        "certificateReferences": [],
        "targetNodeCommunicationMode": "default",
    }
    assert models.parse_pool_resize({"targetDedicatedNodes": 3}) == {
        "targetDedicatedNodes": 3,
        "resizeTimeout": "PT15M",
        "nodeDeallocationOption": "requeue",
    }
    assert models.parse_pool_remove_nodes({"nodeList": ["n1"], "nodeDeallocationOption": "TaskCompletion"}) == {
        "nodeList": ["n1"],
        "nodeDeallocationOption": "taskcompletion",
        "resizeTimeout": "PT15M",
    }


def test_job_update_replace_terminate_disable() -> None:
    assert models.parse_job_update({"priority": 5}) == {"priority": 5}
    assert models.parse_job_update({"constraints": {"maxTaskRetryCount": 1}})["constraints"] == {
        "maxTaskRetryCount": 1,
        "maxWallClockTime": UNLIMITED,
    }
    replaced = models.parse_job_replace({"poolInfo": {"poolId": "p"}, "state": "completed", "id": "other"})
    assert replaced == {
        "poolInfo": {"poolId": "p"},
        "priority": 0,
        "allowTaskPreemption": False,
        "maxParallelTasks": -1,
        "constraints": {"maxWallClockTime": UNLIMITED, "maxTaskRetryCount": 0},
        "onAllTasksComplete": "noaction",
        "metadata": [],
    }
    assert models.parse_job_terminate(None) == {"terminateReason": "UserTerminate"}
    assert models.parse_job_terminate({}) == {"terminateReason": "UserTerminate"}
    assert models.parse_job_terminate({"terminateReason": "done"}) == {"terminateReason": "done"}
    assert models.parse_job_disable({"disableTasks": "Requeue"}) == {"disableTasks": "requeue"}
    missing("disableTasks", models.parse_job_disable, {})


def test_task_update() -> None:
    assert models.parse_task_update({"constraints": {"maxTaskRetryCount": 4}, "commandLine": "ignored"}) == {
        "constraints": {"maxTaskRetryCount": 4, "maxWallClockTime": UNLIMITED, "retentionTime": "P7D"}
    }
    assert models.parse_task_update({}) == {"constraints": {"maxWallClockTime": UNLIMITED, "retentionTime": "P7D"}}


def test_job_schedules() -> None:
    body = {
        "id": "sched",
        "schedule": {"recurrenceInterval": "PT1H"},
        "jobSpecification": {"poolInfo": {"poolId": "p"}},
    }
    schedule = models.parse_job_schedule_create(body)
    assert schedule["jobSpecification"]["priority"] == 0
    assert schedule["jobSpecification"]["constraints"]["maxWallClockTime"] == UNLIMITED
    invalid("id", models.parse_job_schedule_create, {**body, "id": "bad id"})
    invalid(
        "schedule.recurrenceInterval",
        models.parse_job_schedule_create,
        {**body, "schedule": {"recurrenceInterval": "PT30S"}},
    )
    replaced = models.parse_job_schedule_replace({"jobSpecification": {"poolInfo": {"poolId": "p"}}})
    assert replaced["schedule"] == {} and replaced["metadata"] == []
    assert models.parse_job_schedule_update({"metadata": [{"name": "a", "value": "b"}]}) == {
        "metadata": [{"name": "a", "value": "b"}]
    }


def test_node_operations() -> None:
    assert models.parse_node_reboot(None) == {"nodeRebootOption": "requeue"}
    assert models.parse_node_reboot({"nodeRebootOption": "TaskCompletion"}) == {"nodeRebootOption": "taskcompletion"}
    assert models.parse_node_reimage({}) == {"nodeReimageOption": "requeue"}
    assert models.parse_node_disable_scheduling(None) == {"nodeDisableSchedulingOption": "requeue"}
    assert models.parse_node_deallocate(None) == {"nodeDeallocateOption": "requeue"}
    assert models.parse_node_user_create({"name": "me", "sshPublicKey": "ssh-rsa AAA"}) == {
        "name": "me",
        "sshPublicKey": "ssh-rsa AAA",
        "isAdmin": False,
    }
    invalid("expiryTime", models.parse_node_user_replace, {"expiryTime": "tomorrow"})
    missing("startTime", models.parse_upload_batch_service_logs, {"containerUrl": "https://x/c"})
    invalid("nodeRebootOption", models.parse_node_reboot, {"nodeRebootOption": "now"})


def test_autoscale_operations() -> None:
    assert models.parse_pool_enable_autoscale({"autoScaleFormula": "f", "autoScaleEvaluationInterval": "PT5M"}) == {
        "autoScaleFormula": "f",
        "autoScaleEvaluationInterval": "PT5M",
    }
    invalid(
        "autoScaleEvaluationInterval",
        models.parse_pool_enable_autoscale,
        {"autoScaleEvaluationInterval": "PT1M"},
    )
    missing("autoScaleFormula", models.parse_pool_evaluate_autoscale, {})


# --- aliases -------------------------------------------------------------------------------------------


def test_seed_pool_aliases() -> None:
    body = pool_body(targetDedicated=3, maxTasksPerNode=4)
    del body["targetDedicatedNodes"]
    pool = models.parse_pool_create(body)
    assert pool["targetDedicatedNodes"] == 3 and pool["taskSlotsPerNode"] == 4
    assert "targetDedicated" not in pool and "maxTasksPerNode" not in pool
    # The new name wins when both are given.
    pool = models.parse_pool_create(
        pool_body(targetDedicated=3, targetDedicatedNodes=5, maxTasksPerNode=4, taskSlotsPerNode=2)
    )
    assert pool["targetDedicatedNodes"] == 5 and pool["taskSlotsPerNode"] == 2
    assert models.parse_pool_resize({"targetDedicated": 7})["targetDedicatedNodes"] == 7


def test_seed_rest_example_pool() -> None:
    # The seed's REST example, moved to a Linux image (cloudServiceConfiguration cannot be mapped).
    body = {
        "odata.metadata": "https://myaccount.myregion.batch.azure.com/$metadata#pools/@Element",
        "id": "mypool",
        "vmSize": "large",
        "virtualMachineConfiguration": VMC,
        "targetDedicated": 2,
        "maxTasksPerNode": 4,
        "enableInterNodeCommunication": True,
    }
    pool = models.parse_pool_create(body)
    assert (pool["vmSize"], pool["targetDedicatedNodes"], pool["taskSlotsPerNode"]) == ("large", 2, 4)
    assert "odata.metadata" not in pool


@pytest.mark.parametrize("where", ["startTask", "task", "jobManagerTask", "jobPreparationTask", "jobReleaseTask"])
def test_run_elevated_alias(where: str) -> None:
    admin = {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    spec = {"commandLine": "x", "runElevated": True}
    if where == "startTask":
        got = models.parse_pool_create(pool_body(startTask=spec))["startTask"]
    elif where == "task":
        got = models.parse_task_create({"id": "t", **spec})
    else:
        job = job_body(**{where: {"id": "jm", **spec} if where == "jobManagerTask" else spec})
        if where == "jobReleaseTask":
            job["jobPreparationTask"] = {"commandLine": "p"}
        got = models.parse_job_create(job)[where]
    assert got["userIdentity"] == admin and "runElevated" not in got


def test_run_elevated_does_not_override_user_identity() -> None:
    task = models.parse_task_create(task_body(runElevated=True, userIdentity={"username": "me"}))
    assert task["userIdentity"] == {"username": "me"}
    task = models.parse_task_create(task_body(runElevated=False))
    assert task["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    invalid("runElevated", models.parse_task_create, task_body(runElevated="yes"))


def test_old_wire_names() -> None:
    task = models.parse_task_create(
        task_body(
            userIdentity={"userName": "batchuser"},  # pre-2024 SDKs: userName; the contract: username
            resourceFiles=[{"blobSource": "https://acct.blob.core.windows.net/c/f.txt", "filePath": "f.txt"}],
        )
    )
    assert task["userIdentity"] == {"username": "batchuser"}
    assert task["resourceFiles"] == [{"httpUrl": "https://acct.blob.core.windows.net/c/f.txt", "filePath": "f.txt"}]


def test_cloud_service_configuration_is_rejected_clearly() -> None:
    body = pool_body(cloudServiceConfiguration={"osFamily": "4", "targetOSVersion": "*"})
    del body["virtualMachineConfiguration"]
    err = invalid("cloudServiceConfiguration", models.parse_pool_create, body)
    assert "virtualMachineConfiguration" in err.values["Reason"]


# --- schema behaviour ----------------------------------------------------------------------------------


def test_unknown_readonly_and_null_properties_are_dropped() -> None:
    pool = models.parse_pool_create(
        pool_body(
            url="https://x/pools/p",
            state="active",
            currentDedicatedNodes=4,
            someFutureField={"a": 1},
            displayName=None,
            virtualMachineConfiguration={**VMC, "imageReference": {**IMAGE, "exactVersion": "1.2.3"}},
        )
    )
    for name in ("url", "state", "currentDedicatedNodes", "someFutureField", "displayName"):
        assert name not in pool
    assert "exactVersion" not in pool["virtualMachineConfiguration"]["imageReference"]  # readOnly
    assert models.parse_job_replace(job_body(jobManagerTask={"id": "x", "commandLine": "y"}, onTaskFailure="x")) == (
        models.parse_job_replace({"poolInfo": {"poolId": "pool-1"}})
    )


def test_enums_are_case_insensitive_and_canonical() -> None:
    pool = models.parse_pool_create(
        pool_body(taskSchedulingPolicy={"nodeFillType": "Pack", "jobDefaultOrder": "CreationTime"})
    )
    # "creationtime": as Azure (and the SDKs' enums) spell it, where the contract writes "creationTime"
    assert pool["taskSchedulingPolicy"] == {"nodeFillType": "pack", "jobDefaultOrder": "creationtime"}
    job = models.parse_job_create(
        job_body(onAllTasksComplete="terminateJob", onTaskFailure="PerformExitOptionsJobAction")
    )
    assert (job["onAllTasksComplete"], job["onTaskFailure"]) == (
        "terminatejob",
        "performexitoptionsjobaction",
    )
    err = invalid(
        "taskSchedulingPolicy.nodeFillType",
        models.parse_pool_create,
        pool_body(taskSchedulingPolicy={"nodeFillType": "fill"}),
    )
    assert err.values["PropertyValue"] == "fill" and "spread" in err.values["Reason"]


def test_property_names_are_case_insensitive() -> None:
    task = models.parse_task_create({"ID": "t", "CommandLine": "x", "Constraints": {"MaxTaskRetryCount": 1}})
    assert task["id"] == "t" and task["commandLine"] == "x" and task["constraints"]["maxTaskRetryCount"] == 1


@pytest.mark.parametrize(
    ("body", "prop"),
    [
        (task_body(requiredSlots=True), "requiredSlots"),
        (task_body(requiredSlots=2.5), "requiredSlots"),
        (task_body(requiredSlots=2**31), "requiredSlots"),
        (task_body(commandLine=5), "commandLine"),
        (task_body(resourceFiles={"httpUrl": "x"}), "resourceFiles"),
        (task_body(resourceFiles=["x"]), "resourceFiles[0]"),
        (task_body(constraints={"maxWallClockTime": "1 hour"}), "constraints.maxWallClockTime"),
        (task_body(constraints={"maxWallClockTime": 3600}), "constraints.maxWallClockTime"),
        (task_body(constraints={"retentionTime": "-PT1H"}), "constraints.retentionTime"),
        (task_body(environmentSettings=[{"name": "A", "value": 1}]), "environmentSettings[0].value"),
        (
            task_body(dependsOn={"taskIdRanges": [{"start": "one", "end": 2}]}),
            "dependsOn.taskIdRanges[0].start",
        ),
    ],
)
def test_type_errors_name_the_property(body: dict[str, Any], prop: str) -> None:
    invalid(prop, models.parse_task_create, body)


def test_integral_float_is_an_integer() -> None:
    assert models.parse_task_create(task_body(requiredSlots=2.0))["requiredSlots"] == 2


@pytest.mark.parametrize(("given", "read"), [("2", 2), (" +2\t", 2), ("+3", 3), ("007", 7), ("2147483647", 2**31 - 1)])
def test_integer_strings_are_integers(given: str, read: int) -> None:
    # azure-cli sends every number it takes from a flag as a JSON string; .NET's int.Parse reads them.
    assert models.parse_task_create(task_body(requiredSlots=given))["requiredSlots"] == read


@pytest.mark.parametrize("given", ["2.5", "2.0", "1e3", "0x10", "abc", "", " ", "1_000", "1,000", "٣", "2147483648"])
def test_integer_strings_that_net_refuses(given: str) -> None:
    invalid("requiredSlots", models.parse_task_create, task_body(requiredSlots=given))


def test_every_integer_and_boolean_property_reads_strings() -> None:
    """One rule for every property, wherever it is nested: a pool as azure-cli sends it."""
    body = pool_body(
        targetDedicatedNodes="2",
        taskSlotsPerNode="4",
        enableInterNodeCommunication="True",
        startTask={"commandLine": "x", "maxTaskRetryCount": "-1", "waitForSuccess": "false"},
    )
    pool = models.parse_pool_create(body)
    assert (pool["targetDedicatedNodes"], pool["taskSlotsPerNode"], pool["enableInterNodeCommunication"]) == (
        2,
        4,
        True,
    )
    assert (pool["startTask"]["maxTaskRetryCount"], pool["startTask"]["waitForSuccess"]) == (-1, False)
    resize = models.parse_pool_resize({"targetDedicatedNodes": "3", "targetLowPriorityNodes": "0"})
    assert (resize["targetDedicatedNodes"], resize["targetLowPriorityNodes"]) == (3, 0)
    job = models.parse_job_create(job_body(priority="10", constraints={"maxTaskRetryCount": "1"}))
    assert (job["priority"], job["constraints"]["maxTaskRetryCount"]) == (10, 1)
    # The range rules apply to the number read.
    invalid("targetDedicatedNodes", models.parse_pool_resize, {"targetDedicatedNodes": "-1"})
    invalid("priority", models.parse_job_create, job_body(priority="1001"))


@pytest.mark.parametrize("given", ["yes", "1", "0", "", "t", 1, 0])
def test_boolean_forms_that_net_refuses(given: Any) -> None:
    invalid(
        "jobManagerTask.runExclusive",
        models.parse_job_create,
        job_body(jobManagerTask={"id": "jm", "commandLine": "x", "runExclusive": given}),
    )


def test_run_elevated_alias_reads_boolean_strings() -> None:
    task = models.parse_task_create(task_body(runElevated=" TRUE "))
    assert task["userIdentity"]["autoUser"]["elevationLevel"] == "admin"
    invalid("runElevated", models.parse_task_create, task_body(runElevated="1"))


@pytest.mark.parametrize(
    "given",
    [
        "2030-01-01T00:00:00Z",
        "2030-01-01T00:00:00.1234567+01:00",
        "2030-01-01",
        "2030-01-01 10:00",
        " 2030-01-01T00:00:00z ",
    ],
)
def test_date_times_net_reads(given: str) -> None:
    user = models.parse_node_user_create({"name": "u", "expiryTime": given})
    assert user["expiryTime"] == given.strip()


@pytest.mark.parametrize(
    "given",
    [
        "2030-W01-1",
        "20300101T000000Z",
        "2030-01-01T00Z",
        "2030-01-01T00:00:00+0100",
        "tomorrow",
        "",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_date_times_net_refuses(given: str) -> None:
    invalid("expiryTime", models.parse_node_user_create, {"name": "u", "expiryTime": given})


def test_canonical_durations_and_date_times() -> None:
    task = models.parse_task_create(task_body(constraints={"maxWallClockTime": "PT3600S", "retentionTime": "P0DT48H"}))
    assert task["constraints"] == {"maxWallClockTime": "PT1H", "retentionTime": "P2D"}
    user = models.parse_node_user_create({"name": "u", "expiryTime": "2030-01-01T00:00:00.1234567Z"})
    assert user["expiryTime"] == "2030-01-01T00:00:00.1234567Z"
    invalid("expiryTime", models.parse_node_user_create, {"name": "u", "expiryTime": "2030-13-01T00:00:00Z"})


def test_body_must_be_an_object() -> None:
    for body in (None, [], "x", 5):
        with pytest.raises(BatchError) as info:
            models.parse_task_create(body)
        assert info.value.code == "InvalidRequestBody"


def test_deeply_nested_garbage_is_a_clean_error() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    err = invalid("id", models.parse_task_create, {"id": deep, "commandLine": "x"})
    assert len(err.values["PropertyValue"]) <= 256
    deep_object: Any = 1
    for _ in range(5000):
        deep_object = {"a": deep_object}
    assert models.parse_task_create(task_body(unknown=deep_object))["id"] == "task-1"
    invalid("commandLine", models.parse_task_create, task_body(commandLine=deep_object))


def test_error_shape() -> None:
    err = missing("commandLine", models.parse_task_create, {"id": "t"})
    assert err.body()["values"] == [{"key": "PropertyName", "value": "commandLine"}]


def test_validate_generic_and_unknown_definition() -> None:
    assert models.validate("BatchMetadataItem", {"name": "a", "value": "b", "x": 1}) == {
        "name": "a",
        "value": "b",
    }
    missing("meta.value", models.validate, "BatchMetadataItem", {"name": "a"}, "meta")
    with pytest.raises(KeyError):
        models.validate("NoSuchDefinition", {})


def test_every_definition_compiles() -> None:
    for name in schema.definitions():
        schema.compiled(name)


# --- semantic rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "tâche", "a/b", "a.b"])
def test_ids(bad: str) -> None:
    invalid("id", models.parse_pool_create, pool_body(id=bad))
    invalid("id", models.parse_job_create, job_body(id=bad))
    invalid("id", models.parse_task_create, task_body(id=bad))
    invalid("value[1].id", models.parse_task_collection, {"value": [task_body(), task_body(id=bad)]})
    invalid("jobManagerTask.id", models.parse_job_create, job_body(jobManagerTask={"id": bad, "commandLine": "x"}))


def test_valid_ids() -> None:
    for good in ("a", "A-b_9", "x" * 64):
        assert models.parse_task_create(task_body(id=good))["id"] == good


def test_required_properties() -> None:
    missing("id", models.parse_task_create, {"commandLine": "x"})
    missing("commandLine", models.parse_task_create, {"id": "t"})
    missing("value[0].commandLine", models.parse_task_collection, {"value": [{"id": "t"}]})
    missing("poolInfo", models.parse_job_create, {"id": "j"})
    missing("vmSize", models.parse_pool_create, {k: v for k, v in pool_body().items() if k != "vmSize"})
    missing(
        "virtualMachineConfiguration",
        models.parse_pool_create,
        {k: v for k, v in pool_body().items() if k != "virtualMachineConfiguration"},
    )
    missing(
        "virtualMachineConfiguration.nodeAgentSKUId",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={"imageReference": IMAGE}),
    )
    missing(
        "virtualMachineConfiguration.imageReference",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={"nodeAgentSKUId": "batch.node.ubuntu 22.04"}),
    )
    missing("startTask.commandLine", models.parse_pool_create, pool_body(startTask={}))
    missing(
        "metadata[1].name",
        models.parse_job_create,
        job_body(metadata=[{"name": "a", "value": "b"}, {"value": "c"}]),
    )
    missing("metadata", models.parse_pool_replace, {"applicationPackageReferences": []})


def test_empty_command_line_and_names() -> None:
    invalid("commandLine", models.parse_task_create, task_body(commandLine="  "))
    invalid("environmentSettings[0].name", models.parse_task_create, task_body(environmentSettings=[{"name": ""}]))
    invalid("metadata[0].name", models.parse_job_create, job_body(metadata=[{"name": "", "value": "v"}]))


def test_job_priority_and_parallelism() -> None:
    assert models.parse_job_create(job_body(priority=-1000))["priority"] == -1000
    assert models.parse_job_create(job_body(priority=1000))["priority"] == 1000
    invalid("priority", models.parse_job_create, job_body(priority=1001))
    invalid("priority", models.parse_job_update, {"priority": -1001})
    invalid("priority", models.parse_job_replace, {"poolInfo": {"poolId": "p"}, "priority": 5000})
    invalid("maxParallelTasks", models.parse_job_create, job_body(maxParallelTasks=0))
    assert models.parse_job_update({"maxParallelTasks": 4}) == {"maxParallelTasks": 4}


def test_pool_info_exactly_one() -> None:
    auto = {
        "poolLifetimeOption": "job",
        "pool": {"vmSize": "small", "virtualMachineConfiguration": VMC, "targetDedicatedNodes": 1},
    }
    invalid(
        "poolInfo.autoPoolSpecification",
        models.parse_job_create,
        job_body(poolInfo={"poolId": "p", "autoPoolSpecification": auto}),
    )
    missing("poolInfo.poolId", models.parse_job_create, job_body(poolInfo={}))
    missing(
        "poolInfo.autoPoolSpecification.pool",
        models.parse_job_create,
        job_body(poolInfo={"autoPoolSpecification": {"poolLifetimeOption": "job"}}),
    )
    invalid(
        "poolInfo.autoPoolSpecification.pool.taskSlotsPerNode",
        models.parse_job_create,
        job_body(poolInfo={"autoPoolSpecification": {**auto, "pool": {**auto["pool"], "taskSlotsPerNode": 0}}}),
    )


def test_task_slots_per_node() -> None:
    assert models.parse_pool_create(pool_body(taskSlotsPerNode=256))["taskSlotsPerNode"] == 256
    invalid("taskSlotsPerNode", models.parse_pool_create, pool_body(taskSlotsPerNode=0))
    invalid("taskSlotsPerNode", models.parse_pool_create, pool_body(taskSlotsPerNode=257))
    invalid("taskSlotsPerNode", models.parse_pool_update, {"taskSlotsPerNode": 300})


def test_retry_counts_and_slots() -> None:
    assert (
        models.parse_task_create(task_body(constraints={"maxTaskRetryCount": -1}))["constraints"]["maxTaskRetryCount"]
        == -1
    )
    invalid(
        "constraints.maxTaskRetryCount",
        models.parse_task_create,
        task_body(constraints={"maxTaskRetryCount": -2}),
    )
    invalid(
        "constraints.maxTaskRetryCount",
        models.parse_job_create,
        job_body(constraints={"maxTaskRetryCount": -5}),
    )
    invalid(
        "startTask.maxTaskRetryCount",
        models.parse_pool_create,
        pool_body(startTask={"commandLine": "x", "maxTaskRetryCount": -2}),
    )
    invalid("requiredSlots", models.parse_task_create, task_body(requiredSlots=0))
    invalid(
        "jobManagerTask.requiredSlots",
        models.parse_job_create,
        job_body(jobManagerTask={"id": "m", "commandLine": "x", "requiredSlots": 0}),
    )
    invalid(
        "requiredSlots",
        models.parse_task_create,
        task_body(requiredSlots=2, multiInstanceSettings={"coordinationCommandLine": "c"}),
    )
    invalid(
        "multiInstanceSettings.numberOfInstances",
        models.parse_task_create,
        task_body(multiInstanceSettings={"coordinationCommandLine": "c", "numberOfInstances": 0}),
    )


@pytest.mark.parametrize(
    ("resource_file", "code", "prop"),
    [
        ({"filePath": "x"}, "InvalidPropertyValue", "resourceFiles[2]"),
        (
            {"httpUrl": "https://a/b", "storageContainerUrl": "https://a/c"},
            "InvalidPropertyValue",
            "resourceFiles[2].storageContainerUrl",
        ),
        (
            {"autoStorageContainerName": "c", "httpUrl": "https://a/b", "filePath": "b"},
            "InvalidPropertyValue",
            "resourceFiles[2].autoStorageContainerName",
        ),
        ({"httpUrl": "https://a/b"}, "MissingRequiredProperty", "resourceFiles[2].filePath"),
        (
            {"httpUrl": "https://a/b", "filePath": "b", "blobPrefix": "p"},
            "InvalidPropertyValue",
            "resourceFiles[2].blobPrefix",
        ),
        ({"httpUrl": "https://a/b", "filePath": "../b"}, "InvalidPropertyValue", "resourceFiles[2].filePath"),
        (
            {"httpUrl": "https://a/b", "filePath": "/etc/b"},
            "InvalidPropertyValue",
            "resourceFiles[2].filePath",
        ),
        (
            {"httpUrl": "https://a/b", "filePath": "b", "fileMode": "rwx"},
            "InvalidPropertyValue",
            "resourceFiles[2].fileMode",
        ),
    ],
)
def test_resource_files(resource_file: dict[str, Any], code: str, prop: str) -> None:
    good = {"httpUrl": "https://a/b", "filePath": "b"}
    raises(code, prop, models.parse_task_create, task_body(resourceFiles=[good, good, resource_file]))


def test_resource_file_sources() -> None:
    files = [
        {"httpUrl": "https://a/b", "filePath": "dir/b", "fileMode": "0755"},
        {"storageContainerUrl": "https://a/c?sas", "blobPrefix": "in/"},
        {"autoStorageContainerName": "c", "filePath": "inputs"},
    ]
    assert models.parse_task_create(task_body(resourceFiles=files))["resourceFiles"] == files


def test_user_identity_exactly_one() -> None:
    invalid(
        "userIdentity.autoUser",
        models.parse_task_create,
        task_body(userIdentity={"username": "u", "autoUser": {}}),
    )
    invalid("userIdentity", models.parse_task_create, task_body(userIdentity={}))
    auto = models.parse_task_create(task_body(userIdentity={"autoUser": {"elevationLevel": "Admin"}}))["userIdentity"]
    assert auto == {"autoUser": {"elevationLevel": "admin", "scope": "pool"}}


def test_autoscale_rules() -> None:
    formula = "$TargetDedicatedNodes = 1;"
    no_targets = {k: v for k, v in pool_body().items() if k != "targetDedicatedNodes"}
    missing("autoScaleFormula", models.parse_pool_create, {**no_targets, "enableAutoScale": True})
    invalid(
        "targetDedicatedNodes",
        models.parse_pool_create,
        pool_body(enableAutoScale=True, autoScaleFormula=formula),
    )
    invalid(
        "targetLowPriorityNodes",
        models.parse_pool_create,
        {**no_targets, "enableAutoScale": True, "autoScaleFormula": formula, "targetLowPriorityNodes": 1},
    )
    invalid("autoScaleFormula", models.parse_pool_create, pool_body(autoScaleFormula=formula))
    invalid(
        "autoScaleEvaluationInterval",
        models.parse_pool_create,
        {
            **no_targets,
            "enableAutoScale": True,
            "autoScaleFormula": formula,
            "autoScaleEvaluationInterval": "P8D",
        },
    )
    # The contract says a fixed-size pool must set a target; Azure creates one without with targets of 0.
    pool = models.parse_pool_create(no_targets)
    assert (pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"], pool["enableAutoScale"]) == (0, 0, False)
    auto = models.parse_job_create(
        job_body(poolInfo={"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": no_targets}})
    )
    assert auto["poolInfo"]["autoPoolSpecification"]["pool"]["targetDedicatedNodes"] == 0
    assert models.parse_pool_create({**no_targets, "targetLowPriorityNodes": 2})["targetDedicatedNodes"] == 0
    invalid("targetDedicatedNodes", models.parse_pool_create, pool_body(targetDedicatedNodes=-1))


def test_timeouts() -> None:
    invalid("resizeTimeout", models.parse_pool_create, pool_body(resizeTimeout="PT4M"))
    invalid("resizeTimeout", models.parse_pool_resize, {"resizeTimeout": "PT1M"})
    invalid("resizeTimeout", models.parse_pool_remove_nodes, {"nodeList": ["n"], "resizeTimeout": "PT1M"})
    invalid(
        "jobReleaseTask.maxWallClockTime",
        models.parse_job_create,
        job_body(
            jobPreparationTask={"commandLine": "p"},
            jobReleaseTask={"commandLine": "r", "maxWallClockTime": "PT16M"},
        ),
    )


def test_job_release_needs_preparation() -> None:
    invalid("jobReleaseTask", models.parse_job_create, job_body(jobReleaseTask={"commandLine": "r"}))


def test_images_and_agents() -> None:
    invalid(
        "virtualMachineConfiguration.nodeAgentSKUId",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={**VMC, "nodeAgentSKUId": "batch.node.windows arm64"}),
    )
    invalid(
        "virtualMachineConfiguration.windowsConfiguration",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={**VMC, "windowsConfiguration": {}}),
    )
    missing(
        "virtualMachineConfiguration.imageReference.sku",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={**VMC, "imageReference": {"publisher": "p", "offer": "o"}}),
    )
    image_id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/y"
    gallery = {"virtualMachineImageId": image_id}
    pool = models.parse_pool_create(pool_body(virtualMachineConfiguration={**VMC, "imageReference": gallery}))
    assert pool["virtualMachineConfiguration"]["imageReference"] == gallery
    invalid(
        "virtualMachineConfiguration.imageReference.publisher",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={**VMC, "imageReference": {**gallery, **IMAGE}}),
    )
    malformed = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/gallery/x/images/y/versions/1"
    invalid(
        "virtualMachineConfiguration.imageReference.virtualMachineImageId",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={**VMC, "imageReference": {"virtualMachineImageId": malformed}}),
    )
    for good in (
        f"{image_id}/versions/1.0.0",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i",
    ):
        pool = models.parse_pool_create(
            pool_body(virtualMachineConfiguration={**VMC, "imageReference": {"virtualMachineImageId": good}})
        )
        assert pool["virtualMachineConfiguration"]["imageReference"]["virtualMachineImageId"] == good


def test_collection_limits() -> None:
    invalid("value", models.parse_task_collection, {"value": []})
    invalid("value", models.parse_task_collection, {"value": [task_body(id=f"t{i}") for i in range(101)]})
    missing("value", models.parse_task_collection, {})
    invalid("nodeList", models.parse_pool_remove_nodes, {"nodeList": [f"n{i}" for i in range(101)]})
    invalid(
        "applicationPackageReferences",
        models.parse_pool_create,
        pool_body(applicationPackageReferences=[{"applicationId": f"a{i}"} for i in range(11)]),
    )


def test_misc_rules() -> None:
    invalid("displayName", models.parse_task_create, task_body(displayName="x" * 1025))
    invalid(
        "dependsOn.taskIdRanges[0].end",
        models.parse_task_create,
        task_body(dependsOn={"taskIdRanges": [{"start": 5, "end": 1}]}),
    )
    invalid(
        "exitConditions.exitCodeRanges[0].end",
        models.parse_task_create,
        task_body(exitConditions={"exitCodeRanges": [{"start": 5, "end": 1, "exitOptions": {}}]}),
    )
    missing(
        "userAccounts[0].linuxUserConfiguration.gid",
        models.parse_pool_create,
        pool_body(userAccounts=[{"name": "u", "password": "p", "linuxUserConfiguration": {"uid": 1000}}]),
    )
    invalid(
        "userAccounts[0].name",
        models.parse_pool_create,
        pool_body(userAccounts=[{"name": "u" * 21, "password": "p"}]),
    )
    invalid(
        "poolInfo.autoPoolSpecification.autoPoolIdPrefix",
        models.parse_job_create,
        job_body(poolInfo={"autoPoolSpecification": {"poolLifetimeOption": "job", "autoPoolIdPrefix": "x" * 21}}),
    )


def test_more_contract_rules() -> None:
    nfs = {"source": "10.0.0.4:/exports", "relativeMountPath": "data"}
    blob = {"accountName": "a", "containerName": "c", "relativeMountPath": "b", "sasKey": "k"}
    pool = models.parse_pool_create(pool_body(mountConfiguration=[{"nfsMountConfiguration": nfs}]))
    assert pool["mountConfiguration"] == [{"nfsMountConfiguration": nfs}]
    invalid(
        "mountConfiguration[0].nfsMountConfiguration",
        models.parse_pool_create,
        pool_body(mountConfiguration=[{"nfsMountConfiguration": nfs, "azureBlobFileSystemConfiguration": blob}]),
    )
    invalid("mountConfiguration[0]", models.parse_pool_create, pool_body(mountConfiguration=[{}]))
    invalid(
        "mountConfiguration[0].azureBlobFileSystemConfiguration.sasKey",
        models.parse_pool_create,
        pool_body(mountConfiguration=[{"azureBlobFileSystemConfiguration": {**blob, "accountKey": "x"}}]),
    )
    disks = [{"lun": 64, "diskSizeGB": 10}]
    invalid(
        "virtualMachineConfiguration.dataDisks[0].lun",
        models.parse_pool_create,
        pool_body(virtualMachineConfiguration={**VMC, "dataDisks": disks}),
    )
    invalid("vmSize", models.parse_pool_create, pool_body(vmSize="STANDARD_A0"))
    invalid(
        "userAccounts[0].windowsUserConfiguration",
        models.parse_pool_create,
        pool_body(userAccounts=[{"name": "u", "password": "p", "windowsUserConfiguration": {}}]),
    )
    windows = {**VMC, "nodeAgentSKUId": "batch.node.windows amd64"}
    invalid(
        "userAccounts[0].linuxUserConfiguration",
        models.parse_pool_create,
        pool_body(
            virtualMachineConfiguration=windows,
            userAccounts=[{"name": "u", "password": "p", "linuxUserConfiguration": {"uid": 1000, "gid": 1000}}],
        ),
    )
    raises(
        "TaskDependencyListTooLong",
        "dependsOn.taskIds",
        models.parse_task_create,
        task_body(dependsOn={"taskIds": [f"{i:063d}" for i in range(1100)]}),
    )
    invalid(
        "applicationPackageReferences",
        models.parse_pool_replace,
        {"metadata": [], "applicationPackageReferences": [{"applicationId": f"a{i}"} for i in range(11)]},
    )


def test_auto_pool_resource_tags_are_a_map() -> None:
    pool = {"vmSize": "small", "virtualMachineConfiguration": VMC, "targetDedicatedNodes": 1}
    spec = {"poolLifetimeOption": "job", "pool": {**pool, "resourceTags": {"team": "a"}}}
    job = models.parse_job_create(job_body(poolInfo={"autoPoolSpecification": spec}))
    assert job["poolInfo"]["autoPoolSpecification"]["pool"]["resourceTags"] == {"team": "a"}


def test_contract_rule_tables_name_contract_definitions() -> None:
    from batchyard.service.models import contract_rules

    names = set(schema.definitions())
    assert set(contract_rules.ALIASES) <= names and set(contract_rules.RULES) <= names
    assert set(contract_rules.NOT_REQUIRED) <= names


# --- real SDK request bodies ---------------------------------------------------------------------------


def sdk_body(model: Any) -> dict[str, Any]:
    """Serialize an azure-batch 15.x model exactly as its client does before sending it."""
    from azure.batch._utils.model_base import SdkJSONEncoder

    return json.loads(json.dumps(model, cls=SdkJSONEncoder, exclude_readonly=True))


def test_sdk_pool_round_trip() -> None:
    from azure.batch import models as bm

    pool = bm.BatchPoolCreateOptions(
        id="sdk-pool",
        vm_size="Standard_D2s_v3",
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=bm.BatchVmImageReference(
                publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
            ),
            node_agent_sku_id="batch.node.ubuntu 22.04",
        ),
        target_dedicated_nodes=2,
        resize_timeout=timedelta(minutes=10),
        task_slots_per_node=4,
        task_scheduling_policy=bm.BatchTaskSchedulingPolicy(node_fill_type=bm.BatchNodeFillType.PACK),
        start_task=bm.BatchStartTask(
            command_line="/bin/sh -c 'apt-get update'",
            user_identity=bm.UserIdentity(
                auto_user=bm.AutoUserSpecification(scope=bm.AutoUserScope.POOL, elevation_level=bm.ElevationLevel.ADMIN)
            ),
            resource_files=[bm.ResourceFile(http_url="https://example.com/setup.sh", file_path="setup.sh")],
            wait_for_success=True,
        ),
        metadata=[bm.BatchMetadataItem(name="owner", value="me")],
    )
    body = sdk_body(pool)
    parsed = models.parse_pool_create(body)
    assert parsed["vmSize"] == "standard_d2s_v3"
    assert parsed["resizeTimeout"] == "PT10M"
    assert parsed["taskSchedulingPolicy"] == {"nodeFillType": "pack"}
    assert parsed["startTask"]["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    assert parsed["startTask"]["maxTaskRetryCount"] == 0
    assert parsed["metadata"] == [{"name": "owner", "value": "me"}]

    update = models.parse_pool_update(sdk_body(bm.BatchPoolUpdateOptions(metadata=[], task_slots_per_node=2)))
    assert update == {"metadata": [], "taskSlotsPerNode": 2}
    replace = models.parse_pool_replace(
        sdk_body(bm.BatchPoolReplaceOptions(application_package_references=[], metadata=[]))
    )
    assert replace["certificateReferences"] == []
    resize = models.parse_pool_resize(
        sdk_body(bm.BatchPoolResizeOptions(target_dedicated_nodes=5, resize_timeout=timedelta(hours=1)))
    )
    assert resize == {"targetDedicatedNodes": 5, "resizeTimeout": "PT1H", "nodeDeallocationOption": "requeue"}
    remove = models.parse_pool_remove_nodes(sdk_body(bm.BatchNodeRemoveOptions(node_ids=["tvm-1"])))
    assert remove["nodeList"] == ["tvm-1"]


def test_sdk_job_round_trip() -> None:
    from azure.batch import models as bm

    job = bm.BatchJobCreateOptions(
        id="sdk-job",
        pool_info=bm.BatchPoolInfo(
            auto_pool_specification=bm.BatchAutoPoolSpecification(
                pool_lifetime_option=bm.BatchPoolLifetimeOption.JOB,
                pool=bm.BatchPoolSpecification(
                    vm_size="STANDARD_D2S_V3",
                    virtual_machine_configuration=bm.VirtualMachineConfiguration(
                        image_reference=bm.BatchVmImageReference(
                            publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
                        ),
                        node_agent_sku_id="batch.node.ubuntu 24.04",
                    ),
                    target_dedicated_nodes=1,
                ),
            )
        ),
        priority=100,
        constraints=bm.BatchJobConstraints(max_wall_clock_time=timedelta(days=1), max_task_retry_count=2),
        job_manager_task=bm.BatchJobManagerTask(id="manager", command_line="python manage.py"),
        all_tasks_complete_mode=bm.BatchAllTasksCompleteMode.TERMINATE_JOB,
        uses_task_dependencies=True,
    )
    parsed = models.parse_job_create(sdk_body(job))
    assert parsed["priority"] == 100 and parsed["onAllTasksComplete"] == "terminatejob"
    assert parsed["constraints"] == {"maxWallClockTime": "P1D", "maxTaskRetryCount": 2}
    assert parsed["jobManagerTask"]["constraints"]["maxTaskRetryCount"] == 2
    assert parsed["poolInfo"]["autoPoolSpecification"]["pool"]["vmSize"] == "standard_d2s_v3"

    update = models.parse_job_update(sdk_body(bm.BatchJobUpdateOptions(priority=-5, max_parallel_tasks=3)))
    assert update == {"priority": -5, "maxParallelTasks": 3}
    disable = models.parse_job_disable(sdk_body(bm.BatchJobDisableOptions(disable_tasks=bm.DisableBatchJobOption.WAIT)))
    assert disable == {"disableTasks": "wait"}


def test_sdk_task_round_trip() -> None:
    from azure.batch import models as bm

    tasks = [
        bm.BatchTaskCreateOptions(
            id=f"task-{i}",
            command_line="/bin/sh -c 'echo $X'",
            environment_settings=[bm.EnvironmentSetting(name="X", value=str(i))],
            constraints=bm.BatchTaskConstraints(max_wall_clock_time=timedelta(hours=2), max_task_retry_count=1),
            resource_files=[
                bm.ResourceFile(storage_container_url="https://acct.blob.core.windows.net/in?sas", blob_prefix="data/")
            ],
            output_files=[
                bm.OutputFile(
                    file_pattern="*.txt",
                    destination=bm.OutputFileDestination(
                        container=bm.OutputFileBlobContainerDestination(
                            container_url="https://acct.blob.core.windows.net/out?sas"
                        )
                    ),
                    upload_options=bm.OutputFileUploadConfiguration(
                        upload_condition=bm.OutputFileUploadCondition.TASK_COMPLETION
                    ),
                )
            ],
            depends_on=bm.BatchTaskDependencies(task_ids=["task-0"]) if i else None,
            exit_conditions=bm.ExitConditions(default=bm.ExitOptions(dependency_action=bm.DependencyAction.BLOCK)),
        )
        for i in range(3)
    ]
    parsed = models.parse_task_collection(sdk_body(bm.BatchTaskGroup(task_values=tasks)))
    assert [t["id"] for t in parsed] == ["task-0", "task-1", "task-2"]
    assert parsed[1]["constraints"] == {
        "maxWallClockTime": "PT2H",
        "maxTaskRetryCount": 1,
        "retentionTime": "P7D",
    }
    assert parsed[1]["dependsOn"] == {"taskIds": ["task-0"]}
    assert parsed[0]["outputFiles"][0]["uploadOptions"] == {"uploadCondition": "taskcompletion"}

    single = models.parse_task_create(sdk_body(tasks[0]))
    assert single == parsed[0]
    updated = models.parse_task_update(
        sdk_body(bm.BatchTask(constraints=bm.BatchTaskConstraints(retention_time=timedelta(hours=1))))
    )
    assert updated == {"constraints": {"retentionTime": "PT1H", "maxWallClockTime": UNLIMITED}}


# Bodies exactly as azure-batch 14.2.0 (msrest) serializes them; its timedelta.max is
# "P999999999DT23H59M59.999999S".
LEGACY_POOL = {
    "id": "legacy-pool",
    "vmSize": "STANDARD_D2S_V3",
    "virtualMachineConfiguration": {
        "imageReference": {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts",
            "version": "latest",
        },
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    },
    "resizeTimeout": "PT10M",
    "targetDedicatedNodes": 2,
    "startTask": {
        "commandLine": "/bin/sh -c 'echo hi'",
        "resourceFiles": [{"httpUrl": "https://example.com/a.sh", "filePath": "a.sh"}],
        "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
        "waitForSuccess": True,
    },
    "taskSlotsPerNode": 4,
    "taskSchedulingPolicy": {"nodeFillType": "pack"},
    "metadata": [{"name": "k", "value": "v"}],
}
LEGACY_TASK = {
    "id": "t1",
    "commandLine": "/bin/true",
    "exitConditions": {"default": {"jobAction": "terminate"}},
    "environmentSettings": [{"name": "A", "value": "1"}],
    "constraints": {
        "maxWallClockTime": "P999999999DT23H59M59.999999S",
        "retentionTime": "P1D",
        "maxTaskRetryCount": 2,
    },
    "userIdentity": {"username": "batchuser"},
    "dependsOn": {"taskIds": ["t0"], "taskIdRanges": [{"start": 1, "end": 5}]},
}
LEGACY_JOB = {
    "id": "legacy-job",
    "priority": 10,
    "maxParallelTasks": -1,
    "constraints": {"maxWallClockTime": "PT2H"},
    "jobPreparationTask": {"commandLine": "/bin/true"},
    "jobReleaseTask": {"commandLine": "/bin/true"},
    "poolInfo": {"poolId": "legacy-pool"},
    "onAllTasksComplete": "terminatejob",
    "usesTaskDependencies": True,
}


def test_legacy_sdk_bodies() -> None:
    pool = models.parse_pool_create(copy.deepcopy(LEGACY_POOL))
    assert (pool["vmSize"], pool["resizeTimeout"], pool["taskSlotsPerNode"]) == (
        "standard_d2s_v3",
        "PT10M",
        4,
    )
    task = models.parse_task_create(copy.deepcopy(LEGACY_TASK))
    assert task["constraints"] == {
        "maxWallClockTime": UNLIMITED,
        "retentionTime": "P1D",
        "maxTaskRetryCount": 2,
    }
    job = models.parse_job_create(copy.deepcopy(LEGACY_JOB))
    assert job["constraints"] == {"maxWallClockTime": "PT2H", "maxTaskRetryCount": 0}
    assert job["jobReleaseTask"]["id"] == "jobrelease"


# --- speed ---------------------------------------------------------------------------------------------


def test_collection_speed() -> None:
    body = {
        "value": [
            {
                "id": f"task-{i}",
                "commandLine": f"/bin/sh -c 'process {i}'",
                "resourceFiles": [
                    {"httpUrl": f"https://acct.blob.core.windows.net/in/{i}.dat", "filePath": f"{i}.dat"}
                ],
                "environmentSettings": [
                    {"name": "INDEX", "value": str(i)},
                    {"name": "MODE", "value": "fast"},
                ],
                "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 2},
                "outputFiles": [
                    {
                        "filePattern": "out/*.csv",
                        "destination": {"container": {"containerUrl": "https://acct.blob.core.windows.net/out?sas"}},
                        "uploadOptions": {"uploadCondition": "taskSuccess"},
                    }
                ],
            }
            for i in range(100)
        ]
    }
    models.parse_task_collection(copy.deepcopy(body))  # warm the compiled validators
    rounds = 20
    bodies = [copy.deepcopy(body) for _ in range(rounds)]
    start = time.perf_counter()
    for b in bodies:
        tasks = models.parse_task_collection(b)
    elapsed = (time.perf_counter() - start) / rounds
    print(f"\n100-task collection: {elapsed * 1000:.2f} ms ({100 / elapsed:,.0f} tasks/s)")
    assert len(tasks) == 100 and tasks[99]["outputFiles"][0]["uploadOptions"]["uploadCondition"] == "tasksuccess"


def test_windows_pools_keep_their_windows_properties() -> None:
    """A Windows pool, and a Windows auto pool, with the properties the contract defines for them."""
    windows = {
        "imageReference": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2019-datacenter"},
        "nodeAgentSKUId": "batch.node.windows amd64",
        "windowsConfiguration": {"enableAutomaticUpdates": False},
        "osDisk": {"caching": "readwrite", "managedDisk": {"storageAccountType": "standard_lrs"}},
    }
    accounts = [{"name": "u", "password": "p", "windowsUserConfiguration": {"loginMode": "interactive"}}]
    pool = models.parse_pool_create(pool_body(virtualMachineConfiguration=windows, userAccounts=accounts))
    vmc = pool["virtualMachineConfiguration"]
    assert vmc["windowsConfiguration"] == {"enableAutomaticUpdates": False}
    assert vmc["osDisk"] == windows["osDisk"]
    assert pool["userAccounts"][0]["windowsUserConfiguration"] == {"loginMode": "interactive"}
    spec = {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": windows, "userAccounts": accounts}
    auto = {"poolLifetimeOption": "job", "pool": spec}
    job = models.parse_job_create(job_body(poolInfo={"autoPoolSpecification": auto}))
    assert job["poolInfo"]["autoPoolSpecification"]["pool"]["virtualMachineConfiguration"]["windowsConfiguration"]
    linux_accounts = [{"name": "u", "password": "p", "linuxUserConfiguration": {"uid": 5, "gid": 5}}]
    invalid(
        "poolInfo.autoPoolSpecification.pool.userAccounts[0].linuxUserConfiguration",
        models.parse_job_create,
        job_body(poolInfo={"autoPoolSpecification": {**auto, "pool": {**spec, "userAccounts": linux_accounts}}}),
    )
