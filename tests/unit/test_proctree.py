"""Ending a lost run's processes: nothing of it may run on, not even the next command of its shell."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

from batchyard.agent import proctree


def _start_shells(tmp_path: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """Shells that would write a file right after their child ends, as a task's shell does."""
    env = {"PATH": "/usr/bin:/bin", proctree.NODE_ROOT_VARIABLE: str(tmp_path)}
    shells = []
    for index in range(count):
        script = f"sleep 30; echo ran-on > {tmp_path}/after-{index}"
        shells.append(subprocess.Popen(["/bin/bash", "-c", script], env=env, start_new_session=True))
    return shells


def test_a_shell_never_runs_on_when_its_child_is_killed_with_it(tmp_path: Path) -> None:
    shells = _start_shells(tmp_path, 40)
    deadline = time.monotonic() + 10
    while len(proctree.node_processes(str(tmp_path))) < 2 * len(shells) and time.monotonic() < deadline:
        time.sleep(0.02)  # each shell and its sleep
    pids = proctree.node_processes(str(tmp_path))
    assert len(pids) == 2 * len(shells)
    asyncio.run(proctree.kill_and_wait(pids, 5))
    for shell in shells:
        shell.wait(5)
    time.sleep(0.2)
    assert not list(tmp_path.glob("after-*"))
    assert not proctree.node_processes(str(tmp_path))


def test_parents_come_before_their_children() -> None:
    me = os.getpid()
    procs = [
        proctree._Proc(pid=30, ppid=20, pgrp=10, session=10),
        proctree._Proc(pid=20, ppid=10, pgrp=10, session=10),
        proctree._Proc(pid=10, ppid=me, pgrp=10, session=10),
        proctree._Proc(pid=40, ppid=1, pgrp=40, session=40),
    ]
    order = proctree._parents_first({10, 20, 30, 40}, procs)
    assert order.index(10) < order.index(20) < order.index(30)
