"""The commands a node's image provides: `python` on an Ubuntu node where the host has only `python3`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from azure.batch import models as m

from tests.api.helpers import create_job, idle_nodes, read_task_file, run_task, temp_pool
from tests.conftest import wait_for

HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what tasks search


def test_python_runs_on_an_ubuntu_node(client: Any, unique: Callable[[str], str]) -> None:
    """Azure-Samples runs `python simple_task.py` in a start task; Debian hosts have only `python3`."""
    assert shutil.which("python3", path=HOST_PATH), "this test needs python3 on the host"
    pool_id, job_id = unique("python-pool"), unique("python-job")
    start = m.BatchStartTask(command_line='python -c "print(1)"', wait_for_success=True)
    with temp_pool(client, pool_id, start_task=start):  # helpers.vm_config: canonical Ubuntu 22.04
        node = wait_for(lambda: idle_nodes(client, pool_id, 1), what="the node after its python start task")[0]
        assert node.start_task_info.exit_code == 0
        create_job(client, job_id, pool_id)
        task = run_task(client, job_id, "py", 'python -c "import sys; print(sys.version_info.major, sys.prefix)"')
        assert task.execution_info.result == "success", task.execution_info.failure_info
        major, prefix = read_task_file(client, job_id, "py", "stdout.txt").split()
        assert major == "3" and prefix.startswith("/usr")  # the host's python3 itself, not a virtual environment
