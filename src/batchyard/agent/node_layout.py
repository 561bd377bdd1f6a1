"""The node root's directories and who may enter them, made when the agent starts.

On an agent running as root, runs are other users (task_users.py), so the modes matter:

  <root>/            0755  every task user passes through
    shared/          1775  AZ_BATCH_NODE_SHARED_DIR: every task user writes (group TASKS_GID), none
                           removes another's files; node users (SSH) read
    startup/         0755  the start task's directory (its own user's, readable by the node's tasks)
    workitems/       0755  job directories (0755) and task directories (0700, their users' own)
    users/           0755  homes of the pool's auto-user and named accounts (0700 each), nss_wrapper files
    home/            0755  node users' homes (accounts.py)
    .batchyard/      0711  the agent's own; tasks pass through to image-bin/ (0755: the image's commands,
                           agent/image_commands.py) but list nothing
      blobcache/     0700  downloaded resource files, for the agent only
    agent.log        0600  (the local provider makes it)
"""

from __future__ import annotations

import os
from pathlib import Path

from batchyard.agent.accounts import TASKS_GID, isolating, unreachable_parent

MODES = {
    "shared": 0o1775,
    "startup": 0o755,
    "workitems": 0o755,
    "users": 0o755,
    ".batchyard": 0o711,
    ".batchyard/blobcache": 0o700,
}


def make(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, mode in MODES.items():
        path = root / name
        path.mkdir(exist_ok=True)
        if isolating():
            os.chown(path, 0, TASKS_GID if name == "shared" else 0, follow_symlinks=False)
            os.chmod(path, mode, follow_symlinks=False)
    if isolating():
        os.chmod(root, 0o755)


def unreachable(root: Path) -> str | None:
    """Why task users could not reach this node root, or None: a directory on the way that others
    may not pass. Only an agent running as root runs tasks as other users."""
    if not isolating():
        return None
    blocking = unreachable_parent(root.resolve().parent)  # the root itself is ours to open (make)
    if blocking is None:
        return None
    return (
        f"tasks run as users of their own when the agent runs as root, and they cannot reach the node root "
        f"{root}: other users may not pass {blocking} (chmod o+x {blocking}, or choose a root elsewhere)"
    )
