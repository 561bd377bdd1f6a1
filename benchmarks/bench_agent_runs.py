"""The node agent's own CPU per run, without the service: `Execution.run()` of `/bin/true` runs, in process.

    .venv/bin/python benchmarks/bench_agent_runs.py --runs 3000 --slots 4
    .venv/bin/python benchmarks/bench_agent_runs.py --profile 25     # cProfile: the 25 costliest functions

Each run goes through what the agent does for a task the service sent (its user, directories, the
environment, the stdout/stderr files, the process started and reaped, the result built), `--slots` at a
time. The figure is this process' CPU (user + system, children excluded) divided by the runs: the
agent's part of `bench_core.py`'s "agent CPU", without the WebSocket messages.

The node root defaults to a directory in /dev/shm: on a filesystem with much recent deletion (ext4
without a journal skips every recently freed inode when it allocates one) creating the four entries of
a run costs the kernel more than everything else here, and varies with what the machine deleted
lately (benchmarks/RESULTS.md, 2026-12-04). `--root-parent` puts it elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from batchyard.agent import node_layout
from batchyard.agent.accounts import UidAllocator
from batchyard.agent.execution import Execution, NodeContext
from batchyard.agent.task_users import TaskUsers

NODE_ID = "bench-node"


def _run_message(index: int) -> dict[str, Any]:
    """A task's run as the service sends it (service/engine/run_builder.py), default identity."""
    return {
        "aid": f"run-{index}",
        "kind": "task",
        "dir": f"workitems/job/job-1/task-{index}",
        "cmd": "/bin/true",
        "env": {},
        "files": [],
        "wall": None,
        "retry": 0,
        "user": {"scope": "pool", "admin": False},
        "job": "job",
        "task": f"task-{index}",
    }


async def _run_all(context: NodeContext, runs: int, slots: int) -> None:
    queue = iter(range(runs))

    async def slot() -> None:
        for index in queue:
            result = await Execution(context, _run_message(index)).run()
            if result["exit"] != 0:
                raise SystemExit(f"run {index} failed: {result}")

    await asyncio.gather(*(slot() for _ in range(slots)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=200, help="runs before the measured ones")
    parser.add_argument("--root-parent", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--profile", type=int, metavar="N", help="print cProfile's N costliest functions")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="batchyard-agent-runs-", dir=args.root_parent))
    os.chmod(root, 0o755)  # task users pass through it when this runs as root
    try:
        node_layout.make(root)
        context = NodeContext(root=root, node_id=NODE_ID, users=TaskUsers(root, UidAllocator(NODE_ID)))
        context.welcome({"pool": "pool", "account": "bench", "osType": "linux"})
        asyncio.run(_run_all(context, args.warmup, args.slots))
        profiler = cProfile.Profile() if args.profile else None
        before, started = os.times(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        asyncio.run(_run_all(context, args.runs, args.slots))
        if profiler is not None:
            profiler.disable()
        after, wall = os.times(), time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    user, system = after.user - before.user, after.system - before.system
    print(
        f"{args.runs} runs, {args.slots} at a time, as uid {os.geteuid()}, root in {root.parent}: "
        f"{args.runs / wall:,.0f} runs/s; agent CPU per run {(user + system) / args.runs * 1e6:,.0f} µs "
        f"(user {user / args.runs * 1e6:,.0f}, system {system / args.runs * 1e6:,.0f})"
        + (" (under cProfile)" if profiler is not None else "")
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
