"""Resource use of the node's host, reported to the service for autoscale formulas ($CPUPercent, ...).

The agent sends `{"t": "metrics", cpu, mem, disk, rb, wb, rops, wops, nin, nout}` every few seconds
(the service says how often with `{"t": "sample", "every": seconds}`): CPU percent since the last
report, memory and disk (the node's root file system) in use in bytes, and the host's cumulative
disk and network counters, of which the service takes per-sample differences.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger("batchyard.agent.metrics")

DEFAULT_EVERY = 5.0


def read_metrics(root: Path) -> dict[str, Any]:
    values: dict[str, Any] = {"t": "metrics", "cpu": psutil.cpu_percent(interval=None)}
    values["mem"] = psutil.virtual_memory().used
    try:
        values["disk"] = psutil.disk_usage(str(root)).used
    except OSError:
        pass
    disk = psutil.disk_io_counters()
    if disk is not None:
        values.update(rb=disk.read_bytes, wb=disk.write_bytes, rops=disk.read_count, wops=disk.write_count)
    net = psutil.net_io_counters()
    if net is not None:
        values.update(nin=net.bytes_recv, nout=net.bytes_sent)
    return values


class MetricsReporter:
    def __init__(self, root: Path, send: Callable[[dict[str, Any]], None]) -> None:
        self.root = root
        self.send = send
        self.every = DEFAULT_EVERY

    def configure(self, message: dict[str, Any]) -> None:
        every = message.get("every")
        if isinstance(every, int | float) and every > 0:
            self.every = max(0.2, float(every))

    async def run(self) -> None:
        psutil.cpu_percent(interval=None)  # the first reading only starts the measurement
        while True:
            await asyncio.sleep(self.every)
            try:
                self.send(await asyncio.to_thread(read_metrics, self.root))
            except Exception:  # metrics are best effort; the agent's work goes on
                log.debug("reading metrics failed", exc_info=True)
