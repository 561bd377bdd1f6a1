"""The service's cost of running a task, counted in CPU instructions: repeatable on a shared, noisy machine.

The run path of a task is what the engine does between its add and its completion: the scheduling round
that places it on a node, the run message to the node's agent, and the agent's result (state changes,
counts, documents stored). It runs in this process with the real engine and store and a fake agent
(tests/engine/world.py: no HTTP, no processes), one node with SLOTS slots, the agent answering each run
message with one batch of results. Each version runs four children under valgrind's callgrind: tasks added
only, and added and run, at two sizes; the run path per task is the added-and-run difference less the
added-only difference, divided by the extra tasks, so start-up and ingest cancel out.

    apt-get install valgrind
    .venv/bin/python benchmarks/bench_run_instructions.py \\
        --python /path/to/before/.venv/bin/python --python .venv/bin/python

With `--profile`, one run of the large size under cProfile prints where the run path's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from callgrind import count_instructions  # benchmarks/callgrind.py (the script's directory is on the path)

SLOTS = 8
TASKS_PER_ADD = 100
ROOT = Path(__file__).resolve().parents[1]


# --- the child: one in-process run ---------------------------------------------------------------


async def run(tasks: int, execute: bool) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))  # the tests' in-process engine (tests/engine/world.py)
    from batchyard.service.models import tasks as task_models
    from tests.engine.world import World, result_of

    data_dir = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        async with World(data_dir) as world:
            (node,) = await world.create_pool("p", nodes=1, slots=SLOTS)
            agent = await world.connect(node)
            world.create_job("j", "p")
            job = world.engine.job_ops.get_job("j")
            for start in range(0, tasks, TASKS_PER_ADD):
                specs = [
                    task_models.parse_task_create({"id": f"t{n}", "commandLine": "/bin/true"})
                    for n in range(start, min(tasks, start + TASKS_PER_ADD))
                ]
                world.unit(world.engine.task_ops.add_tasks, job, specs)
                if not execute:
                    agent.sent.clear()  # what was placed is not answered: only the adds are counted
            completed, seen = 0, 0
            while execute and completed < tasks:
                fresh = agent.sent[seen:]
                seen = len(agent.sent)
                runs = [r for message in fresh if message["t"] == "run" for r in message["runs"] if r["kind"] == "task"]
                if runs:
                    agent.say({"t": "done", "results": [result_of(r) for r in runs]})
                    completed += len(runs)
                else:
                    await asyncio.sleep(0)  # the kicked scheduling round
            counts = world.engine.jobs["j"].counts
            if execute and counts["completed"] != tasks:
                raise RuntimeError(f"only {counts['completed']} of {tasks} tasks completed")
            return {"tasks": tasks, "completed": counts["completed"]}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


# --- the parent: runs children under callgrind and compares ------------------------------------------


def run_path_per_task(python: str, small: int, large: int) -> float:
    def counted(tasks: int, mode: str) -> int:
        return count_instructions(python, __file__, "--child", str(tasks), "--mode", mode)

    executed = counted(large, "run") - counted(small, "run")
    added = counted(large, "add") - counted(small, "add")
    return (executed - added) / (large - small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", action="append", help="a version's interpreter (repeatable; default: this one)")
    parser.add_argument("--small", type=int, default=400, help="tasks in the runs whose cost is subtracted")
    parser.add_argument("--large", type=int, default=1600, help="tasks in the measured runs")
    parser.add_argument("--profile", action="store_true", help="profile one large run in this process instead")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("add", "run"), default="run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(run(args.child, args.mode == "run"))))
        return
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(asyncio.run, run(args.large, True))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(45)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    first: float | None = None
    for python in args.python or [sys.executable]:
        per_task = run_path_per_task(python, args.small, args.large)
        ratio = "" if first is None else f"  ({per_task / first:.3f} × the first)"
        first = first or per_task
        print(f"{python}: {per_task:,.0f} instructions per task run (placed, run, completed){ratio}", flush=True)


if __name__ == "__main__":
    main()
