"""What every group of facade operations shares: the engine, its store, and precondition checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchyard.service.engine.engine import Engine
from batchyard.service.ports import Store

# A check of an entity's current document before it changes (the API's If-Match / If-Modified-Since
# conditions): raises a BatchError to refuse. Run inside the operation, so nothing changes in between.
Check = Callable[[dict[str, Any]], None]


def no_check(doc: dict[str, Any]) -> None:
    """Accept any current state."""


class OperationsBase:
    """Holds the engine; each operation runs its changes in one store transaction (its unit of work)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store: Store = engine.store
