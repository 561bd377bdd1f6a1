"""`batchyard job ...` and `batchyard job-schedule ...`: az batch job's and job-schedule's commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from batchyard.cli.client import call
from batchyard.cli.commands import (
    Command,
    Done,
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
from batchyard.cli.output import Column
from batchyard.cli.pools import metadata

COLUMNS = (
    Column("Id", "id"),
    Column("State", "state"),
    Column("Pool", "poolInfo.poolId"),
    Column("Priority", "priority"),
    Column("Created", "creationTime"),
)
SCHEDULE_COLUMNS = (
    Column("Id", "id"),
    Column("State", "state"),
    Column("Recurrence", "schedule.recurrenceInterval"),
    Column("Pool", "jobSpecification.poolInfo.poolId"),
    Column("Recent job", "executionInfo.recentJob.id"),
)
TASK_COUNT_COLUMNS = (
    Column("Active", "taskCounts.active"),
    Column("Running", "taskCounts.running"),
    Column("Completed", "taskCounts.completed"),
    Column("Succeeded", "taskCounts.succeeded"),
    Column("Failed", "taskCounts.failed"),
)


def _job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job-id", required=True, help="the job's id")


def _schedule_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job-schedule-id", required=True, help="the job schedule's id")


def _job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool-id", help="the pool its tasks run on")
    parser.add_argument("--priority", type=int, help="-1000 (lowest) to 1000 (highest)")
    parser.add_argument("--max-task-retry-count", type=int, help="retries of a failed task (-1: no limit)")
    parser.add_argument(
        "--on-all-tasks-complete",
        choices=("noaction", "terminatejob"),
        help="what happens when every task is complete",
    )
    parser.add_argument("--metadata", nargs="*", metavar="KEY=VALUE", help="name=value pairs kept with the job")


def _job_body(args: argparse.Namespace) -> dict[str, Any]:
    retries = args.max_task_retry_count
    return compact(
        {
            "poolInfo": {"poolId": args.pool_id} if args.pool_id else None,
            "priority": args.priority,
            "constraints": {"maxTaskRetryCount": retries} if retries is not None else None,
            "onAllTasksComplete": args.on_all_tasks_complete,
            "metadata": metadata(args.metadata),
        }
    )


def _create_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_file(parser, "job (a JobAddParameter)")
    parser.add_argument("--id", help="the new job's id")
    _job_options(parser)


def _create(args: argparse.Namespace) -> Any:
    if args.json_file:
        body = load_json(args.json_file)
    else:
        require(args, "id", "pool_id")
        body = {"id": args.id, **_job_body(args)}
    call(args, "POST", "/jobs", body)
    return call(args, "GET", f"/jobs/{seg(str(body.get('id')))}")


def _set_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    add_json_file(parser, "changes (a JobPatchParameter)")
    _job_options(parser)


def _set(args: argparse.Namespace) -> Any:
    body = load_json(args.json_file) if args.json_file else _job_body(args)
    call(args, "PATCH", f"/jobs/{seg(args.job_id)}", body)
    return call(args, "GET", f"/jobs/{seg(args.job_id)}")


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job-schedule-id", help="only the jobs this job schedule made")
    add_list_options(parser, expand=True)


def _list(args: argparse.Namespace) -> Any:
    if args.job_schedule_id:
        return listing(args, f"/jobschedules/{seg(args.job_schedule_id)}/jobs")
    return listing(args, "/jobs")


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    add_show_options(parser, expand=True)


def _disable_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    parser.add_argument(
        "--disable-tasks",
        choices=("requeue", "terminate", "wait"),
        default="requeue",
        help="what happens to its running tasks (default: requeue)",
    )


def _disable(args: argparse.Namespace) -> Done:
    call(args, "POST", f"/jobs/{seg(args.job_id)}/disable", {"disableTasks": args.disable_tasks})
    return Done(f"Disabling job {args.job_id} (running tasks: {args.disable_tasks})")


def _stop_arguments(parser: argparse.ArgumentParser) -> None:
    _job_id(parser)
    parser.add_argument("--terminate-reason", help="the job's terminateReason (default: UserTerminate)")


def _stop(args: argparse.Namespace) -> Done:
    body = compact({"terminateReason": args.terminate_reason})
    call(args, "POST", f"/jobs/{seg(args.job_id)}/terminate", body)
    return Done(f"Terminating job {args.job_id}")


def _simple(verb: str, suffix: str | None, method: str = "POST") -> Callable[[argparse.Namespace], Done]:
    def run(args: argparse.Namespace) -> Done:
        path = f"/jobs/{seg(args.job_id)}" + (f"/{suffix}" if suffix else "")
        call(args, method, path)
        return Done(f"{verb} job {args.job_id}")

    return run


def _schedule_create_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_file(parser, "job schedule (a JobScheduleAddParameter)")
    parser.add_argument("--id", help="the new job schedule's id")
    parser.add_argument("--recurrence-interval", help="ISO 8601 duration between jobs (e.g. PT1H)")
    parser.add_argument("--do-not-run-until", help="the first job's earliest time (ISO 8601)")
    _job_options(parser)


def _schedule_create(args: argparse.Namespace) -> Any:
    if args.json_file:
        body = load_json(args.json_file)
    else:
        require(args, "id", "pool_id")
        schedule = compact({"recurrenceInterval": args.recurrence_interval, "doNotRunUntil": args.do_not_run_until})
        body = {"id": args.id, "schedule": schedule, "jobSpecification": _job_body(args)}
    call(args, "POST", "/jobschedules", body)
    return call(args, "GET", f"/jobschedules/{seg(str(body.get('id')))}")


def _schedule_show_arguments(parser: argparse.ArgumentParser) -> None:
    _schedule_id(parser)
    add_show_options(parser, expand=True)


def _schedule_action(verb: str, suffix: str | None, method: str = "POST") -> Callable[[argparse.Namespace], Done]:
    def run(args: argparse.Namespace) -> Done:
        path = f"/jobschedules/{seg(args.job_schedule_id)}" + (f"/{suffix}" if suffix else "")
        call(args, method, path)
        return Done(f"{verb} job schedule {args.job_schedule_id}")

    return run


COMMANDS = (
    Command(("job", "create"), "create a job from options or --json-file", _create, _create_arguments, COLUMNS),
    Command(("job", "list"), "the account's jobs (or a job schedule's)", _list, _list_arguments, COLUMNS, "table"),
    Command(
        ("job", "show"),
        "one job",
        lambda a: call(a, "GET", f"/jobs/{seg(a.job_id)}", query=show_query(a)),
        _show_arguments,
        COLUMNS,
    ),
    Command(("job", "set"), "change a job (PATCH) from options or --json-file", _set, _set_arguments, COLUMNS),
    Command(("job", "delete"), "delete a job and its tasks", _simple("Deleting", None, "DELETE"), _job_id),
    Command(("job", "disable"), "stop scheduling a job's tasks", _disable, _disable_arguments),
    Command(("job", "enable"), "schedule a disabled job's tasks again", _simple("Enabling", "enable"), _job_id),
    Command(("job", "stop"), "terminate a job", _stop, _stop_arguments),
    Command(
        ("job", "task-counts", "show"),
        "a job's task counts by state",
        lambda a: call(a, "GET", f"/jobs/{seg(a.job_id)}/taskcounts"),
        _job_id,
        TASK_COUNT_COLUMNS,
        "table",
    ),
    Command(
        ("job-schedule", "create"),
        "create a job schedule from options or --json-file",
        _schedule_create,
        _schedule_create_arguments,
        SCHEDULE_COLUMNS,
    ),
    Command(
        ("job-schedule", "list"),
        "the account's job schedules",
        lambda a: listing(a, "/jobschedules"),
        lambda p: add_list_options(p, expand=True),
        SCHEDULE_COLUMNS,
        "table",
    ),
    Command(
        ("job-schedule", "show"),
        "one job schedule",
        lambda a: call(a, "GET", f"/jobschedules/{seg(a.job_schedule_id)}", query=show_query(a)),
        _schedule_show_arguments,
        SCHEDULE_COLUMNS,
    ),
    Command(
        ("job-schedule", "delete"),
        "delete a job schedule and its jobs",
        _schedule_action("Deleting", None, "DELETE"),
        _schedule_id,
    ),
    Command(("job-schedule", "disable"), "stop making jobs", _schedule_action("Disabling", "disable"), _schedule_id),
    Command(("job-schedule", "enable"), "make jobs again", _schedule_action("Enabling", "enable"), _schedule_id),
    Command(
        ("job-schedule", "stop"),
        "terminate a job schedule",
        _schedule_action("Terminating", "terminate"),
        _schedule_id,
    ),
)
