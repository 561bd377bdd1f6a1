"""The one place a run message for a node's agent is built, for every kind of run.

A run is what an agent executes: a task, the start task, a job preparation or release task, the pool's
application packages, or one instance of a multi-instance task. Its wire shape is documented in
`protocol/messages.py` (Run). The environment is layered the same way for every kind that has a job:
the job's `commonEnvironmentSettings`, then the run's own `environmentSettings` (later layers win).

Whom a run runs as travels with it (`user`, from its `userIdentity`); the pool's named accounts travel
once, in the welcome (`pool_accounts`). The agent maps both to OS users (agent/task_users.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from batchyard.protocol.messages import Run
from batchyard.service.engine.records import RunKind

EnvironmentSettings = list[dict[str, Any]] | None


def merge_environment(*layers: EnvironmentSettings) -> dict[str, str]:
    """`environmentSettings` lists as one mapping; a name in a later list replaces an earlier one."""
    env: dict[str, str] = {}
    for layer in layers:
        env.update({item["name"]: item.get("value") or "" for item in layer or []})
    return env


def user_of(identity: dict[str, Any] | None) -> dict[str, Any]:
    """A `userIdentity` on the wire: {name} for a named account, else {scope, admin} of the auto-user
    (the defaults of models/defaults.user_identity: pool scope, non-admin)."""
    identity = identity or {}
    if identity.get("username"):
        return {"name": identity["username"]}
    auto = identity.get("autoUser") or {}
    return {"scope": auto.get("scope") or "pool", "admin": auto.get("elevationLevel") == "admin"}


def pool_accounts(pool_doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The pool's `userAccounts` as its nodes need them: never the password (nothing logs in with it)."""
    accounts = []
    for account in (pool_doc or {}).get("userAccounts") or []:
        linux = account.get("linuxUserConfiguration") or {}
        accounts.append(
            {
                "name": account["name"],
                "admin": account.get("elevationLevel") == "admin",
                "uid": linux.get("uid"),
                "gid": linux.get("gid"),
                "sshKey": linux.get("sshPrivateKey"),
            }
        )
    return accounts


def build_run(
    kind: RunKind,
    run_id: str,
    directory: str,
    command: str,
    env: dict[str, str],
    *,
    files: Iterable[dict[str, Any]] = (),
    wall: float | None = None,
    retry: int = 0,
    job_id: str | None = None,
    task_id: str | None = None,
    identity: dict[str, Any] | None = None,
    container: dict[str, Any] | None = None,
    **extra: Any,
) -> Run:
    """A run message: `directory` is relative to the node root, `wall` the wall clock limit in seconds.

    `identity` is the run's `userIdentity` (None: the default auto-user); `container` what `container_of`
    makes of its `containerSettings` (None: it runs on the host). `extra` carries the fields of
    particular kinds (outputs, packages, prefail, prepDir, multi-instance fields); they are documented
    with the Run message.
    """
    wire_kind = cast(Any, kind.value)  # the kinds that travel: not HELD or INSTANCE (never sent as such)
    run = Run(
        aid=run_id,
        kind=wire_kind,
        dir=directory,
        cmd=command,
        env=env,
        files=list(files),
        wall=wall,
        retry=retry,
        user=user_of(identity),
    )
    if job_id is not None:
        run["job"] = job_id
    if task_id is not None:
        run["task"] = task_id
    if container is not None:
        run["container"] = container
    cast(dict[str, Any], run).update(extra)
    return run


def container_config(pool_doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pool's `virtualMachineConfiguration.containerConfiguration`, or None for a pool without one."""
    config = ((pool_doc or {}).get("virtualMachineConfiguration") or {}).get("containerConfiguration")
    return config or None


def container_of(settings: dict[str, Any] | None, pool_doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run's `container` on the wire, from its `containerSettings` (None: the run is on the host).

    `registries` are the task's own `registry` first, then the pool's `containerRegistries`: the agent
    uses the one whose server is the image's, to pull an image the node does not have yet.
    """
    if not settings:
        return None
    registries = [settings["registry"]] if settings.get("registry") else []
    registries += list((container_config(pool_doc) or {}).get("containerRegistries") or [])
    return {
        "image": settings["imageName"],
        "registries": registries,
        "options": settings.get("containerRunOptions") or "",
        "workdir": settings.get("workingDirectory") or "taskWorkingDirectory",
        "mounts": settings.get("containerHostBatchBindMounts"),
    }


def container_prefail(
    settings: dict[str, Any] | None, pool_doc: dict[str, Any] | None, *, required: bool
) -> dict[str, Any] | None:
    """Why a run cannot run on this pool as its container settings stand, or None.

    Azure Batch requires containerSettings of tasks and job managers (`required`) on a pool with a
    container configuration, and refuses them of every run on a pool without one (checked when the task
    is added; a job's pool can change after that)."""
    has_config = container_config(pool_doc) is not None
    if has_config and required and not settings:
        return {
            "category": "usererror",
            "code": "ContainerTaskSettingsNotFound",
            "message": "Container-enabled compute node requires task container settings",
        }
    if settings and not has_config:
        return {
            "category": "usererror",
            "code": "ContainerSettingsNotSupported",
            "message": "The task has container settings but its pool has no container configuration",
        }
    return None
