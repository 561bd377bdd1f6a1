"""`batchyard pool ...`: az batch pool's commands (create, list, show, delete, set, resize, autoscale)."""

from __future__ import annotations

import argparse
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
from batchyard.cli.output import Column

COLUMNS = (
    Column("Id", "id"),
    Column("State", "state"),
    Column("Alloc", "allocationState"),
    Column("VM Size", "vmSize"),
    Column("Nodes", "join('/', [to_string(currentDedicatedNodes), to_string(targetDedicatedNodes)])"),
    Column("Spot", "join('/', [to_string(currentLowPriorityNodes), to_string(targetLowPriorityNodes)])"),
    Column("Auto", "enableAutoScale"),
)
DEFAULT_IMAGE = "canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest"
DEFAULT_AGENT_SKU = "batch.node.ubuntu 22.04"


def _pool_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool-id", required=True, help="the pool's id")


def _create_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_file(parser, "pool (a PoolAddParameter)")
    parser.add_argument("--id", help="the new pool's id")
    parser.add_argument("--vm-size", default="standard_d2s_v3", help="the nodes' VM size (default: standard_d2s_v3)")
    parser.add_argument("--target-dedicated-nodes", type=int, help="dedicated nodes wanted")
    parser.add_argument("--target-low-priority-nodes", type=int, help="Spot/low-priority nodes wanted")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="publisher:offer:sku[:version] of the nodes' image")
    parser.add_argument("--node-agent-sku-id", default=DEFAULT_AGENT_SKU, help="the node agent SKU of that image")
    parser.add_argument("--task-slots-per-node", type=int, help="tasks (slots) one node runs at once")
    parser.add_argument("--start-task-command-line", help="a start task every node runs when it joins")
    parser.add_argument("--auto-scale-formula", help="scale by this formula (instead of target node counts)")
    parser.add_argument("--enable-inter-node-communication", action="store_true", help="for multi-instance tasks")
    parser.add_argument("--metadata", nargs="*", metavar="KEY=VALUE", help="name=value pairs kept with the pool")


def _create(args: argparse.Namespace) -> Any:
    if args.json_file:
        body = load_json(args.json_file)
    else:
        require(args, "id")
        parts = args.image.split(":")
        if len(parts) not in (3, 4):
            raise UsageError(f"--image {args.image!r}: publisher:offer:sku[:version] expected")
        image = dict(zip(("publisher", "offer", "sku", "version"), parts, strict=False))
        body = compact(
            {
                "id": args.id,
                "vmSize": args.vm_size,
                "virtualMachineConfiguration": {"imageReference": image, "nodeAgentSKUId": args.node_agent_sku_id},
                "targetDedicatedNodes": args.target_dedicated_nodes,
                "targetLowPriorityNodes": args.target_low_priority_nodes,
                "taskSlotsPerNode": args.task_slots_per_node,
                "enableAutoScale": True if args.auto_scale_formula else None,
                "autoScaleFormula": args.auto_scale_formula,
                "enableInterNodeCommunication": args.enable_inter_node_communication or None,
                "startTask": {"commandLine": args.start_task_command_line} if args.start_task_command_line else None,
                "metadata": metadata(args.metadata),
            }
        )
    call(args, "POST", "/pools", body)
    return call(args, "GET", f"/pools/{seg(str(body.get('id')))}")


def metadata(pairs: list[str] | None) -> list[dict[str, str]] | None:
    if pairs is None:
        return None
    if any("=" not in pair for pair in pairs):
        raise UsageError("--metadata takes KEY=VALUE pairs")
    return [{"name": k, "value": v} for k, v in (pair.split("=", 1) for pair in pairs)]


def _resize_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    parser.add_argument("--target-dedicated-nodes", type=int, help="dedicated nodes wanted")
    parser.add_argument("--target-low-priority-nodes", type=int, help="Spot/low-priority nodes wanted")
    parser.add_argument("--resize-timeout", help="ISO 8601 duration the resize may take (e.g. PT15M)")
    parser.add_argument(
        "--node-deallocation-option",
        choices=("requeue", "terminate", "taskcompletion", "retaineddata"),
        help="what happens to running tasks of the nodes a shrink removes",
    )
    parser.add_argument("--abort", action="store_true", help="stop the resize in progress instead")


def _resize(args: argparse.Namespace) -> Done:
    pool = seg(args.pool_id)
    if args.abort:
        call(args, "POST", f"/pools/{pool}/stopresize")
        return Done(f"Stopping the resize of pool {args.pool_id}")
    if args.target_dedicated_nodes is None and args.target_low_priority_nodes is None:
        raise UsageError("--target-dedicated-nodes or --target-low-priority-nodes required (or --abort)")
    body = compact(
        {
            "targetDedicatedNodes": args.target_dedicated_nodes,
            "targetLowPriorityNodes": args.target_low_priority_nodes,
            "resizeTimeout": args.resize_timeout,
            "nodeDeallocationOption": args.node_deallocation_option,
        }
    )
    call(args, "POST", f"/pools/{pool}/resize", body)
    wanted = [f"{args.target_dedicated_nodes} dedicated"] if args.target_dedicated_nodes is not None else []
    if args.target_low_priority_nodes is not None:
        wanted.append(f"{args.target_low_priority_nodes} Spot/low-priority")
    return Done(f"Resizing pool {args.pool_id} to {' and '.join(wanted)} nodes")


