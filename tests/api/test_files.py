"""Task and node files through the SDK over HTTP: list, download (ranges), properties, delete, confinement."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.api.helpers import (
    create_job,
    error_code,
    idle_nodes,
    read_task_file,
    run_task,
    signed_request,
    temp_pool,
)
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]

START = (
    '/bin/bash -c \'echo started; echo warned >&2; mkdir -p "$AZ_BATCH_NODE_SHARED_DIR/sub"; '
    'echo shared > "$AZ_BATCH_NODE_SHARED_DIR/sub/data.txt"\''
)
WRITE = (
    "/bin/bash -c 'mkdir -p out/deep; printf 0123456789 > out/deep/digits.txt; echo hi; "
    "ln -s /etc/passwd passwd-link; ln -s /etc etc-link; ln -s ../../../../../../.. root-link'"
)


@pytest.fixture(scope="module")
def pool(client: Any) -> Iterator[str]:
    pool_id = f"files-pool-{os.getpid()}"
    with temp_pool(client, pool_id, nodes=1, slots=2, start_task=m.BatchStartTask(command_line=START)):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the file pool's node")
        yield pool_id


@pytest.fixture(scope="module")
def node_id(client: Any, pool: str) -> str:
    return str(next(iter(client.list_nodes(pool))).id)


@pytest.fixture
def job(client: Any, pool: str, unique: Unique) -> Iterator[str]:
    job_id = unique("job")
    create_job(client, job_id, pool)
    task = run_task(client, job_id, "writer", WRITE)
    assert task.execution_info.result == "success"
    yield job_id
    client.begin_delete_job(job_id, polling_interval=0.2)


# --- task files -------------------------------------------------------------------------------------


def test_list_task_files(client: Any, job: str, service: Service) -> None:
    top = {f.name: f for f in client.list_task_files(job, "writer")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= set(top)
    assert top["wd"].is_directory is True
    assert top["stdout.txt"].is_directory is False
    assert top["stdout.txt"].properties.content_length == 3
    assert top["stdout.txt"].url == f"{service.url}/jobs/{job}/tasks/writer/files/stdout.txt"
    assert not any("/" in name for name in top)

    everything = {f.name: f for f in client.list_task_files(job, "writer", recursive=True)}
    assert {"stdout.txt", "wd", "wd/out", "wd/out/deep", "wd/out/deep/digits.txt"} <= set(everything)
    assert everything["wd/out/deep/digits.txt"].properties.content_length == 10
    assert everything["wd/out"].is_directory is True
    # Links are listed as entries of the task's directory; their targets are not walked into.
    assert not any(name.startswith("wd/etc-link/") or name.startswith("wd/root-link/") for name in everything)
    paged = [f.name for f in client.list_task_files(job, "writer", recursive=True, max_results=2)]
    assert sorted(paged) == sorted(everything)


def test_download_task_file_with_ranges(client: Any, job: str, service: Service) -> None:
    path = "wd/out/deep/digits.txt"
    assert read_task_file(client, job, "writer", path) == "0123456789"
    assert read_task_file(client, job, "writer", path, ocp_range="bytes=0-4") == "01234"
    assert read_task_file(client, job, "writer", path, ocp_range="bytes=5-") == "56789"
    assert read_task_file(client, job, "writer", path, ocp_range="bytes=8-100") == "89"
    raw = signed_request(
        service.url, "GET", f"/jobs/{job}/tasks/writer/files/{path}", headers={"ocp-range": "bytes=-3"}
    )
    assert raw.status_code == 200
    assert raw.content == b"789"
    assert raw.headers["content-length"] == "3"
    assert read_task_file(client, job, "writer", "stdout.txt") == "hi\n"


def test_task_file_properties(client: Any, job: str, service: Service) -> None:
    props = client.get_task_file_properties(job, "writer", "wd/out/deep/digits.txt")
    assert int(props.content_length) == 10
    assert str(props.is_directory).lower() == "false"
    assert props.url.endswith(f"/jobs/{job}/tasks/writer/files/wd/out/deep/digits.txt")
    assert props.last_modified is not None

    head = signed_request(service.url, "HEAD", f"/jobs/{job}/tasks/writer/files/wd/out/deep/digits.txt")
    assert head.status_code == 200
    assert head.headers["content-length"] == "10"
    assert head.headers["ocp-batch-file-isdirectory"] == "false"
    assert head.headers["last-modified"]
    assert re.fullmatch(r"0x[0-9A-F]{15,16}", head.headers["etag"])  # the contract's ETag, as Batch writes one
    got = signed_request(service.url, "GET", f"/jobs/{job}/tasks/writer/files/wd/out/deep/digits.txt")
    assert got.headers["etag"] == head.headers["etag"]
    assert head.content == b""
    folder = signed_request(service.url, "HEAD", f"/jobs/{job}/tasks/writer/files/wd/out")
    assert folder.headers["ocp-batch-file-isdirectory"] == "true"


def test_file_conditions_the_etag_decides_before_the_date(job: str, service: Service) -> None:
    """A file's ETag changes with every write; its Last-Modified only to the second. When a client sends
    both (browsers do), the ETag decides: a file written twice in one second is not answered 304."""
    path = f"/jobs/{job}/tasks/writer/files/wd/out/deep/digits.txt"
    head = signed_request(service.url, "HEAD", path)
    etag, last_modified = head.headers["etag"], head.headers["last-modified"]
    assert signed_request(service.url, "GET", path, headers={"If-None-Match": etag}).status_code == 304
    assert signed_request(service.url, "GET", path, headers={"If-Modified-Since": last_modified}).status_code == 304
    stale = {"If-None-Match": "0x8D000000000", "If-Modified-Since": last_modified}
    answered = signed_request(service.url, "GET", path, headers=stale)
    assert answered.status_code == 200
    assert answered.content == b"0123456789"


def test_delete_task_files(client: Any, job: str) -> None:
    client.delete_task_file(job, "writer", "wd/out/deep/digits.txt")
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_task_file_properties(job, "writer", "wd/out/deep/digits.txt")
    assert info.value.status_code == 404  # a HEAD: no body to carry the code
    with pytest.raises(ResourceNotFoundError) as info:
        read_task_file(client, job, "writer", "wd/out/deep/digits.txt")
    assert error_code(info.value) == "FileNotFound"
    # A directory that is not empty goes only recursively.
    client.create_task(job, m.BatchTaskCreateOptions(id="more", command_line="/bin/bash -c 'mkdir d; touch d/f'"))
    wait_for(lambda: client.get_task(job, "more").state == "completed", what="the second task")
    with pytest.raises(HttpResponseError):
        client.delete_task_file(job, "more", "wd/d")
    assert "wd/d/f" in {f.name for f in client.list_task_files(job, "more", recursive=True)}
    client.delete_task_file(job, "more", "wd/d", recursive=True)
    assert not {"wd/d", "wd/d/f"} & {f.name for f in client.list_task_files(job, "more", recursive=True)}


def test_missing_task_file_is_file_not_found(client: Any, job: str) -> None:
    for call in (
        lambda: read_task_file(client, job, "writer", "no-such-file.txt"),
        lambda: client.delete_task_file(job, "writer", "wd/nothing/here"),
    ):
        with pytest.raises(ResourceNotFoundError) as info:
            call()
        assert error_code(info.value) == "FileNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.get_task_file_properties(job, "writer", "no-such-file.txt")
    with pytest.raises(ResourceNotFoundError) as info:
        list(client.list_task_files(job, "no-such-task"))
    assert error_code(info.value) == "TaskNotFound"


# --- node files -------------------------------------------------------------------------------------


def test_node_files(client: Any, pool: str, node_id: str, job: str, service: Service) -> None:
    top = {f.name: f for f in client.list_node_files(pool, node_id)}
    assert {"startup", "shared", "workitems"} <= set(top)
    assert all(top[name].is_directory for name in ("startup", "shared", "workitems"))
    assert not {".batchyard", "agent.log", "users", "home"} & set(top)  # the agent's own: not the node's
    everything = {f.name for f in client.list_node_files(pool, node_id, recursive=True)}
    assert not [name for name in everything if name.split("/")[0] in (".batchyard", "agent.log", "users", "home")]
    with pytest.raises(ResourceNotFoundError) as info:
        b"".join(client.download_node_file(pool, node_id, "agent.log"))
    assert error_code(info.value) == "FileNotFound"
    assert {
        "startup/stdout.txt",
        "startup/stderr.txt",
        "shared/sub/data.txt",
        f"workitems/{job}/job-1/writer/stdout.txt",
    } <= everything

    assert b"".join(client.download_node_file(pool, node_id, "startup/stdout.txt")) == b"started\n"
    assert b"".join(client.download_node_file(pool, node_id, "startup/stderr.txt")) == b"warned\n"
    assert b"".join(client.download_node_file(pool, node_id, "shared/sub/data.txt", ocp_range="bytes=0-2")) == b"sha"
    props = client.get_node_file_properties(pool, node_id, "shared/sub/data.txt")
    assert int(props.content_length) == len("shared\n")
    head = signed_request(service.url, "HEAD", f"/pools/{pool}/nodes/{node_id}/files/startup")
    assert head.headers["ocp-batch-file-isdirectory"] == "true"

    client.delete_node_file(pool, node_id, "shared/sub/data.txt")
    with pytest.raises(ResourceNotFoundError) as info:
        b"".join(client.download_node_file(pool, node_id, "shared/sub/data.txt"))
    assert error_code(info.value) == "FileNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        client.delete_node_file(pool, node_id, "shared/sub/data.txt")
    assert error_code(info.value) == "FileNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        list(client.list_node_files(pool, "tvmps_nope_d"))
    assert error_code(info.value) == "NodeNotFound"


# --- confinement --------------------------------------------------------------------------------------

_ESCAPES = [
    "../../etc/passwd",
    "..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    "shared/../../../../../../../../etc/passwd",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "....//....//etc/passwd",
]


def _assert_not_passwd(response: Any) -> None:
    assert response.status_code in (400, 404), (response.status_code, response.text[:200])
    assert b"root:" not in response.content


def _literal_get(service: Service, path: str) -> tuple[int, bytes]:
    """A signed GET whose path goes out byte for byte (httpx would remove dot segments first)."""
    import http.client

    from batchyard.service.auth import format_ocp_date, sign_request
    from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    target = f"{path}?api-version=2025-06-01.21.0"
    headers = {"ocp-date": format_ocp_date()}
    headers["Authorization"] = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, "GET", service.url + target, headers)
    host = service.url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_path_escapes_never_leave_the_node_root(
    client: Any, pool: str, node_id: str, job: str, service: Service
) -> None:
    passwd = open("/etc/passwd", "rb").read()
    assert passwd.startswith(b"root:")
    for escape in _ESCAPES:
        for prefix in (f"/pools/{pool}/nodes/{node_id}/files/", f"/jobs/{job}/tasks/writer/files/"):
            for method in ("GET", "HEAD"):
                _assert_not_passwd(signed_request(service.url, method, prefix + escape))
        with pytest.raises(HttpResponseError):
            b"".join(client.download_node_file(pool, node_id, escape))
        with pytest.raises(HttpResponseError):
            read_task_file(client, job, "writer", escape)
    # Dot segments sent as they are (not removed by the client) reach the file routes and stay inside.
    for escape in ("../../../../../../../../etc/passwd", "shared/../../../../../../../../../etc/passwd", "./../../x"):
        for prefix in (f"/pools/{pool}/nodes/{node_id}/files/", f"/jobs/{job}/tasks/writer/files/"):
            status, body = _literal_get(service, prefix + escape)
            assert status in (400, 404), (prefix + escape, status, body[:200])
            assert b"root:" not in body
    # A task's file URL reaches only that task's directory, not the rest of the node.
    for escape in ("..%2F..%2F..%2F..%2Fstartup%2Fstdout.txt", "wd%2F..%2F..%2Fwriter%2F..%2F..%2F..%2F..%2Fshared"):
        response = signed_request(service.url, "GET", f"/jobs/{job}/tasks/writer/files/{escape}")
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "FileNotFound"
    status, body = _literal_get(service, f"/jobs/{job}/tasks/writer/files/../../../../startup/stdout.txt")
    assert status == 404 and b"started" not in body
    assert read_task_file(client, job, "writer", "wd/../stdout.txt") == "hi\n"  # inside is fine
    # Links made by a task that point outside the node root do not lead out either.
    for link in ("wd/passwd-link", "wd/etc-link/passwd", "wd/root-link/etc/passwd"):
        response = signed_request(service.url, "GET", f"/jobs/{job}/tasks/writer/files/{link}")
        _assert_not_passwd(response)
        with pytest.raises(HttpResponseError):
            read_task_file(client, job, "writer", link)
    response = signed_request(service.url, "GET", f"/jobs/{job}/tasks/writer/files", params={"recursive": "true"})
    assert "passwd" not in {entry["name"].rsplit("/", 1)[-1] for entry in response.json()["value"]} - {"passwd-link"}
    # Deleting through an escape removes nothing outside.
    for escape in ("../../etc/passwd", "wd/passwd-link/../../../../../../../../etc/passwd"):
        response = signed_request(service.url, "DELETE", f"/pools/{pool}/nodes/{node_id}/files/{escape}")
        assert response.status_code in (400, 404)
    assert open("/etc/passwd", "rb").read() == passwd
    # The node root itself cannot be deleted.
    response = signed_request(
        service.url, "DELETE", f"/pools/{pool}/nodes/{node_id}/files/.", params={"recursive": "true"}
    )
    assert response.status_code >= 400
    assert (service.data_dir / "nodes" / node_id / "startup").is_dir()


# --- links an attempt leaves for the next one ---------------------------------------------------------


def test_a_retry_does_not_write_through_links_the_first_attempt_planted(client: Any, job: str, tmp_path: Any) -> None:
    from tests.api.helpers import serve_directory

    served = tmp_path / "served"
    served.mkdir()
    (served / "y").write_text("resource")
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / "victim.txt", outside / "victim2.txt"]
    for victim in victims:
        victim.write_text("keep me")
    plant = (
        f"/bin/bash -c 'if [ $AZ_BATCH_TASK_RETRY_COUNT = 0 ]; then ln -s {victims[0]} y.partial; "
        f"rm ../stdout.txt; ln -s {victims[1]} ../stdout.txt; exit 3; fi; cat y'"
    )
    with serve_directory(served) as base:
        task = run_task(
            client,
            job,
            "planter",
            plant,
            resource_files=[m.ResourceFile(http_url=f"{base}/y", file_path="y")],
            constraints=m.BatchTaskConstraints(max_task_retry_count=1),
        )
    assert task.execution_info.retry_count == 1
    assert task.execution_info.exit_code == 0, task.execution_info
    assert [victim.read_text() for victim in victims] == ["keep me", "keep me"]
    assert read_task_file(client, job, "planter", "stdout.txt") == "resource"


# --- links to other tasks' files and to the node ------------------------------------------------------


@pytest.fixture
def neighbour(client: Any, pool: str, unique: Unique) -> Iterator[str]:
    """Another job's task on the same node, with a file and a directory of its own."""
    job_id = unique("other")
    create_job(client, job_id, pool)
    task = run_task(client, job_id, "owner", "/bin/bash -c 'echo private > secret.txt; mkdir data; touch data/keep'")
    assert task.execution_info.result == "success"
    yield job_id
    client.begin_delete_job(job_id, polling_interval=0.2)


