"""The account's quotas on the data plane: the dedicated core quota (a resize past it allocates what fits
and reports a resize error) and the pool quota (a pool past it is refused; an auto pool past it is the
job's scheduling error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import create_pool, error_code, vm_config
from tests.conftest import make_client, start_service, wait_for


def test_resize_beyond_the_core_quota_stops_at_the_quota(tmp_path: Path) -> None:
    service = start_service(tmp_path / "svc", "--core-quota", "4")
    try:
        client = make_client(service.url)
        create_pool(client, "p", nodes=3)  # standard_d2s_v3: 2 cores each, so 2 nodes fit
        pool = wait_for(lambda: (p := client.get_pool("p")).allocation_state == "steady" and p, what="steady pool")
        assert pool.current_dedicated_nodes == 2
        assert pool.target_dedicated_nodes == 3
        assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]
    finally:
        service.stop()


def test_pools_past_the_pool_quota_are_refused_and_auto_pools_fail_their_job(tmp_path: Path) -> None:
    service = start_service(tmp_path / "svc", "--pool-quota", "2")
    try:
        client = make_client(service.url)
        create_pool(client, "one", nodes=0)
        create_pool(client, "two", nodes=0)
        with pytest.raises(HttpResponseError) as refused:
            create_pool(client, "three", nodes=0)
        assert refused.value.status_code == 409 and error_code(refused.value) == "PoolQuotaReached"
        assert sorted(pool.id for pool in client.list_pools()) == ["one", "two"]

        auto = m.BatchAutoPoolSpecification(
            pool_lifetime_option="job",
            pool=m.BatchPoolSpecification(vm_size="standard_d2s_v3", virtual_machine_configuration=vm_config()),
        )
        client.create_job(m.BatchJobCreateOptions(id="auto", pool_info=m.BatchPoolInfo(auto_pool_specification=auto)))
        job = client.get_job("auto")
        assert job.state == "completed" and job.execution_info.scheduling_error is not None
        assert job.execution_info.scheduling_error.code == "AutoPoolCreationFailedWithQuotaReached"

        client.begin_delete_pool("two", polling_interval=0.2).result()
        create_pool(client, "three", nodes=0)  # room again once a pool is gone
    finally:
        service.stop()
