"""Builders for SDK request models that many tests use."""

from __future__ import annotations

from typing import Any

from azure.batch import models as m


def vm_config() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
        ),
        node_agent_sku_id="batch.node.ubuntu 22.04",
    )


def create_pool(client: Any, pool_id: str, nodes: int = 1, slots: int = 1, **kwargs: Any) -> None:
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            target_dedicated_nodes=nodes,
            task_slots_per_node=slots,
            **kwargs,
        )
    )


def create_job(client: Any, job_id: str, pool_id: str, **kwargs: Any) -> None:
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), **kwargs))


def idle_nodes(client: Any, pool_id: str, count: int) -> list[Any] | None:
    nodes = list(client.list_nodes(pool_id))
    ready = [node for node in nodes if node.state == "idle"]
    return ready if len(ready) >= count else None


def task_state(client: Any, job_id: str, task_id: str) -> str:
    return str(client.get_task(job_id, task_id).state)


def completed(client: Any, job_id: str, task_id: str) -> Any:
    task = client.get_task(job_id, task_id)
    return task if task.state == "completed" else None
