"""The Batch File Conventions names: the job's output container and the blob path of each kind."""

from __future__ import annotations

import hashlib
import re

_PERMITTED = re.compile(r"^[a-z0-9][-a-z0-9]*$")
_INVALID_RUNS = re.compile(r"[:_-]+")
_PREFIX = "job-"
_MAX_ID = 63 - len(_PREFIX)
_MAX_ID_WHEN_HASHED = 15  # how much of the id the standard keeps before the hash


def container_name(job_id: str) -> str:
    """`job-<id>` when the lower-cased id makes a valid container name, else `job-<safe prefix>-<sha1>`."""
    lowered = job_id.lower()  # job ids differ by more than case, so this stays unique
    if len(lowered) <= _MAX_ID and _PERMITTED.match(lowered) and not lowered.endswith("-") and "--" not in lowered:
        return _PREFIX + lowered
    digest = hashlib.sha1(lowered.encode("utf-8")).hexdigest()  # noqa: S324 - a name, not security
    safe = _INVALID_RUNS.sub("-", lowered).strip("-")
    if len(safe) > _MAX_ID_WHEN_HASHED:
        safe = safe[:_MAX_ID_WHEN_HASHED].strip("-")
    elif not safe:
        safe = "job"
    return f"{_PREFIX}{safe}-{digest}"


class OutputKind(str):
    """A kind of output: the predefined ones or a custom text (case preserved, `$` added in paths)."""

    def __new__(cls, text: str) -> OutputKind:
        if not text:
            raise ValueError("an output kind needs a non-empty text")
        if "/" in text:
            raise ValueError("an output kind cannot contain '/'")
        return super().__new__(cls, text)

    @property
    def path_segment(self) -> str:
        return f"${self}"


class TaskOutputKind:
    TASK_OUTPUT = OutputKind("TaskOutput")
    TASK_PREVIEW = OutputKind("TaskPreview")
    TASK_LOG = OutputKind("TaskLog")
    TASK_INTERMEDIATE = OutputKind("TaskIntermediate")

    @staticmethod
    def custom(text: str) -> OutputKind:
        return OutputKind(text)


class JobOutputKind:
    JOB_OUTPUT = OutputKind("JobOutput")
    JOB_PREVIEW = OutputKind("JobPreview")

    @staticmethod
    def custom(text: str) -> OutputKind:
        return OutputKind(text)


def task_prefix(task_id: str, kind: str) -> str:
    return f"{task_id}/{OutputKind(kind).path_segment}/"


def job_prefix(kind: str) -> str:
    return f"{OutputKind(kind).path_segment}/"


def relative_blob_path(path: str) -> str:
    """A file's destination below its kind: forward slashes, no leading `./` or `/`, no `..`."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"not a relative destination path: {path!r}")
    return "/".join(parts)
