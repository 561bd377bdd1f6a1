"""$filter on the lists, through the SDK: tasks in SQL, pools/jobs/nodes/images/files in memory."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import create_job, create_pool
from tests.conftest import wait_for


def test_task_list_filters(client: Any, unique: Any) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    create_pool(client, pool_id, nodes=1, slots=4)
    create_job(client, job_id, pool_id)
    client.create_task_collection(
        job_id,
        m.BatchTaskGroup(
            task_values=[
                m.BatchTaskCreateOptions(id=f"render{i}", command_line=f"/bin/bash -c 'exit {i % 3}'") for i in range(6)
            ]
            + [m.BatchTaskCreateOptions(id="other", command_line="/bin/true")]
        ),
    )
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed == 7, what="all tasks to complete")
    failed = {t.id for t in client.list_tasks(job_id, filter="executionInfo/exitCode ne 0")}
    assert failed == {"render1", "render2", "render4", "render5"}
    renders = {t.id for t in client.list_tasks(job_id, filter="startswith(id, 'RENDER') and state eq 'completed'")}
    assert renders == {f"render{i}" for i in range(6)}
    assert list(client.list_tasks(job_id, filter="state eq 'active'")) == []
    selected = next(iter(client.list_tasks(job_id, filter="id eq 'other'", select=["id", "state"])))
    assert (selected.id, selected.state, selected.command_line) == ("other", "completed", None)
    with pytest.raises(HttpResponseError) as info:
        list(client.list_tasks(job_id, filter="bogus eq 1"))
    assert info.value.error.code == "InvalidQueryParameterValue"
    assert "bogus" in str(info.value)
    client.begin_delete_pool(pool_id)


def test_pool_job_node_and_image_filters(client: Any, unique: Any) -> None:
    prefix = unique("flt")
    create_pool(client, f"{prefix}-a", nodes=1)
    create_pool(client, f"{prefix}-b", nodes=0)
    create_job(client, f"{prefix}-job", f"{prefix}-a")
    pools = {p.id for p in client.list_pools(filter=f"startswith(id, '{prefix}')")}
    assert pools == {f"{prefix}-a", f"{prefix}-b"}
    assert {j.id for j in client.list_jobs(filter=f"id eq '{prefix}-job'")} == {f"{prefix}-job"}
    wait_for(lambda: list(client.list_nodes(f"{prefix}-a", filter="state eq 'idle'")), what="an idle node")
    assert list(client.list_nodes(f"{prefix}-a", filter="state eq 'running'")) == []
    images = list(client.list_supported_images(filter="nodeAgentSKUId eq 'batch.node.ubuntu 22.04'"))
    assert images and all(i.node_agent_sku_id == "batch.node.ubuntu 22.04" for i in images)
    counts = list(client.list_pool_node_counts(filter=f"poolId eq '{prefix}-a'"))
    assert [c.pool_id for c in counts] == [f"{prefix}-a"]
    client.begin_delete_pool(f"{prefix}-a")
    client.begin_delete_pool(f"{prefix}-b")
