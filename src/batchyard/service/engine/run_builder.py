"""The one place a run message for a node's agent is built, for every kind of run.

A run is what an agent executes: a task, the start task, a job preparation or release task, the pool's
application packages, or one instance of a multi-instance task. Its wire shape is documented in
`protocol/messages.py` (Run). The environment is layered the same way for every kind that has a job:
the job's `commonEnvironmentSettings`, then the run's own `environmentSettings` (later layers win).
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
    **extra: Any,
) -> Run:
    """A run message: `directory` is relative to the node root, `wall` the wall clock limit in seconds.

    `extra` carries the fields of particular kinds (outputs, packages, prefail, prepDir, multi-instance
    fields); they are documented with the Run message.
    """
    wire_kind = cast(Any, kind.value)  # the kinds that travel: not HELD or INSTANCE (never sent as such)
    run = Run(
        aid=run_id, kind=wire_kind, dir=directory, cmd=command, env=env, files=list(files), wall=wall, retry=retry
    )
    if job_id is not None:
        run["job"] = job_id
    if task_id is not None:
        run["task"] = task_id
    cast(dict[str, Any], run).update(extra)
    return run
