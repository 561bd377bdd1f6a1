"""`batchyard nodes`: node operations from the command line against a running service."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.api.helpers import create_pool, idle_nodes
from tests.conftest import Service, wait_for


def nodes_cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "batchyard.cli.main", "nodes", "--endpoint", service.url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_node_actions_from_the_cli(service: Service, client: Any, unique: Any) -> None:
    pool_id = unique("clinodes")
    create_pool(client, pool_id, nodes=2)
    first, second = (n.id for n in wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes"))
    listing = nodes_cli(service, "list", pool_id)
    assert listing.returncode == 0
    assert f"{first}  idle" in listing.stdout and f"{second}  idle" in listing.stdout

    assert nodes_cli(service, "disable-scheduling", pool_id, first, "--option", "taskcompletion").returncode == 0
    wait_for(lambda: client.get_node(pool_id, first).state == "offline", what="offline node")
    assert nodes_cli(service, "enable-scheduling", pool_id, first).returncode == 0
    wait_for(lambda: client.get_node(pool_id, first).state == "idle", what="idle again")

    boot = client.get_node(pool_id, first).last_boot_time
    assert nodes_cli(service, "reboot", pool_id, first).returncode == 0
    wait_for(lambda: (n := client.get_node(pool_id, first)).state == "idle" and n.last_boot_time > boot, what="reboot")

    assert nodes_cli(service, "remove", pool_id, second).returncode == 0
    wait_for(lambda: [n.id for n in client.list_nodes(pool_id)] == [first], what="the node to leave")

    missing = nodes_cli(service, "reboot", pool_id, "tvmps_nope_d")
    assert missing.returncode == 1
    assert "NodeNotFound" in missing.stderr
    client.begin_delete_pool(pool_id)
