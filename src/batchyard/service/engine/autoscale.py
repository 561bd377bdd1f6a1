"""Autoscale: metric samples per pool, enable/disable/evaluate, and the periodic formula runs.

Every sample period (30 s; `--autoscale-sample-period`) housekeeping records each pool's task
counts, node counts and the resource use its agents report into a bounded history. A pool with
autoscale enabled runs its formula when it is enabled and then every evaluation interval; a
successful run sets the pool's targets and resizes it through the ordinary resize code, removing
nodes with the formula's `$NodeDeallocationOption` and within the account's core quota.
Histories live in memory: after a restart they start again (formulas see missing samples).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from batchyard.service import autoscale, errors
from batchyard.service.autoscale.variables import RESOURCE_METRICS
from batchyard.service.clock import iso, parse_iso
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import (
    AutoscaleEvaluated,
    NodeForgotten,
    NodeGreeted,
    PoolChanged,
    PoolCreated,
    Tick,
    handles_message,
    reacts_to,
)
from batchyard.service.engine.formulas import Formulas
from batchyard.service.engine.pools import PoolOps
from batchyard.service.engine.records import NodeRecord, PoolRecord
from batchyard.service.errors import BatchError
from batchyard.service.models import defaults, durations

log = logging.getLogger("batchyard.autoscale")

MAX_HISTORY_SECONDS = 24 * 3600.0  # a day of samples per metric and pool
AGENT_REPORT_MAX = 5.0  # agents report at least this often (seconds), whatever the sample period
_COUNTERS = ("rb", "wb", "rops", "wops", "nin", "nout")
_COUNTER_METRICS = dict(
    zip(
        _COUNTERS,
        ("$DiskReadBytes", "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes"),
        strict=True,
    )
)


@dataclass
class NodeReport:
    received: float  # monotonic: immune to the adjustable clock's jumps
    values: dict[str, float]
    counted: dict[str, float] | None = None  # counters at the previous sample, for per-sample deltas


class AutoscaleOps(Concern):
    def __init__(self, core: EngineCore, pool_ops: PoolOps, formulas: Formulas) -> None:
        super().__init__(core)
        self.pool_ops = pool_ops
        self.formulas = formulas
        self.histories: dict[str, dict[str, autoscale.MetricHistory]] = {}
        self.node_reports: dict[str, NodeReport] = {}
        self._next_sample = 0.0

    # --- the API's operations -------------------------------------------------------------------

    @reacts_to(PoolCreated)
    def _start_autoscale_of_new_pool(self, event: PoolCreated) -> None:
        pool = event.pool
        if pool.doc.get("enableAutoScale"):
            now = self.core.now()
            self._run(pool, now)
            pool.private.autoscale_next = iso(now + self._interval(pool))
            pool.private.autoscale_enabled_at = iso(now)
            self.core.save_pool(pool)

    def enable_autoscale(self, pool: PoolRecord, spec: dict[str, Any]) -> None:
        """Enable autoscale: a formula is required to turn it on; once on, either or both may change."""
        self._not_deleting(pool)
        formula = spec.get("autoScaleFormula")
        interval = spec.get("autoScaleEvaluationInterval")
        enabled = bool(pool.doc.get("enableAutoScale"))
        if not enabled and not formula:
            raise errors.missing_property("autoScaleFormula")
        if enabled and formula is None and interval is None:
            raise errors.missing_property("autoScaleFormula")
        if not enabled and pool.doc["allocationState"] != "steady":
            raise errors.conflict(
                "PoolBeingResized", "Automatic scaling cannot be enabled while a resize operation is in progress."
            )
        now = self.core.now()
        last = pool.private.autoscale_enabled_at
        cooldown = min(30.0, self.settings.autoscale.min_interval / 10)
        if last and now - parse_iso(last) < timedelta(seconds=cooldown):
            raise errors.conflict(
                "TooManyEnableAutoScaleRequests",
                f"Enable AutoScale requests for the same pool must be separated by at least {cooldown:g} seconds.",
            )
        if formula is not None:
            self.formulas.check(formula)
            pool.doc["autoScaleFormula"] = formula
        pool.doc["enableAutoScale"] = True
        if interval is not None:
            pool.doc["autoScaleEvaluationInterval"] = interval
        pool.doc.setdefault("autoScaleEvaluationInterval", defaults.AUTOSCALE_INTERVAL)
        pool.private.autoscale_enabled_at = iso(now)
        self._run(pool, now)
        if not enabled or interval is not None or pool.private.autoscale_next is None:
            pool.private.autoscale_next = iso(now + self._interval(pool))  # a new schedule starts now
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)
        self.core.emit(PoolChanged(pool, now))

    def disable_autoscale(self, pool: PoolRecord) -> None:
        self._not_deleting(pool)
        now = self.core.now()
        pool.doc["enableAutoScale"] = False
        for key in ("autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun"):
            pool.doc.pop(key, None)
        pool.private.autoscale_next = pool.private.autoscale_enabled_at = None
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)
        self.core.emit(PoolChanged(pool, now))

    def evaluate_autoscale(self, pool: PoolRecord, formula: str) -> dict[str, Any]:
        """A dry run (the contract: only on a pool with autoscale enabled); nothing changes."""
        if not pool.doc.get("enableAutoScale"):
            raise errors.conflict(
                "AutoScalingNotEnabled", "The specified pool does not have automatic scaling enabled."
            )
        now = self.core.now()
        return run_document(self.debug_evaluate(pool, formula, now), now)

    def debug_evaluate(self, pool: PoolRecord, formula: str, now: datetime | None = None) -> autoscale.Evaluation:
        """Evaluate against the pool's live samples, autoscale enabled or not (the debugging endpoint)."""
        program = self.formulas.check(formula)
        return autoscale.evaluate(program, self.formula_context(pool, now or self.core.now()))

    def formula_context(self, pool: PoolRecord, now: datetime) -> autoscale.Context:
        nodes = [self.nodes[node_id] for node_id in pool.node_ids if node_id in self.nodes]
        current = {
            "$CurrentDedicatedNodes": float(pool.doc.get("currentDedicatedNodes", len(nodes))),
            "$CurrentLowPriorityNodes": float(pool.doc.get("currentLowPriorityNodes", 0)),
            "$TaskSlotsPerNode": float(pool.slots_per_node),
            "$UsableNodeCount": float(sum(1 for node in nodes if node.doc["state"] in ("idle", "running"))),
            "$PreemptedNodeCount": float(sum(1 for node in nodes if node.doc["state"] == "preempted")),
        }
        timing = self.settings.autoscale
        return autoscale.Context(
            now=now,
            target_dedicated=float(pool.doc.get("targetDedicatedNodes", 0)),
            target_low_priority=float(pool.doc.get("targetLowPriorityNodes", 0)),
            current=current,
            histories=self.histories.get(pool.key, {}),
            period=timing.sample_period,
            delay=timing.delay,
        )

    # --- periodic runs ----------------------------------------------------------------------------

    @reacts_to(Tick)
    def _evaluate_autoscale_when_due(self, event: Tick) -> None:
        now = self.core.now()
        self._sample_if_due(now)
        for pool in list(self.pools.values()):
            if not pool.doc.get("enableAutoScale") or pool.doc["state"] != "active":
                continue
            due = parse_iso(pool.private.autoscale_next) if pool.private.autoscale_next else now
            if now < due:
                continue
            try:
                self._run(pool, now)
            except Exception:  # one pool's failure must not stop the others' runs
                log.exception("autoscale run of pool %s failed", pool.doc["id"])
            interval = self._interval(pool)
            missed = max(1, math.ceil((now - due) / interval)) if now > due else 1
            pool.private.autoscale_next = iso(due + missed * interval)
            self.core.save_pool(pool)

    def _run(self, pool: PoolRecord, now: datetime) -> None:
        try:
            program = self.formulas.check(pool.doc["autoScaleFormula"])
        except BatchError as exc:  # a stored formula that no longer parses (should not happen)
            pool.doc["autoScaleRun"] = {
                "timestamp": iso(now),
                "error": {"code": exc.code, "message": exc.message, "values": _pairs(exc.values)},
            }
            self.core.emit(AutoscaleEvaluated(pool, False, now))
            return
        result = autoscale.evaluate(program, self.formula_context(pool, now))
        pool.doc["autoScaleRun"] = run_document(result, now)
        self.core.emit(AutoscaleEvaluated(pool, result.ok, now))
        if result.ok and pool.doc["allocationState"] != "stopping":
            self._apply(pool, result, now)
        self.core.stamp(pool.doc, now)
        self.core.save_pool(pool)

    def _apply(self, pool: PoolRecord, result: autoscale.Evaluation, now: datetime) -> None:
        doc = pool.doc
        changed = (
            doc.get("targetDedicatedNodes") != result.target_dedicated
            or doc.get("targetLowPriorityNodes") != result.target_low_priority
        )
        doc["targetDedicatedNodes"] = result.target_dedicated
        doc["targetLowPriorityNodes"] = result.target_low_priority
        pool.private.deallocation_option = result.dealloc
        staying = sum(1 for node_id in pool.node_ids if self.nodes[node_id].private.leaving is None)
        if changed or staying != result.target_dedicated + result.target_low_priority:
            self.pool_ops.begin_resize(pool, now)

    def _interval(self, pool: PoolRecord) -> timedelta:
        text = pool.doc.get("autoScaleEvaluationInterval") or defaults.AUTOSCALE_INTERVAL
        seconds = durations.duration_seconds(text)
        assert seconds is not None, "the contract bounds the interval (5 minutes to 168 hours)"
        return timedelta(seconds=seconds)

    def _not_deleting(self, pool: PoolRecord) -> None:
        if pool.doc["state"] == "deleting":
            raise errors.conflict(
                "PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed."
            )

    # --- samples --------------------------------------------------------------------------------

    def _sample_if_due(self, now: datetime) -> None:
        period = self.settings.autoscale.sample_period
        t = now.timestamp()
        if t < self._next_sample:
            return
        slot = math.floor(t / period) * period
        self._next_sample = slot + period
        for key in [key for key in self.histories if key not in self.pools]:
            del self.histories[key]
        for pool in self.pools.values():
            if pool.doc["state"] == "active":
                self.record_sample(pool, slot)

    def record_sample(self, pool: PoolRecord, when: float) -> None:
        size = max(2, int(MAX_HISTORY_SECONDS / self.settings.autoscale.sample_period))
        histories = self.histories.setdefault(pool.key, {})
        for name, value in self.pool_metrics(pool).items():
            history = histories.get(name)
            if history is None:
                history = histories[name] = autoscale.MetricHistory(size)
            history.record(when, value)

    def pool_metrics(self, pool: PoolRecord) -> dict[str, float]:
        """One sample of every metric that has a value now (resource metrics only while nodes report)."""
        jobs = [self.jobs[key] for key in self.pool_jobs.get(pool.key, ()) if key in self.jobs]
        waiting = sum(len(getattr(job, "dependent_slots", ())) for job in jobs if job.doc["state"] == "active")
        active = max(0, sum(job.counts["active"] for job in jobs if job.doc["state"] == "active") - waiting)
        running = sum(job.counts["running"] + job.counts["preparing"] for job in jobs)
        nodes = [self.nodes[node_id] for node_id in pool.node_ids if node_id in self.nodes]
        values = {
            "$ActiveTasks": float(active),
            "$RunningTasks": float(running),
            "$PendingTasks": float(active + running),
            "$SucceededTasks": float(sum(job.succeeded for job in jobs)),
            "$FailedTasks": float(sum(job.failed for job in jobs)),
            "$CurrentDedicatedNodes": float(pool.doc.get("currentDedicatedNodes", len(nodes))),
            "$CurrentLowPriorityNodes": float(pool.doc.get("currentLowPriorityNodes", 0)),
            "$TaskSlotsPerNode": float(pool.slots_per_node),
            "$UsableNodeCount": float(sum(1 for node in nodes if node.doc["state"] in ("idle", "running"))),
            "$PreemptedNodeCount": float(sum(1 for node in nodes if node.doc["state"] == "preempted")),
        }
        fresh_for = 3 * self.agent_report_interval()
        mono = time.monotonic()
        reports = [
            report
            for node in nodes
            if (report := self.node_reports.get(node.id)) is not None and mono - report.received <= fresh_for
        ]
        values["$SampleNodeCount"] = float(len(reports))
        if reports:
            values.update(self._resource_sample(reports))
        return values

    def _resource_sample(self, reports: list[NodeReport]) -> dict[str, float]:
        count = len(reports)
        out = {
            "$CPUPercent": sum(r.values.get("cpu", 0.0) for r in reports) / count,
            "$MemoryBytes": sum(r.values.get("mem", 0.0) for r in reports) / count / 2**20,  # megabytes
            "$DiskBytes": sum(r.values.get("disk", 0.0) for r in reports) / count / 2**30,  # gigabytes
            "$WallClockSeconds": count * self.settings.autoscale.sample_period,
        }
        for counter, metric in _COUNTER_METRICS.items():
            total = 0.0
            for report in reports:
                value = report.values.get(counter, 0.0)
                before = (report.counted or {}).get(counter, value)
                total += max(0.0, value - before)  # counters can reset when an agent restarts
            out[metric] = total
        for report in reports:
            report.counted = {counter: report.values.get(counter, 0.0) for counter in _COUNTERS}
        assert set(out) <= set(RESOURCE_METRICS)
        return out

    # --- agents ---------------------------------------------------------------------------------

    def agent_report_interval(self) -> float:
        return min(self.settings.autoscale.sample_period, AGENT_REPORT_MAX)

    @handles_message("metrics")
    def _metrics_message(self, node: NodeRecord, message: dict[str, Any]) -> None:
        self._on_metrics(node.id, message)

    def _on_metrics(self, node_id: str, message: dict[str, Any]) -> None:
        values = {
            key: float(value)
            for key, value in message.items()
            if key in ("cpu", "mem", "disk", *_COUNTERS) and isinstance(value, int | float) and math.isfinite(value)
        }
        previous = self.node_reports.get(node_id)
        self.node_reports[node_id] = NodeReport(time.monotonic(), values, previous.counted if previous else None)

    @reacts_to(NodeGreeted)
    def _ask_for_samples(self, event: NodeGreeted) -> None:
        if event.node.session is not None:  # how often the agent reports its resource use
            event.node.session.send({"t": "sample", "every": self.agent_report_interval()})

    @reacts_to(NodeForgotten)
    def _forget_reports(self, event: NodeForgotten) -> None:
        self.node_reports.pop(event.node.id, None)


def run_document(result: autoscale.Evaluation, now: datetime) -> dict[str, Any]:
    """The contract's AutoScaleRun: timestamp, results (also the values reached before a failure), error."""
    run: dict[str, Any] = {"timestamp": iso(now)}
    if result.variables:
        run["results"] = result.results
    if result.error is not None:
        error = result.error
        values = [{"name": "Message", "value": error.message}]
        if error.statement:
            values.append({"name": "Statement", "value": str(error.statement)})
        run["error"] = {"code": error.code, "message": error.headline, "values": values}
    return run


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": key, "value": value} for key, value in values.items()]
