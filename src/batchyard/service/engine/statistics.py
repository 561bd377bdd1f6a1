"""Resource statistics of tasks, jobs, schedules and pools, from real rusage, I/O counters and node reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from batchyard.service.clock import iso, parse_iso
from batchyard.service.documents import TaskDocument
from batchyard.service.models.durations import format_duration

_GIB = 1024**3


def task_statistics(doc: TaskDocument, url: str) -> dict[str, Any]:
    """BatchTaskStatistics for a task: zeros until a run has reported."""
    info = doc.get("executionInfo") or {}
    measured = doc.private.run_stats or {}
    start = info.get("startTime") or doc.get("creationTime")
    end = info.get("endTime") or doc.get("lastModified") or start
    wall = parse_iso(end) - parse_iso(start) if start and end else timedelta(0)
    wait = parse_iso(start) - parse_iso(doc["creationTime"]) if start else timedelta(0)
    return {
        "url": url,
        "startTime": doc.get("creationTime"),
        "lastUpdateTime": doc.get("lastModified"),
        "userCPUTime": format_duration(timedelta(seconds=float(measured.get("userCPUTime", 0.0)))),
        "kernelCPUTime": format_duration(timedelta(seconds=float(measured.get("kernelCPUTime", 0.0)))),
        "wallClockTime": format_duration(max(wall, timedelta(0))),
        "readIOps": str(int(measured.get("readOps", 0))),
        "writeIOps": str(int(measured.get("writeOps", 0))),
        "readIOGiB": float(measured.get("readBytes", 0)) / _GIB,
        "writeIOGiB": float(measured.get("writeBytes", 0)) / _GIB,
        "waitTime": format_duration(max(wait, timedelta(0))),
    }


def _seconds(value: float) -> str:
    return format_duration(timedelta(seconds=max(0.0, value)))


def _stamp(totals: dict[str, float], fallback: str, now: datetime) -> str:
    return iso(datetime.fromtimestamp(totals["updated"], UTC)) if "updated" in totals else fallback or iso(now)


def run_statistics(totals: dict[str, float], url: str, start: str, now: datetime) -> dict[str, Any]:
    """The part BatchJobStatistics and BatchJobScheduleStatistics share, from UsageOps' running totals."""
    return {
        "url": url,
        "startTime": start,
        "lastUpdateTime": _stamp(totals, start, now),
        "userCPUTime": _seconds(totals.get("userCPUTime", 0.0)),
        "kernelCPUTime": _seconds(totals.get("kernelCPUTime", 0.0)),
        "wallClockTime": _seconds(totals.get("wallClockTime", 0.0)),
        "readIOps": str(int(totals.get("readIOps", 0))),
        "writeIOps": str(int(totals.get("writeIOps", 0))),
        "readIOGiB": totals.get("readBytes", 0.0) / _GIB,
        "writeIOGiB": totals.get("writeBytes", 0.0) / _GIB,
        "numTaskRetries": str(int(totals.get("taskRetries", 0))),
        "waitTime": _seconds(totals.get("waitTime", 0.0)),
    }


def job_statistics(
    totals: dict[str, float], url: str, start: str, succeeded: int, failed: int, now: datetime
) -> dict[str, Any]:
    """BatchJobStatistics (also BatchJobScheduleStatistics): task counts are the jobs' current ones."""
    return run_statistics(totals, url, start, now) | {
        "numSucceededTasks": str(succeeded),
        "numFailedTasks": str(failed),
    }


def pool_statistics(totals: dict[str, float], url: str, start: str, now: datetime) -> dict[str, Any]:
    """BatchPoolStatistics: core time of the pool's nodes, and the resource use their agents reported."""
    updated = _stamp(totals, start, now)
    samples = totals.get("samples", 0.0) or 1.0
    resource = {
        "startTime": start,
        "lastUpdateTime": updated,
        "avgCPUPercentage": totals.get("cpu", 0.0) / samples,
        "avgMemoryGiB": totals.get("mem", 0.0) / samples / _GIB,
        "peakMemoryGiB": totals.get("peakMem", 0.0) / _GIB,
        "avgDiskGiB": totals.get("disk", 0.0) / samples / _GIB,
        "peakDiskGiB": totals.get("peakDisk", 0.0) / _GIB,
        "diskReadIOps": str(int(totals.get("rops", 0))),
        "diskWriteIOps": str(int(totals.get("wops", 0))),
        "diskReadGiB": totals.get("rb", 0.0) / _GIB,
        "diskWriteGiB": totals.get("wb", 0.0) / _GIB,
        "networkReadGiB": totals.get("nin", 0.0) / _GIB,
        "networkWriteGiB": totals.get("nout", 0.0) / _GIB,
    }
    core_time = _seconds(totals.get("coreSeconds", 0.0))
    usage = {"startTime": start, "lastUpdateTime": updated, "dedicatedCoreTime": core_time}
    return {"url": url, "startTime": start, "lastUpdateTime": updated, "usageStats": usage, "resourceStats": resource}
