"""Instructions counted by valgrind's callgrind for a child process: a cost that does not move with the
machine's load, so two versions can be compared in any order on a shared machine (the *_instructions.py
benchmarks)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile


def count_instructions(python: str, script: str, *args: str) -> int:
    """Instructions of `python script args` (its whole run, start-up included) under callgrind."""
    interpreter = os.path.abspath(python) if os.sep in python else python  # the child runs in a temporary directory
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", interpreter, script, *args],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{python}: the run under callgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))
