"""The Job Manager and Task Processor templates of Azure Batch (its Visual Studio project templates), in Python.

A job manager task subclasses `JobSplitter` and implements `split()`, yielding tasks; the framework
adds them to the job in batches as they are yielded, ignores tasks that already exist (so a retried
job manager is safe) and exits with the template's codes:

    0  the splitter ran to completion and every task was added
    1  an expected failure (`JobManagerError`), with its diagnostic on stderr
    2  an unexpected exception, with its traceback on stderr

A task processor subclasses `TaskProcessor`: `pre()`, then the command (`command()`), then
`post(exit_code)`; it exits with the command's exit code, 1 for `TaskProcessorError`, 2 otherwise.

Authentication: the job manager task needs `authenticationTokenSettings={"access": ["job"]}`.
The service then gives it AZ_BATCH_AUTHENTICATION_TOKEN, a token for its own job only (never the
account key); `job_client()` builds an `azure.batch.BatchClient` that sends it. Needs the
`azure-batch` package where the task runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BATCH_SIZE = 100  # the add-collection limit
FLUSH_AFTER = 1.0  # seconds: a slow splitter's tasks still start promptly


class JobManagerError(Exception):
    """An expected failure of a job splitter: exit code 1, with this message as the diagnostic."""


class TaskProcessorError(Exception):
    """An expected failure of a task processor: exit code 1, with this message as the diagnostic."""


def job_client(account_url: str | None = None, token: str | None = None) -> Any:
    """An azure-batch client for the task's own job, authenticated with the task's job token."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    url = account_url or os.environ["AZ_BATCH_ACCOUNT_URL"]
    bearer = token or os.environ.get("AZ_BATCH_AUTHENTICATION_TOKEN")
    if not bearer:
        raise JobManagerError(
            "AZ_BATCH_AUTHENTICATION_TOKEN is not set: give the job manager task "
            'authenticationTokenSettings={"access": ["job"]}'
        )

    class BearerToken(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            request.http_request.headers["Authorization"] = f"Bearer {bearer}"

    # The named key is never used: the bearer policy replaces Shared Key signing.
    unused = AzureNamedKeyCredential("unused", "dW51c2Vk")
    return BatchClient(url, unused, authentication_policy=BearerToken())


def load_parameters(path: str | Path = "parameters.json") -> dict[str, Any]:
    """Job parameters from a `parameters.json` resource file in the working directory (or {})."""
    file = Path(path)
    return json.loads(file.read_text()) if file.exists() else {}


class JobSplitter(ABC):
    def __init__(self, client: Any | None = None, job_id: str | None = None) -> None:
        self.job_id = job_id or os.environ["AZ_BATCH_JOB_ID"]
        self.client: Any = client  # an azure.batch.BatchClient (optional dependency), made by run() if not given
        self.parameters = load_parameters()
        self.added = 0
        self.existing = 0

    @abstractmethod
    def split(self) -> Iterable[Any]:
        """Yield the job's tasks (azure.batch.models.BatchTaskCreateOptions or plain dicts)."""

    def run(self) -> int:
        """Split and submit; returns the template's exit code."""
        try:
            self.client = self.client or job_client()
            self._submit_all(self.split())
        except JobManagerError as error:
            print(f"job manager failed: {error}", file=sys.stderr)
            return 1
        except Exception:
            traceback.print_exc()
            return 2
        print(f"job manager: added {self.added} tasks ({self.existing} already existed)")
        return 0

    def _submit_all(self, tasks: Iterable[Any]) -> None:
        batch: list[Any] = []
        started = time.monotonic()
        try:
            for task in tasks:
                batch.append(task)
                if len(batch) >= BATCH_SIZE or time.monotonic() - started > FLUSH_AFTER:
                    self._submit(batch)
                    batch, started = [], time.monotonic()
        finally:
            # Tasks the splitter returned before it failed are added too (the templates' "Job splitter failure").
            if batch:
                self._submit(batch)

    def _submit(self, batch: Sequence[Any]) -> None:
        from azure.batch import models

        tasks = [models.BatchTaskCreateOptions(task) if isinstance(task, dict) else task for task in batch]
        result = self.client.create_task_collection(self.job_id, models.BatchTaskGroup(task_values=tasks))
        for item in result.result_values or []:
            if item.status == "success":
                self.added += 1
            elif item.error is not None and item.error.code == "TaskExists":
                self.existing += 1  # added by an earlier attempt of this job manager
            else:
                code = item.error.code if item.error is not None else item.status
                raise JobManagerError(f"task {item.task_id} could not be added: {code}")


class TaskProcessor(ABC):
    """Wraps a command with pre- and post-processing steps."""

    def __init__(self) -> None:
        self.parameters = load_parameters()

    def pre(self) -> None:  # noqa: B027 - an optional step
        """Before the command: fetch extra data, prepare the working directory, ..."""

    @abstractmethod
    def command(self) -> list[str]:
        """The program to run and its arguments (run without a shell)."""

    def post(self, exit_code: int) -> None:  # noqa: B027 - an optional step
        """After the command: save results, check outputs, ..."""

    def run(self) -> int:
        try:
            self.pre()
            exit_code = subprocess.run(self.command(), check=False).returncode
            self.post(exit_code)
            return exit_code
        except TaskProcessorError as error:
            print(f"task processor failed: {error}", file=sys.stderr)
            return 1
        except Exception:
            traceback.print_exc()
            return 2
