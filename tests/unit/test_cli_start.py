"""The `batchyard` command starts without the service's heavy dependencies: every command pays for what
the module that parses its options imports (the Azure storage SDK and cryptography take about 0.2 s)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("azure.storage.blob", "cryptography", "batchyard.service.tls", "batchyard.service.storage.linked")


def test_the_command_line_parser_loads_no_heavy_module() -> None:
    probe = (
        "import json, sys\n"
        "from batchyard.cli.main import build_parser\n"
        "build_parser()\n"
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []
