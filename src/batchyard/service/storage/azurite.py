"""A local Azurite (the Azure Storage emulator) as the service's linked storage account.

Azurite is an npm package: it is installed with npm into the project's `.azurite/` folder (pinned by
its package.json), or a per-user cache when batchyard runs outside a source checkout. It runs as a
child process on a free loopback port, with its data under the service's data dir, and dies with
its parent (PR_SET_PDEATHSIG), so a killed service leaves no emulator behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from batchyard.service.storage.linked import DEV_STORAGE_ACCOUNT, DEV_STORAGE_KEY, LinkedStorage

AZURITE_VERSION = "3.34.0"
_READY = re.compile(r"Blob service successfully listens on (http://\S+)")
_PR_SET_PDEATHSIG = 1


class AzuriteError(RuntimeError):
    pass


def default_install_dir() -> Path:
    """The project's `.azurite/` in a source checkout, else a per-user cache (or BATCHYARD_AZURITE_DIR)."""
    if configured := os.environ.get("BATCHYARD_AZURITE_DIR"):
        return Path(configured)
    checkout = Path(__file__).resolve().parents[4] / ".azurite"
    if (checkout / "package.json").exists():
        return checkout
    return Path.home() / ".cache" / "batchyard" / "azurite"


def executable(install_dir: Path) -> Path:
    return install_dir / "node_modules" / ".bin" / "azurite-blob"


def ensure_installed(install_dir: Path | None = None, log: bool = True) -> Path:
    """Install Azurite with npm if it is not there yet; returns the azurite-blob program."""
    install_dir = install_dir or default_install_dir()
    program = executable(install_dir)
    if program.exists():
        return program
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteError("Azurite needs Node.js and npm (https://nodejs.org): npm was not found on PATH")
    install_dir.mkdir(parents=True, exist_ok=True)
    manifest = install_dir / "package.json"
    if not manifest.exists():
        manifest.write_text(
            json.dumps({"name": "batchyard-azurite", "private": True, "dependencies": {"azurite": AZURITE_VERSION}})
        )
    # Several services (or test sessions) may start at once: one installs, the others wait for it.
    with open(install_dir / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if program.exists():
            return program
        if log:
            print(f"batchyard: installing Azurite {AZURITE_VERSION} into {install_dir} with npm...", flush=True)
        command = "ci" if (install_dir / "package-lock.json").exists() else "install"
        done = subprocess.run(
            [npm, command, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=install_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if done.returncode != 0 or not program.exists():
            raise AzuriteError(f"npm {command} of Azurite failed:\n{done.stdout[-2000:]}")
    return program


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Azurite:
    """One Azurite blob service on a free loopback port, with its workspace in `location`."""

    def __init__(self, location: Path, install_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.location = location
        self.port = port if port and _port_free(host, port) else 0  # 0: a free port
        self.install_dir = install_dir
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    @property
    def storage(self) -> LinkedStorage:
        return LinkedStorage(DEV_STORAGE_ACCOUNT, DEV_STORAGE_KEY, f"{self.endpoint}/{DEV_STORAGE_ACCOUNT}")

    def start(self, timeout: float = 60) -> LinkedStorage:
        program = ensure_installed(self.install_dir)
        self.location.mkdir(parents=True, exist_ok=True)
        self.location.chmod(0o700)  # the blobs are the account's data, not node users'
        log_path = self.location / "azurite.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(program),
                    *("--blobHost", self.host, "--blobPort", str(self.port), "--location", str(self.location)),
                    "--skipApiVersionCheck",  # the Python SDK may be newer than the emulator
                    "--loose",
                    "--disableTelemetry",
                    "--disableProductStyleUrl",  # the account is always the first path segment
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if found := _READY.search(text):
                self.endpoint = found.group(1).rstrip("/")
                return self.storage
            if self.process.poll() is not None:
                raise AzuriteError(f"Azurite exited early:\n{text[-2000:]}")
            time.sleep(0.05)
        self.stop()
        raise AzuriteError(f"Azurite did not start within {timeout:.0f} s")

    def stop(self, timeout: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
