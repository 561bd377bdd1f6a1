"""A node agent starts without the SSH server's dependencies: asyncssh and cryptography are a third of an idle
agent's memory and half its start, and most nodes never get a remote login (agent/ssh.py)."""

from __future__ import annotations

from tests.unit.module_probe import loaded_after

HEAVY = ("asyncssh", "cryptography", "batchyard.agent.ssh_sessions")


def test_the_agent_loads_no_ssh_module_until_its_server_starts() -> None:
    assert loaded_after("import batchyard.agent.main\nfrom batchyard.agent.ssh import NodeSshServer", HEAVY) == []
