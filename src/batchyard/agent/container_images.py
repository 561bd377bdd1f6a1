"""Container images on the node: present already, or pulled with the registry's credentials.

An image already in the node's image store is used as it is (podman's `--pull missing`): that is how a
machine without internet uses images loaded with `podman load` or `podman import`. A missing one is
pulled from the registry its reference names, with the credentials of the matching registry
(`containerRegistries` of the pool, or the task's `registry`). A reference without a registry means
Docker Hub, as in Azure Batch ("docker.io", and "library/" for a single name).

Registries on the loopback are reached over plain HTTP, as Docker does for 127.0.0.0/8: a registry
run beside the service for a disconnected machine needs no certificate.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from batchyard.agent.podman import PULL_TIMEOUT, Podman, RuntimeMissing, error_message

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", DOCKER_HUB}


class ImageFailure(Exception):
    """An image the run or the node needs could not be made present; `failure` is Batch's description."""

    def __init__(self, image: str, message: str) -> None:
        super().__init__(message)
        self.failure = {
            "category": "usererror",
            "code": "ContainerInvalidImage",
            "message": "One or more container images specified are invalid",
            "details": [{"name": "ContainerImage", "value": image}, {"name": "Message", "value": message}],
        }


def registry_of(image: str) -> str:
    """The registry server an image reference names: its first component when that is a host."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DOCKER_HUB


def qualified(image: str) -> str:
    """The full reference to pull: `docker.io/library/` before a single name, `docker.io/` before a path."""
    if registry_of(image) != DOCKER_HUB or image.startswith(f"{DOCKER_HUB}/"):
        return image
    return f"{DOCKER_HUB}/{image}" if "/" in image else f"{DOCKER_HUB}/library/{image}"


def server_key(server: str | None) -> str:
    """A `registryServer` as compared with an image's registry: no scheme, no trailing slash."""
    text = (server or DOCKER_HUB).strip().lower()
    for scheme in ("https://", "http://"):
        text = text.removeprefix(scheme)
    text = text.rstrip("/").split("/")[0]
    return DOCKER_HUB if text in _HUB_ALIASES else text


def credentials_for(image: str, registries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The registry entry whose server is the image's (the first that matches), or None."""
    wanted = registry_of(image)
    return next((entry for entry in registries if server_key(entry.get("registryServer")) == wanted), None)


def on_loopback(server: str) -> bool:
    """Whether a registry `host[:port]` (`[v6]:port`) is on this machine's loopback."""
    if server.startswith("["):
        host = server[1:].split("]", 1)[0]
    else:
        host = server.rsplit(":", 1)[0] if server.count(":") == 1 else server
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


async def ensure_image(podman: Podman, image: str, registries: list[dict[str, Any]]) -> str:
    """The reference to run `image` by: present already, or pulled now. ImageFailure if it cannot be."""
    try:
        if await podman.image_exists(image):
            return image
    except RuntimeMissing as missing:
        raise ImageFailure(image, str(missing)) from None
    reference = qualified(image)
    if reference != image and await podman.image_exists(reference):
        return reference
    registry = credentials_for(reference, registries)
    args = ["pull", "--quiet"]
    if on_loopback(registry_of(reference)):
        args.append("--tls-verify=false")
    auth_file = _auth_file(podman.root, registry) if registry and registry.get("username") else None
    if auth_file is not None:
        args += ["--authfile", str(auth_file)]
    try:
        outcome = await podman.run(*args, reference, timeout=PULL_TIMEOUT)
    except TimeoutError:
        raise ImageFailure(image, f"The image could not be pulled in {PULL_TIMEOUT:.0f} seconds.") from None
    finally:
        if auth_file is not None:
            auth_file.unlink(missing_ok=True)
    if outcome.code != 0:
        raise ImageFailure(image, error_message(outcome.err) or f"podman pull exited with {outcome.code}")
    return reference


def _auth_file(root: Path, registry: dict[str, Any]) -> Path:
    """The credentials in a file only the agent reads (never on a command line others can see)."""
    server = server_key(registry.get("registryServer"))
    token = base64.b64encode(f"{registry['username']}:{registry.get('password') or ''}".encode()).decode()
    path = root / ".batchyard" / f"auth-{secrets.token_hex(8)}.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"auths": {server: {"auth": token}}}, file)
    return path
