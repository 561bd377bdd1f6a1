"""One run on the node: directories, environment, resource files, the process, and its result.

A task sees only the documented AZ_BATCH_* variables, its job's and its own settings, and a
minimal PATH/HOME/LANG: never the agent's credentials or the service's keys.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchyard.agent.resource_files import DownloadError, download_resource_files
from batchyard.agent.runner import ProcessResult, ProcessSpec, RunningProcess, start_process

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class NodeContext:
    root: Path
    node_id: str
    values: dict[str, Any] = field(default_factory=dict)

    def welcome(self, message: dict[str, Any]) -> None:
        self.values = dict(message)

    def node_env(self) -> dict[str, str]:
        root = str(self.root)
        return {
            "PATH": BASE_PATH,
            "LANG": "C.UTF-8",
            "AZ_BATCH_NODE_ROOT_DIR": root,
            "AZ_BATCH_NODE_SHARED_DIR": f"{root}/shared",
            "AZ_BATCH_NODE_STARTUP_DIR": f"{root}/startup",
            "AZ_BATCH_NODE_STARTUP_WORKING_DIR": f"{root}/startup/wd",
            "AZ_BATCH_NODE_ID": self.node_id,
            "AZ_BATCH_NODE_IS_DEDICATED": "true" if self.values.get("dedicated", True) else "false",
            "AZ_BATCH_POOL_ID": str(self.values.get("pool", "")),
            "AZ_BATCH_ACCOUNT_NAME": str(self.values.get("account", "")),
            "AZ_BATCH_ACCOUNT_URL": str(self.values.get("accountUrl", "")),
        }


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Execution:
    def __init__(self, context: NodeContext, run: dict[str, Any]) -> None:
        self.context = context
        self.run_spec = run
        self.task_dir = context.root / run["dir"]
        self.working_dir = self.task_dir / "wd"
        self.process: RunningProcess | None = None
        self.killed = False
        self._preparing: asyncio.Task[None] | None = None

    def environment(self) -> dict[str, str]:
        run = self.run_spec
        env = self.context.node_env()
        env.update(
            {
                "HOME": str(self.working_dir),
                "AZ_BATCH_TASK_DIR": str(self.task_dir),
                "AZ_BATCH_TASK_WORKING_DIR": str(self.working_dir),
                "AZ_BATCH_TASK_RETRY_COUNT": str(run.get("retry", 0)),
                "AZ_BATCH_CERTIFICATES_DIR": str(self.task_dir / "certs"),
                "AZ_BATCH_TASK_USER": "_azbatch",
            }
        )
        if run["kind"] == "task":
            env["AZ_BATCH_JOB_ID"] = run["job"]
            env["AZ_BATCH_TASK_ID"] = run["task"]
        # The user's settings come last, as in Azure Batch (they may override PATH and the like).
        env.update(run.get("env") or {})
        return env

    def kill(self) -> None:
        self.killed = True
        if self.process is not None:
            self.process.terminate()
        elif self._preparing is not None:
            self._preparing.cancel()

    async def run(self) -> dict[str, Any]:
        started = datetime.now(UTC)
        _make_dirs(self.task_dir, self.working_dir)
        files = self.run_spec.get("files") or []
        if files:
            self._preparing = asyncio.ensure_future(download_resource_files(files, self.working_dir))
            try:
                await self._preparing
            except DownloadError as error:
                return self._failed(started, error.failure)
            except asyncio.CancelledError:
                return self._ended(started)
            finally:
                self._preparing = None
        if self.killed:
            return self._ended(started)
        spec = ProcessSpec(
            command_line=self.run_spec["cmd"],
            cwd=self.working_dir,
            env=self.environment(),
            stdout_path=self.task_dir / "stdout.txt",
            stderr_path=self.task_dir / "stderr.txt",
            max_wall_clock=self.run_spec.get("wall"),
        )
        self.process = await start_process(spec)
        if self.killed:
            self.process.terminate()
        return self._result(await self.process.wait())

    def _result(self, outcome: ProcessResult) -> dict[str, Any]:
        failure = None
        if outcome.start_error is not None:
            not_found = "No such file" in outcome.start_error
            failure = {
                "category": "usererror",
                "code": "CommandProgramNotFound" if not_found else "CommandLaunchFailed",
                "message": "The program specified in the task's command line was not found"
                if not_found
                else "An error occurred when launching the task's command line",
                "details": [{"name": "Message", "value": outcome.start_error}],
            }
        elif outcome.timed_out:
            failure = {
                "category": "servererror",
                "code": "TaskEnded",
                "message": "The task was ended because it exceeded its maximum wall clock time",
            }
        elif outcome.terminated or self.killed:
            failure = {"category": "usererror", "code": "TaskEnded", "message": "Task Was Ended by User Request"}
        return {
            "exit": outcome.exit_code,
            "start": _iso(outcome.start_time),
            "end": _iso(outcome.end_time),
            "failure": failure,
            "stats": {
                "userCPUTime": outcome.user_cpu,
                "kernelCPUTime": outcome.kernel_cpu,
                "maxRss": outcome.max_rss_bytes,
                "readBytes": outcome.read_bytes,
                "writeBytes": outcome.write_bytes,
                "readOps": outcome.read_ops,
                "writeOps": outcome.write_ops,
            },
        }

    def _failed(self, started: datetime, failure: dict[str, Any]) -> dict[str, Any]:
        now = _iso(datetime.now(UTC))
        return {"exit": None, "start": _iso(started), "end": now, "failure": failure, "stats": None}

    def _ended(self, started: datetime) -> dict[str, Any]:
        return self._failed(
            started, {"category": "usererror", "code": "TaskEnded", "message": "Task Was Ended by User Request"}
        )

    def internal_failure(self, message: str) -> dict[str, Any]:
        return self._failed(datetime.now(UTC), {"category": "servererror", "code": "AgentError", "message": message})


def _make_dirs(task_dir: Path, working_dir: Path) -> None:
    """Create the task and working directories: two mkdir calls in the common case (hot path)."""
    try:
        os.mkdir(task_dir)
        os.mkdir(working_dir)
    except OSError:
        os.makedirs(working_dir, exist_ok=True)
