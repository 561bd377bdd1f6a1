"""Spot/low-priority nodes through azure-batch 15.x: their flags and counts, their core quota, preemption on
demand (`batchyard nodes preempt`) with the running task finished elsewhere exactly once, autoscale's
low-priority variables, and a random preemption rate on the adjustable clock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.cli_support import table_rows
from tests.api.helpers import create_job, create_pool, vm_config
from tests.conftest import Service, advance_clock, make_client, start_service, wait_for

RECOVERY = "batchyard-preemption-recovery-seconds"
RATE = "batchyard-preemption-rate"


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose clock tests move, with autoscale runs every second."""
    svc = start_service(
        tmp_path_factory.mktemp("lowpri"),
        "--adjustable-clock",
        "--autoscale-sample-period",
        "0.5",
        "--autoscale-min-interval",
        "1",
    )
    yield svc
    svc.stop()


def nodes_cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "batchyard.cli.main", "nodes", "--endpoint", service.url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def idle_split(client: Any, pool_id: str, dedicated: int, low: int) -> tuple[list[Any], list[Any]] | None:
    """(dedicated, low-priority) nodes once exactly that many of each are idle."""
    nodes = [node for node in client.list_nodes(pool_id) if node.state == "idle"]
    split = [n for n in nodes if n.is_dedicated], [n for n in nodes if not n.is_dedicated]
    return split if (len(split[0]), len(split[1])) == (dedicated, low) else None


def metadata(**items: str) -> list[m.BatchMetadataItem]:
    return [m.BatchMetadataItem(name=name, value=value) for name, value in items.items()]


def test_a_pool_with_both_targets_has_flagged_nodes_and_counts_each_kind(client: Any, unique: Any) -> None:
    pool_id = unique("lp")
    create_pool(client, pool_id, nodes=1, target_low_priority_nodes=2)
    dedicated, low = wait_for(lambda: idle_split(client, pool_id, 1, 2), what="1 dedicated and 2 low-priority nodes")
    assert dedicated[0].id.endswith("_d") and all(node.id.endswith("_p") for node in low)
    pool = client.get_pool(pool_id)
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (1, 2)
    (counts,) = [c for c in client.list_pool_node_counts() if c.pool_id == pool_id]
    assert (counts.dedicated.total, counts.dedicated.idle) == (1, 1)
    assert (counts.low_priority.total, counts.low_priority.idle) == (2, 2)
    client.begin_resize_pool(
        pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0, target_low_priority_nodes=1), polling_interval=0.2
    ).result(timeout=60)
    pool = wait_for(lambda: (p := client.get_pool(pool_id)).allocation_state == "steady" and p, what="steady")
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (0, 1)
    assert [node.is_dedicated for node in client.list_nodes(pool_id)] == [False]
    client.begin_delete_pool(pool_id)


def test_a_preempted_nodes_running_task_finishes_elsewhere_exactly_once(
    service: Service, client: Any, unique: Any, tmp_path: Path
) -> None:
    pool_id, job_id = unique("preempt"), unique("preemptjob")
    create_pool(client, pool_id, nodes=1, target_low_priority_nodes=1, metadata=metadata(**{RECOVERY: "3600"}))
    (node_d,), (node_p,) = wait_for(lambda: idle_split(client, pool_id, 1, 1), what="one node of each kind")
    create_job(client, job_id, pool_id)
    # Each run writes a marker when it is done: a run that was killed writes none.
    command = (
        f"/bin/sh -c 'sleep 4; echo $AZ_BATCH_NODE_ID $AZ_BATCH_NODE_IS_DEDICATED >> {tmp_path}/$AZ_BATCH_TASK_ID'"
    )
    for task_id in ("a", "b"):
        client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line=command))
    running = wait_for(
        lambda: len(tasks := [t for t in client.list_tasks(job_id) if t.state == "running"]) == 2 and tasks,
        what="both tasks running",
    )
    (on_low,) = [task.id for task in running if task.node_info.node_id == node_p.id]

    preempted = nodes_cli(service, "preempt", pool_id, node_p.id)
    assert preempted.returncode == 0, preempted.stderr
    assert client.get_node(pool_id, node_p.id).state == "preempted"
    pool = client.get_pool(pool_id)
    assert pool.current_low_priority_nodes == 1  # a preempted node counts until it is reallocated
    (counts,) = [c for c in client.list_pool_node_counts() if c.pool_id == pool_id]
    assert (counts.low_priority.preempted, counts.low_priority.total) == (1, 1)

    for task_id in ("a", "b"):
        wait_for(lambda t=task_id: client.get_task(job_id, t).state == "completed", timeout=60, what="completion")
    task = client.get_task(job_id, on_low)
    assert task.execution_info.exit_code == 0
    assert task.execution_info.requeue_count == 1
    assert task.execution_info.retry_count == 0  # an eviction uses no retry
    assert task.node_info.node_id == node_d.id
    markers = {task_id: (tmp_path / task_id).read_text().splitlines() for task_id in ("a", "b")}
    assert markers[on_low] == [f"{node_d.id} true"]  # once, on the dedicated node
    assert all(len(lines) == 1 for lines in markers.values())

    again = nodes_cli(service, "preempt", pool_id, node_p.id)
    assert again.returncode == 1 and "OperationInvalidForCurrentState" in again.stderr
    dedicated = nodes_cli(service, "preempt", pool_id, node_d.id)
    assert dedicated.returncode == 1 and "OperationNotValidOnNode" in dedicated.stderr
    listing = nodes_cli(service, "list", pool_id)
    rows = {row[0]: row for row in table_rows(listing.stdout)[1:]}  # Id, State, Sched, Dedicated, Tasks
    assert rows[node_p.id][1] == "preempted" and rows[node_p.id][3] == "false"
    client.begin_delete_pool(pool_id)


