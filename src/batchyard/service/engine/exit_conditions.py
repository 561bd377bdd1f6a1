"""What a finished task's exit means: the exitOptions its exitConditions choose, with the documented defaults.

Defaults (contract, ExitOptions): jobAction is none for exit code 0 and terminate otherwise;
dependencyAction is satisfy for exit code 0 and block otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# failureInfo codes of a run that never started its command: resource files, packages, paths.
PRE_PROCESSING_CODES = frozenset(
    {
        "BlobAccessDenied",
        "BlobDownloadMiscError",
        "BlobDownloadTimedOut",
        "BlobNotFound",
        "DiskFull",
        "ResourceDirectoryCreateFailed",
        "ResourceFileCreateFailed",
        "ResourceFileWriteFailed",
        "ApplicationPackageError",
        "ResourceFileSourceUnsupported",
    }
)
FILE_UPLOAD_CODES = frozenset({"FileUploadFailed", "FileUploadMiscError"})


@dataclass(frozen=True)
class ExitOutcome:
    job_action: str  # none | disable | terminate
    dependency_action: str  # satisfy | block


def exit_outcome(
    conditions: dict[str, Any] | None, exit_code: int | None, failure: dict[str, Any] | None
) -> ExitOutcome:
    conditions = conditions or {}
    code = (failure or {}).get("code")
    chosen: dict[str, Any] | None = None
    if code in PRE_PROCESSING_CODES:
        chosen = conditions.get("preProcessingError")
    elif code in FILE_UPLOAD_CODES:
        chosen = conditions.get("fileUploadError")
    elif exit_code is not None:
        chosen = _for_exit_code(conditions, exit_code)
    if chosen is None:
        chosen = conditions.get("default")
    success = failure is None and exit_code in (0, None)
    chosen = chosen or {}
    return ExitOutcome(
        job_action=chosen.get("jobAction") or ("none" if success else "terminate"),
        dependency_action=chosen.get("dependencyAction") or ("satisfy" if success else "block"),
    )


def _for_exit_code(conditions: dict[str, Any], exit_code: int) -> dict[str, Any] | None:
    for mapping in conditions.get("exitCodes") or []:
        if mapping.get("code") == exit_code:
            return mapping.get("exitOptions") or {}
    for mapping in conditions.get("exitCodeRanges") or []:
        if mapping.get("start", 0) <= exit_code <= mapping.get("end", -1):
            return mapping.get("exitOptions") or {}
    return None
