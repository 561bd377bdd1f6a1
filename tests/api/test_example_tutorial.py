"""examples/python_tutorial.py (the Azure Batch Python tutorial with azure-batch 15.x) runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.conftest import Service

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python_tutorial.py"

# The top three words of each of the example's deterministic input files.
EXPECTED = {
    "topNtask0": "the: 10\nlamp: 5\nkeeper: 4\n",
    "topNtask1": "the: 11\nriver: 5\nsea: 4\n",
    "topNtask2": "the: 7\ntime: 6\ndough: 4\n",
}


def test_python_tutorial_example_runs_and_cleans_up(service: Service, client: Any, unique: Any) -> None:
    pool_id, job_id = unique("tutorial-pool"), unique("tutorial-job")
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--endpoint",
            service.url,
            "--pool-id",
            pool_id,
            "--job-id",
            job_id,
            "--nodes",
            "2",
            "--timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert "Success! All tasks reached the 'Completed' state" in result.stdout, report
    for task_id, top_words in EXPECTED.items():
        assert f"Task: {task_id} (exit code 0)\nStandard output:\n{top_words}" in result.stdout, report
    assert f"Deleting job [{job_id}]" in result.stdout and f"Deleting pool [{pool_id}]" in result.stdout, report

    # The script waited for the deletions: nothing it created is left. (azure-batch 15.1's pool_exists raises
    # ResourceNotFoundError on 404 instead of returning False, so ask with get_* as the SDK allows.)
    for get, resource_id in ((client.get_pool, pool_id), (client.get_job, job_id)):
        with pytest.raises(ResourceNotFoundError):
            get(resource_id)
