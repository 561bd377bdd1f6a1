"""The service's side of container runs: the wire `container` of a run, and the pool matching rules."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from batchyard.service.engine.container_rules import container_refusal, job_pool_doc
from batchyard.service.engine.run_builder import container_of, container_prefail

REGISTRY = {"registryServer": "myacr.azurecr.io", "username": "u", "password": "p"}
CONTAINER_POOL: dict[str, Any] = {
    "virtualMachineConfiguration": {
        "containerConfiguration": {"type": "dockerCompatible", "containerRegistries": [REGISTRY]}
    }
}
HOST_POOL: dict[str, Any] = {"virtualMachineConfiguration": {"nodeAgentSKUId": "batch.node.ubuntu 22.04"}}


def test_a_runs_container_carries_the_task_registry_first_then_the_pools() -> None:
    own = {"registryServer": "other.io", "username": "a", "password": "b"}
    wire = container_of({"imageName": "myacr.azurecr.io/tool:1", "registry": own}, CONTAINER_POOL)
    assert wire == {
        "image": "myacr.azurecr.io/tool:1",
        "registries": [own, REGISTRY],
        "options": "",
        "workdir": "taskWorkingDirectory",
        "mounts": None,
    }
    assert container_of(None, CONTAINER_POOL) is None
    bound = container_of({"imageName": "x", "containerHostBatchBindMounts": []}, CONTAINER_POOL)
    assert bound is not None and bound["mounts"] == []


def test_runs_that_do_not_match_their_pool_fail_with_azures_codes() -> None:
    missing = container_prefail(None, CONTAINER_POOL, required=True)
    assert missing is not None and missing["code"] == "ContainerTaskSettingsNotFound"
    assert container_prefail(None, CONTAINER_POOL, required=False) is None  # start, preparation, release
    moved = container_prefail({"imageName": "x"}, HOST_POOL, required=False)
    assert moved is not None and moved["code"] == "ContainerSettingsNotSupported"
    assert container_prefail({"imageName": "x"}, CONTAINER_POOL, required=True) is None
    assert container_prefail(None, HOST_POOL, required=True) is None


def test_added_tasks_are_refused_where_their_pool_cannot_run_containers() -> None:
    pools = {"hostpool": SimpleNamespace(doc=HOST_POOL)}
    spec = {"id": "t", "containerSettings": {"imageName": "x"}}
    refused = container_refusal(spec, job_pool_doc(pools, None, {"poolId": "HostPool"}), "containerSettings")
    assert refused is not None and refused.code == "InvalidPropertyValue"
    auto = {"autoPoolSpecification": {"pool": CONTAINER_POOL}}
    assert container_refusal(spec, job_pool_doc(pools, None, auto), "containerSettings") is None
    host_auto = {"autoPoolSpecification": {"pool": HOST_POOL}}  # Azure accepts it; the run fails
    assert container_refusal(spec, job_pool_doc(pools, None, host_auto), "containerSettings") is None
    assert job_pool_doc(pools, None, {"poolId": "not-yet"}) is None  # checked when it runs instead
    assert container_refusal(spec, None, "containerSettings") is None
    multi = {**spec, "multiInstanceSettings": {"numberOfInstances": 2}}
    assert container_refusal(multi, CONTAINER_POOL, "containerSettings") is not None
