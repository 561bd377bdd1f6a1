"""batchyard.conventions from inside a task: the task saves its output and tracks its stdout with
nothing but its environment; the client then lists and reads them by kind."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import models as m

from batchyard.conventions import TaskOutputKind, TaskOutputStorage, output_container_url, prepare_output_storage
from tests.api.helpers import create_job, create_pool, own_python_identity
from tests.api.storage_support import shared_azurite
from tests.conftest import Service, make_client, start_service, wait_for

TASK_CODE = """
import sys, time
from batchyard.conventions import TaskOutputKind, TaskOutputStorage
storage = TaskOutputStorage.from_environment()
with storage.save_tracked(TaskOutputKind.TASK_LOG, "../stdout.txt", "stdout.txt", interval=0.2):
    print("working", flush=True)
    open("result.txt", "w").write("42")
    storage.save(TaskOutputKind.TASK_OUTPUT, "result.txt")
    time.sleep(0.5)
    print("done", flush=True)
"""


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("conv"))
    yield svc
    svc.stop()


def test_task_code_persists_outputs_by_convention(linked: Service) -> None:
    batch: Any = make_client(linked.url)
    connection = shared_azurite().connection_string
    pool_id, job_id = f"conv-{uuid.uuid4().hex[:6]}", f"Conv_Job-{uuid.uuid4().hex[:6]}"
    prepare_output_storage(connection, job_id)
    create_pool(batch, pool_id)
    create_job(batch, job_id, pool_id)
    batch.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="render",
            # The node has this interpreter (same host); a real node would get batchyard as a package.
            command_line=f"{sys.executable} -c '{TASK_CODE}'",
            user_identity=own_python_identity(),
            environment_settings=[
                m.EnvironmentSetting(name="JOB_OUTPUT_CONTAINER_URL", value=output_container_url(connection, job_id))
            ],
        ),
    )
    task = wait_for(lambda: _completed(batch, job_id), timeout=60, what="the task")
    assert task.execution_info.result == "success", b"".join(batch.download_task_file(job_id, "render", "stderr.txt"))
    client = TaskOutputStorage.from_connection_string(connection, job_id, "render")
    assert [o.file_path for o in client.list_outputs(TaskOutputKind.TASK_OUTPUT)] == ["result.txt"]
    assert client.get_output(TaskOutputKind.TASK_OUTPUT, "result.txt").read() == b"42"
    assert client.get_output(TaskOutputKind.TASK_LOG, "stdout.txt").read() == b"working\ndone\n"
    batch.begin_delete_pool(pool_id, polling_interval=0.2)


def _completed(batch: Any, job_id: str) -> Any:
    task = batch.get_task(job_id, "render")
    return task if task.state == "completed" else None