def _link_task(client: Any, job: str, neighbour: str) -> str:
    other = f"$AZ_BATCH_NODE_ROOT_DIR/workitems/{neighbour}/job-1/owner/wd"
    links = (
        f"ln -s {other}/secret.txt other; ln -s {other}/data other-dir; ln -s $AZ_BATCH_NODE_ROOT_DIR node; "
        "ln -s ../stdout.txt mine; echo mine"
    )
    assert run_task(client, job, "linker", f"/bin/bash -c '{links}'").execution_info.result == "success"
    return "linker"


def test_task_files_do_not_follow_links_out_of_the_task_directory(
    client: Any, job: str, neighbour: str, pool: str, node_id: str, service: Service
) -> None:
    task = _link_task(client, job, neighbour)
    node_root = service.data_dir / "nodes" / node_id
    assert (node_root / "agent.log").is_file()
    for path in ("wd/other", "wd/node/agent.log", "wd/other-dir/keep", "wd/node/startup/stdout.txt"):
        for method in ("GET", "HEAD"):
            response = signed_request(service.url, method, f"/jobs/{job}/tasks/{task}/files/{path}")
            assert response.status_code == 404, (path, method, response.status_code)
        assert b"private" not in signed_request(service.url, "GET", f"/jobs/{job}/tasks/{task}/files/{path}").content
    names = {f.name for f in client.list_task_files(job, task, recursive=True)}
    assert {"wd/other", "wd/node", "wd/mine"} <= names  # the links are listed, their targets are not
    assert not any(name.startswith(("wd/node/", "wd/other-dir/")) for name in names)
    assert read_task_file(client, job, task, "wd/mine") == "mine\n"  # a link inside the task's own directory
    # The node's file API still reaches the whole node, links within it included.
    assert b"private" in b"".join(client.download_node_file(pool, node_id, f"workitems/{job}/job-1/{task}/wd/other"))


def test_deleting_a_link_deletes_the_link_not_its_target(
    client: Any, job: str, neighbour: str, service: Service
) -> None:
    task = _link_task(client, job, neighbour)
    prefix = f"/jobs/{job}/tasks/{task}/files"
    assert signed_request(service.url, "DELETE", f"{prefix}/wd/other").status_code == 200
    response = signed_request(service.url, "DELETE", f"{prefix}/wd/other-dir", params={"recursive": "true"})
    assert response.status_code == 200
    assert signed_request(service.url, "DELETE", f"{prefix}/wd/node", params={"recursive": "true"}).status_code == 200
    names = {f.name for f in client.list_task_files(job, task, recursive=True)}
    assert not {"wd/other", "wd/other-dir", "wd/node"} & names
    assert read_task_file(client, neighbour, "owner", "wd/secret.txt") == "private\n"
    assert {"wd/data", "wd/data/keep"} <= {f.name for f in client.list_task_files(neighbour, "owner", recursive=True)}
    # The task's own directory stays, whatever way it is named.
    for path in (".", "wd/.."):
        response = signed_request(service.url, "DELETE", f"{prefix}/{path}", params={"recursive": "true"})
        assert response.status_code >= 400
    assert read_task_file(client, job, task, "stdout.txt") == "mine\n"


