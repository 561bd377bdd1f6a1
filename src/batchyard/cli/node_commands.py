"""`batchyard node ...`: az batch node's commands (list, show, delete, the actions, users)."""

from __future__ import annotations

import argparse

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
    Column("Sched", "schedulingState"),
    Column("Dedicated", "isDedicated"),
    Column("Tasks", "runningTasksCount"),  # narrow headers: a node id takes 40 of 80 columns
)
_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
# command -> (REST suffix, body option, its choices, what the message says)
ACTIONS: dict[str, tuple[str, str | None, tuple[str, ...], str]] = {
    "reboot": ("reboot", "nodeRebootOption", _OPTIONS, "Rebooting"),
    "reimage": ("reimage", "nodeReimageOption", _OPTIONS, "Reimaging"),
    "deallocate": ("deallocate", "nodeDeallocateOption", _OPTIONS, "Deallocating"),
    "start": ("start", None, (), "Starting"),
    "scheduling disable": (
        "disablescheduling",
        "nodeDisableSchedulingOption",
        _OPTIONS[:3],
        "Disabling task scheduling on",
    ),
    "scheduling enable": ("enablescheduling", None, (), "Enabling task scheduling on"),
}


def node_action(args: argparse.Namespace, action: str, pool_id: str, node_id: str, option: str | None) -> Done:
    """One node action (shared with the older `batchyard nodes` commands)."""
    suffix, field, _, verb = ACTIONS[action]
    body = {field: option} if field and option else None
    call(args, "POST", f"/pools/{seg(pool_id)}/nodes/{seg(node_id)}/{suffix}", body)
    return Done(f"{verb} node {node_id} of pool {pool_id}" + (f" (running tasks: {option})" if body else ""))


def _pool_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool-id", required=True, help="the pool's id")


def _node_ids(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    parser.add_argument("--node-id", required=True, help="the node's id")


def _action_command(action: str) -> Command:
    _, field, choices, verb = ACTIONS[action]

    def arguments(parser: argparse.ArgumentParser) -> None:
        _node_ids(parser)
        if field:
            parser.add_argument(
                "--option", choices=choices, default="requeue", help="what happens to its running tasks"
            )

    def run(args: argparse.Namespace) -> Done:
        return node_action(args, action, args.pool_id, args.node_id, getattr(args, "option", None))

    return Command(("node", *action.split()), f"{verb.lower()} a node", run, arguments)


def _path(args: argparse.Namespace) -> str:
    return f"/pools/{seg(args.pool_id)}/nodes/{seg(args.node_id)}"


def _delete_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    parser.add_argument("--node-list", nargs="+", required=True, help="the ids of the nodes to remove")
    parser.add_argument(
        "--node-deallocation-option", choices=_OPTIONS, default="requeue", help="what happens to running tasks"
    )


def _delete(args: argparse.Namespace) -> Done:
    body = {"nodeList": args.node_list, "nodeDeallocationOption": args.node_deallocation_option}
    call(args, "POST", f"/pools/{seg(args.pool_id)}/removenodes", body)
    return Done(f"Removing {len(args.node_list)} node(s) from pool {args.pool_id}: {', '.join(args.node_list)}")


def _user_arguments(parser: argparse.ArgumentParser, create: bool) -> None:
    _node_ids(parser)
    add_json_file(parser, "user (a ComputeNodeUser)" if create else "changes (a NodeUpdateUserParameter)")
    parser.add_argument("--name", required=not create, help="the user's name")
    parser.add_argument("--password", help="the user's password")
    parser.add_argument("--ssh-public-key", help="an OpenSSH public key the user logs in with")
    parser.add_argument("--expiry-time", help="when the account expires (ISO 8601)")
    if create:
        parser.add_argument("--is-admin", action="store_true", help="an administrator")


def _user_create(args: argparse.Namespace) -> Done:
    if args.json_file:
        body = load_json(args.json_file)
    else:
        require(args, "name")
        body = compact(
            {
                "name": args.name,
                "password": args.password,
                "sshPublicKey": args.ssh_public_key,
                "expiryTime": args.expiry_time,
                "isAdmin": args.is_admin or None,
            }
        )
    call(args, "POST", f"{_path(args)}/users", body)
    return Done(f"Created user {body.get('name')} on node {args.node_id}")


def _user_reset(args: argparse.Namespace) -> Done:
    if args.json_file:
        body = load_json(args.json_file)
    else:
        body = compact({"password": args.password, "sshPublicKey": args.ssh_public_key, "expiryTime": args.expiry_time})
        if not body:
            raise UsageError("nothing to change: give --password, --ssh-public-key, --expiry-time or --json-file")
    call(args, "PUT", f"{_path(args)}/users/{seg(args.name)}", body)
    return Done(f"Updated user {args.name} on node {args.node_id}")


def _user_delete_arguments(parser: argparse.ArgumentParser) -> None:
    _node_ids(parser)
    parser.add_argument("--name", required=True, help="the user's name")


def _user_delete(args: argparse.Namespace) -> Done:
    call(args, "DELETE", f"{_path(args)}/users/{seg(args.name)}")
    return Done(f"Deleted user {args.name} from node {args.node_id}")


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    _node_ids(parser)
    add_show_options(parser)


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    _pool_id(parser)
    add_list_options(parser)


COMMANDS = (
    Command(
        ("node", "list"),
        "a pool's nodes",
        lambda a: listing(a, f"/pools/{seg(a.pool_id)}/nodes"),
        _list_arguments,
        COLUMNS,
        "table",
    ),
    Command(("node", "show"), "one node", lambda a: call(a, "GET", _path(a), query=show_query(a)), _show_arguments),
    Command(("node", "delete"), "remove nodes from their pool", _delete, _delete_arguments),
    *(_action_command(action) for action in ACTIONS),
    Command(
        ("node", "remote-login-settings", "show"),
        "the address and port to log in to a node",
        lambda a: call(a, "GET", f"{_path(a)}/remoteloginsettings"),
        _node_ids,
    ),
    Command(("node", "user", "create"), "add a user to a node", _user_create, lambda p: _user_arguments(p, True)),
    Command(
        ("node", "user", "reset"),
        "change a node user's password, key or expiry",
        _user_reset,
        lambda p: _user_arguments(p, False),
    ),
    Command(("node", "user", "delete"), "remove a user from a node", _user_delete, _user_delete_arguments),
)
