"""`batchyard task tail`: the end of a task's stdout (or another of its files); with -f, follow it while
the task runs (what the file gains is read with `ocp-range`, as Batch Explorer does) and stop once the
task has completed and all its output is shown."""

from __future__ import annotations

import argparse
import sys
import time
from urllib.parse import quote

from batchyard.cli.client import CommandError, call, open_request
from batchyard.cli.commands import Command, Done, seg

_NOT_YET = {"TaskFileNotFound", "FileNotFound", "NodeNotFound", "TaskNotStarted", "OperationInvalidForCurrentState"}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job-id", required=True, help="the job's id")
    parser.add_argument("--task-id", required=True, help="the task's id")
    parser.add_argument("--file-path", default="stdout.txt", help="the file (default: stdout.txt)")
    parser.add_argument("-n", "--lines", type=int, default=10, help="the last lines shown first (default: 10)")
    parser.add_argument("-f", "--follow", action="store_true", help="follow the file until the task completes")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between looks when following")


def _read_from(args: argparse.Namespace, path: str, start: int) -> bytes | None:
    """The file's bytes from `start` on (b"" when it has no more), or None while it does not exist yet."""
    try:
        with open_request(args, "GET", path, headers={"ocp-range": f"bytes={start}-"}) as response:
            return response.read()
    except CommandError as exc:
        code = exc.body.get("code") if isinstance(exc.body, dict) else None
        if exc.status == 416:
            return b""
        if code in _NOT_YET or (exc.status == 404 and code not in ("TaskNotFound", "JobNotFound")):
            return None
        raise


def _last_lines(data: bytes, count: int) -> bytes:
    if count <= 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])


def tail(args: argparse.Namespace) -> Done | None:
    task_path = f"/jobs/{seg(args.job_id)}/tasks/{seg(args.task_id)}"
    path = f"{task_path}/files/{quote(args.file_path)}"
    out = sys.stdout.buffer
    position = 0
    first = True
    while True:
        # the state first: output read after seeing "completed" is the whole of it
        state = call(args, "GET", task_path, query={"$select": "state,executionInfo"}) if args.follow else {}
        data = _read_from(args, path, position)
        if data is None and not args.follow:
            call(args, "GET", path)  # its error, as the service words it
        if data:
            out.write(_last_lines(data, args.lines) if first else data)
            out.flush()
            position += len(data)
        first = first and data is None
        if not args.follow:
            return None
        if state.get("state") == "completed":
            exit_code = (state.get("executionInfo") or {}).get("exitCode")
            print(f"batchyard: task {args.task_id} completed (exit code {exit_code})", file=sys.stderr)
            return None
        time.sleep(args.interval)


COMMANDS = (
    Command(
        ("task", "tail"),
        "show the end of a task's stdout; -f follows it while the task runs",
        tail,
        _arguments,
    ),
)
