"""The nodes' TCP inbound endpoints reach the nodes: each frontend port forwards to its node's backend port.

Every second the wanted forwarding (every TCP endpoint of every node: frontend port -> the node's
`ipAddress` and backend port; engine/endpoints.py gives the ports) is compared with what listens, and the
difference is applied (service/tcp_forward.py), with each NAT pool's network security group rules
(service/endpoint_rules.py). A frontend port that cannot listen (another program holds
it) is logged once and tried again every second. UDP endpoints are listed but not forwarded, and so are
the endpoints of nodes whose address is not known: external nodes, and nodes still being allocated. A
dual-stack pool's IPv6 endpoints listen on the IPv6 loopback, and so does the SSH server of each of its nodes
whose remote login settings were asked for (same port as the node's own, IPv4-only, listener).
"""

from __future__ import annotations

import logging
from typing import Any

from batchyard.service.endpoint_rules import SecurityRule
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.endpoints import IPV6_ADDRESS, nat_pools
from batchyard.service.engine.events import Tick, reacts_to
from batchyard.service.tcp_forward import Frontend, Target, TcpForwarder

log = logging.getLogger("batchyard.endpoints")


def _rules_by_nat_pool(pool_doc: dict[str, Any]) -> dict[str, tuple[SecurityRule, ...]]:
    return {
        str(nat["name"]): tuple(SecurityRule.from_wire(rule) for rule in nat.get("networkSecurityGroupRules") or [])
        for nat in nat_pools(pool_doc)
    }


class EndpointForwarding(Concern):
    def __init__(self, core: EngineCore) -> None:
        super().__init__(core)
        self.forwarder = TcpForwarder()
        self._applying = False
        self._reported: set[tuple[Frontend, str]] = set()  # frontends that could not listen, and why (logged once)

    def wanted(self) -> dict[Frontend, Target]:
        ports: dict[Frontend, Target] = {}
        for node in self.nodes.values():
            if node.private.provider == "external" or node.doc["state"] == "creating":
                continue  # an address not known yet, or never (an external agent's host is its admin's)
            config = node.doc.get("endpointConfiguration") or {}
            pool = self.pools.get(node.pool_key)
            rules = _rules_by_nat_pool(pool.doc) if pool else {}
            address = str(node.doc.get("ipAddress") or "127.0.0.1")
            for endpoint in config.get("inboundEndpoints") or []:
                if endpoint.get("protocol") == "tcp":
                    nat_pool = str(endpoint["name"]).rsplit(".", 1)[0]
                    target = Target(address, int(endpoint["backendPort"]), rules.get(nat_pool, ()))
                    ports[(self._listen_host(endpoint), int(endpoint["frontendPort"]))] = target
            private = node.private
            if private.ipv6_login_address is not None and private.ipv6_login_port is not None:
                ports[(IPV6_ADDRESS, private.ipv6_login_port)] = Target(
                    private.ipv6_login_address, private.ipv6_login_port
                )
        return ports

    def _listen_host(self, endpoint: dict[str, Any]) -> str:
        """IPv4 endpoints listen where the service does, IPv6 ones on the IPv6 loopback."""
        return IPV6_ADDRESS if ":" in str(endpoint.get("publicIPAddress")) else self.settings.host

    @reacts_to(Tick)
    def _forward_endpoints(self, event: Tick) -> None:
        wanted = self.wanted()
        if self._applying or wanted == self.forwarder.ports:
            return
        self._applying = True
        self.core.spawn(self._apply(wanted))

    async def _apply(self, wanted: dict[Frontend, Target]) -> None:
        try:
            failed = await self.forwarder.apply(wanted)
        finally:
            self._applying = False
        for frontend, reason in failed:
            if (frontend, reason) not in self._reported:
                self._reported.add((frontend, reason))
                log.warning("inbound endpoint: frontend %s port %s cannot listen: %s", *frontend, reason)
