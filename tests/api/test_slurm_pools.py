"""Pools whose nodes are Slurm jobs (providers/slurm.py), through the official SDK against the real
service and a real single-host Slurm cluster (tests/slurm_cluster.py): nodes, tasks, resize, autoscale."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.batch.models._models import (  # azure-batch 15.1.0 does not export these option models
    BatchNodeDeallocateOptions,
    BatchNodeRebootOptions,
)

from tests.api.helpers import completed, create_job, vm_config
from tests.api.slurm_support import (
    VM_SIZE,
    active_jobs,
    all_idle,
    create_slurm_pool,
    delete_and_wait,
    module_service,
    node_states,
)
from tests.conftest import Service, make_client, wait_for
from tests.slurm_cluster import SlurmCluster, running_cluster

Unique = Callable[[str], str]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    yield from running_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def slurm_service(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from module_service(slurm, tmp_path_factory)


@pytest.fixture(scope="module")
def client(slurm_service: Service) -> Any:
    return make_client(slurm_service.url)


def test_pool_of_slurm_nodes_becomes_idle_runs_tasks_and_leaves_no_job(
    client: Any, slurm: SlurmCluster, slurm_service: Service, unique: Unique
) -> None:
    pool_id, job_id = unique("slurmpool"), unique("slurmjob")
    create_slurm_pool(client, pool_id, 3, {"batchyard-slurm-time-limit": "30"})
    nodes = wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="3 idle Slurm nodes")
    jobs = active_jobs(slurm)
    # One running job per node, with the cores and memory of standard_d2s_v3 (2 cores, 8 GiB).
    assert set(jobs) == set(nodes)
    assert {(job["state"], job["cpus"], job["memory"]) for job in jobs.values()} == {("RUNNING", "2", "8G")}
    time_limits = slurm.command(
        "squeue", "--noheader", "--format=%l", "--jobs", ",".join(j["id"] for j in jobs.values())
    )
    assert set(time_limits.split()) == {"30:00"}

    create_job(client, job_id, pool_id)
    task_ids = [f"t{i}" for i in range(6)]
    client.create_tasks(
        job_id,
        [
            m.BatchTaskCreateOptions(id=task_id, command_line="/bin/bash -c 'echo ran on $AZ_BATCH_NODE_ID'")
            for task_id in task_ids
        ],
    )
    done = [
        wait_for(lambda t=task_id: completed(client, job_id, t), timeout=60, what=f"task {task_id}")
        for task_id in task_ids
    ]
    assert {task.execution_info.exit_code for task in done} == {0}
    assert {task.node_info.node_id for task in done} <= set(nodes)

    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)
    # Each job removed its node's root, and the agent's log with it (the agent ended cleanly).
    left = [
        path for path in (slurm_service.data_dir / "slurm-nodes").iterdir() if path.name.removesuffix(".log") in nodes
    ]
    assert not left, {path.name: path.read_text()[-3000:] if path.is_file() else "(directory)" for path in left}


def test_node_stays_creating_while_its_job_pends_and_resize_down_cancels_the_released_jobs(
    client: Any, slurm: SlurmCluster, unique: Unique
) -> None:
    pool_id = unique("slurmresize")
    create_slurm_pool(client, pool_id, 3)
    first = wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="3 idle Slurm nodes")
    first_jobs = {node_id: job["id"] for node_id, job in active_jobs(slurm).items()}
    # Five nodes of 2 cores do not fit on 8 CPUs: the fifth node's job pends, and the node is `creating`.
    client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=5))
    states = wait_for(
        lambda: (s := node_states(client, pool_id)) and len(s) == 5 and sorted(s.values()).count("idle") == 4 and s,
        timeout=90,
        what="4 idle nodes of 5",
    )
    (waiting,) = [node_id for node_id, state in states.items() if state != "idle"]
    assert states[waiting] == "creating"
    assert active_jobs(slurm)[waiting]["state"] == "PENDING"

    client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3))
    wait_for(lambda: len(node_states(client, pool_id)) == 3, timeout=90, what="the pool back at 3 nodes")
    staying = set(node_states(client, pool_id))
    jobs = active_jobs(slurm)
    # Exactly the released nodes' jobs were cancelled; the staying nodes keep theirs.
    assert set(jobs) == staying
    assert waiting not in staying
    for node_id in staying & set(first):
        assert jobs[node_id]["id"] == first_jobs[node_id]
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def test_a_job_slurm_refuses_makes_the_node_unusable(client: Any, slurm: SlurmCluster, unique: Unique) -> None:
    pool_id = unique("slurmbad")
    create_slurm_pool(client, pool_id, 1, {"batchyard-slurm-partition": "nosuchpartition"})
    (node,) = wait_for(
        lambda: [n for n in client.list_nodes(pool_id) if n.state == "unusable"], timeout=30, what="an unusable node"
    )
    assert node.errors and node.errors[0].code == "NodeAllocationLost"
    # Slurm's own words: sbatch: error: Batch job submission failed: Invalid partition name specified
    assert "its Slurm job was refused" in node.errors[0].message and "partition" in node.errors[0].message
    assert not active_jobs(slurm)
    delete_and_wait(client, slurm, pool_id)


def test_multi_instance_task_across_slurm_nodes(
    client: Any, slurm: SlurmCluster, unique: Unique, tmp_path: Path
) -> None:
    pool_id, job_id = unique("slurmmi"), unique("slurmmijob")
    create_slurm_pool(client, pool_id, 3, enable_inter_node_communication=True)
    nodes = wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="3 idle Slurm nodes")
    # A node's ipAddress is the address of the Slurm node its job runs on (here: this host, 3 times).
    host = socket.gethostbyname(socket.gethostname())
    assert {node.ip_address for node in client.list_nodes(pool_id)} == {host}
    create_job(client, job_id, pool_id)
    marks = tmp_path / "coordination.txt"
    marks.touch()
    marks.chmod(0o666)
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="mi",
            command_line="/bin/bash -c 'echo hosts=$AZ_BATCH_HOST_LIST'",
            multi_instance_settings=m.MultiInstanceSettings(
                number_of_instances=3, coordination_command_line=f"/bin/bash -c 'echo $AZ_BATCH_NODE_ID >> {marks}'"
            ),
        ),
    )
    task = wait_for(lambda: completed(client, job_id, "mi"), timeout=60, what="the multi-instance task")
    assert task.execution_info.exit_code == 0
    assert sorted(marks.read_text().split()) == sorted(nodes)  # one instance on each Slurm node
    subtasks = list(client.list_subtasks(job_id, "mi"))
    assert {s.state for s in subtasks} == {"completed"} and {s.exit_code for s in subtasks} == {0}
    stdout = b"".join(client.download_task_file(job_id, "mi", "stdout.txt")).decode()
    assert stdout.strip() == "hosts=" + ",".join([host] * 3)
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def test_autoscale_follows_pending_tasks_with_slurm_jobs(
    client: Any, slurm: SlurmCluster, unique: Unique, tmp_path: Path
) -> None:
    pool_id, job_id = unique("slurmauto"), unique("slurmautojob")
    formula = "$TargetDedicatedNodes = min(3, max(0, $PendingTasks.GetSample(1)));"
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size=VM_SIZE,
            virtual_machine_configuration=vm_config(),
            enable_auto_scale=True,
            auto_scale_formula=formula,
            auto_scale_evaluation_interval="PT2S",
            metadata=[m.BatchMetadataItem(name="batchyard-provider", value="slurm")],
        )
    )
    create_job(client, job_id, pool_id)
    release = tmp_path / "release"
    wait = f"/bin/bash -c 'while [ ! -f {release} ]; do sleep 0.1; done'"
    client.create_tasks(job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line=wait) for i in range(2)])
    # Two pending tasks: two nodes, each a running Slurm job, each running one of the tasks.
    running = wait_for(
        lambda: (ts := list(client.list_tasks(job_id))) and all(t.state == "running" for t in ts) and ts,
        timeout=90,
        what="both tasks running on new Slurm nodes",
    )
    nodes = {task.node_info.node_id for task in running}
    assert client.get_pool(pool_id).target_dedicated_nodes == 2
    assert set(active_jobs(slurm)) == nodes and len(nodes) == 2

    release.write_text("go")
    # Nothing pending: the formula asks for no node, and their Slurm jobs are cancelled.
    wait_for(lambda: not list(client.list_nodes(pool_id)), timeout=90, what="the pool to shrink to 0")
    assert not active_jobs(slurm)
    delete_and_wait(client, slurm, pool_id)


def test_reboot_deallocate_and_start_of_a_slurm_node_resubmit_or_cancel_its_job(
    client: Any, slurm: SlurmCluster, unique: Unique
) -> None:
    pool_id = unique("slurmactions")
    create_slurm_pool(client, pool_id, 1)
    (node_id,) = wait_for(lambda: all_idle(client, pool_id, 1), timeout=90, what="an idle Slurm node")
    first = active_jobs(slurm)[node_id]["id"]
    booted = client.get_node(pool_id, node_id).last_boot_time

    # Reboot: the node's job is cancelled and a new one submitted; the node boots again in it.
    client.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue")).wait(0)
    wait_for(
        lambda: (n := client.get_node(pool_id, node_id)).state == "idle" and n.last_boot_time > booted,
        timeout=90,
        what="the node booted again",
    )
    second = active_jobs(slurm)[node_id]["id"]
    assert second != first

    # Deallocate: the job is cancelled and none runs while the node is deallocated; start submits one.
    client.begin_deallocate_node(pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="requeue"))
    wait_for(lambda: client.get_node(pool_id, node_id).state == "deallocated", timeout=60, what="deallocated")
    assert not active_jobs(slurm)
    client.begin_start_node(pool_id, node_id)
    wait_for(lambda: all_idle(client, pool_id, 1), timeout=90, what="the node started again")
    assert active_jobs(slurm)[node_id]["id"] not in (first, second)
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)
