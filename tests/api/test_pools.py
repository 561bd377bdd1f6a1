"""Pools through the SDK over HTTP: create, get, list, exists, update, resize, remove nodes, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import models as m
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from tests.api.helpers import (
    create_job,
    create_pool,
    delete_pool_quietly,
    error_code,
    error_values,
    idle_nodes,
    pool_body,
    pool_exists,
    signed_request,
    temp_pool,
    vm_config,
)
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]


def _pool_gone(client: Any, pool_id: str) -> bool:
    return not pool_exists(client, pool_id)


def _steady(client: Any, pool_id: str) -> Any:
    pool = client.get_pool(pool_id)
    return pool if pool.allocation_state == "steady" else None


def _node_ids(client: Any, pool_id: str) -> set[str]:
    return {node.id for node in client.list_nodes(pool_id)}


# --- create / get / list / exists -----------------------------------------------------------------


def test_create_pool_answers_201_with_entity_headers(client: Any, unique: Unique, service: Service) -> None:
    pool_id = unique("pool")
    headers = client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            target_dedicated_nodes=0,
            display_name="my pool",
            metadata=[m.BatchMetadataItem(name="owner", value="tests")],
        ),
        cls=lambda resp, body, headers: (resp.http_response.status_code, resp.http_response.headers),
    )
    try:
        status, headers = headers
        assert status == 201
        assert headers["DataServiceId"] == f"{service.url}/pools/{pool_id}"
        assert headers["Location"] == f"{service.url}/pools/{pool_id}"
        assert headers["ETag"].startswith("0x")
        assert headers["Last-Modified"] is not None
        pool = client.get_pool(pool_id)
        assert pool.id == pool_id
        assert pool.etag == headers["ETag"]
        assert pool.url == f"{service.url}/pools/{pool_id}"
        assert pool.display_name == "my pool"
        assert pool.state == "active"
        assert pool.allocation_state == "steady"
        assert pool.vm_size == "standard_d2s_v3"
        assert pool.task_slots_per_node == 1
        assert pool.task_scheduling_policy.node_fill_type == "spread"
        assert pool.target_dedicated_nodes == 0
        assert pool.current_dedicated_nodes == 0
        assert pool.metadata[0].name == "owner" and pool.metadata[0].value == "tests"
        assert pool.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 22.04"
        assert pool.creation_time is not None and pool.last_modified is not None
    finally:
        delete_pool_quietly(client, pool_id)


def test_pool_exists_and_not_found(client: Any, unique: Unique, service: Service) -> None:
    pool_id = unique("pool")
    head = signed_request(service.url, "HEAD", f"/pools/{pool_id}")
    assert head.status_code == 404
    assert head.content == b""
    # azure-batch 15.1.0 raises here rather than answering False (see helpers.pool_exists).
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists(pool_id)
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_pool(pool_id)
    assert error_code(info.value) == "PoolNotFound"
    create_pool(client, pool_id, nodes=0)
    try:
        assert client.pool_exists(pool_id) is True
        assert client.pool_exists(pool_id.upper()) is True
    finally:
        client.begin_delete_pool(pool_id, polling_interval=0.2).result(timeout=30)
    assert pool_exists(client, pool_id) is False
    assert signed_request(service.url, "HEAD", f"/pools/{pool_id}").status_code == 404
    for call in (
        lambda: client.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=[])),
        lambda: client.begin_delete_pool(pool_id),
        lambda: client.list_nodes(pool_id).next(),
    ):
        with pytest.raises(ResourceNotFoundError) as info:
            call()
        assert error_code(info.value) == "PoolNotFound"


def test_pool_exists_conflict(client: Any, unique: Unique) -> None:
    pool_id = unique("pool")
    create_pool(client, pool_id, nodes=0)
    try:
        with pytest.raises(ResourceExistsError) as info:
            create_pool(client, pool_id, nodes=0)
        assert error_code(info.value) == "PoolExists"
        assert info.value.status_code == 409
    finally:
        delete_pool_quietly(client, pool_id)


def test_list_pools_pages_through_next_links(client: Any, unique: Unique, service: Service) -> None:
    ids = [unique("listpool") for _ in range(5)]
    for pool_id in ids:
        create_pool(client, pool_id, nodes=0)
    try:
        # A raw page is cut at maxresults and links to the rest.
        page = signed_request(service.url, "GET", "/pools", params={"maxresults": "2"}).json()
        assert len(page["value"]) == 2
        assert "odata.nextLink" in page
        # The SDK follows odata.nextLink.
        listed = [pool.id for pool in client.list_pools(max_results=2)]
        assert len(listed) == len(set(listed))
        positions = [listed.index(pool_id) for pool_id in ids]
        assert positions == sorted(positions)
        selected = list(client.list_pools(max_results=3, select=["id", "state"]))
        mine = [pool for pool in selected if pool.id in ids]
        assert len(mine) == 5
        assert all(pool.state == "active" and pool.vm_size is None for pool in mine)
    finally:
        for pool_id in ids:
            delete_pool_quietly(client, pool_id)


# --- validation ---------------------------------------------------------------------------------------


def test_vm_size_is_case_insensitive_and_reported_lower_case(client: Any, unique: Unique) -> None:
    pool_id = unique("pool")
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id, vm_size="STANDARD_D2S_V3", virtual_machine_configuration=vm_config(), target_dedicated_nodes=0
        )
    )
    try:
        assert client.get_pool(pool_id).vm_size == "standard_d2s_v3"
    finally:
        delete_pool_quietly(client, pool_id)


def test_unknown_vm_size_is_invalid_property_value(client: Any, unique: Unique) -> None:
    pool_id = unique("pool")
    with pytest.raises(HttpResponseError) as info:
        client.create_pool(
            m.BatchPoolCreateOptions(
                id=pool_id,
                vm_size="standard_nonexistent_v9",
                virtual_machine_configuration=vm_config(),
                target_dedicated_nodes=0,
            )
        )
    assert info.value.status_code == 400
    assert error_code(info.value) == "InvalidPropertyValue"
    assert error_values(info.value)["PropertyName"] == "vmSize"
    assert pool_exists(client, pool_id) is False


@pytest.mark.parametrize(
    ("vm_size", "slots", "ok"),
    [("standard_a1", 4, True), ("standard_a1", 5, False), ("standard_d2s_v3", 8, True), ("standard_d2s_v3", 9, False)],
)
def test_task_slots_per_node_limited_to_four_times_cores(
    client: Any, unique: Unique, vm_size: str, slots: int, ok: bool
) -> None:
    pool_id = unique("slots")
    options = m.BatchPoolCreateOptions(
        id=pool_id,
        vm_size=vm_size,
        virtual_machine_configuration=vm_config(),
        task_slots_per_node=slots,
        target_dedicated_nodes=0,
    )
    try:
        if ok:
            client.create_pool(options)
            assert client.get_pool(pool_id).task_slots_per_node == slots
        else:
            with pytest.raises(HttpResponseError) as info:
                client.create_pool(options)
            assert info.value.status_code == 400
            assert error_code(info.value) == "InvalidPropertyValue"
            assert error_values(info.value)["PropertyName"] == "taskSlotsPerNode"
            assert pool_exists(client, pool_id) is False
    finally:
        delete_pool_quietly(client, pool_id)


def test_seed_aliases_target_dedicated_and_max_tasks_per_node(client: Any, unique: Unique, service: Service) -> None:
    pool_id = unique("alias")
    body = pool_body(pool_id, targetDedicated=1, maxTasksPerNode=3)
    response = signed_request(service.url, "POST", "/pools", body=body)
    assert response.status_code == 201, response.text
    try:
        pool = client.get_pool(pool_id)
        assert pool.target_dedicated_nodes == 1
        assert pool.task_slots_per_node == 3
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the aliased pool's node")
        resized = signed_request(service.url, "POST", f"/pools/{pool_id}/resize", body={"targetDedicated": 0})
        assert resized.status_code == 202, resized.text
        wait_for(lambda: not _node_ids(client, pool_id), what="the pool to shrink to zero")
        assert client.get_pool(pool_id).target_dedicated_nodes == 0
    finally:
        delete_pool_quietly(client, pool_id)


def test_pool_without_targets_or_autoscale_has_a_target_of_zero(client: Any, unique: Unique) -> None:
    """The contract asks for a target; Azure creates the pool with targets of 0 (as the SDK's samples do)."""
    pool_id = unique("notarget")
    client.create_pool(
        m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=vm_config())
    )
    try:
        pool = client.get_pool(pool_id)
        assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (0, 0)
        assert pool.enable_auto_scale is False
        wait_for(lambda: _steady(client, pool_id), what="the empty pool to be steady")
    finally:
        delete_pool_quietly(client, pool_id)


