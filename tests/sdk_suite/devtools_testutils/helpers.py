"""Mode helpers: this stand-in only runs live (AZURE_TEST_RUN_LIVE), never recording."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def is_live() -> bool:
    return True


def is_live_and_not_recording() -> bool:
    return True


def trim_kwargs_from_test_function(fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Drop the keyword arguments `fn` cannot take (as the Azure SDK's helper does)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for name in [k for k in kwargs if k not in params]:
        del kwargs[name]
