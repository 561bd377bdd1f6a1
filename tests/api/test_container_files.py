"""Resource and output files of tasks in containers, against a service linked to a real Azurite: the agent
downloads into the task's working directory on the host, which the container sees at the same path, and
uploads what the container wrote there once it has ended."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import models as m

from batchyard.service.storage.linked import LinkedStorage
from tests.api.container_support import (
    IMAGE_MARKER,
    container_config,
    create_container_pool,
    module_image,
    requires_rootful_podman,
    settings,
    sh,
)
from tests.api.helpers import create_job, delete_pool_quietly, idle_nodes, read_task_file, run_task
from tests.api.storage_support import blob_names, create_container, download, shared_azurite, upload
from tests.conftest import Service, make_client, start_service, wait_for

pytestmark = requires_rootful_podman

RUN_ID = secrets.token_hex(4)


@pytest.fixture(scope="module")
def storage() -> LinkedStorage:
    return shared_azurite()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, storage: LinkedStorage) -> Iterator[Any]:
    service: Service = start_service(
        tmp_path_factory.mktemp("container-files"), "--storage-connection-string", storage.connection_string
    )
    yield make_client(service.url)
    service.stop()


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    yield from module_image("files", RUN_ID)


@pytest.fixture(scope="module")
def job(batch: Any, image: str) -> Iterator[str]:
    pool_id, job_id = f"container-files-{RUN_ID}", f"container-files-job-{RUN_ID}"
    create_container_pool(batch, pool_id, container_config([image]))
    wait_for(lambda: idle_nodes(batch, pool_id, 1), timeout=60, what="container pool idle")
    create_job(batch, job_id, pool_id)
    yield job_id
    delete_pool_quietly(batch, pool_id)


def test_resource_files_reach_the_container_and_output_files_leave_it(
    batch: Any, job: str, image: str, storage: LinkedStorage
) -> None:
    inputs, results = f"in{RUN_ID}", f"out{RUN_ID}"
    create_container(storage, inputs)
    create_container(storage, results)
    upload(storage, inputs, "data/input.txt", b"from the blob\n")
    resource = m.ResourceFile(auto_storage_container_name=inputs, blob_prefix="data/")
    output = m.OutputFile(
        file_pattern="result-*.txt",
        destination=m.OutputFileDestination(
            container=m.OutputFileBlobContainerDestination(container_url=storage.container_sas_url(results, "w"))
        ),
        upload_options=m.OutputFileUploadConfiguration(upload_condition=m.OutputFileUploadCondition.TASK_SUCCESS),
    )
    script = "cat data/input.txt " + IMAGE_MARKER + " > result-1.txt"
    task = run_task(
        batch,
        job,
        "files",
        sh(script),
        container_settings=settings(image),
        resource_files=[resource],
        output_files=[output],
        timeout=60,
    )
    assert task.execution_info.result == "success", task.execution_info.as_dict()
    assert blob_names(storage, results) == ["result-1.txt"]
    assert download(storage, results, "result-1.txt") == b"from the blob\ninside the image\n"
    assert read_task_file(batch, job, "files", "wd/result-1.txt") == "from the blob\ninside the image\n"
