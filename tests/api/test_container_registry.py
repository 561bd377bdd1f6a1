"""Container registries with credentials (agent/container_images.py), through azure-batch 15.x.

Debian's docker-registry runs on the loopback with an htpasswd user; the test image (busybox-static) is
pushed to it. A pool's `containerRegistries` let its nodes pull `containerImageNames` before they are idle;
a wrong password or an image the registry lacks makes the node unusable with a ContainerInvalidImage error.
A task's own `registry` pulls an image the node does not have when the task starts.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m

from tests.api.container_support import (
    IMAGE_MARKER,
    Registry,
    container_config,
    create_container_pool,
    import_busybox_image,
    podman,
    remove_image,
    requires_rootful_podman,
    settings,
    sh,
    start_registry,
)
from tests.api.helpers import create_job, delete_pool_quietly, idle_nodes, read_task_file, run_task
from tests.conftest import wait_for

pytestmark = requires_rootful_podman

RUN_ID = secrets.token_hex(4)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    work = Path(tempfile.mkdtemp(prefix="batchyard-registry-"))
    yield from start_registry(work)
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> Iterator[list[str]]:
    """Two references to the test image in the registry (and not in the local image store)."""
    work = Path(tempfile.mkdtemp(prefix="batchyard-image-"))
    local = import_busybox_image(work, f"localhost/batchyard-test/pushed:{RUN_ID}")
    references = [registry.push(local, f"batchyard/busybox-{name}:{RUN_ID}") for name in ("pool", "task")]
    remove_image(local)
    for reference in references:
        assert podman("image", "exists", reference, check=False).returncode == 1
    yield references
    for reference in references:
        remove_image(reference)
    shutil.rmtree(work, ignore_errors=True)


def credentials(registry: Registry, password: str | None = None) -> m.ContainerRegistryReference:
    return m.ContainerRegistryReference(
        registry_server=registry.address, username=registry.username, password=password or registry.password
    )


def node_when_settled(client: Any, pool_id: str) -> Any:
    """The pool's node once it is idle or unusable (its image pulls are over)."""

    def settled() -> Any:
        nodes = list(client.list_nodes(pool_id))
        return nodes[0] if nodes and nodes[0].state in ("idle", "unusable") else None

    return wait_for(settled, timeout=90, what=f"{pool_id} node idle or unusable")


def test_a_pool_pulls_its_images_with_its_registry_credentials(
    client: Any, registry: Registry, pushed: list[str]
) -> None:
    pool_id = f"registry-ok-{RUN_ID}"
    image = pushed[0]
    create_container_pool(client, pool_id, container_config([image], [credentials(registry)]))
    try:
        node = node_when_settled(client, pool_id)
        assert node.state == "idle", node.as_dict()
        assert podman("image", "exists", image, check=False).returncode == 0  # present before the node was idle
        job_id = f"registry-job-{RUN_ID}"
        create_job(client, job_id, pool_id)
        task = run_task(client, job_id, "from-registry", sh("cat " + IMAGE_MARKER), container_settings=settings(image))
        assert task.execution_info.exit_code == 0
        assert read_task_file(client, job_id, "from-registry", "stdout.txt") == "inside the image\n"

        # An image the node lacks is pulled when a task names it, with the task's own registry.
        other = pushed[1]
        task = run_task(
            client,
            job_id,
            "task-registry",
            sh("cat " + IMAGE_MARKER),
            container_settings=settings(other, registry=credentials(registry)),
            timeout=60,
        )
        assert task.execution_info.exit_code == 0, task.execution_info.as_dict()
        # The registries' passwords were used, and are never answered (the contract's x-ms-secret)
        (registered,) = client.get_pool(
            pool_id
        ).virtual_machine_configuration.container_configuration.container_registries
        assert registered.username == registry.username and registered.password is None
        assert client.get_task(job_id, "task-registry").container_settings.registry.password is None
        listed = {t.id: t for t in client.list_tasks(job_id)}
        assert listed["task-registry"].container_settings.registry.username == registry.username
        assert listed["task-registry"].container_settings.registry.password is None
        missing = run_task(
            client,
            job_id,
            "task-missing",
            "true",
            container_settings=settings(f"{registry.address}/batchyard/nothing:{RUN_ID}"),
            timeout=60,
        )
        failure = missing.execution_info.failure_info
        assert failure.code == "ContainerInvalidImage", failure.as_dict()
        assert {"name": "ContainerImage", "value": f"{registry.address}/batchyard/nothing:{RUN_ID}"} in [
            d.as_dict() for d in failure.details
        ]
        client.begin_delete_job(job_id, polling_interval=0.2)
    finally:
        delete_pool_quietly(client, pool_id)


@pytest.mark.parametrize("case", ["wrong-password", "missing-image"])
def test_a_failed_pull_is_a_node_error_not_an_idle_node(
    client: Any, registry: Registry, pushed: list[str], case: str
) -> None:
    pool_id = f"registry-{case}-{RUN_ID}"
    if case == "wrong-password":
        image, registries = pushed[0], [credentials(registry, password="not-the-password")]
        remove_image(image)  # the other test may have pulled it: the node must ask the registry
    else:
        image, registries = f"{registry.address}/batchyard/absent:{RUN_ID}", [credentials(registry)]
    create_container_pool(client, pool_id, container_config([image], registries))
    try:
        node = node_when_settled(client, pool_id)
        assert node.state == "unusable", node.as_dict()
        [error] = node.errors
        assert error.code == "ContainerInvalidImage"
        details = {d.name: d.value for d in error.error_details}
        assert details["ContainerImage"] == image
        expected = "unauthorized" if case == "wrong-password" else "manifest unknown"
        assert expected in details["Message"].lower(), details
        assert idle_nodes(client, pool_id, 1) is None
    finally:
        delete_pool_quietly(client, pool_id)
