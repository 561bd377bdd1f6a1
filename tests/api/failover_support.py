"""Service instances on one PostgreSQL database for the failover test and soak (benchmarks/soak_failover.py):
real `batchyard serve` processes on free ports, each knowing the others' URLs (--peer-url).

The instances share one data directory: local nodes' agents live under it, and they outlive the service
process that started them (a kill -9 of the active instance leaves them to the one that takes over)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import free_port, passable_for_task_users


@dataclass
class Instance:
    url: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.start()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def role(self) -> str:
        """ "active" (readiness 200), "standby" (503), or "down" (no answer)."""
        if self.process.poll() is not None:
            return "down"
        try:
            status = httpx.get(self.url + "/", timeout=2).status_code
        except httpx.HTTPError:
            return "down"
        return {200: "active", 503: "standby"}.get(status, f"HTTP {status}")

    def wait_role(self, role: str, timeout: float = 30) -> float:
        """Seconds until the instance has `role`; RuntimeError with its log after `timeout`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"instance {self.url} exited:\n{self.log()}")
            if self.role() == role:
                return time.monotonic() - start
            time.sleep(0.05)
        raise RuntimeError(f"instance {self.url} is not {role} after {timeout} s:\n{self.log()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_instances(data_dir: Path, database: str, count: int = 2) -> list[Instance]:
    """`count` instances on `database`: the first is active when this returns, the others standing by."""
    data_dir.mkdir(parents=True, exist_ok=True)
    passable_for_task_users(data_dir)
    ports = [free_port() for _ in range(count)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    instances = []
    for index, port in enumerate(ports):
        peers = [part for url in urls if url != urls[index] for part in ("--peer-url", url)]
        args = [
            sys.executable,
            "-m",
            "batchyard.cli.main",
            "serve",
            "--port",
            str(port),
            "--no-https",
            "--data-dir",
            str(data_dir),
            "--database",
            database,
            "--node-lost-grace",
            "2",
            "--adopt-grace",
            "2",
            *peers,
        ]
        instance = Instance(urls[index], args, data_dir / f"service-{index}.log")
        instance.wait_role("active" if index == 0 else "standby")
        instances.append(instance)
    return instances
