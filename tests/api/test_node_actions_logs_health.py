"""uploadbatchservicelogs (the agent PUTs its log as block blobs to a container SAS URL) and node errors
from the agent's health checks (disk space, deleted node directories), set and cleared."""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import (
    create_job,
    create_pool,
    delete_pool_quietly,
    error_code,
    idle_nodes,
    processes_with,
    unique_sleep,
)
from tests.conftest import Service, wait_for


class BlobSink:
    """A tiny HTTP server that records Put Blob requests (path, query, headers, body). Its answers wait
    for `release` (set unless the test holds them), so a test sees whether a request waited for them."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, dict[str, str], bytes]] = []
        self.release = threading.Event()
        self.release.set()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.release.wait(60)
                sink.puts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def node(client: Any) -> Iterator[Any]:
    create_pool(client, "logs-pool", nodes=1, metadata=[m.BatchMetadataItem(name="purpose", value="logs")])
    yield wait_for(lambda: idle_nodes(client, "logs-pool", 1), timeout=60, what="an idle node")[0]
    delete_pool_quietly(client, "logs-pool")


def test_upload_logs_answers_at_once_and_puts_the_agent_log_as_block_blobs(
    client: Any, node: Any, service: Service
) -> None:
    sink = BlobSink()
    sink.release.clear()  # the container answers no PUT until the request has been answered
    try:
        options = m.UploadBatchServiceLogsOptions(
            container_url=f"{sink.url}/mycontainer?sv=2021-08-06&sig=abc",
            start_time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        )
        result = client.upload_node_logs("logs-pool", node.id, options)
        assert result.number_of_files_uploaded == 1  # the files that will be uploaded
        assert not sink.puts
        sink.release.set()
        wait_for(lambda: len(sink.puts) == 1 or None, what="the upload")
    finally:
        sink.close()
    assert result.virtual_directory_name.startswith(f"logs-pool/{node.id}/")
    path, headers, body = sink.puts[0]
    assert path == f"/mycontainer/{result.virtual_directory_name}/agent.log?sv=2021-08-06&sig=abc"
    assert headers["x-ms-blob-type"] == "BlockBlob"
    assert body  # the agent's log, as written on the node (the local provider's node root; the node file API
    # does not show the agent's own files, as on Azure)
    assert body == (service.data_dir / "nodes" / node.id / "agent.log").read_bytes()[: len(body)]
    assert not client.get_node("logs-pool", node.id).errors


def _upload_errors(client: Any, node_id: str) -> list[Any]:
    return [e for e in client.get_node("logs-pool", node_id).errors or [] if e.code == "UploadBatchServiceLogsFailed"]


def test_upload_logs_mistakes(client: Any, node: Any) -> None:
    late = m.UploadBatchServiceLogsOptions(
        container_url="http://127.0.0.1:9/nothing-listens-here?sig=x",
        start_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    later = client.upload_node_logs("logs-pool", node.id, late)
    assert later.number_of_files_uploaded == 0  # nothing was logged after the start time: nothing to send

    # A container that cannot be reached: the request is answered, the failure shows on the node.
    broken = m.UploadBatchServiceLogsOptions(
        container_url="http://127.0.0.1:9/nothing-listens-here?sig=x",
        start_time=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    answered = client.upload_node_logs("logs-pool", node.id, broken)
    assert answered.number_of_files_uploaded == 1
    (error,) = wait_for(lambda: _upload_errors(client, node.id), what="the node error of the failed upload")
    details = {d.name: d.value for d in error.error_details}
    assert details["VirtualDirectoryName"] == answered.virtual_directory_name
    assert "agent.log" in details["Reason"]
    assert client.get_node("logs-pool", node.id).state == "idle"  # the node still runs tasks

    # The next upload that succeeds clears it.
    sink = BlobSink()
    try:
        fixed = m.UploadBatchServiceLogsOptions(container_url=f"{sink.url}/c?sig=x", start_time=broken.start_time)
        client.upload_node_logs("logs-pool", node.id, fixed)
        wait_for(lambda: not _upload_errors(client, node.id), what="the error to clear")
        assert len(sink.puts) == 1
    finally:
        sink.close()

    # What cannot be a container's URL is refused before anything is sent.
    not_http = m.UploadBatchServiceLogsOptions(container_url="ftp://127.0.0.1/c", start_time=broken.start_time)
    with pytest.raises(HttpResponseError) as failed:
        client.upload_node_logs("logs-pool", node.id, not_http)
    assert failed.value.status_code == 400 and error_code(failed.value) == "InvalidPropertyValue"


def test_deleted_node_directories_are_reported_until_fixed(client: Any, service: Service, node: Any) -> None:
    shared = service.data_dir / "nodes" / node.id / "shared"
    shutil.rmtree(shared)
    errors = wait_for(
        lambda: client.get_node("logs-pool", node.id).errors, timeout=15, what="a node error for the deleted dir"
    )
    assert [error.code for error in errors] == ["NodeDirectoryMissing"]
    assert [(d.name, d.value) for d in errors[0].error_details] == [("Directory", "shared")]
    shared.mkdir()
    wait_for(lambda: not client.get_node("logs-pool", node.id).errors, timeout=15, what="the error to clear")


def test_too_little_disk_space_is_reported(client: Any) -> None:
    huge = m.BatchMetadataItem(name="batchyard-min-free-disk-mb", value=str(10**12))
    create_pool(client, "diskfull-pool", nodes=1, metadata=[huge])
    try:
        node_id = wait_for(lambda: list(client.list_nodes("diskfull-pool")), timeout=30, what="a node")[0].id
        errors = wait_for(lambda: client.get_node("diskfull-pool", node_id).errors, timeout=20, what="DiskFull")
        assert [error.code for error in errors] == ["DiskFull"]
    finally:
        delete_pool_quietly(client, "diskfull-pool")


def test_a_running_tasks_deleted_directory_is_reported_until_the_task_ends(
    client: Any, service: Service, node: Any
) -> None:
    create_job(client, "health-job", "logs-pool")
    try:
        sleep = unique_sleep(300)
        client.create_task("health-job", m.BatchTaskCreateOptions(id="victim", command_line=sleep))
        wait_for(lambda: processes_with(sleep), timeout=30, what="the task's process")
        task_dir = (
            service.data_dir / "nodes" / node.id / client.get_task("health-job", "victim").node_info.task_root_directory
        )
        shutil.rmtree(task_dir)
        errors = wait_for(lambda: client.get_node("logs-pool", node.id).errors, timeout=15, what="TaskDirectoryDeleted")
        assert [error.code for error in errors] == ["TaskDirectoryDeleted"]
        assert [(d.name, d.value) for d in errors[0].error_details] == [("Task", "health-job/victim")]
        client.terminate_task("health-job", "victim")
        wait_for(lambda: not client.get_node("logs-pool", node.id).errors, timeout=15, what="the error to clear")
    finally:
        client.begin_delete_job("health-job", polling_interval=0.2)
