"""What the Slurm pool tests share: a real Slurm cluster and a service that uses it (module fixtures made
from these), pools of Slurm nodes, and what Slurm says about their jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m

from tests.api.helpers import pool_exists, vm_config
from tests.conftest import Service, start_service, wait_for
from tests.slurm_cluster import SlurmCluster

VM_SIZE = "standard_d2s_v3"  # 2 cores, 8 GiB: four such nodes fill the test cluster's 8 CPUs
JOB_PREFIX = "batchyard-devbatchaccount1-"


def start_slurm_service(slurm: SlurmCluster, data_dir: Path, *extra: str) -> Service:
    """The service, finding the cluster through SLURM_CONF, with the nodes' roots in its data directory."""
    return start_service(
        data_dir,
        "--slurm-node-dir",
        str(data_dir / "slurm-nodes"),
        "--slurm-poll-interval",
        "0.5",
        *extra,
        env=slurm.env,
    )


def module_service(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """For a module fixture: a service for the module's tests (a short heartbeat and autoscale clock)."""
    service = start_slurm_service(
        slurm,
        tmp_path_factory.mktemp("slurm-service"),
        "--heartbeat-timeout",
        "3",
        "--autoscale-sample-period",
        "1",
        "--autoscale-min-interval",
        "2",
    )
    yield service
    service.stop()


def create_slurm_pool(
    client: Any, pool_id: str, nodes: int, metadata: dict[str, str] | None = None, **kwargs: Any
) -> None:
    settings = {"batchyard-provider": "slurm", "batchyard-slurm-partition": "batch", **(metadata or {})}
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size=VM_SIZE,
            virtual_machine_configuration=vm_config(),
            target_dedicated_nodes=nodes,
            metadata=[m.BatchMetadataItem(name=name, value=value) for name, value in settings.items()],
            **kwargs,
        )
    )


def node_states(client: Any, pool_id: str) -> dict[str, str]:
    return {node.id: node.state for node in client.list_nodes(pool_id)}


def all_idle(client: Any, pool_id: str, count: int) -> dict[str, str] | None:
    states = node_states(client, pool_id)
    return states if len(states) == count and set(states.values()) == {"idle"} else None


def active_jobs(slurm: SlurmCluster) -> dict[str, dict[str, str]]:
    """The Slurm jobs of Batch nodes that still wait or run: node id -> job id, state, CPUs, memory,
    partition."""
    out = slurm.command("squeue", "--noheader", "--format=%i|%j|%T|%C|%m|%P")
    jobs = {}
    for line in out.splitlines():
        job_id, name, state, cpus, memory, partition = line.strip().split("|")
        if name.startswith(JOB_PREFIX):
            jobs[name.removeprefix(JOB_PREFIX)] = {
                "id": job_id,
                "state": state,
                "cpus": cpus,
                "memory": memory,
                "partition": partition,
            }
    return jobs


def delete_and_wait(client: Any, slurm: SlurmCluster, pool_id: str) -> None:
    client.begin_delete_pool(pool_id)
    wait_for(lambda: not pool_exists(client, pool_id), timeout=90, what="the pool to be deleted")
