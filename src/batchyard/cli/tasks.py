"""`batchyard task ...`: az batch task's commands (create one or many, list, show, delete, reactivate, stop)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from batchyard.cli.client import call
from batchyard.cli.commands import (
    Command,
    Done,
    UsageError,
    add_json_file,
    add_list_options,
    add_show_options,
    compact,
    listing,
    load_json,
    require,
    seg,
    show_query,
)
from batchyard.cli.output import Answer, Column

COLUMNS = (
    Column("Id", "id"),
    Column("State", "state"),
    Column("Exit", "executionInfo.exitCode"),
    Column("Node", "nodeInfo.nodeId"),
    Column("Command line", "commandLine"),
)
COLLECTION_COLUMNS = (Column("Id", "taskId"), Column("Status", "status"), Column("Error", "error.code"))
_COLLECTION_LIMIT = 100  # tasks in one addtaskcollection request


def _job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job-id", required=True, help="the job's id")


def _task_ids(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    parser.add_argument("--task-id", required=True, help="the task's id")


def _create_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    add_json_file(parser, "task (a TaskAddParameter), or a list of them (added 100 at a time)")
    parser.add_argument("--task-id", help="the new task's id")
    parser.add_argument("--command-line", help="what the task runs")
    parser.add_argument("--max-task-retry-count", type=int, help="retries after a failure (-1: no limit)")
    parser.add_argument("--max-wall-clock-time", help="ISO 8601 duration the task may run (e.g. PT10M)")
    parser.add_argument("--environment-settings", nargs="*", metavar="NAME=VALUE", help="environment variables")
    parser.add_argument("--required-slots", type=int, help="scheduling slots the task takes on its node")


def _create(args: argparse.Namespace) -> Any:
    job = seg(args.job_id)
    if args.json_file:
        body = load_json(args.json_file)
        if isinstance(body, dict) and isinstance(body.get("value"), list):
            body = body["value"]  # a TaskAddCollectionParameter
        if isinstance(body, list):
            return Answer(_add_collection(args, job, body), COLLECTION_COLUMNS)
    else:
        require(args, "task_id", "command_line")
        pairs = args.environment_settings or []
        if any("=" not in pair for pair in pairs):
            raise UsageError("--environment-settings takes NAME=VALUE pairs")
        constraints = compact(
            {"maxTaskRetryCount": args.max_task_retry_count, "maxWallClockTime": args.max_wall_clock_time}
        )
        body = compact(
            {
                "id": args.task_id,
                "commandLine": args.command_line,
                "constraints": constraints or None,
                "environmentSettings": [dict(zip(("name", "value"), p.split("=", 1), strict=True)) for p in pairs]
                or None,
                "requiredSlots": args.required_slots,
            }
        )
    call(args, "POST", f"/jobs/{job}/tasks", body)
    return call(args, "GET", f"/jobs/{job}/tasks/{seg(str(body.get('id')))}")


def _add_collection(args: argparse.Namespace, job: str, tasks: list[Any]) -> list[dict[str, Any]]:
    """Many tasks at once; the per-task results (a task the service refused says why)."""
    results: list[dict[str, Any]] = []
    for start in range(0, len(tasks), _COLLECTION_LIMIT):
        chunk = tasks[start : start + _COLLECTION_LIMIT]
        results += call(args, "POST", f"/jobs/{job}/addtaskcollection", {"value": chunk})["value"]
    return results


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    add_list_options(parser, expand=True)


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    _task_ids(parser)
    add_show_options(parser, expand=True)


def _path(args: argparse.Namespace) -> str:
    return f"/jobs/{seg(args.job_id)}/tasks/{seg(args.task_id)}"


def _action(verb: str, suffix: str | None, method: str = "POST") -> Callable[[argparse.Namespace], Done]:
    def run(args: argparse.Namespace) -> Done:
        call(args, method, _path(args) + (f"/{suffix}" if suffix else ""))
        return Done(f"{verb} task {args.task_id} of job {args.job_id}")

    return run


SUBTASK_COLUMNS = (
    Column("Id", "id"),
    Column("State", "state"),
    Column("Exit", "exitCode"),
    Column("Node", "nodeInfo.nodeId"),
)

COMMANDS = (
    Command(
        ("task", "create"),
        "add a task from options, or one or many from --json-file",
        _create,
        _create_arguments,
        COLUMNS,
    ),
    Command(
        ("task", "list"),
        "a job's tasks",
        lambda a: listing(a, f"/jobs/{seg(a.job_id)}/tasks"),
        _list_arguments,
        COLUMNS,
        "table",
    ),
    Command(
        ("task", "show"),
        "one task",
        lambda a: call(a, "GET", _path(a), query=show_query(a)),
        _show_arguments,
        COLUMNS,
    ),
    Command(("task", "delete"), "delete a task", _action("Deleting", None, "DELETE"), _task_ids),
    Command(("task", "stop"), "terminate a task", _action("Terminating", "terminate"), _task_ids),
    Command(("task", "reactivate"), "run a failed task again", _action("Reactivating", "reactivate"), _task_ids),
    Command(
        ("task", "subtask", "list"),
        "a multi-instance task's subtasks",
        lambda a: call(a, "GET", _path(a) + "/subtasksinfo").get("value", []),
        _task_ids,
        SUBTASK_COLUMNS,
        "table",
    ),
)
