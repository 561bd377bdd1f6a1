"""A job manager task that splits a job into frame tasks: the seed's Job Manager template, in Python.

Run as a job's `jobManagerTask` with `authenticationTokenSettings={"access": ["job"]}`. Frames come
from a `parameters.json` resource file ({"StartFrame": 1, "EndFrame": 100}) or START_FRAME/END_FRAME.
FAIL_FIRST_ATTEMPT_AFTER=N makes the first attempt fail after N tasks, to show that a retried job
manager adds only what is missing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

from batchyard.jobmanager import JobSplitter


class FrameSplitter(JobSplitter):
    def split(self) -> Iterator[dict[str, Any]]:
        start = int(self.parameters.get("StartFrame", os.environ.get("START_FRAME", 1)))
        end = int(self.parameters.get("EndFrame", os.environ.get("END_FRAME", 10)))
        fail_after = os.environ.get("FAIL_FIRST_ATTEMPT_AFTER")
        for number, frame in enumerate(range(start, end + 1)):
            if fail_after and os.environ.get("AZ_BATCH_TASK_RETRY_COUNT") == "0" and number == int(fail_after):
                raise RuntimeError("simulated crash of the first attempt")
            yield {"id": f"myTask{frame}", "commandLine": f"/bin/echo rendering frame {frame}"}


if __name__ == "__main__":
    sys.exit(FrameSplitter().run())
