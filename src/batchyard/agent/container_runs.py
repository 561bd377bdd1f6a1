"""A run inside a container: the `podman create` command line for it, and its container's life.

As in Azure Batch on Linux, the node's directories appear inside the container at the paths they have
on the host, so every AZ_BATCH_* variable means the same inside: the whole node root by default, or
only the `containerHostBatchBindMounts` the task names (none when it names an empty list). The
command line is split as on the host and becomes the container's command (the image's entrypoint, if
any, stays). The working directory is the task's unless `workingDirectory` is `containerImageDefault`.

Whom it runs as: the run's user (agent/task_users.py) by uid and gid, with the task users' group, as
`--user`; an admin identity runs as root in the container, as it runs as the agent's user on the host.

The variables travel by name (`--env NAME`, the value from podman's environment) so that values such
as authentication tokens never show in a command line; only names that would steer podman itself
(PATH, TMPDIR, CONTAINERS_*, ...) travel with their values.
"""

from __future__ import annotations

import secrets
import shlex
from pathlib import Path
from typing import Any

from batchyard.agent.accounts import TASKS_GID, OsAccount
from batchyard.agent.container_images import ImageFailure, ensure_image
from batchyard.agent.packages import APPLICATIONS_DIR
from batchyard.agent.podman import NODE_LABEL, Podman, RuntimeMissing, error_message

_PODMAN_NAMES = ("PATH", "HOME", "LANG", "TMPDIR", "TZ")
_PODMAN_PREFIXES = ("CONTAINERS_", "CONTAINER_", "REGISTRY_", "XDG_", "BUILDAH_", "STORAGE_", "DOCKER_", "LD_")

INVALID_SETTINGS = "At least one value of specified task container settings is invalid"


class ContainerFailure(Exception):
    """The container could not be made; `failure` is the run's failureInfo."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.failure = {
            "category": "usererror",
            "code": "ContainerInvalidSettings",
            "message": INVALID_SETTINGS,
            "details": [{"name": "Message", "value": message}],
        }


def mount_sources(root: Path, task_dir: Path, prep_dir: Path | None) -> dict[str, Path | None]:
    """The host directory of each ContainerHostDataPath (None where the run has none)."""
    return {
        "shared": root / "shared",
        "startup": root / "startup",
        "vfsmounts": root / "fsmounts",
        "task": task_dir,
        "jobprep": prep_dir,
        "applications": root / APPLICATIONS_DIR,
    }


def volumes(settings: dict[str, Any], root: Path, task_dir: Path, prep_dir: Path | None) -> list[str]:
    """`--volume` arguments: the node root, or the listed directories (read-only where asked)."""
    mounts = settings.get("mounts")
    if mounts is None:
        return ["--volume", f"{root}:{root}"]
    sources = mount_sources(root, task_dir, prep_dir)
    args: list[str] = []
    for mount in mounts:
        path = sources.get(str(mount.get("source", "")).lower())
        if path is None:
            continue
        path.mkdir(parents=True, exist_ok=True)
        args += ["--volume", f"{path}:{path}" + (":ro" if mount.get("isReadOnly") else "")]
    return args


def steers_podman(name: str) -> bool:
    return name in _PODMAN_NAMES or name.startswith(_PODMAN_PREFIXES)


def create_args(
    settings: dict[str, Any],
    image: str,
    name: str,
    command_line: str,
    env: dict[str, str],
    mounts: list[str],
    working_dir: Path,
    account: OsAccount | None,
    root: Path,
) -> list[str]:
    """The arguments of `podman create` for this run (ValueError for a command line or options that do
    not split)."""
    command = shlex.split(command_line)
    if not command:
        raise ValueError("empty command line")
    # No --rm: the agent removes the container itself once it has its result (container_runs.ContainerRun).
    args = ["create", "--name", name, "--label", f"{NODE_LABEL}={root}", "--log-driver", "none"]
    if account is not None and account.uid is not None:
        group = account.uid if account.gid is None else account.gid
        args += ["--user", f"{account.uid}:{group}", "--group-add", str(TASKS_GID), "--umask", f"{account.umask:04o}"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}" if steers_podman(key) else key]
    if settings.get("workdir") != "containerImageDefault":
        args += ["--workdir", str(working_dir)]
    args += mounts
    args += shlex.split(settings.get("options") or "")
    return [*args, image, *command]


class ContainerRun:
    """One run's container: its image made present, created, started by the task process, removed."""

    def __init__(self, podman: Podman, settings: dict[str, Any], node_id: str, aid: str) -> None:
        self.podman = podman
        self.settings = settings
        safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in f"{node_id}-{aid}")
        self.name = f"batchyard-{safe}-{secrets.token_hex(4)}"
        self.image = str(settings["image"])
        self.created = False
        self.id = ""  # podman's container id, once created
        self.error = ""  # why its command could not start, if it could not

    async def pull(self) -> None:
        """The image, pulled when the node does not have it (ImageFailure otherwise)."""
        self.image = await ensure_image(self.podman, self.image, list(self.settings.get("registries") or []))

    async def create(self, args: list[str], env: dict[str, str]) -> None:
        """Create the container; `env` is the run's environment, whose values podman passes on by name."""
        by_name = {key: value for key, value in env.items() if not steers_podman(key)}
        try:
            outcome = await self.podman.run(*args, env={**self.podman.env, **by_name})
        except RuntimeMissing as missing:
            raise ContainerFailure(str(missing)) from None
        if outcome.code != 0:
            raise ContainerFailure(error_message(outcome.err) or "podman create failed")
        self.created = True
        self.id = outcome.out.strip()

    def start_command(self) -> str:
        """The task process: podman attached to the container, its exit code the container's."""
        return shlex.join([self.podman.ready(), "start", "--attach", self.name])

    async def start_error(self, stderr_path: Path) -> str | None:
        """Why the container's command could not start (podman's message, which it wrote to the run's
        stderr), or None when it ran."""
        if not await self.podman.never_started(self.name):
            return None
        try:
            text = stderr_path.read_text(errors="replace")
        except OSError:
            text = ""
        self.error = error_message(text) or "the container's command could not be started"
        return self.error

    def info(self) -> dict[str, str]:
        """The run's containerInfo (BatchTaskContainerExecutionInfo) once the container has ended."""
        info = {"containerId": self.id, "state": "created" if self.error else "exited"}
        if self.error:
            info["error"] = self.error
        return info

    async def stop(self, grace: float) -> None:
        await self.podman.stop(self.name, grace)

    async def remove(self) -> None:
        if self.created:
            await self.podman.remove(self.name)


__all__ = ["ContainerFailure", "ContainerRun", "ImageFailure", "create_args", "volumes"]