def test_numbers_and_booleans_as_strings_as_azure_cli_sends_them(client: Any, unique: Unique, service: Service) -> None:
    """azure-cli sends the numbers of its flags as JSON strings; Azure reads them as numbers."""
    pool_id = unique("strings")
    body = pool_body(pool_id, targetDedicatedNodes="0", taskSlotsPerNode="2", enableInterNodeCommunication="false")
    response = signed_request(service.url, "POST", "/pools", body=body)
    assert response.status_code == 201, response.text
    try:
        resized = signed_request(service.url, "POST", f"/pools/{pool_id}/resize", body={"targetDedicatedNodes": "1"})
        assert resized.status_code == 202, resized.text
        pool = client.get_pool(pool_id)
        assert (pool.target_dedicated_nodes, pool.task_slots_per_node) == (1, 2)
        for bad in ("2.5", "abc", "4294967296"):
            answer = signed_request(service.url, "POST", f"/pools/{pool_id}/resize", body={"targetDedicatedNodes": bad})
            assert answer.status_code == 400, answer.text
            values = {item["key"]: item["value"] for item in answer.json()["values"]}
            assert (answer.json()["code"], values["PropertyName"]) == ("InvalidPropertyValue", "targetDedicatedNodes")
    finally:
        delete_pool_quietly(client, pool_id)


# --- updates ------------------------------------------------------------------------------------------


def test_update_pool_patches_only_what_is_given(client: Any, unique: Unique) -> None:
    pool_id = unique("patch")
    create_pool(
        client,
        pool_id,
        nodes=0,
        metadata=[m.BatchMetadataItem(name="a", value="1")],
        start_task=m.BatchStartTask(command_line="/bin/true"),
    )
    try:
        before = client.get_pool(pool_id)
        client.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=[m.BatchMetadataItem(name="b", value="2")]))
        after = client.get_pool(pool_id)
        assert [(item.name, item.value) for item in after.metadata] == [("b", "2")]
        assert after.start_task.command_line == "/bin/true"
        assert after.etag != before.etag
        assert after.last_modified >= before.last_modified
        # Optimistic concurrency through the SDK: a stale ETag is refused (412), the current one accepted.
        with pytest.raises(ResourceModifiedError) as info:
            client.update_pool(
                pool_id,
                m.BatchPoolUpdateOptions(metadata=[]),
                etag=before.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        assert info.value.status_code == 412
        client.update_pool(
            pool_id,
            m.BatchPoolUpdateOptions(metadata=[m.BatchMetadataItem(name="b", value="2")]),
            etag=after.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        with pytest.raises(ResourceModifiedError):
            client.get_pool(pool_id, etag=client.get_pool(pool_id).etag, match_condition=MatchConditions.IfModified)

        client.update_pool(
            pool_id,
            m.BatchPoolUpdateOptions(start_task=m.BatchStartTask(command_line="/bin/echo hi", max_task_retry_count=2)),
        )
        after = client.get_pool(pool_id)
        assert after.start_task.command_line == "/bin/echo hi"
        assert after.start_task.max_task_retry_count == 2
        assert after.start_task.wait_for_success is True
        assert [(item.name, item.value) for item in after.metadata] == [("b", "2")]
    finally:
        delete_pool_quietly(client, pool_id)


def test_update_pool_properties_that_need_an_empty_pool(client: Any, unique: Unique) -> None:
    pool_id = unique("empty")
    create_pool(client, pool_id, nodes=0, slots=2)
    try:
        policy = m.BatchTaskSchedulingPolicy(node_fill_type="pack")
        client.update_pool(pool_id, m.BatchPoolUpdateOptions(task_scheduling_policy=policy, task_slots_per_node=4))
        pool = client.get_pool(pool_id)
        assert pool.task_scheduling_policy.node_fill_type == "pack"
        assert pool.task_slots_per_node == 4
        with pytest.raises(HttpResponseError) as info:
            client.update_pool(pool_id, m.BatchPoolUpdateOptions(task_slots_per_node=9))  # 2 cores: at most 8
        assert info.value.status_code == 400
        assert error_values(info.value)["PropertyName"] == "taskSlotsPerNode"
        with pytest.raises(HttpResponseError) as info:
            client.update_pool(pool_id, m.BatchPoolUpdateOptions(vm_size="standard_imaginary_v0"))
        assert info.value.status_code == 400
        assert error_values(info.value)["PropertyName"] == "vmSize"
        client.update_pool(pool_id, m.BatchPoolUpdateOptions(vm_size="STANDARD_A1"))
        assert client.get_pool(pool_id).vm_size == "standard_a1"

        client.begin_resize_pool(
            pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0.2
        ).result(timeout=30)
        with pytest.raises(HttpResponseError) as info:
            client.update_pool(
                pool_id,
                m.BatchPoolUpdateOptions(task_scheduling_policy=m.BatchTaskSchedulingPolicy(node_fill_type="spread")),
            )
        assert info.value.status_code == 409
        pool = client.get_pool(pool_id)
        assert pool.task_scheduling_policy.node_fill_type == "pack"
        # What does not need an empty pool still changes.
        client.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=[m.BatchMetadataItem(name="k", value="v")]))
        assert client.get_pool(pool_id).metadata[0].value == "v"
    finally:
        delete_pool_quietly(client, pool_id)


