"""Soak: kill -9 a node's agent while its tasks run, many times; count tasks that ran twice.

Each trial is `tests/api/test_lost_agent_runs_once.py`'s: a fresh service, 4 tasks on one node (30 s
on the first run, 1 s on a rerun), the agent killed while they run, every task awaited. The modes
alternate (requeued onto another node after the node is declared lost; a new agent on the same node).
Run from the repository root:

    .venv/bin/python benchmarks/soak_agent_kill.py --trials 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.api.test_lost_agent_runs_once import MODES, TASKS, kill_agent_during_tasks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    modes = list(MODES)
    twice = survivors = bad_results = 0
    started = time.monotonic()
    for trial in range(args.trials):
        mode = modes[trial % len(modes)]
        with tempfile.TemporaryDirectory(prefix="batchyard-soak-") as workdir:
            Path(workdir).chmod(0o711)  # task users (a root service) pass through to the node roots
            outcome = kill_agent_during_tasks(Path(workdir), mode)
        twice += outcome.runs_twice()
        survivors += len(outcome.survivors)
        bad_results += sum(1 for result, _ in outcome.results.values() if result != "success")
        print(f"trial {trial + 1:2d} {mode:22s} ran twice {outcome.runs_twice()} survivors {len(outcome.survivors)}")
    print(
        f"{args.trials} trials, {args.trials * TASKS} tasks in {time.monotonic() - started:.0f} s: "
        f"tasks run twice: {twice}, processes of lost runs surviving: {survivors}, tasks not succeeded: {bad_results}"
    )
    sys.exit(1 if twice or survivors or bad_results else 0)


if __name__ == "__main__":
    main()