def _set_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    add_json_file(parser, "changes (a PoolPatchParameter)")
    parser.add_argument("--start-task-command-line", help="a new start task command line")
    parser.add_argument("--metadata", nargs="*", metavar="KEY=VALUE", help="replace the pool's metadata")


def _set(args: argparse.Namespace) -> Any:
    if args.json_file:
        body = load_json(args.json_file)
    else:
        start = {"commandLine": args.start_task_command_line} if args.start_task_command_line else None
        body = compact({"startTask": start, "metadata": metadata(args.metadata)})
        if not body:
            raise UsageError("nothing to change: give --json-file, --start-task-command-line or --metadata")
    call(args, "PATCH", f"/pools/{seg(args.pool_id)}", body)
    return call(args, "GET", f"/pools/{seg(args.pool_id)}")


def _enable_autoscale_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    parser.add_argument("--auto-scale-formula", required=True, help="the formula")
    parser.add_argument("--auto-scale-evaluation-interval", help="ISO 8601 duration between evaluations (PT5M)")


def _enable_autoscale(args: argparse.Namespace) -> Done:
    interval = args.auto_scale_evaluation_interval
    body = compact({"autoScaleFormula": args.auto_scale_formula, "autoScaleEvaluationInterval": interval})
    call(args, "POST", f"/pools/{seg(args.pool_id)}/enableautoscale", body)
    return Done(f"Autoscale enabled on pool {args.pool_id}")


def _disable_autoscale(args: argparse.Namespace) -> Done:
    call(args, "POST", f"/pools/{seg(args.pool_id)}/disableautoscale")
    return Done(f"Autoscale disabled on pool {args.pool_id}")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    parser.add_argument("--auto-scale-formula", required=True, help="the formula to evaluate")


def _evaluate(args: argparse.Namespace) -> Any:
    """az's evaluate (the pool must have autoscale on); `batchyard autoscale evaluate` shows more."""
    body = {"autoScaleFormula": args.auto_scale_formula}
    return call(args, "POST", f"/pools/{seg(args.pool_id)}/evaluateautoscale", body)


def _delete(args: argparse.Namespace) -> Done:
    call(args, "DELETE", f"/pools/{seg(args.pool_id)}")
    return Done(f"Deleting pool {args.pool_id}")


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    add_list_options(parser, expand=True)


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    add_show_options(parser, expand=True)


EVALUATION_COLUMNS = (Column("Timestamp", "timestamp"), Column("Results", "results"), Column("Error", "error.code"))
NODE_COUNT_COLUMNS = (
    Column("Pool", "poolId"),
    Column("Idle", "dedicated.idle"),
    Column("Running", "dedicated.running"),
    Column("Starting", "dedicated.starting"),
    Column("Unusable", "dedicated.unusable"),
    Column("Total", "dedicated.total"),
    Column("Spot total", "lowPriority.total"),
)

COMMANDS = (
    Command(("pool", "create"), "create a pool from options or --json-file", _create, _create_arguments, COLUMNS),
    Command(
        ("pool", "list"),
        "the account's pools",
        lambda a: listing(a, "/pools"),
        _list_arguments,
        COLUMNS,
        "table",
    ),
    Command(
        ("pool", "show"),
        "one pool",
        lambda a: call(a, "GET", f"/pools/{seg(a.pool_id)}", query=show_query(a)),
        _show_arguments,
        COLUMNS,
    ),
    Command(("pool", "delete"), "delete a pool (its nodes go)", _delete, _pool_id),
    Command(("pool", "set"), "change a pool's start task or metadata (PATCH)", _set, _set_arguments, COLUMNS),
    Command(("pool", "resize"), "change a pool's target node counts (or --abort a resize)", _resize, _resize_arguments),
    Command(
        ("pool", "autoscale", "enable"),
        "scale a pool by a formula",
        _enable_autoscale,
        _enable_autoscale_arguments,
    ),
    Command(("pool", "autoscale", "disable"), "stop scaling a pool by formula", _disable_autoscale, _pool_id),
    Command(
        ("pool", "autoscale", "evaluate"),
        "evaluate a formula on a pool with autoscale on (its variables: `batchyard autoscale evaluate`)",
        _evaluate,
        _evaluate_arguments,
        EVALUATION_COLUMNS,
    ),
    Command(
        ("pool", "node-counts", "list"),
        "node counts by state, per pool",
        lambda a: listing(a, "/nodecounts"),
        _list_arguments,
        NODE_COUNT_COLUMNS,
        "table",
    ),
)
