"""Node file operations for the service: list (in pages), stat, open/read/close, delete.

Every request names a scope, `base`: the directory its path must stay in once links are resolved (a
task's directory for the task file API, the node root for the node file API). Tasks can make links to
anything, so a path is confined after resolution, and a delete removes a link, never what it points to.
Every request gets an answer, an error code when it cannot be served.
"""

from __future__ import annotations

import base64
import bisect
import errno
import logging
import os
import secrets
import shutil
import stat as stat_module
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("batchyard.agent.files")

PAGE_SIZE = 1000  # entries of one list reply at most (the API's largest maxresults)
PAGE_BYTES = 4 * 1024 * 1024  # and names of this many bytes at most: one reply stays one small message
MAX_READ = 4 * 1024 * 1024  # bytes of one read reply at most
LISTING_REUSE = 30.0  # seconds the names of a listing serve its next pages (one walk, not one per page)
HANDLE_IDLE = 60.0  # seconds an open download may go unread before its descriptor is closed
MAX_HANDLES = 256  # open downloads at once

# Entries of the node root that are the agent's, not the node's: its state and caches, its log, the homes
# of the node's users (on Azure they live outside the node root). Azure's node root shows only its own
# directories (shared, startup, workitems, ...), so these are absent to every request, listing included;
# the agent's log reaches users through uploadbatchservicelogs, as on Azure.
INTERNAL = frozenset({".batchyard", "agent.log", "users", "home"})

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO never hangs us


class PathError(Exception):
    pass


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def resolve(root: Path, relative: str) -> Path:
    """The absolute path of `relative` under root; never outside it (.., absolute paths, links)."""
    target = (root / relative.lstrip("/")).resolve()
    if target != root and root not in target.parents:
        raise PathError(relative)
    return target


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry(name: str, info: os.stat_result) -> dict[str, Any]:
    is_dir = stat_module.S_ISDIR(info.st_mode)
    return {
        "name": name,
        "isDirectory": is_dir,
        "size": 0 if is_dir else info.st_size,
        "mtime": _iso(info.st_mtime),
        "ctime": _iso(info.st_ctime),
        "mode": oct(info.st_mode),
    }


_NOT_FOUND = {"ok": False, "code": "FileNotFound", "message": "The specified file does not exist."}


@dataclass
class _Download:
    fd: int
    used: float


