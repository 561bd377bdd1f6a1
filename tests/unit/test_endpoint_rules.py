"""Network security group rules of inbound endpoints: which connections a frontend port admits."""

from __future__ import annotations

from batchyard.service.endpoint_rules import SecurityRule, admits


def rule(priority: int, access: str, source: str, *ports: str) -> SecurityRule:
    wire = {"priority": priority, "access": access, "sourceAddressPrefix": source}
    if ports:
        wire["sourcePortRanges"] = list(ports)
    return SecurityRule.from_wire(wire)


def test_no_rules_admit_everyone() -> None:
    assert admits((), "203.0.113.7", 1234)


def test_the_lowest_priority_number_decides_and_no_match_is_denied() -> None:
    rules = (rule(300, "allow", "*"), rule(150, "deny", "10.0.0.0/8"))
    assert not admits(rules, "10.1.2.3", 5000)
    assert admits(rules, "192.0.2.1", 5000)
    only_local = (rule(200, "allow", "127.0.0.1"),)
    assert admits(only_local, "127.0.0.1", 5000)
    assert not admits(only_local, "127.0.0.2", 5000)  # DenyAllInBound


def test_source_port_ranges() -> None:
    rules = (rule(150, "allow", "*", "100-200", "443"),)
    assert admits(rules, "198.51.100.1", 150) and admits(rules, "198.51.100.1", 443)
    assert not admits(rules, "198.51.100.1", 201)


def test_default_tags_and_mapped_addresses() -> None:
    assert admits((rule(150, "allow", "VirtualNetwork"),), "192.168.1.5", 1)
    assert admits((rule(150, "allow", "VirtualNetwork"),), "::ffff:127.0.0.1", 1)
    assert not admits((rule(150, "allow", "Internet"),), "127.0.0.1", 1)
    assert admits((rule(150, "allow", "Internet"),), "8.8.8.8", 1)
    assert not admits((rule(150, "allow", "AzureLoadBalancer"),), "127.0.0.1", 1)
    assert not admits((rule(150, "allow", "*"),), "not an address", 1)
