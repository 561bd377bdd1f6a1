"""Running the `batchyard` command (a real process) against a test service."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from tests.conftest import Service


def batchyard(service: Service, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """`batchyard ARGS` with the service as its endpoint (BATCHYARD_ENDPOINT, as a user would set it)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", *args],
        env=clean | {"BATCHYARD_ENDPOINT": service.url, "COLUMNS": "80"} | env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(service: Service, *args: str, **env: str) -> str:
    """The standard output of a command that must succeed."""
    done = batchyard(service, *args, **env)
    assert done.returncode == 0, f"batchyard {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def as_json(service: Service, *args: str) -> Any:
    return json.loads(ok(service, *args, "-o", "json"))


def table_rows(text: str) -> list[list[str]]:
    """A table's rows (its header first, the rule left out), split on its column gaps."""
    lines = text.rstrip("\n").splitlines()
    assert len(lines) >= 2 and set(lines[1].replace(" ", "")) <= {"-"}, text
    return [re.split(r"\s{2,}", line.strip()) for line in [lines[0], *lines[2:]]]