# --- names no file can have ---------------------------------------------------------------------------


def test_impossible_names_are_answered_at_once(
    client: Any, job: str, pool: str, node_id: str, service: Service
) -> None:
    import time

    long_name = "x" * 5000
    for prefix in (f"/jobs/{job}/tasks/writer/files", f"/pools/{pool}/nodes/{node_id}/files"):
        for name, status in (("a%00b", 400), (long_name, 404), (f"wd/{'y' * 300}", 404)):
            for method in ("GET", "HEAD", "DELETE"):
                began = time.monotonic()
                response = signed_request(service.url, method, f"{prefix}/{name}")
                assert response.status_code == status, (prefix, name[:10], method, response.status_code)
                assert time.monotonic() - began < 5
                if method != "HEAD":
                    assert response.json()["code"] in ("InvalidUri", "FileNotFound")
    assert client.get_node(pool, node_id).state == "idle"
    assert read_task_file(client, job, "writer", "stdout.txt") == "hi\n"


# --- big directories, downloads of files that change -------------------------------------------------


def test_listing_a_huge_directory_pages_on_the_node(client: Any, job: str, pool: str, node_id: str) -> None:
    # 30,000 entries with long names: all of them in one message would be over the service's 16 MiB limit.
    count, directory = 30_000, "d" * 250
    make = f"mkdir {directory}; cd {directory}; for i in $(seq {count}); do : > {'f' * 240}$i; done"
    assert run_task(client, job, "many", f"/bin/bash -c '{make}'", timeout=60).execution_info.result == "success"
    names = [f.name for f in client.list_task_files(job, "many", recursive=True)]
    assert len(names) == len(set(names))
    assert sum(name.startswith(f"wd/{directory}/") for name in names) == count
    assert client.get_node(pool, node_id).state == "idle"


def test_a_download_serves_the_file_it_opened(client: Any, job: str, node_id: str, service: Service) -> None:
    import hashlib

    import httpx

    from batchyard.service.auth import format_ocp_date, sign_request
    from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    size = 32 * 1024 * 1024
    command = f"/bin/bash -c 'head -c {size} /dev/urandom > big'"
    assert run_task(client, job, "big", command).execution_info.result == "success"
    path = service.data_dir / "nodes" / node_id / "workitems" / job / "job-1" / "big" / "wd" / "big"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    url = f"{service.url}/jobs/{job}/tasks/big/files/wd/big?api-version=2025-06-01.21.0"
    headers = {"ocp-date": format_ocp_date()}
    headers["Authorization"] = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, "GET", url, headers)
    digest = hashlib.sha256()
    received = 0
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        for chunk in response.iter_bytes():
            if received == 0:
                path.unlink()  # gone while it is being served
                path.write_bytes(b"replaced")
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == expected
    assert "Exception in ASGI application" not in service.log()
