"""Shared fixtures: a real batchyard service process on a free loopback port, and SDK clients for it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.postgres_cluster import PostgresCluster, choose_store, chosen_store, shared_cluster, stop_shared_cluster

T = TypeVar("T")


_own_temp_root: Path | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("BATCHYARD_TEST_STORE", "sqlite"),
        help="the store of every service the tests start: postgresql gives each a fresh database in a"
        " PostgreSQL cluster the tests start (or BATCHYARD_TEST_STORE)",
    )


def postgres_cluster() -> PostgresCluster:
    """The tests' PostgreSQL cluster, started on first use and stopped when pytest ends."""
    return shared_cluster()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """As root, tasks run as users of their own, who must pass the directories above each test's data
    (see passable_for_task_users). Every pytest that starts on the host makes the shared
    /tmp/pytest-of-root 0700 again, shutting out the tasks of a run under way, so a run as root keeps
    its temporary directories in a directory of its own (removed at the end)."""
    global _own_temp_root
    choose_store(config.getoption("--store"))
    if os.geteuid() == 0 and config.option.basetemp is None:
        _own_temp_root = Path(tempfile.mkdtemp(prefix="batchyard-tests-"))
        config.option.basetemp = _own_temp_root / "tmp"


# Test files that share a machine-wide component run in one pytest-xdist worker, one after the other:
# podman's images and containers are the host's (a test removes an image another may be pulling), and the
# Slurm tests' clusters name the same host. Every other file is a group of its own (its module-scoped
# service starts once). scripts/test.sh runs with `--dist loadgroup`.
SHARED_GROUPS = {"test_container": "podman", "test_slurm_": "slurm"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        name = item.path.name
        group = next((shared for prefix, shared in SHARED_GROUPS.items() if name.startswith(prefix)), str(item.path))
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_shared_cluster()
    if _own_temp_root is not None:
        shutil.rmtree(_own_temp_root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str]
    env: dict[str, str]
    https_url: str = ""  # the HTTPS listener (beside `url`), whose certificate `ca` trusts

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def restart(self) -> None:
        self.process = _launch(self.args, self.env, self.log_path)
        wait_ready(self.url, self.process, self.log_path)


def _launch(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"service not ready:\n{log_path.read_text(errors='replace')}")


def passable_for_task_users(data_dir: Path) -> None:
    """A service (or agent) running as root runs tasks as users of their own, who must pass through
    the directories above its data directory or node root (it refuses to start otherwise): pytest
    makes its temporary directories 0700, so these get o+x (pass, not list) for the test."""
    if os.geteuid() != 0:
        return
    temp_root = Path(tempfile.gettempdir()).resolve()
    for parent in data_dir.resolve().parents:
        if parent.is_relative_to(temp_root) and parent != temp_root:
            parent.chmod(parent.stat().st_mode | 0o001)


@pytest.fixture(autouse=True)
def _tmp_path_for_task_users(request: pytest.FixtureRequest) -> None:
    """Tests hand tasks paths in their tmp_path (markers, logs): as root, tasks run as users of their
    own, so a test's tmp_path is theirs to use too."""
    if os.geteuid() == 0 and "tmp_path" in request.fixturenames:
        tmp_path: Path = request.getfixturevalue("tmp_path")
        passable_for_task_users(tmp_path)
        tmp_path.chmod(0o777)


def start_service(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> Service:
    """A service on a free port; with --store postgresql, in a fresh database (kept over restarts) unless
    `extra` names a --database (`--database ""`: SQLite in the data directory, whatever --store says)."""
    if chosen_store() == "postgresql" and "--database" not in extra:
        extra = (*extra, "--database", postgres_cluster().new_database("service"))
    port = free_port()
    https_port = free_port()  # not the default (port + 1), which another process may hold
    args = [
        sys.executable,
        "-m",
        "batchyard.cli.main",
        "serve",
        "--port",
        str(port),
        "--https-port",
        str(https_port),
        "--data-dir",
        str(data_dir),
        "--node-lost-grace",
        "2",
        "--adopt-grace",
        "2",
        *extra,
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")} | (env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    passable_for_task_users(data_dir)
    log_path = data_dir / "service.log"
    process = _launch(args, full_env, log_path)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process, log_path)
    return Service(url, data_dir, process, log_path, args, full_env, f"https://127.0.0.1:{https_port}")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("service"))
    yield svc
    svc.stop()


def make_client(url: str, key: str = DEV_ACCOUNT_KEY, name: str = DEV_ACCOUNT_NAME) -> Any:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    return BatchClient(url, AzureNamedKeyCredential(name, key))


@pytest.fixture(scope="session")
def client(service: Service) -> Any:
    return make_client(service.url)


def wait_for(check: Callable[[], T], timeout: float = 30, interval: float = 0.1, what: str = "condition") -> T:
    """Poll until `check()` returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique resource ids per test, so tests share one service without colliding."""
    return lambda prefix: f"{prefix}-{os.getpid()}-{next(_counter)}"


def advance_clock(service: Service, seconds: float) -> str:
    """Move a service started with --adjustable-clock forward; returns its new time (ISO 8601)."""
    from batchyard.service.auth import format_ocp_date, sign_request

    url = f"{service.url}/_batchyard/clock?api-version=2025-06-01"
    body = f'{{"advanceSeconds": {seconds}}}'.encode()
    headers = {"ocp-date": format_ocp_date(), "content-type": "application/json", "content-length": str(len(body))}
    headers["Authorization"] = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, "POST", url, headers)
    answer = httpx.post(url, content=body, headers=headers)
    answer.raise_for_status()
    return str(answer.json()["now"])