class NodeFiles:
    """The file operations of one node, with the descriptors of downloads in progress.

    A download is opened once and read through its descriptor, so what it serves is the file that was
    there when it began (a file replaced or deleted meanwhile is still read whole).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._downloads: dict[str, _Download] = {}
        self._listing: tuple[Path, bool, float, list[str]] | None = None  # the last listing's sorted names
        self._guard = threading.Lock()  # requests are served in threads

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._serve(message)
        except Refused as refused:
            return {"ok": False, "code": refused.code, "message": refused.message}
        except (PathError, FileNotFoundError, NotADirectoryError):
            return dict(_NOT_FOUND)
        except IsADirectoryError:
            return {"ok": False, "code": "FileIsDirectory", "message": "The specified path is a directory."}
        except PermissionError:
            return {"ok": False, "code": "FileAccessDenied", "message": "Access to the file was denied."}
        except ValueError:  # an embedded NUL byte
            return {"ok": False, "code": "InvalidFilePath", "message": "The specified file path is not valid."}
        except OSError as exc:
            if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):  # no such file can exist
                return dict(_NOT_FOUND)
            return {"ok": False, "code": "FileOperationFailed", "message": f"The file operation failed: {exc.strerror}"}
        except Exception:
            log.exception("file operation %s failed", message.get("op"))
            return {"ok": False, "code": "InternalServerError", "message": "The file operation failed on the node."}

    def _serve(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message["op"]
        if op == "read" and message.get("handle"):
            return self._read_open(str(message["handle"]), int(message.get("offset", 0)), _length(message))
        if op == "close":
            self._close(str(message.get("handle", "")))
            return {"ok": True}
        base = self._base(str(message.get("base") or ""))
        if op == "delete":
            return self._delete(base, str(message.get("path", "")), bool(message.get("recursive")))
        target = resolve(self.root, str(message.get("path", "")))
        if target != base and base not in target.parents or self._internal(target):
            raise PathError(target)  # a link that leads out of the scope, or into the agent's own
        if op == "list":
            return self._list(target, bool(message.get("recursive")), message.get("after"), message.get("max"))
        if op == "stat":
            return {"ok": True, **_entry(target.name, os.stat(target))}
        if op == "open":
            return self._open(target)
        if op == "read":  # a single read by path (services that do not open first)
            fd = _open_file(target)
            try:
                data = os.pread(fd, _length(message), int(message.get("offset", 0)))
            finally:
                os.close(fd)
            return {"ok": True, "data": base64.b64encode(data).decode()}
        return {"ok": False, "code": "InvalidOperation", "message": f"unknown file operation {op}"}

    def _internal(self, path: Path) -> bool:
        """Whether a resolved path is one of the agent's entries of the node root (INTERNAL) or under one."""
        return path != self.root and path.relative_to(self.root).parts[0] in INTERNAL

    def _base(self, relative: str) -> Path:
        """The scope's directory; its own path may hold no link (a task cannot move its scope elsewhere)."""
        base = resolve(self.root, relative)
        if base != Path(os.path.normpath(self.root / relative.lstrip("/"))):
            raise PathError(relative)
        return base

    # --- listing ------------------------------------------------------------------------------------

    def _list(self, target: Path, recursive: bool, after: Any, size: Any) -> dict[str, Any]:
        """One page of the entries under target in name order: those after `after`, at most `size`."""
        if not target.is_dir():
            raise FileNotFoundError(target)
        names = self._names(target, recursive, isinstance(after, str))
        start = bisect.bisect_right(names, after) if isinstance(after, str) else 0
        limit = min(int(size), PAGE_SIZE) if size else PAGE_SIZE
        entries: list[dict[str, Any]] = []
        budget = PAGE_BYTES
        index = start
        while index < len(names) and len(entries) < limit and budget > 0:
            name = names[index]
            index += 1
            try:
                entries.append(_entry(name, os.lstat(target / name)))
            except FileNotFoundError:
                continue  # removed while we list
            budget -= len(name.encode(errors="surrogateescape")) + 100
        more = index < len(names)
        return {"ok": True, "files": entries, "next": names[index - 1] if more else None}

    def _names(self, target: Path, recursive: bool, continued: bool) -> list[str]:
        """The sorted names under target; a continuation reuses those of the page before when recent."""
        now = time.monotonic()
        with self._guard:
            last = self._listing
        if continued and last is not None and last[:2] == (target, recursive) and now - last[2] < LISTING_REUSE:
            return last[3]
        hidden = INTERNAL if target == self.root else frozenset()
        names = sorted(_walk(target, hidden) if recursive else set(os.listdir(target)) - hidden)
        with self._guard:
            self._listing = (target, recursive, now, names)
        return names

    # --- downloads ----------------------------------------------------------------------------------

    def _open(self, target: Path) -> dict[str, Any]:
        now = time.monotonic()
        with self._guard:
            for key, download in list(self._downloads.items()):
                if now - download.used > HANDLE_IDLE:  # the service went away mid-download
                    os.close(self._downloads.pop(key).fd)
            if len(self._downloads) >= MAX_HANDLES:
                raise Refused("ServerBusy", "The node is serving too many downloads at once.")
        fd = _open_file(target)
        key = secrets.token_hex(8)
        with self._guard:
            self._downloads[key] = _Download(fd, now)
        return {"ok": True, "handle": key, **_entry(target.name, os.fstat(fd))}

    def _read_open(self, key: str, offset: int, length: int) -> dict[str, Any]:
        with self._guard:
            download = self._downloads.get(key)
            if download is None:
                raise Refused("FileHandleExpired", "The download was idle too long; start it again.")
            download.used = time.monotonic()
            # pread under the guard: a concurrent close cannot hand the number to another file meanwhile.
            data = os.pread(download.fd, length, offset)
        return {"ok": True, "data": base64.b64encode(data).decode()}

    def _close(self, key: str) -> None:
        with self._guard:
            download = self._downloads.pop(key, None)
        if download is not None:
            os.close(download.fd)

    def close_all(self) -> None:
        with self._guard:
            downloads, self._downloads = self._downloads, {}
        for download in downloads.values():
            os.close(download.fd)

    # --- delete -------------------------------------------------------------------------------------

    def _delete(self, base: Path, relative: str, recursive: bool) -> dict[str, Any]:
        """Remove the entry itself: a link is unlinked, never followed (its target may be anyone's)."""
        parent, _, name = relative.strip("/").rpartition("/")
        if name in ("", ".", ".."):
            target = resolve(self.root, relative)  # a directory, reached through its parents
        else:
            target = resolve(self.root, parent) / name
        if target == base:
            what = "node root" if base == self.root else "task directory"
            return {"ok": False, "code": "InvalidPath", "message": f"The {what} cannot be deleted."}
        if base not in target.parents or self._internal(target):
            raise PathError(relative)
        info = os.lstat(target)
        if stat_module.S_ISDIR(info.st_mode):
            if not recursive and any(os.scandir(target)):
                return {"ok": False, "code": "DirectoryNotEmpty", "message": "The directory is not empty."}
            shutil.rmtree(target)  # fd-based on Linux: it does not follow links inside, nor one swapped in
        else:
            os.unlink(target)
        return {"ok": True}


def _length(message: dict[str, Any]) -> int:
    return max(0, min(int(message.get("length", 1024 * 1024)), MAX_READ))


def _open_file(target: Path) -> int:
    """A descriptor of the regular file at target (resolved: a link swapped in meanwhile is refused)."""
    fd = os.open(target, _READ_FLAGS)
    info = os.fstat(fd)
    if stat_module.S_ISREG(info.st_mode):
        os.set_blocking(fd, True)
        return fd
    os.close(fd)
    if stat_module.S_ISDIR(info.st_mode):
        raise IsADirectoryError(target)
    raise Refused("FileNotRegular", "The specified path is not a regular file.")


def _walk(target: Path, hidden: frozenset[str]) -> list[str]:
    """Paths relative to target of everything under it but its `hidden` entries; links are listed, not
    walked into."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(target):
        prefix = os.path.relpath(dirpath, target)
        if prefix == ".":
            dirnames[:] = [name for name in dirnames if name not in hidden]  # not walked into either
            filenames = [name for name in filenames if name not in hidden]
        prefix = "" if prefix == "." else prefix + "/"
        found.extend(prefix + name for name in dirnames)
        found.extend(prefix + name for name in filenames)
    return found
