"""Creating files in directories that tasks can write to, without writing through what a task left there.

A task (or an earlier attempt of it) may leave a symbolic link, a hard link or a FIFO at a name the
agent is about to write, pointing at a file outside the task's directory. Every file the agent writes
for a task is therefore created new: the old entry is unlinked (removing a link, never its target) and
the file is made with O_CREAT|O_EXCL|O_NOFOLLOW under a descriptor of its directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC  # never a link to one
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def open_dir(path: Path) -> int:
    """A descriptor of the directory `path`, which must not itself be a link (ELOOP/ENOTDIR otherwise)."""
    return os.open(path, DIRECTORY)


def create_at(directory: int, name: str, mode: int = 0o644) -> int:
    """A new, empty file `name` in the directory open as `directory`, opened for writing."""
    try:
        return os.open(name, _CREATE, mode, dir_fd=directory)  # the common case: nothing there yet
    except FileExistsError:
        pass
    try:
        os.unlink(name, dir_fd=directory)  # a link or a file of an earlier attempt: removed, its target never
    except FileNotFoundError:
        pass
    # O_EXCL: if anything appears at the name meanwhile, fail rather than write into it.
    return os.open(name, _CREATE, mode, dir_fd=directory)


def create(path: Path, mode: int = 0o644) -> int:
    """A new, empty file at `path` (replacing whatever entry was there), opened for writing."""
    directory = open_dir(path.parent)
    try:
        return create_at(directory, path.name, mode)
    finally:
        os.close(directory)


def create_all(paths: Sequence[Path], mode: int = 0o644) -> list[int]:
    """`create` for each of `paths`, opening each directory once (a run's stdout and stderr share one).
    On a failure the files already opened are closed before the error propagates."""
    fds: list[int] = []
    directories: dict[str, int] = {}
    try:
        for path in paths:
            parent, name = os.path.split(path)  # not Path.parent and Path hashes: this is on every start
            parent = parent or "."
            if parent not in directories:
                directories[parent] = os.open(parent, DIRECTORY)
            fds.append(create_at(directories[parent], name, mode))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        for directory in directories.values():
            os.close(directory)
    return fds


def append(path: Path, mode: int = 0o644) -> int:
    """`path` opened for appending if it is a plain file of its own; otherwise replaced by a new file."""
    directory = open_dir(path.parent)
    try:
        try:
            fd = os.open(path.name, _APPEND, mode, dir_fd=directory)
        except OSError:  # a link (ELOOP) or something else odd: start a new file
            return create_at(directory, path.name, mode)
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            os.set_blocking(fd, True)
            return fd
        os.close(fd)  # a hard link to another file, a FIFO: never written through
        return create_at(directory, path.name, mode)
    finally:
        os.close(directory)
