"""The data directory when the service runs as root: node roots inside it, secrets out of reach.

Local nodes' agents then run tasks as users of their own (agent/task_users.py), who must pass
through the data directory to reach `nodes/<node>` but must read nothing else in it. So the data
directory and `nodes` become 0711 (others pass, never list); what is secret in there is mode 0600 or
0700 of its own (batchyard.db, azurite/). A directory above the data directory that others may not
pass is not ours to open: the service refuses to start and says which one.
"""

from __future__ import annotations

import os
from pathlib import Path

from batchyard.agent.accounts import isolating, unreachable_parent

PASS_ONLY = 0o711


def prepare(data_dir: Path) -> str | None:
    """Make the data directory ready for the local nodes' task users; why it cannot be, or None."""
    if not isolating():
        return None  # the agents run tasks as the service's own user, as they always did
    blocking = unreachable_parent(data_dir.resolve().parent)
    if blocking is not None:
        return (
            f"running as root, the service runs tasks as users of their own, who must reach the node roots "
            f"under {data_dir / 'nodes'}; other users may not pass {blocking}: "
            f"allow it (chmod o+x {blocking}) or choose a --data-dir elsewhere"
        )
    for directory in (data_dir, data_dir / "nodes"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, PASS_ONLY)
    return None
