"""`batchyard job wait` and `batchyard task wait`: wait for tasks to complete, with a live progress bar
of their states (rich, on a terminal's stderr) or a plain line whenever the counts change (not a
terminal). The final counts are the answer (stdout, in the chosen output format). Exit status 0 when
every task succeeded, 4 when one failed, 5 when --timeout passed first.

`job wait` reads the job's task counts (one cheap request, whatever the number of tasks) and ends when
none is active or running; `task wait` reads the named tasks (or all of the job's).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from batchyard.cli.client import call, list_all
from batchyard.cli.commands import EXIT_TASK_FAILED, EXIT_TIMEOUT, Command, WaitFailed, seg
from batchyard.cli.output import Column

STATES = ("active", "running", "succeeded", "failed")
COLUMNS = tuple(Column(state.title(), state) for state in ("total", *STATES))


def _arguments(parser: argparse.ArgumentParser, tasks: bool) -> None:
    parser.add_argument("--job-id", required=True, help="the job's id")
    if tasks:
        parser.add_argument("--task-id", nargs="*", help="the tasks to wait for (default: all of the job's)")
    parser.add_argument("--timeout", type=float, help="give up after this many seconds (exit status 5)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between looks (default: 1)")


def _job_counts(args: argparse.Namespace) -> dict[str, int]:
    counts = call(args, "GET", f"/jobs/{seg(args.job_id)}/taskcounts")["taskCounts"]
    return {state: int(counts.get(state, 0)) for state in STATES}


def _task_counts(args: argparse.Namespace) -> dict[str, int]:
    wanted = set(args.task_id or ())
    missing = set(wanted)
    query = {"$select": "id,state,executionInfo"}
    counts = dict.fromkeys(STATES, 0)
    for task in list_all(args, f"/jobs/{seg(args.job_id)}/tasks", query):
        if wanted and task["id"] not in wanted:
            continue
        missing.discard(task["id"])
        state = task.get("state", "active")
        if state == "completed":
            failed = (task.get("executionInfo") or {}).get("result") == "failure"
            state = "failed" if failed else "succeeded"
        elif state != "running":
            state = "active"  # active or preparing: not yet running
        counts[state] += 1
    if missing:  # a named task the job does not have
        call(args, "GET", f"/jobs/{seg(args.job_id)}/tasks/{seg(sorted(missing)[0])}")  # its TaskNotFound
    return counts


def wait(args: argparse.Namespace, read: Callable[[argparse.Namespace], dict[str, int]]) -> dict[str, int]:
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    show = _Bar(args.job_id) if sys.stderr.isatty() else _Lines(args.job_id)
    try:
        while True:
            counts = read(args)
            show.update(counts)
            if counts["active"] + counts["running"] == 0 and sum(counts.values()) > 0:
                break
            if deadline is not None and time.monotonic() >= deadline:
                answer = {"total": sum(counts.values()), **counts}
                raise WaitFailed(f"--timeout {args.timeout:g} s passed: {_summary(counts)}", EXIT_TIMEOUT, answer)
            time.sleep(args.interval)
    finally:
        show.close()
    answer = {"total": sum(counts.values()), **counts}
    if counts["failed"]:
        raise WaitFailed(f"{counts['failed']} task(s) of job {args.job_id} failed", EXIT_TASK_FAILED, answer)
    return answer


def _summary(counts: dict[str, int]) -> str:
    done = counts["succeeded"] + counts["failed"]
    return f"{done}/{sum(counts.values())} complete (" + ", ".join(f"{s} {counts[s]}" for s in STATES) + ")"


class _Lines:
    """Not a terminal: a line on stderr whenever the counts change."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.last: dict[str, int] | None = None

    def update(self, counts: dict[str, int]) -> None:
        if counts != self.last:
            print(f"job {self.job_id}: {_summary(counts)}", file=sys.stderr, flush=True)
            self.last = counts

    def close(self) -> None:
        pass


class _Bar:
    """A terminal: one rich progress bar of complete tasks, with the state counts beside it."""

    def __init__(self, job_id: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
        )
        self.bar = self.progress.add_task(f"job {job_id}", total=None, states="")
        self.progress.start()

    def update(self, counts: dict[str, int]) -> None:
        states = (
            f"[yellow]active {counts['active']}[/] [blue]running {counts['running']}[/] "
            f"[green]succeeded {counts['succeeded']}[/] [red]failed {counts['failed']}[/]"
        )
        done = counts["succeeded"] + counts["failed"]
        self.progress.update(self.bar, total=sum(counts.values()), completed=done, states=states)

    def close(self) -> None:
        self.progress.stop()


COMMANDS = (
    Command(
        ("job", "wait"),
        "wait until none of a job's tasks is active or running, showing their progress",
        lambda a: wait(a, _job_counts),
        lambda p: _arguments(p, False),
        COLUMNS,
        "table",
    ),
    Command(
        ("task", "wait"),
        "wait until the given tasks (or all of a job's) complete, showing their progress",
        lambda a: wait(a, _task_counts),
        lambda p: _arguments(p, True),
        COLUMNS,
        "table",
    ),
)
