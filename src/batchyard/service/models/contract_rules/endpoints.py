"""Contract rules for a pool's inbound NAT pools and their network security group rules.

The contract's sentences on BatchInboundNatPool, BatchPoolEndpointConfiguration and
NetworkSecurityGroupRule: "If any reserved or overlapping values are provided the request fails with HTTP
status code 400" — refused here with `InvalidPropertyValue` naming the property and the reason.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from batchyard.service.errors import invalid_property

from .checks import Rule, join, show

RESERVED_BACKEND_PORTS = frozenset({29876, 29877})  # the Batch node agent's own
RESERVED_FRONTEND = (50000, 55000)  # the Batch service's own frontend ports
MIN_FRONTEND_PORTS = 40
MAX_NAT_POOLS = 5
MAX_NSG_RULES = 25
_NAT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,75}[A-Za-z0-9_])?")
# Service tags a rule's sourceAddressPrefix may name (Azure's default tags).
_DEFAULT_TAGS = frozenset({"virtualnetwork", "azureloadbalancer", "internet"})


def _nat_pool(nat: dict[str, Any], path: str) -> None:
    name = nat["name"]
    if _NAT_NAME.fullmatch(name) is None:
        raise invalid_property(
            join(path, "name"),
            name,
            "The name can contain letters, numbers, underscores, periods, and hyphens; it must start with a letter "
            "or number, end with a letter, number, or underscore, and be at most 77 characters long.",
        )
    backend = nat["backendPort"]
    if not 1 <= backend <= 65535 or backend in RESERVED_BACKEND_PORTS:
        raise invalid_property(
            join(path, "backendPort"),
            str(backend),
            "The port must be between 1 and 65535 and not 29876 or 29877, which are reserved.",
        )
    low, high = RESERVED_FRONTEND
    for name in ("frontendPortRangeStart", "frontendPortRangeEnd"):
        port = nat[name]
        if not 1 <= port <= 65534 or low <= port <= high:
            raise invalid_property(
                join(path, name),
                str(port),
                f"The port must be between 1 and 65534 and not between {low} and {high}, which are reserved.",
            )
    start, end = nat["frontendPortRangeStart"], nat["frontendPortRangeEnd"]
    if end - start + 1 < MIN_FRONTEND_PORTS:
        raise invalid_property(
            join(path, "frontendPortRangeEnd"),
            str(end),
            f"The frontend port range must contain at least {MIN_FRONTEND_PORTS} ports.",
        )
    if start < low and end > high:
        raise invalid_property(
            join(path, "frontendPortRangeEnd"),
            str(end),
            f"The frontend port range must not contain the reserved ports {low} to {high}.",
        )


def _endpoint_configuration(config: dict[str, Any], path: str) -> None:
    nats = config["inboundNATPools"]
    nats_path = join(path, "inboundNATPools")
    if len(nats) > MAX_NAT_POOLS:
        raise invalid_property(nats_path, str(len(nats)), f"A pool can have at most {MAX_NAT_POOLS} inbound NAT pools.")
    names: set[str] = set()
    backends: set[int] = set()
    ranges: list[tuple[int, int]] = []
    priorities: set[int] = set()
    rules = 0
    for i, nat in enumerate(nats):
        item = f"{nats_path}[{i}]"
        if nat["name"].lower() in names:
            raise invalid_property(join(item, "name"), nat["name"], "The name must be unique within a pool.")
        names.add(nat["name"].lower())
        if nat["backendPort"] in backends:
            raise invalid_property(
                join(item, "backendPort"), str(nat["backendPort"]), "The backend port must be unique within a pool."
            )
        backends.add(nat["backendPort"])
        start, end = nat["frontendPortRangeStart"], nat["frontendPortRangeEnd"]
        if any(start <= other_end and other_start <= end for other_start, other_end in ranges):
            raise invalid_property(
                join(item, "frontendPortRangeStart"),
                f"{start}-{end}",
                "The frontend port ranges of a pool's inbound NAT pools must not overlap.",
            )
        ranges.append((start, end))
        for j, rule in enumerate(nat.get("networkSecurityGroupRules") or []):
            rules += 1
            if rule["priority"] in priorities:
                raise invalid_property(
                    f"{item}.networkSecurityGroupRules[{j}].priority",
                    str(rule["priority"]),
                    "The priorities of network security group rules must be unique within a pool.",
                )
            priorities.add(rule["priority"])
    if rules > MAX_NSG_RULES:
        raise invalid_property(
            nats_path,
            str(rules),
            f"A pool can have at most {MAX_NSG_RULES} network security group rules over all its endpoints.",
        )


def _security_rule(rule: dict[str, Any], path: str) -> None:
    priority = rule["priority"]
    if not 150 <= priority <= 4096:
        raise invalid_property(join(path, "priority"), str(priority), "The priority must be between 150 and 4096.")
    prefix = rule["sourceAddressPrefix"]
    if not _is_address_prefix(prefix):
        raise invalid_property(
            join(path, "sourceAddressPrefix"),
            prefix,
            "The value must be an IP address, an IP subnet (such as 192.168.1.0/24), a default tag or *.",
        )
    seen: list[tuple[int, int]] = []
    for i, text in enumerate(rule.get("sourcePortRanges") or []):
        span = _port_range(text)
        if span is None or any(span[0] <= high and low <= span[1] for low, high in seen):
            raise invalid_property(
                f"{join(path, 'sourcePortRanges')}[{i}]",
                show(text),
                "Each entry must be *, a port or a range of ports (such as 100-200) between 0 and 65535, "
                "and must not overlap another entry.",
            )
        seen.append(span)


def _is_address_prefix(prefix: str) -> bool:
    if prefix == "*" or prefix.lower() in _DEFAULT_TAGS:
        return True
    try:
        ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False
    return True


def _port_range(text: str) -> tuple[int, int] | None:
    if text == "*":
        return 0, 65535
    low, _, high = text.partition("-")
    if not low.isdigit() or not (high.isdigit() or not high):
        return None
    span = int(low), int(high or low)
    return span if span[0] <= span[1] <= 65535 else None


def check_network_endpoints(config: dict[str, Any], path: str) -> None:
    provision = str((config.get("publicIPAddressConfiguration") or {}).get("provision", "")).lower()
    if provision == "nopublicipaddresses" and (config.get("endpointConfiguration") or {}).get("inboundNATPools"):
        raise invalid_property(
            join(path, "endpointConfiguration"),
            show(config["endpointConfiguration"]),
            "Inbound NAT pools cannot be specified when publicIPAddressConfiguration.provision is NoPublicIPAddresses.",
        )


ENDPOINT_RULES: dict[str, Rule] = {
    "BatchInboundNatPool": _nat_pool,
    "BatchPoolEndpointConfiguration": _endpoint_configuration,
    "NetworkSecurityGroupRule": _security_rule,
}
