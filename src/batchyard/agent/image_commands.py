"""The commands a node's image has that this host may lack (`python` where the host has only `python3`).

The service names them in its welcome (`commands`: command -> the host command that provides it, from
`service/models/catalog.py`). Each becomes a symbolic link in `<node root>/.batchyard/image-bin`, which is
last on every run's PATH: where the host has a command of that name itself, the host's still comes first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def install(root: Path, commands: dict[str, str], search_path: str) -> Path:
    """Make the links for `commands` (and only those) in the node's image-bin directory; returns it."""
    directory = root / ".batchyard" / "image-bin"
    directory.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for name, provider in commands.items():
        target = shutil.which(provider, path=search_path)
        if target is not None and _plain_name(name):
            wanted[name] = target
    for entry in directory.iterdir():
        if entry.name not in wanted:
            entry.unlink(missing_ok=True)
    for name, target in wanted.items():
        link = directory / name
        if link.is_symlink() and os.readlink(link) == target:
            continue
        staged = directory / f".{name}.new"  # replaced in one step: a running task never misses the command
        staged.unlink(missing_ok=True)
        staged.symlink_to(target)
        staged.replace(link)
    return directory


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and not name.startswith(".") and "\0" not in name