def test_replace_pool_properties_replaces_everything_updatable(client: Any, unique: Unique) -> None:
    pool_id = unique("replace")
    create_pool(
        client,
        pool_id,
        nodes=0,
        metadata=[m.BatchMetadataItem(name="a", value="1")],
        start_task=m.BatchStartTask(command_line="/bin/true"),
    )
    try:
        client.replace_pool_properties(
            pool_id,
            m.BatchPoolReplaceOptions(
                application_package_references=[], metadata=[m.BatchMetadataItem(name="z", value="9")]
            ),
        )
        pool = client.get_pool(pool_id)
        assert [(item.name, item.value) for item in pool.metadata] == [("z", "9")]
        assert pool.start_task is None  # absent in the replace body: removed

        client.replace_pool_properties(
            pool_id,
            m.BatchPoolReplaceOptions(
                start_task=m.BatchStartTask(command_line="/bin/echo new"),
                application_package_references=[],
                metadata=[],
            ),
        )
        pool = client.get_pool(pool_id)
        assert pool.start_task.command_line == "/bin/echo new"
        assert not pool.metadata
        assert pool.vm_size == "standard_d2s_v3"  # not updatable: untouched
    finally:
        delete_pool_quietly(client, pool_id)


# --- resize -------------------------------------------------------------------------------------------


def test_resize_up_and_down(client: Any, unique: Unique, service: Service) -> None:
    pool_id = unique("resize")
    with temp_pool(client, pool_id, nodes=1):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="one idle node")
        poller = client.begin_resize_pool(
            pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=0.2
        )
        poller.result(timeout=30)
        pool = client.get_pool(pool_id)
        assert pool.allocation_state == "steady"
        assert pool.target_dedicated_nodes == 2
        assert pool.current_dedicated_nodes == 2
        nodes = wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        node_ids = {node.id for node in nodes}

        client.begin_resize_pool(
            pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0), polling_interval=0.2
        ).result(timeout=30)
        wait_for(lambda: not _node_ids(client, pool_id), what="the nodes to leave")
        pool = wait_for(lambda: _steady(client, pool_id), what="a steady pool")
        assert pool.current_dedicated_nodes == 0
        assert pool.target_dedicated_nodes == 0
        # The nodes' processes and directories are gone.
        roots = [service.data_dir / "nodes" / node_id for node_id in node_ids]
        wait_for(lambda: not any(root.exists() for root in roots), what="node directories to be removed")


def test_resize_while_resizing_is_a_conflict_and_stop_resize_stabilizes(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("stop"), unique("job")
    with temp_pool(client, pool_id, nodes=2):
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        create_job(client, job_id, pool_id)
        for index in range(2):
            client.create_task(job_id, m.BatchTaskCreateOptions(id=f"t{index}", command_line="/bin/sleep 3"))
        wait_for(lambda: client.get_job_task_counts(job_id).task_counts.running == 2, what="two running tasks")
        # Shrinking with taskcompletion waits for the running task: the pool stays resizing.
        client.begin_resize_pool(
            pool_id,
            m.BatchPoolResizeOptions(target_dedicated_nodes=1, node_deallocation_option="taskcompletion"),
            polling_interval=0.2,
        )
        pool = client.get_pool(pool_id)
        assert pool.allocation_state == "resizing"
        assert pool.target_dedicated_nodes == 1
        leaving = [node for node in client.list_nodes(pool_id) if node.state == "leavingpool"]
        assert len(leaving) == 1
        with pytest.raises(HttpResponseError) as info:
            client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=2))
        assert info.value.status_code == 409
        assert error_code(info.value) == "PoolNotSteady"

        poller = client.begin_stop_pool_resize(pool_id, polling_interval=0.2)
        assert client.get_pool(pool_id).allocation_state == "stopping"
        poller.result(timeout=30)
        pool = wait_for(lambda: _steady(client, pool_id), what="a steady pool after stop resize")
        assert pool.target_dedicated_nodes == pool.current_dedicated_nodes
        # Both tasks still complete successfully (taskcompletion never kills them).
        wait_for(lambda: client.get_job_task_counts(job_id).task_counts.succeeded == 2, what="both tasks to succeed")


def test_remove_node_with_requeue_reruns_the_task_elsewhere(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("requeue"), unique("job")
    with temp_pool(client, pool_id, nodes=2):
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        create_job(client, job_id, pool_id)
        client.create_task(job_id, m.BatchTaskCreateOptions(id="brief", command_line="/bin/sleep 2"))
        client.create_task(job_id, m.BatchTaskCreateOptions(id="victim", command_line="/bin/sleep 30"))
        running = wait_for(
            lambda: (tasks := list(client.list_tasks(job_id))) and all(t.state == "running" for t in tasks) and tasks,
            what="both tasks running",
        )
        victim = next(t for t in running if t.id == "victim").node_info.node_id
        client.begin_remove_nodes(
            pool_id,
            m.BatchNodeRemoveOptions(node_ids=[victim], node_deallocation_option="requeue"),
            polling_interval=0.2,
        ).result(timeout=30)
        assert victim not in _node_ids(client, pool_id)
        task = client.get_task(job_id, "victim")
        assert task.execution_info.requeue_count == 1
        assert task.execution_info.retry_count == 0
        assert task.state in ("active", "running")
        task = wait_for(
            lambda: (t := client.get_task(job_id, "victim")).state == "running" and t, what="the requeued task to rerun"
        )
        assert task.node_info.node_id != victim
        assert client.get_pool(pool_id).target_dedicated_nodes == 1
        client.terminate_task(job_id, "victim")


def test_remove_nodes_with_terminate_and_taskcompletion(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("remove"), unique("job")
    with temp_pool(client, pool_id, nodes=2):
        nodes = wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        create_job(client, job_id, pool_id)
        client.create_task(job_id, m.BatchTaskCreateOptions(id="a", command_line="/bin/sleep 30"))
        client.create_task(job_id, m.BatchTaskCreateOptions(id="b", command_line="/bin/sleep 2"))
        wait_for(lambda: client.get_job_task_counts(job_id).task_counts.running == 2, what="two running tasks")
        where = {t.id: t.node_info.node_id for t in client.list_tasks(job_id)}
        assert set(where.values()) == {node.id for node in nodes}  # spread: one per node

        client.begin_remove_nodes(
            pool_id,
            m.BatchNodeRemoveOptions(node_ids=[where["a"]], node_deallocation_option="terminate"),
            polling_interval=0.2,
        )
        task = wait_for(lambda: _completed(client, job_id, "a"), what="the terminated task")
        assert task.execution_info.result == "failure"
        assert task.execution_info.failure_info.code == "TaskEnded"
        wait_for(lambda: _steady(client, pool_id), what="steady after removing a node")
        assert _node_ids(client, pool_id) == {where["b"]}

        client.begin_remove_nodes(
            pool_id,
            m.BatchNodeRemoveOptions(node_ids=[where["b"]], node_deallocation_option="taskcompletion"),
            polling_interval=0.2,
        )
        node = client.get_node(pool_id, where["b"])
        assert node.state == "leavingpool"
        task = wait_for(lambda: _completed(client, job_id, "b"), what="task b to finish on the leaving node")
        assert task.execution_info.result == "success"
        wait_for(lambda: not _node_ids(client, pool_id), what="the last node to leave")
        assert client.get_pool(pool_id).current_dedicated_nodes == 0


def test_remove_node_with_retaineddata_waits_for_task_retention(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("retain"), unique("job")
    with temp_pool(client, pool_id, nodes=1):
        (node,) = wait_for(lambda: idle_nodes(client, pool_id, 1), what="an idle node")
        create_job(client, job_id, pool_id)
        client.create_task(
            job_id,
            m.BatchTaskCreateOptions(
                id="kept", command_line="/bin/true", constraints=m.BatchTaskConstraints(retention_time="PT3S")
            ),
        )
        wait_for(lambda: _completed(client, job_id, "kept"), what="the task")
        client.begin_remove_nodes(
            pool_id,
            m.BatchNodeRemoveOptions(node_ids=[node.id], node_deallocation_option="retaineddata"),
            polling_interval=0.2,
        )
        # The task's data is kept for its retention time, so the node stays (leaving) until then.
        assert client.get_node(pool_id, node.id).state == "leavingpool"
        wait_for(lambda: not _node_ids(client, pool_id), timeout=15, what="the node to leave after retention")


def test_remove_unknown_node_is_node_not_found(client: Any, unique: Unique) -> None:
    pool_id = unique("pool")
    create_pool(client, pool_id, nodes=0)
    try:
        with pytest.raises(ResourceNotFoundError) as info:
            client.begin_remove_nodes(pool_id, m.BatchNodeRemoveOptions(node_ids=["tvmps_nope_d"]))
        assert error_code(info.value) == "NodeNotFound"
    finally:
        delete_pool_quietly(client, pool_id)


def _completed(client: Any, job_id: str, task_id: str) -> Any:
    task = client.get_task(job_id, task_id)
    return task if task.state == "completed" else None


# --- delete -------------------------------------------------------------------------------------------


def test_delete_pool_with_running_task(client: Any, unique: Unique, service: Service) -> None:
    pool_id, job_id = unique("delete"), unique("job")
    create_pool(client, pool_id, nodes=1)
    nodes = wait_for(lambda: idle_nodes(client, pool_id, 1), what="an idle node")
    create_job(client, job_id, pool_id)
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/sleep 30"))
    wait_for(lambda: client.get_task(job_id, "t").state == "running", what="the task to run")
    poller = client.begin_delete_pool(pool_id, polling_interval=0.2)
    assert poller.polling_method()._initial_response.http_response.status_code == 202
    try:
        pool = client.get_pool(pool_id)
        assert pool.state == "deleting"
    except ResourceNotFoundError:
        pass  # already reclaimed
    with pytest.raises(HttpResponseError) as info:
        client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3))
    assert error_code(info.value) in ("PoolBeingDeleted", "PoolNotFound")
    wait_for(lambda: _pool_gone(client, pool_id), what="the pool to be gone")
    assert pool_id not in {pool.id for pool in client.list_pools()}
    # Its task went back to the queue (requeued, not failed).
    task = client.get_task(job_id, "t")
    assert task.state == "active"
    assert task.execution_info.requeue_count == 1
    root = service.data_dir / "nodes" / nodes[0].id
    wait_for(lambda: not root.exists(), what="the node directory to be wiped")
    # The id is free again.
    create_pool(client, pool_id, nodes=0)
    client.begin_delete_pool(pool_id, polling_interval=0.2).result(timeout=30)


# --- images and counts --------------------------------------------------------------------------------


def test_list_supported_images(client: Any) -> None:
    images = list(client.list_supported_images())
    by_sku: dict[str, list[Any]] = {}
    for image in images:
        by_sku.setdefault(image.node_agent_sku_id, []).append(image)
    jammy = [i for i in by_sku["batch.node.ubuntu 22.04"] if i.image_reference.sku == "22_04-lts"]
    assert jammy and jammy[0].image_reference.publisher == "canonical"
    assert jammy[0].os_type == "linux"
    assert jammy[0].verification_type == "verified"
    legacy = by_sku["batch.node.ubuntu 18.04"]
    assert any(
        i.image_reference.offer.lower() == "ubuntuserver" and i.image_reference.sku.lower().startswith("18.04")
        for i in legacy
    )
    assert legacy[0].batch_support_end_of_life is not None
    paged = list(client.list_supported_images(max_results=3))
    assert [(i.node_agent_sku_id, i.image_reference.sku) for i in paged] == [
        (i.node_agent_sku_id, i.image_reference.sku) for i in images
    ]


def test_pool_node_counts(client: Any, unique: Unique) -> None:
    pool_id = unique("counts")
    with temp_pool(client, pool_id, nodes=2):
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        counts = {entry.pool_id: entry for entry in client.list_pool_node_counts()}
        mine = counts[pool_id]
        assert mine.dedicated.idle == 2
        assert mine.dedicated.total == 2
        assert mine.dedicated.running == 0
        assert mine.low_priority.total == 0


def test_enum_values_come_back_as_azure_writes_them(client: Any) -> None:
    """Where the contract's casing differs from the real service's (and the SDK's enums), Azure's wins: a
    client's comparison with its own enum member holds."""
    pool_id = "enum-spellings"
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=m.VirtualMachineConfiguration(
                image_reference=vm_config().image_reference,
                node_agent_sku_id=vm_config().node_agent_sku_id,
                security_profile=m.SecurityProfile(
                    security_type=m.SecurityTypes.CONFIDENTIAL_VM,
                    encryption_at_host=True,
                    uefi_settings=m.BatchUefiSettings(secure_boot_enabled=True, vtpm_enabled=True),
                ),
            ),
            target_dedicated_nodes=0,
            task_scheduling_policy=m.BatchTaskSchedulingPolicy(
                node_fill_type=m.BatchNodeFillType.PACK, job_default_order=m.BatchJobDefaultOrder.CREATION_TIME
            ),
        )
    )
    try:
        pool = client.get_pool(pool_id)
        assert pool.task_scheduling_policy.job_default_order == m.BatchJobDefaultOrder.CREATION_TIME
        assert pool.task_scheduling_policy.job_default_order == "creationtime"
        security = pool.virtual_machine_configuration.security_profile
        assert security.security_type == m.SecurityTypes.CONFIDENTIAL_VM == "confidentialvm"
    finally:
        delete_pool_quietly(client, pool_id)


