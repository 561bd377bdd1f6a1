"""The service's own operations: its lifetime, agents connecting and joining, join tokens, the test clock."""

from __future__ import annotations

from datetime import datetime

from batchyard.service.clock import AdjustableClock
from batchyard.service.engine.account_keys import scoped_id
from batchyard.service.engine.operations.base import OperationsBase
from batchyard.service.errors import BatchError
from batchyard.service.ports import AgentChannel


class ServiceOperations(OperationsBase):
    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        await self.engine.stop()

    async def abandon(self) -> None:
        await self.engine.abandon()

    def now(self) -> datetime:
        return self.engine.core.now()

    # --- agents ---------------------------------------------------------------------------------

    @property
    def node_secret(self) -> bytes:
        """The secret node tokens, join tokens and task authentication tokens are derived from."""
        return self.engine.core.node_secret

    def node_token_ok(self, node_id: str, token: str) -> bool:
        return self.engine.node_ops.node_token_ok(node_id, token)

    async def agent_session(self, session: AgentChannel) -> None:
        """Serve one connected agent until it goes away."""
        await self.engine.sessions.agent_session(session)

    def claim_node(self, pool_id: str, token: str) -> tuple[str, str] | None:
        """(node id, node token) of a node of the pool for an agent presenting the pool's join token."""
        return self.engine.node_ops.claim_node(pool_id, token)

    def join_token(self, pool_id: str) -> str:
        """The credential agents on other hosts present to join this account's pool (it need not exist yet);
        they name the pool by `pool_name(pool_id)`."""
        return self.engine.node_ops.join_token(self.pool_name(pool_id))

    def pool_name(self, pool_id: str) -> str:
        """How an agent joining this account's pool names it (its id for the service's own account)."""
        return scoped_id(self.account, pool_id)

    # --- tests ----------------------------------------------------------------------------------

    @property
    def clock_is_adjustable(self) -> bool:
        return isinstance(self.engine.clock, AdjustableClock)

    def advance_clock(self, seconds: float) -> datetime:
        """With an adjustable clock (`--adjustable-clock`), move time forward and run housekeeping at once."""
        clock = self.engine.clock
        if not isinstance(clock, AdjustableClock):
            raise BatchError(404, "InvalidUri", "The requested URI does not represent any resource on the server.")
        now = clock.advance(seconds)
        with self.store.transaction():
            self.engine.housekeeping()
        return now
