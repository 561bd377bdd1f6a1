"""A node agent starts without the SSH server's dependencies: asyncssh and cryptography are a third of an idle
agent's memory and half its start, and most nodes never get a remote login (agent/ssh.py)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("asyncssh", "cryptography", "batchyard.agent.ssh_sessions")


def test_the_agent_loads_no_ssh_module_until_its_server_starts() -> None:
    probe = (
        "import json, sys\n"
        "import batchyard.agent.main\n"
        "from batchyard.agent.ssh import NodeSshServer\n"
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []
