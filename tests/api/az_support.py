"""Running azure-cli (`az batch ...`) against the test service, for tests/api/test_azure_cli.py.

azure-cli is large and pins its own azure-batch (15.0.0b1), so scripts/test.sh installs it into a virtual
environment of its own, `.venv-az` (kept between runs like `.venv-legacy`); `BATCHYARD_TEST_AZ` names
another `az` program.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

REPO = Path(__file__).resolve().parents[2]


def az_program() -> Path | None:
    """The `az` to test with, or None when azure-cli is not installed."""
    named = os.environ.get("BATCHYARD_TEST_AZ")
    path = Path(named) if named else REPO / ".venv-az" / "bin" / "az"
    return path if path.is_file() and os.access(path, os.X_OK) else None


class AzFailed(AssertionError):
    def __init__(self, args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"az {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        self.stderr = result.stderr


@dataclass
class Az:
    """`az batch` with the account in its environment (AZURE_BATCH_*), as a user would configure it."""

    program: Path
    endpoint: str
    config_dir: Path
    workdir: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHYARD_"))}
        return env | {
            "AZURE_CONFIG_DIR": str(self.config_dir),  # no login and no state in the user's ~/.azure
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_BATCH_ACCOUNT": DEV_ACCOUNT_NAME,
            "AZURE_BATCH_ACCESS_KEY": DEV_ACCOUNT_KEY,
            "AZURE_BATCH_ENDPOINT": self.endpoint,
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.program), "batch", *args, "--only-show-errors", "-o", "json"],
            env=self.env(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def __call__(self, *args: str) -> Any:
        """Run `az batch ARGS -o json`; its parsed output (None when it prints nothing). Fails the test on error."""
        result = self.run(*args)
        if result.returncode != 0:
            raise AzFailed(args, result)
        return json.loads(result.stdout) if result.stdout.strip() else None

    def fails(self, *args: str) -> str:
        """Run a command that must fail; its error output."""
        result = self.run(*args)
        if result.returncode == 0:
            raise AssertionError(f"az {' '.join(args)} succeeded:\n{result.stdout}")
        return result.stderr

    def json_file(self, name: str, body: Any) -> str:
        """Write a --json-file argument; its path."""
        path = self.workdir / name
        path.write_text(json.dumps(body))
        return str(path)
