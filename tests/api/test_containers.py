"""Container workloads (agent/container_runs.py) through azure-batch 15.x, with real podman containers.

A pool with a `containerConfiguration` pulls its `containerImageNames` on each node before the node is
idle; tasks with `containerSettings` run in their image with the node's directories at their host paths,
as the task's user. The image is made here from Debian's busybox-static (nothing comes from the
internet); registry tests use Debian's docker-registry on the loopback with htpasswd credentials.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.container_support import (
    IMAGE_MARKER,
    container_config,
    containers_of,
    create_container_pool,
    module_image,
    requires_rootful_podman,
    settings,
    sh,
)
from tests.api.helpers import (
    completed,
    create_job,
    create_pool,
    delete_pool_quietly,
    error_code,
    error_values,
    idle_nodes,
    read_task_file,
    run_task,
)
from tests.conftest import wait_for

pytestmark = requires_rootful_podman

RUN_ID = secrets.token_hex(4)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    yield from module_image("busybox", RUN_ID)


@pytest.fixture(scope="module")
def pool(client: Any, image: str) -> Iterator[str]:
    pool_id = f"containers-{RUN_ID}"
    create_container_pool(client, pool_id, container_config([image]))
    wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=60, what="container pool idle")
    create_job(client, f"containers-job-{RUN_ID}", pool_id)
    yield pool_id
    client.begin_delete_job(f"containers-job-{RUN_ID}", polling_interval=0.2)
    delete_pool_quietly(client, pool_id)


def test_a_task_runs_in_its_image_with_the_batch_directories_and_variables(client: Any, pool: str, image: str) -> None:
    job_id = f"containers-job-{RUN_ID}"
    script = (
        "cat " + IMAGE_MARKER + "; echo pwd=$(pwd); echo wd=$AZ_BATCH_TASK_WORKING_DIR; echo uid=$(id -u); "
        "echo task=$AZ_BATCH_TASK_ID job=$AZ_BATCH_JOB_ID node=$AZ_BATCH_NODE_ID; "
        "test -d $AZ_BATCH_NODE_SHARED_DIR && echo shared=yes; echo made-inside > $AZ_BATCH_TASK_WORKING_DIR/out.txt; "
        "echo to-stderr >&2; exit 3"
    )
    task = run_task(client, job_id, "inside", sh(script), container_settings=settings(image))
    stdout = read_task_file(client, job_id, "inside", "stdout.txt")
    assert "inside the image" in stdout, stdout  # the file only the image has
    lines = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line and " " not in line)
    assert lines["pwd"] == lines["wd"] and lines["wd"].endswith("/workitems/" + job_id + "/job-1/inside/wd")
    assert lines["uid"] != "0"  # the pool's non-admin auto-user, as on the host
    assert f"task=inside job={job_id} node={task.node_info.node_id}" in stdout
    assert "shared=yes" in stdout
    assert read_task_file(client, job_id, "inside", "stderr.txt") == "to-stderr\n"
    assert read_task_file(client, job_id, "inside", "wd/out.txt") == "made-inside\n"
    assert task.execution_info.exit_code == 3 and task.execution_info.result == "failure"
    container = task.execution_info.container_info
    assert len(container.container_id) == 64 and container.state == "exited" and not container.error
    assert containers_of(name_part=task.node_info.node_id) == []  # removed once it ended


def test_an_admin_task_is_root_in_its_container_and_image_default_workdir(client: Any, pool: str, image: str) -> None:
    job_id = f"containers-job-{RUN_ID}"
    admin = m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level="admin"))
    task = run_task(
        client,
        job_id,
        "admin",
        sh("echo uid=$(id -u) pwd=$(pwd)"),
        user_identity=admin,
        container_settings=settings(image, working_directory=m.ContainerWorkingDirectory.CONTAINER_IMAGE_DEFAULT),
    )
    assert task.execution_info.exit_code == 0
    assert read_task_file(client, job_id, "admin", "stdout.txt") == "uid=0 pwd=/\n"


def test_bind_mounts_only_the_listed_directories_and_read_only_is_read_only(client: Any, pool: str, image: str) -> None:
    job_id = f"containers-job-{RUN_ID}"
    mounts = [
        m.ContainerHostBatchBindMountEntry(source=m.ContainerHostDataPath.TASK, is_read_only=False),
        m.ContainerHostBatchBindMountEntry(source=m.ContainerHostDataPath.SHARED, is_read_only=True),
    ]
    script = (
        "touch $AZ_BATCH_NODE_SHARED_DIR/x 2>/dev/null && echo shared=written || echo shared=refused; "
        "test -d $AZ_BATCH_NODE_STARTUP_DIR && echo startup=seen || echo startup=absent; echo ok > out.txt"
    )
    task = run_task(
        client,
        job_id,
        "mounts",
        sh(script),
        container_settings=settings(image, container_host_batch_bind_mounts=mounts),
    )
    assert task.execution_info.exit_code == 0, task.execution_info
    assert read_task_file(client, job_id, "mounts", "stdout.txt") == "shared=refused\nstartup=absent\n"
    assert read_task_file(client, job_id, "mounts", "wd/out.txt") == "ok\n"


def test_terminate_and_the_wall_clock_limit_stop_the_container(client: Any, pool: str, image: str) -> None:
    job_id = f"containers-job-{RUN_ID}"
    client.create_task(
        job_id, m.BatchTaskCreateOptions(id="long", command_line="sleep 300", container_settings=settings(image))
    )
    wait_for(lambda: client.get_task(job_id, "long").state != "active", timeout=30, what="long task started")
    started = client.get_task(job_id, "long")
    assert started.state == "running", started.as_dict()
    node_id = client.get_task(job_id, "long").node_info.node_id
    wait_for(lambda: containers_of(name_part=node_id), timeout=30, what="its container")
    client.terminate_task(job_id, "long")
    task = wait_for(lambda: (t := client.get_task(job_id, "long")).state == "completed" and t, timeout=30)
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert containers_of(name_part=node_id) == []

    limited = m.BatchTaskConstraints(max_wall_clock_time="PT2S")
    task = run_task(
        client, job_id, "limited", "sleep 300", container_settings=settings(image), constraints=limited, timeout=40
    )
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert "wall clock" in task.execution_info.failure_info.message
    assert containers_of(name_part=node_id) == []


def test_deleting_a_running_task_or_its_pool_removes_the_container(client: Any, image: str) -> None:
    pool_id, job_id = f"containers-delete-{RUN_ID}", f"containers-delete-job-{RUN_ID}"
    create_container_pool(client, pool_id, container_config([image]), task_slots_per_node=2)
    wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=60, what="pool idle")
    create_job(client, job_id, pool_id)
    for task_id in ("deleted", "with-pool"):
        client.create_task(
            job_id, m.BatchTaskCreateOptions(id=task_id, command_line="sleep 300", container_settings=settings(image))
        )
    wait_for(lambda: client.get_task(job_id, "with-pool").state == "running", timeout=30, what="tasks running")
    node_id = client.get_task(job_id, "with-pool").node_info.node_id
    wait_for(lambda: len(containers_of(name_part=node_id)) == 2, timeout=30, what="two containers")
    client.delete_task(job_id, "deleted")
    wait_for(lambda: len(containers_of(name_part=node_id)) == 1, timeout=30, what="the deleted task's container gone")
    client.begin_delete_pool(pool_id, polling_interval=0.2).result(timeout=60)
    wait_for(lambda: containers_of(name_part=node_id) == [], timeout=30, what="the pool's containers gone")
    client.begin_delete_job(job_id, polling_interval=0.2)


def test_retries_and_a_command_the_image_lacks(client: Any, pool: str, image: str) -> None:
    job_id = f"containers-job-{RUN_ID}"
    retried = run_task(
        client,
        job_id,
        "retried",
        sh("echo try=$AZ_BATCH_TASK_RETRY_COUNT; exit 1"),
        container_settings=settings(image),
        constraints=m.BatchTaskConstraints(max_task_retry_count=2),
    )
    assert retried.execution_info.retry_count == 2 and retried.execution_info.exit_code == 1
    assert read_task_file(client, job_id, "retried", "stdout.txt") == "try=2\n"
    missing = run_task(client, job_id, "missing", "no-such-program", container_settings=settings(image))
    assert missing.execution_info.failure_info.code == "CommandProgramNotFound"
    assert missing.execution_info.result == "failure"
    assert "no-such-program" in missing.execution_info.container_info.error
    bad_options = run_task(
        client,
        job_id,
        "bad-options",
        "true",
        container_settings=settings(image, container_run_options="--no-such-flag"),
    )
    failure = bad_options.execution_info.failure_info
    assert failure.code == "ContainerInvalidSettings", failure.as_dict()
    assert "no-such-flag" in failure.details[0].value


def test_a_cri_compatible_pool_without_prefetched_images(client: Any, image: str) -> None:
    pool_id, job_id = f"containers-cri-{RUN_ID}", f"containers-cri-job-{RUN_ID}"
    config = m.BatchContainerConfiguration(type=m.ContainerType.CRI_COMPATIBLE)
    create_container_pool(client, pool_id, config)
    try:
        wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=60, what="cri pool idle")
        assert client.get_pool(pool_id).virtual_machine_configuration.container_configuration.type == "criCompatible"
        create_job(client, job_id, pool_id)
        task = run_task(client, job_id, "t", sh("cat " + IMAGE_MARKER), container_settings=settings(image))
        assert read_task_file(client, job_id, "t", "stdout.txt") == "inside the image\n", task.execution_info
        client.begin_delete_job(job_id, polling_interval=0.2)
    finally:
        delete_pool_quietly(client, pool_id)


def test_the_start_task_and_job_preparation_and_release_run_in_containers(client: Any, image: str) -> None:
    pool_id = f"containers-start-{RUN_ID}"
    start = m.BatchStartTask(
        command_line=sh("cat " + IMAGE_MARKER + " > $AZ_BATCH_NODE_SHARED_DIR/start.txt"),
        container_settings=settings(image),
        wait_for_success=True,
        user_identity=m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level="admin")),
    )
    create_container_pool(client, pool_id, container_config([image]), start_task=start)
    try:
        nodes = wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=60, what="pool with start task idle")
        node = client.get_node(pool_id, nodes[0].id)
        assert node.start_task_info.exit_code == 0
        assert node.start_task_info.container_info.state == "exited"
        shared = b"".join(client.download_node_file(pool_id, node.id, "shared/start.txt")).decode()
        assert shared == "inside the image\n"
        job_id = f"containers-prep-{RUN_ID}"
        client.create_job(
            m.BatchJobCreateOptions(
                id=job_id,
                pool_info=m.BatchPoolInfo(pool_id=pool_id),
                job_preparation_task=m.BatchJobPreparationTask(
                    command_line=sh("cat " + IMAGE_MARKER + " > $AZ_BATCH_NODE_SHARED_DIR/prep.txt"),
                    container_settings=settings(image),
                ),
                job_release_task=m.BatchJobReleaseTask(
                    command_line=sh("cat " + IMAGE_MARKER + " > $AZ_BATCH_NODE_SHARED_DIR/release.txt"),
                    container_settings=settings(image),
                ),
            )
        )
        task = run_task(
            client,
            job_id,
            "after-prep",
            sh("cat $AZ_BATCH_NODE_SHARED_DIR/prep.txt"),
            container_settings=settings(image),
        )
        assert task.execution_info.exit_code == 0
        assert read_task_file(client, job_id, "after-prep", "stdout.txt") == "inside the image\n"
        client.begin_terminate_job(job_id, {"terminateReason": "done"}, polling_interval=0.2)

        def released() -> bool:
            files = [f.name for f in client.list_node_files(pool_id, node.id, recursive=True)]
            return "shared/release.txt" in files

        wait_for(released, timeout=30, what="release task output")
        [status] = list(client.list_job_preparation_and_release_task_status(job_id))
        assert status.job_preparation_task_execution_info.container_info.state == "exited"

        def release_done() -> Any:
            [status] = list(client.list_job_preparation_and_release_task_status(job_id))
            info = status.job_release_task_execution_info
            return info if info is not None and info.state == "completed" else None

        release_info = wait_for(release_done, timeout=30, what="release task completed")
        assert release_info.container_info.state == "exited"
        client.begin_delete_job(job_id, polling_interval=0.2)
    finally:
        delete_pool_quietly(client, pool_id)


def test_a_job_manager_runs_in_its_container(client: Any, pool: str, image: str) -> None:
    job_id = f"containers-jm-{RUN_ID}"
    manager = m.BatchJobManagerTask(
        id="manager",
        command_line=sh("cat " + IMAGE_MARKER + "; echo job=$AZ_BATCH_JOB_ID"),
        container_settings=settings(image),
        kill_job_on_completion=False,
    )
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool), job_manager_task=manager)
    )
    try:
        task = wait_for(lambda: completed(client, job_id, "manager"), timeout=30, what="job manager completion")
        assert task.execution_info.exit_code == 0
        assert read_task_file(client, job_id, "manager", "stdout.txt") == f"inside the image\njob={job_id}\n"
    finally:
        client.begin_delete_job(job_id, polling_interval=0.2)


def test_container_settings_must_match_the_pool(client: Any, pool: str, image: str) -> None:
    host_pool = f"containers-host-{RUN_ID}"
    create_pool(client, host_pool, nodes=0)
    create_job(client, f"containers-hostjob-{RUN_ID}", host_pool)
    try:
        with pytest.raises(HttpResponseError) as refused:
            client.create_task(
                f"containers-hostjob-{RUN_ID}",
                m.BatchTaskCreateOptions(id="t", command_line="true", container_settings=settings(image)),
            )
        assert refused.value.status_code == 400
        assert error_code(refused.value) == "InvalidPropertyValue"
        assert error_values(refused.value)["PropertyName"] == "containerSettings"
        # A job manager in a container on that pool: the job is refused, and not made.
        manager = m.BatchJobManagerTask(id="jm", command_line="true", container_settings=settings(image))
        with pytest.raises(HttpResponseError) as refused:
            client.create_job(
                m.BatchJobCreateOptions(
                    id=f"containers-jmjob-{RUN_ID}",
                    pool_info=m.BatchPoolInfo(pool_id=host_pool),
                    job_manager_task=manager,
                )
            )
        assert refused.value.status_code == 400
        assert error_values(refused.value)["PropertyName"] == "jobManagerTask.containerSettings"
        assert f"containers-jmjob-{RUN_ID}" not in [job.id for job in client.list_jobs()]
    finally:
        client.begin_delete_job(f"containers-hostjob-{RUN_ID}", polling_interval=0.2)
        delete_pool_quietly(client, host_pool)
    with pytest.raises(HttpResponseError) as refused:
        client.create_task(
            f"containers-job-{RUN_ID}",
            m.BatchTaskCreateOptions(
                id="mpi",
                command_line="true",
                container_settings=settings(image),
                multi_instance_settings=m.MultiInstanceSettings(
                    number_of_instances=2, coordination_command_line="true"
                ),
            ),
        )
    assert refused.value.status_code == 400
    assert "Multi-instance" in error_values(refused.value)["Reason"]
    # On a container pool a task without containerSettings fails as on Azure Batch.
    task = run_task(client, f"containers-job-{RUN_ID}", "plain", "true")
    assert task.execution_info.failure_info.code == "ContainerTaskSettingsNotFound"


def test_a_registry_identity_reference_is_refused(client: Any, pool: str, image: str) -> None:
    identity = m.BatchNodeIdentityReference(resource_id="/subscriptions/x/identity")
    registry = m.ContainerRegistryReference(registry_server="example.azurecr.io", identity_reference=identity)
    with pytest.raises(HttpResponseError) as refused:
        create_container_pool(client, f"containers-identity-{RUN_ID}", container_config([image], [registry]))
    assert refused.value.status_code == 400
    assert error_code(refused.value) == "InvalidPropertyValue"
    assert error_values(refused.value)["PropertyName"].endswith("containerRegistries[0].identityReference")
    with pytest.raises(HttpResponseError) as refused:
        client.create_task(
            f"containers-job-{RUN_ID}",
            m.BatchTaskCreateOptions(
                id="identity", command_line="true", container_settings=settings(image, registry=registry)
            ),
        )
    assert refused.value.status_code == 400
    assert error_values(refused.value)["PropertyName"] == "containerSettings.registry.identityReference"
