"""Connection limits: slow or idle clients cannot exhaust the service's descriptors, memory or log.

Real service processes and real sockets on 127.0.0.1; counts and times are kept small.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.api.helpers import create_job, idle_nodes, run_task, temp_pool
from tests.conftest import Service, free_port, make_client, passable_for_task_users, wait_for, wait_ready

HEADER_TIMEOUT = 2.0
OPEN_FILES = 256  # the limited service's open-file limit (soft and hard): at most 192 connections
PARTIAL = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors() -> Iterator[None]:
    """This process opens a few thousand sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 6000:
        pytest.skip(f"the open-file limit ({hard}) is too low for these tests")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 8192, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def start_limited_service(data_dir: Path, open_files: int | None, *extra: str) -> Service:
    """Like `start_service`, with the service's open-file limit (soft and hard) set to `open_files`."""

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    port = free_port()
    args = [sys.executable, "-m", "batchyard.cli.main", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    https_port = free_port()
    args += ["--https-port", str(https_port), "--node-lost-grace", "2", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    data_dir.mkdir(parents=True, exist_ok=True)
    passable_for_task_users(data_dir)
    log_path = data_dir / "service.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=limit
        )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process, log_path)
    return Service(url, data_dir, process, log_path, args, env, f"https://127.0.0.1:{https_port}")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_limited_service(
        tmp_path_factory.mktemp("limited"),
        OPEN_FILES,
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--keep-alive-timeout",
        "1",
    )
    yield svc
    svc.stop()


def _port(service: Service) -> int:
    return int(service.url.rsplit(":", 1)[1])


def open_slow(service: Service, count: int, data: bytes = PARTIAL) -> list[socket.socket]:
    """`count` connections that each send the start of a request and nothing more."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", _port(service)), timeout=10)
        sock.sendall(data)
        sockets.append(sock)
    return sockets


def wait_closed(sockets: list[socket.socket], timeout: float) -> list[socket.socket]:
    """Wait until the service has closed each of `sockets` (end of stream or reset); returns those still open."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    still_open = set(sockets)
    deadline = time.monotonic() + timeout
    try:
        while still_open and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    closed = sock.recv(65536) == b""
                except ConnectionError:
                    closed = True
                except BlockingIOError:
                    closed = False
                if closed:
                    selector.unregister(sock)
                    still_open.discard(sock)
    finally:
        selector.close()
    return list(still_open)


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def test_slow_headers_block_no_signed_call_and_are_closed_after_the_header_timeout(limited: Service) -> None:
    log_before = limited.log_path.stat().st_size
    slow = open_slow(limited, 400)  # more than the 192 connections the open-file limit allows
    try:
        started = time.monotonic()
        pools = list(make_client(limited.url).list_pools())
        assert time.monotonic() - started < 5
        assert isinstance(pools, list)
        assert not wait_closed(slow, HEADER_TIMEOUT + 5), "slow connections outlived the header timeout"
    finally:
        close_all(slow)
    log = limited.log()[log_before:]
    assert "Too many open files" not in log
    assert len(log) < 20_000, log[-2000:]
    assert "without complete request headers" in log or "to make room" in log


def test_connections_that_stop_between_requests_are_closed(limited: Service) -> None:
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    idle, trickling = open_slow(limited, 2, request)
    for sock in (idle, trickling):
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    trickling.sendall(PARTIAL)  # a second request that never ends its headers
    started = time.monotonic()
    try:
        assert not wait_closed([idle], 3), "an idle keep-alive connection stayed open"
        assert not wait_closed([trickling], HEADER_TIMEOUT + 3), "a half-sent second request kept its connection"
        assert time.monotonic() - started < HEADER_TIMEOUT + 3
    finally:
        close_all([idle, trickling])


def test_https_connections_that_never_handshake_or_never_send_headers_are_closed(limited: Service) -> None:
    host, port = limited.https_url.removeprefix("https://").rsplit(":", 1)
    silent = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
    context = ssl.create_default_context(cafile=str(limited.ca))
    slow = context.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)
    slow.sendall(PARTIAL)
    started = time.monotonic()
    try:
        assert not wait_closed(silent, HEADER_TIMEOUT + 3), "a connection that never began TLS stayed open"
        slow.settimeout(HEADER_TIMEOUT + 3)
        try:
            closed = slow.recv(65536) == b""
        except (ConnectionError, ssl.SSLError):
            closed = True
        assert closed and time.monotonic() - started < HEADER_TIMEOUT + 3
    finally:
        close_all([*silent, slow])


def test_agents_keep_their_websockets_through_idle_time_and_floods(limited: Service, tmp_path: Path) -> None:
    client = make_client(limited.url)
    pool_id, job_id = f"conn-pool-{os.getpid()}", f"conn-job-{os.getpid()}"
    with temp_pool(client, pool_id, nodes=2):
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        log_before = limited.log_path.stat().st_size
        slow = open_slow(limited, 300)  # makes room by closing waiting connections, never an agent's
        try:
            time.sleep(3 * HEADER_TIMEOUT)
        finally:
            close_all(slow)
        assert "-> unknown" not in limited.log()[log_before:]
        assert all(node.state == "idle" for node in client.list_nodes(pool_id))
        create_job(client, job_id, pool_id)
        task = run_task(client, job_id, "t1", "/bin/true")
        assert task.execution_info.exit_code == 0
        client.begin_delete_job(job_id, polling_interval=0.2)


def test_memory_stays_bounded_after_many_idle_connections(tmp_path: Path) -> None:
    svc = start_limited_service(tmp_path / "svc", None, "--max-connections", "256", "--log-level", "warning")
    try:
        process = psutil.Process(svc.process.pid)
        client = make_client(svc.url)
        for _ in range(20):
            list(client.list_pools())
        before = process.memory_info().rss
        # each connection holds 12 KB of unfinished headers (h11 keeps up to 16 KB): 5,000 of them are 60 MB
        padding = PARTIAL + b"x" * 12_000
        for _ in range(2):
            held = open_slow(svc, 2500, padding)
            held += open_slow(svc, 2500, padding)
            time.sleep(1)
            peak = process.memory_info().rss
            close_all(held)
            assert peak - before < 48 << 20, f"RSS grew by {(peak - before) >> 20} MB with connections held"
        wait_for(lambda: process.num_fds() < 100, what="the dropped connections to be closed")
        after = process.memory_info().rss
        assert after - before < 48 << 20, f"RSS grew by {(after - before) >> 20} MB"
        assert list(client.list_pools()) is not None
        assert "batchyard.access" not in svc.log()  # --log-level warning: no access log
    finally:
        svc.stop()
