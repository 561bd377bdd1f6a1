"""Output files: after the task process exits, upload what `outputFiles` names to blob containers.

`filePattern` is relative to the working directory (`../stdout.txt` reaches the task directory) or
absolute within the task directory, with `$VAR` expanded from the task's environment and the
contract's wildcards: `*`, `?`, `[abc]`, `[a-c]`, `[!abc]` within one path segment and `**` for any
number of directories; names starting with "." match only a pattern that spells the dot. Like the
real agent, it logs to `fileuploadout.txt` and `fileuploaderr.txt` in the task directory.
"""

from __future__ import annotations

import fnmatch
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchyard.agent import safe_files, transfer
from batchyard.agent.transfer import TransferError

_WILDCARD = re.compile(r"[*?\[]")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


class UploadError(Exception):
    pass


def should_upload(condition: str | None, succeeded: bool) -> bool:
    condition = (condition or "taskcompletion").lower()
    if condition == "tasksuccess":
        return succeeded
    if condition == "taskfailure":
        return not succeeded
    return True


def expand(pattern: str, env: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), pattern)


def match(pattern: str, working_dir: Path, task_dir: Path) -> tuple[list[tuple[Path, str]], bool]:
    """Files the pattern names, each with its name relative to the pattern's fixed base directory,
    and whether the pattern has wildcards. Raises UploadError for a pattern outside the task dir."""
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    fixed: list[str] = []
    while parts and not _WILDCARD.search(parts[0]):
        fixed.append(parts.pop(0))
    wildcard = bool(parts)
    base = Path(os.path.normpath(Path("/" if absolute else working_dir, *fixed)))
    top = task_dir.resolve()
    if base != top and top not in base.parents:
        raise UploadError(f"the file pattern {pattern} leads outside the task directory")
    if not wildcard:
        found = [(base, base.name)] if base.is_file() and _inside(base, top) else []
        return found, False
    return [(path, path.relative_to(base).as_posix()) for path in _walk(base, parts) if _inside(path, top)], True


def _inside(path: Path, top: Path) -> bool:
    resolved = path.resolve()  # a link out of the task directory is not uploaded
    return top in resolved.parents


def _segment_matches(name: str, segment: str) -> bool:
    if name.startswith(".") and not segment.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, segment)


def _walk(directory: Path, parts: list[str]) -> list[Path]:
    if not parts:
        return [directory] if directory.is_file() else []
    head, rest = parts[0], parts[1:]
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return []
    found: list[Path] = []
    if head == "**":
        found.extend(_walk(directory, rest))  # zero directories
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                found.extend(_walk(Path(entry.path), parts))  # one more directory
        return sorted(set(found))
    for entry in entries:
        if _segment_matches(entry.name, head):
            path = Path(entry.path)
            if rest:
                if entry.is_dir(follow_symlinks=False):
                    found.extend(_walk(path, rest))
            elif entry.is_file():
                found.append(path)
    return found


def blob_name(destination_path: str | None, relative: str, wildcard: bool) -> str:
    path = (destination_path or "").strip("/")
    if not wildcard:
        return path or relative
    return f"{path}/{relative}" if path else relative


def upload_outputs(
    outputs: list[dict[str, Any]], working_dir: Path, task_dir: Path, env: dict[str, str], succeeded: bool
) -> dict[str, Any] | None:
    """Upload every output whose condition holds; the failureInfo of the first failed upload, or None."""
    failure: dict[str, Any] | None = None
    # The task may have left links at the log names: append only to plain files of their own.
    out_fd = safe_files.append(task_dir / "fileuploadout.txt")
    with open(out_fd, "a") as out, open(safe_files.append(task_dir / "fileuploaderr.txt"), "a") as err:
        for spec in outputs:
            condition = (spec.get("uploadOptions") or {}).get("uploadCondition")
            if not should_upload(condition, succeeded):
                continue
            pattern = expand(spec["filePattern"], env)
            container = ((spec.get("destination") or {}).get("container")) or {}
            headers = {h["name"]: h.get("value") or "" for h in container.get("uploadHeaders") or []}
            try:
                files, wildcard = match(pattern, working_dir, task_dir)
                out.write(f"{_stamp()} pattern {pattern}: {len(files)} file(s)\n")
                for path, relative in files:
                    name = blob_name(container.get("path"), relative, wildcard)
                    url = transfer.blob_url(container["containerUrl"], name)
                    out.write(f"{_stamp()} uploading {path} to {transfer.public(url)}\n")
                    _upload(url, path, headers, pattern)
            except UploadError as exc:
                err.write(f"{_stamp()} {exc}\n")
                failure = failure or _failure(str(exc), pattern)
            except (OSError, KeyError, ValueError) as exc:
                err.write(f"{_stamp()} pattern {pattern}: {exc}\n")
                failure = failure or _failure(f"uploading the files of {pattern} failed: {exc}", pattern)
    return failure


def _upload(url: str, path: Path, headers: dict[str, str], pattern: str) -> None:
    try:
        transfer.upload(url, path, headers)
    except TransferError as exc:
        where = transfer.public(url)
        raise UploadError(f"uploading {path.name} (pattern {pattern}) to {where} failed: {exc}") from None


def _failure(message: str, pattern: str) -> dict[str, Any]:
    return {
        "category": "usererror",
        "code": "FileUploadMiscError",
        "message": f"Output file upload failed: {message}",
        "details": [{"name": "FilePattern", "value": pattern}],
    }


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
