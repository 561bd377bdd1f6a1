"""The engine's sampling of agent reports: averages, unit conversions and per-sample counter deltas."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from batchyard.service.config import AutoscaleTiming
from batchyard.service.engine.autoscale import AutoscaleOps, NodeReport


def sample(reports: list[NodeReport]) -> dict[str, float]:
    engine = SimpleNamespace(settings=SimpleNamespace(autoscale=AutoscaleTiming()))
    return AutoscaleOps._resource_sample(engine, reports)  # type: ignore[arg-type]


def test_resource_samples_average_levels_and_difference_counters() -> None:
    a = NodeReport(0.0, {"cpu": 20.0, "mem": 2 * 2**20, "disk": 3 * 2**30, "rb": 100.0, "nin": 50.0})
    b = NodeReport(0.0, {"cpu": 60.0, "mem": 4 * 2**20, "disk": 1 * 2**30, "rb": 1000.0, "nin": 10.0})
    first = sample([a, b])
    assert first["$CPUPercent"] == 40.0
    assert first["$MemoryBytes"] == 3.0  # megabytes, as the seed documents
    assert first["$DiskBytes"] == 2.0  # gigabytes
    assert first["$WallClockSeconds"] == 60.0  # two nodes for one 30 s period
    assert first["$DiskReadBytes"] == 0.0 and first["$NetworkInBytes"] == 0.0  # no earlier sample to compare
    a.values.update(rb=150.0, nin=80.0)
    b.values.update(rb=1100.0, nin=5.0)  # a counter that went back (agent restart) counts as 0
    second = sample([a, b])
    assert second["$DiskReadBytes"] == 150.0
    assert second["$NetworkInBytes"] == 30.0
    assert second["$DiskWriteOps"] == 0.0


def test_the_development_timings() -> None:
    assert AutoscaleTiming().delay == 60.0
    assert AutoscaleTiming(sample_period=0.5).delay == 1.0
    assert AutoscaleTiming(sample_period=0.5, sample_delay=0.0).delay == pytest.approx(0.0)
