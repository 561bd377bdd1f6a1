"""Usage accounting: running totals per job, job schedule and pool, and pool core time per interval.

* Job and schedule totals grow when a task run ends, from the rusage and I/O counters the agent
  measured for that run (every run counts, retries included, as the contract's statistics say), so
  `$expand=stats` reads one record instead of scanning the job's tasks.
* Pool totals grow on every housekeeping tick: the core time of the pool's dedicated nodes, and the
  resource use their agents report (the same reports autoscale samples).
* Core time is also kept per pool per `INTERVAL` (30 minutes) for `/poolusagemetrics`.

Totals are keyed by "<key>#<seq>", so a job, pool or schedule created again with the same id starts
from zero. They are stored in the `usage_totals` table and survive restarts: the totals that changed are
written on the next housekeeping tick (and when the engine stops), not with every task run, as Azure
rolls statistics up periodically too. A killed service loses at most a tick of them; no task's state
depends on them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from batchyard.service.clock import parse_iso
from batchyard.service.documents import TaskDocument
from batchyard.service.engine.account_keys import account_of, scoped_id
from batchyard.service.engine.autoscale import AutoscaleOps, NodeReport
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import TaskRunFinished, Tick, reacts_to
from batchyard.service.engine.records import JobRecord, PoolRecord
from batchyard.service.engine.schedules import ScheduleOps
from batchyard.service.models import catalog

INTERVAL = 1800.0  # seconds in one aggregation interval of the pool usage metrics
_COUNTERS = ("rb", "wb", "rops", "wops", "nin", "nout")


class UsageOps(Concern):
    def __init__(self, core: EngineCore, schedule_ops: ScheduleOps, autoscale: AutoscaleOps) -> None:
        super().__init__(core)
        self.schedule_ops = schedule_ops  # a job's usage also counts for its schedule
        self.autoscale = autoscale  # the nodes' resource reports
        self.usage: dict[tuple[str, str], dict[str, float]] = {}
        self._unsaved: set[tuple[str, str]] = set()  # totals changed since the last write
        self._usage_at: float | None = None  # clock time of the last pool accounting
        self._usage_counters: dict[str, dict[str, float]] = {}  # node id -> counters at the last tick
        for scope, key, doc in self.store.load_usage():
            self.usage[(scope, key)] = doc
        self._usage_at = self.core.now().timestamp()  # time while the service was down is not counted

    # --- task runs ------------------------------------------------------------------------------

    @reacts_to(TaskRunFinished, order=-1)  # before the task's document moves on (retries, completion)
    def _account_task_run(self, event: TaskRunFinished) -> None:
        run, doc = event.run, event.doc
        job = self.jobs.get(run.job_key)
        if job is not None and doc is not None and doc.private.run_id == run.run_id:
            self._record_run(job, doc, event.result, event.now)

    def _record_run(self, job: JobRecord, doc: TaskDocument, result: dict[str, Any], now: datetime) -> None:
        stats = result.get("stats") or {}
        info = doc.get("executionInfo") or {}
        start = result.get("start") or info.get("startTime")
        end = result.get("end")
        wall = max(0.0, (parse_iso(end) - parse_iso(start)).total_seconds()) if start and end else 0.0
        first_run = not info.get("retryCount") and not info.get("requeueCount")
        wait = (parse_iso(info["startTime"]) - parse_iso(doc["creationTime"])).total_seconds() if first_run else 0.0
        delta = {
            "userCPUTime": float(stats.get("userCPUTime") or 0.0),
            "kernelCPUTime": float(stats.get("kernelCPUTime") or 0.0),
            "wallClockTime": wall,
            "readIOps": float(stats.get("readOps") or 0),
            "writeIOps": float(stats.get("writeOps") or 0),
            "readBytes": float(stats.get("readBytes") or 0),
            "writeBytes": float(stats.get("writeBytes") or 0),
            "taskRetries": 1.0 if info.get("retryCount") else 0.0,
            "waitTime": max(0.0, wait),
        }
        scopes = [("job", job_usage_key(job))]
        schedule = self.schedule_ops.schedules.get(job.private.schedule or "")
        if schedule is not None:
            scopes.append(("schedule", f"{schedule.key}#{schedule.seq}"))
        for scope in scopes:
            self._add_usage(scope, delta, now)

    def _add_usage(self, scope: tuple[str, str], delta: dict[str, float], now: datetime) -> None:
        totals = self.usage.setdefault(scope, {})
        for name, value in delta.items():
            totals[name] = totals.get(name, 0.0) + value
        totals["updated"] = now.timestamp()
        self._unsaved.add(scope)

    def save_usage(self) -> None:
        """Write the totals that changed (inside the caller's transaction)."""
        for scope in self._unsaved:
            self.store.put_usage(scope[0], scope[1], self.usage[scope])
        self._unsaved.clear()

    # --- pools ----------------------------------------------------------------------------------

    @reacts_to(Tick)
    def _record_usage(self, event: Tick) -> None:
        now = self.core.now()
        t = now.timestamp()
        last, self._usage_at = self._usage_at, t
        if last is not None and t > last:
            for pool in list(self.pools.values()):
                self._account_pool(pool, last, t, self.autoscale.node_reports, now)
        self.save_usage()

    def _account_pool(
        self, pool: PoolRecord, last: float, t: float, reports: dict[str, NodeReport], now: datetime
    ) -> None:
        size = catalog.lookup_vm_size(pool.doc.get("vmSize", ""))
        cores = size.cores if size is not None else 1
        nodes = [self.nodes[node_id] for node_id in pool.node_ids if node_id in self.nodes]
        # The pool's statistics count dedicated core time; the usage metrics every node's that holds a VM
        # (a preempted low-priority node has none until it is reallocated).
        dedicated_seconds = cores * sum(1 for node in nodes if node.dedicated) * (t - last)
        held = sum(1 for node in nodes if node.dedicated or node.doc["state"] != "preempted")
        core_seconds = cores * held * (t - last)
        vm_size = pool.doc.get("vmSize", "")
        pool_name = scoped_id(account_of(pool.key), pool.doc["id"])
        for start, seconds in split_intervals(last, t):
            self.store.add_pool_usage(start, pool_name, vm_size, core_seconds * seconds / (t - last))
        delta: dict[str, float] = {"coreSeconds": dedicated_seconds}
        for node in nodes:
            report = reports.get(node.id)
            if report is None:
                continue
            values = report.values
            delta["samples"] = delta.get("samples", 0.0) + 1
            for name in ("cpu", "mem", "disk"):
                delta[name] = delta.get(name, 0.0) + values.get(name, 0.0)
            before = self._usage_counters.get(node.id, {})
            for counter in _COUNTERS:
                value = values.get(counter, 0.0)
                delta[counter] = delta.get(counter, 0.0) + max(0.0, value - before.get(counter, value))
            self._usage_counters[node.id] = {counter: values.get(counter, 0.0) for counter in _COUNTERS}
            totals = self.usage.setdefault(("pool", pool_usage_key(pool)), {})
            totals["peakMem"] = max(totals.get("peakMem", 0.0), values.get("mem", 0.0))
            totals["peakDisk"] = max(totals.get("peakDisk", 0.0), values.get("disk", 0.0))
        self._add_usage(("pool", pool_usage_key(pool)), delta, now)


def job_usage_key(job: JobRecord) -> str:
    return f"{job.key}#{job.seq}"


def pool_usage_key(pool: PoolRecord) -> str:
    return f"{pool.key}#{pool.seq}"


def split_intervals(first: float, last: float) -> list[tuple[float, float]]:
    """(interval start, seconds of [first, last) inside it) for each usage interval the span touches."""
    out: list[tuple[float, float]] = []
    start = math.floor(first / INTERVAL) * INTERVAL
    while start < last:
        seconds = min(last, start + INTERVAL) - max(first, start)
        if seconds > 0:
            out.append((start, seconds))
        start += INTERVAL
    return out
