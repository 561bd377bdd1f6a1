"""What a fresh interpreter has loaded after some code ran (the start-up guards: test_cli_start, test_agent_start)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable


def loaded_after(code: str, modules: Iterable[str]) -> list[str]:
    """Those of `modules` a new Python process has imported once `code` ran in it."""
    names = list(modules)
    probe = f"import json, sys\n{code}\nprint(json.dumps([name for name in {names!r} if name in sys.modules]))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return loaded
