"""An inbound endpoint's network security group rules, applied to each connection a frontend port takes.

As on Azure: without rules, the endpoint admits everyone (Batch makes a default rule allowing the backend
port); with rules, they are tried by priority (lowest number first), the first whose source address prefix
and source port ranges match decides (`allow` or `deny`), and a connection no rule matches is denied (the
network security group's own DenyAllInBound). Of the default tags, `VirtualNetwork` is this host and the
private networks, `Internet` every other address, and `AzureLoadBalancer` no one (there is none here).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SecurityRule:
    priority: int
    allow: bool
    source: str  # an address, a subnet, a default tag or *
    ports: tuple[tuple[int, int], ...]  # source port ranges, inclusive

    @classmethod
    def from_wire(cls, rule: dict[str, Any]) -> SecurityRule:
        ranges = []
        for text in rule.get("sourcePortRanges") or ["*"]:
            low, _, high = str(text).partition("-")
            ranges.append((0, 65535) if text == "*" else (int(low), int(high or low)))
        return cls(
            int(rule["priority"]),
            str(rule["access"]).lower() == "allow",
            str(rule["sourceAddressPrefix"]),
            tuple(ranges),
        )

    def matches(self, address: Address, port: int) -> bool:
        return _in_source(address, self.source) and any(low <= port <= high for low, high in self.ports)


def admits(rules: tuple[SecurityRule, ...], host: str, port: int) -> bool:
    """Whether a connection from host:port may pass."""
    if not rules:
        return True
    try:
        address: Address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for rule in sorted(rules, key=lambda r: r.priority):
        if rule.matches(address, port):
            return rule.allow
    return False


def _in_source(address: Address, source: str) -> bool:
    tag = source.lower()
    if source == "*":
        return True
    if tag == "virtualnetwork":
        return address.is_private or address.is_loopback
    if tag == "internet":
        return not (address.is_private or address.is_loopback)
    if tag == "azureloadbalancer":
        return False
    try:
        return address in ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
