"""Resource files from every source, output files with every upload condition, path escapes and
download failures, against a service linked to a real Azurite (the Azure Blob protocol end to end)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.storage.blob import ContainerSasPermissions

from batchyard.service.storage.linked import LinkedStorage
from tests.api.helpers import create_job, create_pool, idle_nodes
from tests.api.storage_support import blob_names, create_container, download, shared_azurite, upload
from tests.conftest import Service, make_client, start_service, wait_for


@pytest.fixture(scope="module")
def storage() -> LinkedStorage:
    return shared_azurite()


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory, storage: LinkedStorage) -> Iterator[Service]:
    svc = start_service(
        tmp_path_factory.mktemp("storage-service"), "--storage-connection-string", storage.connection_string
    )
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def batch(linked: Service) -> Any:
    return make_client(linked.url)


@pytest.fixture(scope="module")
def job(batch: Any) -> str:
    """One pool of one node with 4 slots and a job on it, shared by the tests of this module."""
    pool_id, job_id = f"storage-pool-{uuid.uuid4().hex[:6]}", f"storage-job-{uuid.uuid4().hex[:6]}"
    create_pool(batch, pool_id, nodes=1, slots=4)
    create_job(batch, job_id, pool_id)
    wait_for(lambda: idle_nodes(batch, pool_id, 1), what="an idle node")
    return job_id


def container(storage: LinkedStorage) -> str:
    name = f"c{uuid.uuid4().hex[:12]}"
    create_container(storage, name)
    return name


def run_task(batch: Any, job_id: str, command: str, timeout: float = 60, **kwargs: Any) -> Any:
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    batch.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line=command, **kwargs))
    return wait_for(lambda: _completed(batch, job_id, task_id), timeout=timeout, what=f"task {task_id} to complete")


def _completed(batch: Any, job_id: str, task_id: str) -> Any:
    task = batch.get_task(job_id, task_id)
    return task if task.state == "completed" else None


def stdout(batch: Any, job_id: str, task: Any) -> str:
    return b"".join(batch.download_task_file(job_id, task.id, "stdout.txt")).decode()


def sh(script: str) -> str:
    return f"/bin/bash -c '{script}'"


# --- resource files ------------------------------------------------------------------------------


def test_http_url_with_a_blob_sas_and_file_mode(batch: Any, job: str, storage: LinkedStorage) -> None:
    name = container(storage)
    upload(storage, name, "tools/run.sh", b"#!/bin/sh\necho from-blob\n")
    files = [
        m.ResourceFile(http_url=storage.blob_sas_url(name, "tools/run.sh"), file_path="bin/run.sh", file_mode="750")
    ]
    task = run_task(batch, job, sh("stat -c %a bin/run.sh && bin/run.sh"), resource_files=files)
    assert task.execution_info.result == "success", task.execution_info.failure_info
    assert stdout(batch, job, task) == "750\nfrom-blob\n"


def test_storage_container_url_with_prefix_into_a_directory(batch: Any, job: str, storage: LinkedStorage) -> None:
    name = container(storage)
    for blob in ("data/a.txt", "data/sub/b.txt", "other/c.txt"):
        upload(storage, name, blob, blob.encode())
    files = [
        m.ResourceFile(
            storage_container_url=storage.container_sas_url(name, "rl"), blob_prefix="data/", file_path="in"
        ),
        m.ResourceFile(storage_container_url=storage.container_sas_url(name, "rl")),  # everything, into wd
    ]
    task = run_task(batch, job, sh("find . -type f | sort && cat in/data/sub/b.txt"), resource_files=files)
    assert task.execution_info.result == "success", task.execution_info.failure_info
    assert stdout(batch, job, task) == (
        "./data/a.txt\n./data/sub/b.txt\n./in/data/a.txt\n./in/data/sub/b.txt\n./other/c.txt\ndata/sub/b.txt"
    )


def test_auto_storage_container_name_is_resolved_by_the_service(batch: Any, job: str, storage: LinkedStorage) -> None:
    name = container(storage)
    upload(storage, name, "model/weights.bin", b"\x00\x01\x02")
    files = [m.ResourceFile(auto_storage_container_name=name, blob_prefix="model/", file_path="m")]
    task = run_task(batch, job, sh("wc -c < m/model/weights.bin; env"), resource_files=files)
    assert task.execution_info.result == "success", task.execution_info.failure_info
    out = stdout(batch, job, task)
    assert out.splitlines()[0] == "3"
    # The node got a SAS URL, never the account key: the task's environment has nothing of it.
    assert storage.account_key not in out and "AccountKey" not in out


def test_expired_sas_fails_the_task_with_a_user_error_naming_the_file(
    batch: Any, job: str, storage: LinkedStorage
) -> None:
    name = container(storage)
    upload(storage, name, "input.txt", b"x")
    expired = storage.blob_sas_url(name, "input.txt", lifetime=timedelta(hours=-1))
    task = run_task(
        batch,
        job,
        "/bin/true",
        resource_files=[m.ResourceFile(http_url=expired, file_path="input.txt")],
        constraints=m.BatchTaskConstraints(max_task_retry_count=1),
    )
    info = task.execution_info
    assert info.result == "failure" and info.exit_code is None
    assert info.failure_info.category == "usererror"
    assert info.failure_info.code == "BlobAccessDenied"
    assert "input.txt" in info.failure_info.message
    assert info.retry_count == 1  # a download failure counts as a failure for retries


def test_missing_blob_and_unreachable_host(batch: Any, job: str, storage: LinkedStorage) -> None:
    name = container(storage)
    missing = run_task(
        batch,
        job,
        "/bin/true",
        resource_files=[m.ResourceFile(http_url=storage.blob_sas_url(name, "nope.txt"), file_path="n")],
    )
    assert missing.execution_info.failure_info.code == "BlobNotFound"
    unreachable = run_task(
        batch, job, "/bin/true", resource_files=[m.ResourceFile(http_url="http://127.0.0.1:9/x.txt", file_path="x.txt")]
    )
    assert unreachable.execution_info.failure_info.code == "BlobDownloadMiscError"
    assert unreachable.execution_info.failure_info.category == "usererror"


def test_a_link_planted_in_the_working_directory_cannot_redirect_a_download(
    batch: Any, job: str, storage: LinkedStorage, tmp_path: Path
) -> None:
    name = container(storage)
    upload(storage, name, "payload.txt", b"payload")
    outside = tmp_path / "outside.txt"
    # First attempt: the file lands in wd; the command swaps it for a link out and fails. The retry
    # downloads again into the same working directory: the link must not be followed.
    script = f'if [ "$AZ_BATCH_TASK_RETRY_COUNT" = 0 ]; then rm p.txt; ln -s {outside} p.txt; exit 1; fi'
    task = run_task(
        batch,
        job,
        sh(script),
        resource_files=[m.ResourceFile(http_url=storage.blob_sas_url(name, "payload.txt"), file_path="p.txt")],
        constraints=m.BatchTaskConstraints(max_task_retry_count=1),
    )
    assert task.execution_info.failure_info.code == "ResourceFileCreateFailed"
    assert "outside the task working directory" in task.execution_info.failure_info.message
    assert not outside.exists()


def test_a_path_escape_in_file_path_is_a_batch_error(batch: Any, job: str) -> None:
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as raised:
        batch.create_task(
            job,
            m.BatchTaskCreateOptions(
                id="escape",
                command_line="/bin/true",
                resource_files=[m.ResourceFile(http_url="http://x/y", file_path="../y")],
            ),
        )
    assert raised.value.status_code == 400 and raised.value.error.code == "InvalidPropertyValue"


def test_start_task_download_failure_marks_the_node_starttaskfailed(batch: Any, storage: LinkedStorage) -> None:
    name = container(storage)
    pool_id = f"st-fail-{uuid.uuid4().hex[:6]}"
    create_pool(
        batch,
        pool_id,
        start_task=m.BatchStartTask(
            command_line="/bin/true",
            resource_files=[m.ResourceFile(http_url=storage.blob_sas_url(name, "absent.sh"), file_path="absent.sh")],
            wait_for_success=True,
        ),
    )
    node = wait_for(
        lambda: next((n for n in batch.list_nodes(pool_id) if n.state == "starttaskfailed"), None),
        what="the node to fail its start task",
    )
    failure = node.start_task_info.failure_info
    assert failure.code == "BlobNotFound" and "absent.sh" in failure.message
    assert any("absent.sh" in (detail.value or "") for error in node.errors for detail in error.error_details or [])
    batch.begin_delete_pool(pool_id, polling_interval=0.2)


# --- output files --------------------------------------------------------------------------------


def write_sas(storage: LinkedStorage, name: str) -> str:
    return storage.container_sas_url(name, "w")


def outputs(url: str, *patterns: tuple[str, str | None, str]) -> list[m.OutputFile]:
    return [
        m.OutputFile(
            file_pattern=pattern,
            destination=m.OutputFileDestination(
                container=m.OutputFileBlobContainerDestination(container_url=url, path=path)
            ),
            upload_options=m.OutputFileUploadConfiguration(upload_condition=condition),
        )
        for pattern, path, condition in patterns
    ]


@pytest.mark.parametrize("exit_code", [0, 3])
def test_upload_conditions(batch: Any, job: str, storage: LinkedStorage, exit_code: int) -> None:
    name = container(storage)
    files = outputs(
        write_sas(storage, name),
        ("out.txt", "success/out.txt", "tasksuccess"),
        ("out.txt", "failure/out.txt", "taskfailure"),
        ("out.txt", "always/out.txt", "taskcompletion"),
    )
    task = run_task(batch, job, sh(f"echo result > out.txt; exit {exit_code}"), output_files=files)
    assert task.execution_info.exit_code == exit_code
    expected = ["always/out.txt", "success/out.txt" if exit_code == 0 else "failure/out.txt"]
    assert blob_names(storage, name) == sorted(expected)
    assert download(storage, name, "always/out.txt") == b"result\n"


def test_wildcards_std_files_and_upload_headers(batch: Any, job: str, storage: LinkedStorage) -> None:
    name = container(storage)
    files = outputs(
        write_sas(storage, name),
        ("../std*.txt", "logs", "taskcompletion"),
        ("**/*.csv", "tables", "tasksuccess"),
        ("r?port.[a-m]d", None, "tasksuccess"),
    )
    files[1].destination.container.upload_headers = [m.OutputFileUploadHeader(name="Content-Type", value="text/csv")]
    script = (
        "mkdir -p a/b .hidden; echo 1 > top.csv; echo 2 > a/b/deep.csv; echo 3 > .hidden/x.csv; echo 4 > .dot.csv; "
    )
    script += "echo r > report.md; echo hello; echo oops >&2"
    task = run_task(batch, job, sh(script), output_files=files)
    assert task.execution_info.result == "success", task.execution_info.failure_info
    assert blob_names(storage, name) == [
        "logs/stderr.txt",
        "logs/stdout.txt",
        "report.md",
        "tables/a/b/deep.csv",
        "tables/top.csv",
    ]
    assert download(storage, name, "logs/stdout.txt") == b"hello\n"
    props = storage.client().get_blob_client(name, "tables/top.csv").get_blob_properties()
    assert props.content_settings.content_type == "text/csv"


def test_an_upload_failure_fails_the_task_without_changing_its_exit_code(
    batch: Any, job: str, storage: LinkedStorage
) -> None:
    name = container(storage)
    read_only = storage.container_sas_url(name, "r")
    task = run_task(
        batch, job, sh("echo x > out.txt"), output_files=outputs(read_only, ("out.txt", None, "taskcompletion"))
    )
    info = task.execution_info
    assert info.exit_code == 0 and info.result == "failure"
    assert info.failure_info.code == "FileUploadMiscError" and info.failure_info.category == "usererror"
    assert "out.txt" in info.failure_info.message
    log = b"".join(batch.download_task_file(job, task.id, "fileuploaderr.txt")).decode()
    assert "403" in log


def test_output_container_with_an_expired_sas(batch: Any, job: str, storage: LinkedStorage) -> None:
    from azure.storage.blob import generate_container_sas

    name = container(storage)
    token = generate_container_sas(
        storage.account_name,
        name,
        account_key=storage.account_key,
        permission=ContainerSasPermissions(write=True),
        expiry=datetime.now(UTC) - timedelta(minutes=5),
    )
    task = run_task(
        batch,
        job,
        "/bin/true",
        output_files=outputs(f"{storage.container_url(name)}?{token}", ("../stdout.txt", None, "taskcompletion")),
    )
    assert task.execution_info.failure_info.code == "FileUploadMiscError"
    assert blob_names(storage, name) == []


def test_without_a_linked_account_auto_storage_fails_and_the_rest_works(
    service: Service, client: Any, unique: Any
) -> None:
    pool_id, job_id = unique("nolink-pool"), unique("nolink-job")
    create_pool(client, pool_id)
    create_job(client, job_id, pool_id)
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="auto", command_line="/bin/true", resource_files=[m.ResourceFile(auto_storage_container_name="data")]
        ),
    )
    client.create_task(job_id, m.BatchTaskCreateOptions(id="plain", command_line="/bin/true"))
    auto = wait_for(lambda: _completed(client, job_id, "auto"), timeout=60, what="the auto-storage task")
    plain = wait_for(lambda: _completed(client, job_id, "plain"), timeout=60, what="the plain task")
    assert auto.execution_info.failure_info.code == "AutoStorageNotConfigured"
    assert plain.execution_info.result == "success"
    client.begin_delete_pool(pool_id, polling_interval=0.2)


def test_serve_with_azurite_starts_links_and_stops_it(tmp_path: Path) -> None:
    import socket

    from tests.api.helpers import signed_request

    svc = start_service(tmp_path / "svc", "--azurite", "--azurite-port", "0")
    try:
        line = next(line for line in svc.log().splitlines() if "Azurite (linked storage account) listening on" in line)
        endpoint = line.rsplit(" ", 1)[-1]
        assert (tmp_path / "svc" / "azurite").is_dir()  # its data lives under the service's data dir
        created = signed_request(svc.url, "PUT", "/management/applications/viaazurite/versions/1.0", body={})
        assert created.status_code == 201 and created.json()["properties"]["storageUrl"].startswith(endpoint)
    finally:
        assert svc.stop() == 0
    host, port = endpoint.split("//", 1)[1].split("/", 1)[0].split(":")
    with socket.socket() as sock:
        assert sock.connect_ex((host, int(port))) != 0  # the emulator went away with the service
