"""Which provider a pool's nodes come from: the pool's metadata `batchyard-provider`, else the default."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from batchyard.providers.base import NodeEvents, NodeProvider

PROVIDER_METADATA = "batchyard-provider"


class ProviderRegistry:
    def __init__(self, providers: Iterable[NodeProvider], default: str = "local") -> None:
        self._providers = {provider.name: provider for provider in providers}
        if default not in self._providers:
            raise ValueError(f"the default provider {default!r} is not among {sorted(self._providers)}")
        self.default = default

    def bind(self, events: NodeEvents) -> None:
        for provider in self._providers.values():
            provider.bind(events)

    def get(self, name: str | None) -> NodeProvider:
        """The provider of that name; the default for None or a name no provider has (older nodes)."""
        return self._providers.get(name or self.default) or self._providers[self.default]

    def name_for_pool(self, pool_doc: Mapping[str, Any]) -> str:
        """The provider a pool asks for by metadata (case-insensitive); the default when it names none we have."""
        for item in pool_doc.get("metadata") or []:
            if item.get("name") == PROVIDER_METADATA:
                wanted = str(item.get("value", "")).lower()
                if wanted in self._providers:
                    return wanted
        return self.default

    async def stop_all(self) -> None:
        await asyncio.gather(*(provider.stop_all() for provider in self._providers.values()))
