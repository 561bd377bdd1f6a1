"""Tests run by the legacy-SDK venv (azure-batch 14.x), which does not have batchyard installed."""

from __future__ import annotations

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2] / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
