"""Running azure-cli against the test service: `az batch ...` with the account in the environment
(tests/api/test_azure_cli.py), and any `az` command logged in to the service as a cloud (test_az_cloud.py).

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


def run_az(program: Path, args: tuple[str, ...], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`az ARGS --only-show-errors -o json`."""
    command = [str(program), *args, "--only-show-errors", "-o", "json"]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def parsed_output(args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> Any:
    """A command's parsed JSON output (None when it printed nothing); AzFailed if it failed."""
    if result.returncode != 0:
        raise AzFailed(args, result)
    return json.loads(result.stdout) if result.stdout.strip() else None


def error_output(args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> str:
    """The error output of a command that must fail."""
    if result.returncode == 0:
        raise AssertionError(f"az {' '.join(args)} succeeded:\n{result.stdout}")
    return result.stderr


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
        return run_az(self.program, ("batch", *args), self.env(), self.workdir)

    def __call__(self, *args: str) -> Any:
        """Run `az batch ARGS -o json`; its parsed output (None when it prints nothing). Fails the test on error."""
        return parsed_output(args, self.run(*args))

    def fails(self, *args: str) -> str:
        """Run a command that must fail; its error output."""
        return error_output(args, self.run(*args))

    def json_file(self, name: str, body: Any) -> str:
        """Write a --json-file argument; its path."""
        path = self.workdir / name
        path.write_text(json.dumps(body))
        return str(path)


@dataclass
class AzSession:
    """Any `az` command in a configuration directory of its own, trusting the service's CA
    (tests/api/test_az_cloud.py: az logged in to the service as a registered cloud)."""

    program: Path
    config_dir: Path
    ca: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHYARD_"))}
        return env | {
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "REQUESTS_CA_BUNDLE": str(self.ca),  # az's requests and MSAL's trust the service's certificate
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_az(self.program, args, self.env(), self.config_dir)

    def __call__(self, *args: str) -> Any:
        """Run `az ARGS -o json`; its parsed output (None when it prints nothing). Fails the test on error."""
        return parsed_output(args, self.run(*args))

    def fails(self, *args: str) -> str:
        """Run a command that must fail; its error output."""
        return error_output(args, self.run(*args))
