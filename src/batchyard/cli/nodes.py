"""`batchyard nodes ...`: compute node operations on a running service (the same REST calls the SDKs make)."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from batchyard.cli.client import add_connection_options, call, print_result

_ALL = ("requeue", "terminate", "taskcompletion", "retaineddata")
# action -> (REST suffix, body option name, its choices)
_ACTIONS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "reboot": ("reboot", "nodeRebootOption", _ALL),
    "reimage": ("reimage", "nodeReimageOption", _ALL),
    "disable-scheduling": ("disablescheduling", "nodeDisableSchedulingOption", _ALL[:3]),
    "enable-scheduling": ("enablescheduling", None, ()),
    "deallocate": ("deallocate", "nodeDeallocateOption", _ALL),
    "start": ("start", None, ()),
}


def add_node_commands(commands: Any) -> None:
    nodes = commands.add_parser("nodes", help="list compute nodes and act on them")
    add_connection_options(nodes)
    actions = nodes.add_subparsers(dest="node_action", required=True)
    listing = actions.add_parser("list", help="a pool's nodes with their state")
    listing.add_argument("pool")
    for name, (_, option, choices) in _ACTIONS.items():
        action = actions.add_parser(name, help=f"{name} a node")
        action.add_argument("pool")
        action.add_argument("node")
        if option:
            action.add_argument("--option", choices=choices, default="requeue", help="what happens to running tasks")
    preempt = actions.add_parser(
        "preempt", help="preempt a Spot/low-priority node now, as its cloud would (its running tasks requeue)"
    )
    preempt.add_argument("pool")
    preempt.add_argument("node")
    remove = actions.add_parser("remove", help="remove nodes from their pool")
    remove.add_argument("pool")
    remove.add_argument("nodes", nargs="+")
    remove.add_argument("--option", choices=_ALL, default="requeue", help="what happens to running tasks")


def run_node_command(args: argparse.Namespace) -> int:
    return print_result(lambda: _run(args))


def _run(args: argparse.Namespace) -> Any:
    pool = quote(args.pool, safe="")
    if args.node_action == "list":
        for node in call(args, "GET", f"/pools/{pool}/nodes")["value"]:
            print(
                f"{node['id']}  {node['state']}  scheduling={node.get('schedulingState', 'enabled')}"
                f"  dedicated={str(node.get('isDedicated', True)).lower()}"
                f"  running={node.get('runningTasksCount', 0)}"
            )
        return None
    if args.node_action == "preempt":
        return call(args, "POST", f"/_batchyard/pools/{pool}/nodes/{quote(args.node, safe='')}/preempt")
    if args.node_action == "remove":
        removal = {"nodeList": args.nodes, "nodeDeallocationOption": args.option}
        return call(args, "POST", f"/pools/{pool}/removenodes", removal)
    suffix, option, _ = _ACTIONS[args.node_action]
    body = {option: args.option} if option else None
    return call(args, "POST", f"/pools/{pool}/nodes/{quote(args.node, safe='')}/{suffix}", body)
