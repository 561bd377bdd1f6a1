"""What every group of facade operations shares: the engine, its store, and precondition checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchyard.service.engine.account_keys import in_account, scoped_key
from batchyard.service.engine.engine import Engine
from batchyard.service.ports import Store

# A check of an entity's current document before it changes (the API's If-Match / If-Modified-Since
# conditions): raises a BatchError to refuse. Run inside the operation, so nothing changes in between.
Check = Callable[[dict[str, Any]], None]


def no_check(doc: dict[str, Any]) -> None:
    """Accept any current state."""


class OperationsBase:
    """Holds the engine; each operation runs its changes in one store transaction (its unit of work).

    The operations act for one Batch account (`account`, None: the service's own): the ids they are given
    are that account's, and what they list is that account's (engine/account_keys.py)."""

    def __init__(self, engine: Engine, account: str | None = None) -> None:
        self.engine = engine
        self.store: Store = engine.store
        self.account = account

    def key(self, entity_id: str) -> str:
        """The key of this account's pool, job or job schedule with that id."""
        return scoped_key(self.account, entity_id)

    def owns(self, key: str) -> bool:
        return in_account(key, self.account)
