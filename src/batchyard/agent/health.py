"""Node health checks the agent runs every few seconds; problems become the node's `errors`.

- DiskFull: the node root's file system has less free space than the pool asks for
  (pool metadata `batchyard-min-free-disk-mb`, default 10 MB).
- NodeDirectoryMissing: `shared`, `startup` or `workitems` was deleted from under the agent
  (a reboot or reimage recreates them).
- TaskDirectoryDeleted: a running task's directory was deleted while it ran.

Each report replaces the previous one, so an error clears once its cause is gone.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEFAULT_MIN_FREE_MB = 10.0
NODE_DIRS = ("shared", "startup", "workitems")


def check(root: Path, task_dirs: Iterable[tuple[str, Path]], min_free_mb: float | None) -> list[dict[str, Any]]:
    """The node's current problems; `task_dirs` holds (run description, directory) of running tasks."""
    found: list[dict[str, Any]] = []
    limit = DEFAULT_MIN_FREE_MB if not min_free_mb else min_free_mb
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = 0
    if free < limit * 1024 * 1024:
        found.append(
            {
                "code": "DiskFull",
                "message": "There is not enough free disk space on the compute node.",
                "errorDetails": [
                    {"name": "FreeBytes", "value": str(free)},
                    {"name": "RequiredBytes", "value": str(int(limit * 1024 * 1024))},
                ],
            }
        )
    missing = [name for name in NODE_DIRS if not (root / name).is_dir()]
    if missing:
        found.append(
            {
                "code": "NodeDirectoryMissing",
                "message": "Directories of the compute node were deleted; reboot or reimage the node.",
                "errorDetails": [{"name": "Directory", "value": name} for name in missing],
            }
        )
    deleted = [(what, path) for what, path in task_dirs if not path.is_dir()]
    if deleted:
        found.append(
            {
                "code": "TaskDirectoryDeleted",
                "message": "The directory of a running task was deleted.",
                "errorDetails": [{"name": "Task", "value": what} for what, _ in deleted],
            }
        )
    return found
