"""A node's inbound endpoints (`endpointConfiguration.inboundEndpoints`), from its pool's inbound NAT pools.

As on Azure, each node of a pool with `networkConfiguration.endpointConfiguration.inboundNATPools` has one
endpoint per NAT pool, named `<NAT pool name>.<n>`, where n is the node's index in the pool (the lowest
index no other node of the pool holds), and frontend port `frontendPortRangeStart + n`: each node its own
port of the range. The public address is the service's host (the nodes' "load balancer").
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from batchyard.service.config import Settings


def nat_pools(pool_doc: dict[str, Any]) -> list[dict[str, Any]]:
    network = pool_doc.get("networkConfiguration") or {}
    return list((network.get("endpointConfiguration") or {}).get("inboundNATPools") or [])


def free_index(taken: set[int]) -> int:
    """The lowest node index no other node of the pool holds."""
    index = 0
    while index in taken:
        index += 1
    return index


def public_address(settings: Settings) -> tuple[str, str]:
    """(publicIPAddress, publicFQDN): the service's listening IPv4 address (127.0.0.1 when it listens on
    every address or on a name) and the host name of its public URL (else `localhost`)."""
    try:
        address = ipaddress.ip_address(settings.host)
    except ValueError:
        address = None
    ip = str(address) if isinstance(address, ipaddress.IPv4Address) and not address.is_unspecified else "127.0.0.1"
    fqdn = (urlsplit(settings.public_url).hostname if settings.public_url else None) or "localhost"
    return ip, fqdn


def inbound_endpoints(pool_doc: dict[str, Any], index: int, ip: str, fqdn: str) -> list[dict[str, Any]]:
    """The node's InboundEndpoint list; a NAT pool whose range has no port left for this index has none."""
    endpoints = []
    for nat in nat_pools(pool_doc):
        frontend = int(nat["frontendPortRangeStart"]) + index
        if frontend > int(nat["frontendPortRangeEnd"]):
            continue
        endpoints.append(
            {
                "name": f"{nat['name']}.{index}",
                "protocol": nat["protocol"],
                "publicIPAddress": ip,
                "publicFQDN": fqdn,
                "frontendPort": frontend,
                "backendPort": int(nat["backendPort"]),
            }
        )
    return endpoints
