"""Node file operations for the service: list, stat, read, delete, confined to the node root."""

from __future__ import annotations

import base64
import os
import shutil
import stat as stat_module
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class PathError(Exception):
    pass


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


def handle(root: Path, message: dict[str, Any]) -> dict[str, Any]:
    try:
        target = resolve(root, message.get("path", ""))
        op = message["op"]
        if op == "list":
            return {"ok": True, "files": _list(target, bool(message.get("recursive")))}
        if op == "stat":
            return {"ok": True, **_entry(target.name, target.stat())}
        if op == "read":
            with open(target, "rb") as handle_:
                handle_.seek(int(message.get("offset", 0)))
                data = handle_.read(int(message.get("length", 1024 * 1024)))
            return {"ok": True, "data": base64.b64encode(data).decode()}
        if op == "delete":
            if target == root:
                return {"ok": False, "code": "InvalidPath", "message": "The node root cannot be deleted."}
            if target.is_dir() and not target.is_symlink():
                if not message.get("recursive") and any(target.iterdir()):
                    return {"ok": False, "code": "DirectoryNotEmpty", "message": "The directory is not empty."}
                shutil.rmtree(target)
            else:
                target.unlink()
            return {"ok": True}
        return {"ok": False, "code": "InvalidOperation", "message": f"unknown file operation {op}"}
    except PathError:
        return {"ok": False, "code": "FileNotFound", "message": "The specified file does not exist."}
    except (FileNotFoundError, NotADirectoryError):
        return {"ok": False, "code": "FileNotFound", "message": "The specified file does not exist."}
    except IsADirectoryError:
        return {"ok": False, "code": "FileIsDirectory", "message": "The specified path is a directory."}
    except PermissionError:
        return {"ok": False, "code": "FileAccessDenied", "message": "Access to the file was denied."}


def _list(target: Path, recursive: bool) -> list[dict[str, Any]]:
    if not target.is_dir():
        raise FileNotFoundError(target)
    entries: list[dict[str, Any]] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(target):
            base = Path(dirpath)
            for name in dirnames + filenames:
                path = base / name
                try:
                    entries.append(_entry(str(path.relative_to(target)), path.lstat()))
                except FileNotFoundError:
                    continue
    else:
        with os.scandir(target) as scan:
            for item in scan:
                try:
                    entries.append(_entry(item.name, item.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
    return entries
