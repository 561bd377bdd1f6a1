"""A lost node's fresh agent starts only once what the lost one ran is ended (engine/nodes.py): a fresh agent's
hello hands the node's runs back to their queues, so before the fence they could run twice."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from tests.engine.world import FakeProvider, World


@dataclass
class SlowFence(FakeProvider):
    """A provider whose fence (ending the lost node's processes) takes until `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def fence(self, node_id: str) -> None:
        self.calls.append(("fence", node_id))
        await self.release.wait()


def test_a_lost_node_is_fenced_before_its_agent_starts_again(tmp_path: Path) -> None:
    async def main() -> None:
        provider = SlowFence()
        async with World(tmp_path, provider, adopt_grace=0.0) as world:
            (node,) = await world.create_pool("p")
            await world.connect(node)
            world.create_job("j", "p")
            await world.add_task("j", "t")
            await world.disconnect(node)
            provider.alive.discard(node)  # its agent process is gone
            for _ in range(3):  # housekeeping while the fence is still ending the node's processes
                world.housekeeping()
                await world.settle()
            assert provider.asked("fence") == [node]
            assert provider.asked("start") == [node]  # the pool's first start only
            assert world.task("j", "t")["state"] == "running"  # not handed back while it may still run
            provider.release.set()
            await world.settle()
            assert world.node_state(node) == "unusable"
            assert world.task("j", "t")["state"] == "active"
            world.housekeeping()
            await world.settle()
            assert provider.asked("start") == [node, node]  # now a fresh agent

    asyncio.run(main())