def test_a_subnet_is_refused_as_azure_refuses_one_that_does_not_exist(client: Any) -> None:
    subnet = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"
    with pytest.raises(HttpResponseError) as refused:
        client.create_pool(
            m.BatchPoolCreateOptions(
                id="with-subnet",
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=vm_config(),
                target_dedicated_nodes=0,
                network_configuration=m.NetworkConfiguration(subnet_id=subnet),
            )
        )
    assert error_code(refused.value) == "InvalidPropertyValue"
    assert error_values(refused.value)["PropertyName"] == "networkConfiguration.subnetId"
    assert not pool_exists(client, "with-subnet")


def test_secrets_of_a_pool_are_kept_but_never_answered(client: Any) -> None:
    pool_id = "secret-keeper"
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            target_dedicated_nodes=0,
            user_accounts=[
                m.UserAccount(
                    name="svc",
                    password="Pa55word-not-shown",
                    linux_user_configuration=m.LinuxUserConfiguration(uid=4321, gid=4321, ssh_private_key="KEY"),
                )
            ],
        )
    )
    try:
        (account,) = client.get_pool(pool_id).user_accounts
        assert account.name == "svc" and account.linux_user_configuration.uid == 4321
        assert account.password is None and account.linux_user_configuration.ssh_private_key is None
        (listed,) = [p for p in client.list_pools() if p.id == pool_id]
        assert listed.user_accounts[0].password is None
    finally:
        delete_pool_quietly(client, pool_id)
