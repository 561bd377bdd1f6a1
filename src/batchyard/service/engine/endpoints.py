"""A node's inbound endpoints (`endpointConfiguration.inboundEndpoints`), from its pool's inbound NAT pools.

As on Azure, each node of a pool with `networkConfiguration.endpointConfiguration.inboundNATPools` has one
endpoint per NAT pool, named `<NAT pool name>.<n>`, where n is the node's index in the pool (the lowest
index no other node of the pool holds), and frontend port `frontendPortRangeStart + n`: each node its own
port of the range. The public address is the service's host (the nodes' "load balancer").

A pool whose `publicIPAddressConfiguration.ipFamilies` includes IPv6 is dual-stack, as on Azure: its nodes
have an `ipv6Address`, each NAT pool gives a node a second endpoint (the same name and ports) on the
service's IPv6 loopback address, and remote login settings name an IPv6 address and port too. The service
forwards both (engine/endpoint_forwarding.py).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from batchyard.service.config import Settings

# The nodes' IPv6 "public" address: the service's IPv6 loopback, where their IPv6 endpoints listen.
IPV6_ADDRESS = "::1"


def ipv6_enabled(pool_doc: dict[str, Any] | None) -> bool:
    """Whether the pool asks for IPv6 (`publicIPAddressConfiguration.ipFamilies` includes IPv6)."""
    network = (pool_doc or {}).get("networkConfiguration") or {}
    families = (network.get("publicIPAddressConfiguration") or {}).get("ipFamilies") or []
    return any(str(family).lower() == "ipv6" for family in families)


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
    """The node's InboundEndpoint list (an IPv6 one after each IPv4 one in a dual-stack pool); a NAT pool whose
    range has no port left for this index has none."""
    addresses = (ip, IPV6_ADDRESS) if ipv6_enabled(pool_doc) else (ip,)
    endpoints = []
    for nat in nat_pools(pool_doc):
        frontend = int(nat["frontendPortRangeStart"]) + index
        if frontend > int(nat["frontendPortRangeEnd"]):
            continue
        for address in addresses:
            endpoints.append(
                {
                    "name": f"{nat['name']}.{index}",
                    "protocol": nat["protocol"],
                    "publicIPAddress": address,
                    "publicFQDN": fqdn,
                    "frontendPort": frontend,
                    "backendPort": int(nat["backendPort"]),
                }
            )
    return endpoints
