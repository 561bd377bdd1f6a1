"""Container images and a registry for the container tests, made on this machine (nothing is pulled from
the internet): a root filesystem of Debian's busybox-static imported with `podman import`, and Debian's
`docker-registry` on the loopback with htpasswd (bcrypt) users. scripts/test.sh installs all three.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import models as m

from tests.api.helpers import vm_config
from tests.conftest import free_port

BUSYBOX = "/bin/busybox"
IMAGE_MARKER = "/batchyard-image"  # a file only the test image has: a task that reads it runs in the image


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=120)


def import_busybox_image(work: Path, name: str) -> str:
    """A busybox image named `name` (localhost/...), from the host's static busybox; its reference."""
    rootfs = work / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "tmp").mkdir()
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / IMAGE_MARKER.lstrip("/")).write_text("inside the image\n")
    archive = work / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    podman("import", "--change", "ENV=PATH=/bin", str(archive), name)
    return name


# The agents run containers with rootful podman, which only root can drive. scripts/test.sh installs podman
# (as root, from Debian's packages) and CI runs as root, so these tests run there; as another user they
# cannot run at all.
requires_rootful_podman = pytest.mark.skipif(
    os.geteuid() != 0, reason="rootful podman: the agents run containers as root (scripts/test.sh runs as root)"
)


def module_image(name: str, tag: str) -> Iterator[str]:
    """A test module's busybox image `localhost/batchyard-test/NAME:TAG`, removed after the module."""
    work = Path(tempfile.mkdtemp(prefix="batchyard-image-"))
    try:
        reference = import_busybox_image(work, f"localhost/batchyard-test/{name}:{tag}")
        yield reference
        remove_image(reference)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_image(reference: str) -> None:
    podman("rmi", "--force", "--ignore", reference, check=False)


def containers_of(root_label: str | None = None, name_part: str = "batchyard-") -> list[str]:
    """Names of the containers (any state) batchyard's agents made, optionally of one node root."""
    args = ["ps", "--all", "--format", "{{.Names}}"]
    if root_label is not None:
        args += ["--filter", f"label=batchyard.node-root={root_label}"]
    return [name for name in podman(*args).stdout.split() if name_part in name]


@dataclass
class Registry:
    address: str  # host:port
    username: str
    password: str
    process: subprocess.Popen[bytes]

    def push(self, local: str, repository: str) -> str:
        """Push a local image to the registry; the reference that names it there."""
        reference = f"{self.address}/{repository}"
        podman("push", "--quiet", "--tls-verify=false", "--creds", f"{self.username}:{self.password}", local, reference)
        return reference

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_registry(work: Path) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port with one htpasswd user, until the generator ends."""
    work.mkdir(parents=True, exist_ok=True)
    username, password = "batchyard", secrets.token_hex(8)
    htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=True)
    (work / "htpasswd").write_text(htpasswd.stdout)
    port = free_port()
    (work / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {work / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
        f"auth: {{htpasswd: {{realm: batchyard-test, path: {work / 'htpasswd'}}}}}\n"
    )
    with open(work / "registry.log", "wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(work / "config.yml")], stdout=log, stderr=log)
    registry = Registry(f"127.0.0.1:{port}", username, password, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401:  # up, and asking for auth
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry did not start: {(work / 'registry.log').read_text()}")
        time.sleep(0.1)
    try:
        yield registry
    finally:
        registry.stop()


# --- SDK builders ---------------------------------------------------------------------------------------


def container_config(images: list[str], registries: list[m.ContainerRegistryReference] | None = None) -> Any:
    return m.BatchContainerConfiguration(
        type=m.ContainerType.DOCKER_COMPATIBLE, container_image_names=images, container_registries=registries
    )


def create_container_pool(client: Any, pool_id: str, config: Any, nodes: int = 1, **kwargs: Any) -> None:
    vm = vm_config()
    vm.container_configuration = config
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm,
            target_dedicated_nodes=nodes,
            **kwargs,
        )
    )


def settings(image: str, **kwargs: Any) -> m.BatchTaskContainerSettings:
    return m.BatchTaskContainerSettings(image_name=image, **kwargs)


def sh(script: str) -> str:
    return f"/bin/sh -c '{script}'"