def test_preempt_needs_a_signed_request_and_an_existing_node(service: Service, client: Any, unique: Any) -> None:
    pool_id = unique("preemptauth")
    create_pool(client, pool_id, nodes=0)
    url = f"{service.url}/_batchyard/pools/{pool_id}/nodes/tvmps_nope_p/preempt?api-version=2025-06-01"
    assert httpx.post(url).status_code == 403  # unsigned
    missing = nodes_cli(service, "preempt", pool_id, "tvmps_nope_p")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr and "NodeNotFound" in missing.stderr
    client.begin_delete_pool(pool_id)


def test_a_bad_preemption_setting_is_refused(client: Any, unique: Any) -> None:
    with pytest.raises(HttpResponseError) as refused:
        create_pool(client, unique("badrate"), nodes=0, metadata=metadata(**{RATE: "-1"}))
    assert refused.value.status_code == 400 and refused.value.error.code == "InvalidPropertyValue"


def test_the_low_priority_core_quota_is_its_own(tmp_path: Path) -> None:
    service = start_service(tmp_path / "svc", "--low-priority-core-quota", "4", "--core-quota", "4")
    try:
        client = make_client(service.url)
        create_pool(client, "p", nodes=2, target_low_priority_nodes=3)  # 2 cores each: 2 of each kind fit
        pool = wait_for(lambda: (p := client.get_pool("p")).allocation_state == "steady" and p, what="steady pool")
        assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (2, 2)
        assert [e.code for e in pool.resize_errors] == ["AccountLowPriorityCoreQuotaReached"]
        assert {v.name: v.value for v in pool.resize_errors[0].error_values}["LowPriorityCoreQuota"] == "4"
    finally:
        service.stop()


def test_autoscale_replaces_preempted_capacity_with_dedicated_nodes(clocked: Service, unique: Any) -> None:
    client = make_client(clocked.url)
    pool_id = unique("aslp")
    formula = "$TargetLowPriorityNodes = 2; $TargetDedicatedNodes = $PreemptedNodeCount;"
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            enable_auto_scale=True,
            auto_scale_formula=formula,
            auto_scale_evaluation_interval="PT1S",
            metadata=metadata(**{RECOVERY: "3600"}),
        )
    )
    _, low = wait_for(lambda: idle_split(client, pool_id, 0, 2), what="two low-priority nodes")
    assert nodes_cli(clocked, "preempt", pool_id, low[0].id).returncode == 0
    wait_for(lambda: idle_split(client, pool_id, 1, 1), timeout=60, what="a dedicated node for the preempted one")
    probe = "$c = $CurrentLowPriorityNodes; $p = $PreemptedNodeCount; $t = $TargetLowPriorityNodes;" + formula
    run = client.evaluate_pool_auto_scale(pool_id, m.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=probe))
    assert run.error is None
    assert run.results.startswith("$TargetDedicatedNodes=1;$TargetLowPriorityNodes=2;")
    assert {"$c=2", "$p=1", "$t=2"} <= set(run.results.split(";"))
    client.begin_delete_pool(pool_id)


def test_a_preemption_rate_evicts_low_priority_nodes_as_the_clock_moves(clocked: Service, unique: Any) -> None:
    client = make_client(clocked.url)
    pool_id = unique("rate")
    create_pool(client, pool_id, nodes=1, target_low_priority_nodes=2)
    (dedicated,), _ = wait_for(lambda: idle_split(client, pool_id, 1, 2), what="1 dedicated and 2 low-priority")
    # Preempted nodes stay so for a day: the clock moves 10 hours.
    client.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=metadata(**{RATE: "5", RECOVERY: "86400"})))
    advance_clock(clocked, 10 * 3600)  # fifty evictions per node expected: both surely go
    states = {node.id: node.state for node in client.list_nodes(pool_id)}
    assert states.pop(dedicated.id) == "idle"
    assert list(states.values()) == ["preempted", "preempted"]
    assert client.get_pool(pool_id).current_low_priority_nodes == 2
    # No more evictions, and ten minutes until the capacity is back.
    client.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=metadata(**{RECOVERY: "600"})))
    advance_clock(clocked, 601)
    wait_for(lambda: idle_split(client, pool_id, 1, 2), timeout=60, what="the preempted nodes reallocated")
    client.begin_delete_pool(pool_id)
