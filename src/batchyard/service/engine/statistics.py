"""Resource statistics of tasks, from the real rusage and I/O counters the agent measured."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from batchyard.service.clock import parse_iso
from batchyard.service.models.durations import format_duration

_GIB = 1024**3


def task_statistics(doc: dict[str, Any], url: str) -> dict[str, Any]:
    """BatchTaskStatistics for a task: zeros until a run has reported."""
    info = doc.get("executionInfo") or {}
    measured = doc.get("_stats") or {}
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
