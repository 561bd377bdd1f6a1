"""Inbound NAT pools: each node's inbound endpoints, and the contract's refusals, through the SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import create_pool, delete_pool_quietly, error_code, error_values
from tests.conftest import wait_for

Unique = Callable[[str], str]


def _nat(name: str, backend: int, start: int, end: int, **extra: Any) -> m.BatchInboundNatPool:
    return m.BatchInboundNatPool(
        name=name,
        protocol=extra.pop("protocol", "tcp"),
        backend_port=backend,
        frontend_port_range_start=start,
        frontend_port_range_end=end,
        **extra,
    )


def _network(*nats: m.BatchInboundNatPool, **extra: Any) -> m.NetworkConfiguration:
    return m.NetworkConfiguration(
        endpoint_configuration=m.BatchPoolEndpointConfiguration(inbound_nat_pools=list(nats)), **extra
    )


def test_each_node_lists_its_inbound_endpoints(client: Any, unique: Unique) -> None:
    pool_id = unique("nat")
    network = _network(
        _nat("ssh", 22, 15000, 15099),
        _nat(
            "app-udp",
            9000,
            16000,
            16039,
            protocol="udp",
            network_security_group_rules=[
                m.NetworkSecurityGroupRule(priority=150, access="allow", source_address_prefix="10.0.0.0/8")
            ],
        ),
    )
    create_pool(client, pool_id, nodes=3, network_configuration=network)
    try:
        nodes = wait_for(lambda: (n := list(client.list_nodes(pool_id))) and len(n) == 3 and n, what="three nodes")
        indexes = set()
        for node in nodes:
            endpoints = {
                e.name.split(".")[0]: e
                for e in client.get_node(pool_id, node.id).endpoint_configuration.inbound_endpoints
            }
            assert set(endpoints) == {"ssh", "app-udp"}
            ssh, udp = endpoints["ssh"], endpoints["app-udp"]
            index = int(ssh.name.split(".")[1])
            indexes.add(index)
            assert (ssh.protocol, ssh.backend_port, ssh.frontend_port) == ("tcp", 22, 15000 + index)
            assert (udp.name, udp.protocol, udp.backend_port, udp.frontend_port) == (
                f"app-udp.{index}",
                "udp",
                9000,
                16000 + index,
            )
            assert ssh.public_ip_address == "127.0.0.1" and ssh.public_fqdn == "localhost"
        assert indexes == {0, 1, 2}  # one frontend port of each range per node

        # A node that leaves frees its index; the next node takes the lowest free one.
        leaving = next(n for n in nodes if n.endpoint_configuration.inbound_endpoints[0].name.endswith(".1"))
        client.begin_remove_nodes(
            pool_id, m.BatchNodeRemoveOptions(node_ids=[leaving.id]), polling_interval=0.2
        ).result(timeout=60)
        wait_for(lambda: all(n.id != leaving.id for n in client.list_nodes(pool_id)), what="the node to leave")
        client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=0.2)
        newest = wait_for(
            lambda: next((n for n in client.list_nodes(pool_id) if n.id not in {x.id for x in nodes}), None),
            what="a new node",
        )
        assert sorted(e.name for e in newest.endpoint_configuration.inbound_endpoints) == ["app-udp.1", "ssh.1"]
    finally:
        delete_pool_quietly(client, pool_id)


def test_a_pool_without_nat_pools_has_no_node_endpoints(client: Any, unique: Unique) -> None:
    pool_id = unique("nonat")
    create_pool(client, pool_id, nodes=1)
    try:
        node = wait_for(lambda: next(iter(client.list_nodes(pool_id)), None), what="a node")
        assert node.endpoint_configuration is None
    finally:
        delete_pool_quietly(client, pool_id)


@pytest.mark.parametrize(
    ("nats", "extra", "prop", "reason"),
    [
        ([_nat("ssh", 29876, 15000, 15099)], {}, "[0].backendPort", "reserved"),
        ([_nat("ssh", 0, 15000, 15099)], {}, "[0].backendPort", "between 1 and 65535"),
        ([_nat("ssh", 22, 50000, 50100)], {}, "[0].frontendPortRangeStart", "reserved"),
        ([_nat("ssh", 22, 49000, 56000)], {}, "[0].frontendPortRangeEnd", "reserved"),
        ([_nat("ssh", 22, 15000, 15038)], {}, "[0].frontendPortRangeEnd", "at least 40 ports"),
        ([_nat("ssh", 22, 15000, 15099), _nat("web", 80, 15050, 15199)], {}, "[1].frontendPortRangeStart", "overlap"),
        ([_nat("ssh", 22, 15000, 15099), _nat("SSH", 80, 16000, 16099)], {}, "[1].name", "unique"),
        ([_nat("ssh", 22, 15000, 15099), _nat("web", 22, 16000, 16099)], {}, "[1].backendPort", "unique"),
        ([_nat("-ssh", 22, 15000, 15099)], {}, "[0].name", "start with a letter"),
        ([_nat(f"n{i}", 20 + i, 1000 + 100 * i, 1099 + 100 * i) for i in range(6)], {}, "", "at most 5"),
        (
            [
                _nat(
                    "ssh",
                    22,
                    15000,
                    15099,
                    network_security_group_rules=[
                        m.NetworkSecurityGroupRule(priority=100, access="allow", source_address_prefix="*")
                    ],
                )
            ],
            {},
            "[0].networkSecurityGroupRules[0].priority",
            "between 150 and 4096",
        ),
        (
            [
                _nat(
                    "ssh",
                    22,
                    15000,
                    15099,
                    network_security_group_rules=[
                        m.NetworkSecurityGroupRule(
                            priority=200,
                            access="deny",
                            source_address_prefix="*",
                            source_port_ranges=["100-200", "150"],
                        )
                    ],
                )
            ],
            {},
            "[0].networkSecurityGroupRules[0].sourcePortRanges[1]",
            "overlap",
        ),
        (
            [
                _nat(
                    "ssh",
                    22,
                    15000,
                    15099,
                    network_security_group_rules=[
                        m.NetworkSecurityGroupRule(priority=200, access="deny", source_address_prefix="not-an-ip")
                    ],
                )
            ],
            {},
            "[0].networkSecurityGroupRules[0].sourceAddressPrefix",
            "IP address",
        ),
        (
            [_nat("ssh", 22, 15000, 15099)],
            {
                "public_ip_address_configuration": m.BatchPublicIpAddressConfiguration(
                    ip_address_provisioning_type="nopublicipaddresses"
                )
            },
            "networkConfiguration.endpointConfiguration",
            "NoPublicIPAddresses",
        ),
    ],
)
def test_invalid_nat_pools_are_refused(
    client: Any, unique: Unique, nats: list[Any], extra: dict[str, Any], prop: str, reason: str
) -> None:
    pool_id = unique("badnat")
    with pytest.raises(HttpResponseError) as info:
        create_pool(client, pool_id, nodes=0, network_configuration=_network(*nats, **extra))
    assert info.value.status_code == 400
    assert error_code(info.value) == "InvalidPropertyValue"
    values = error_values(info.value)
    base = "networkConfiguration.endpointConfiguration.inboundNATPools"
    assert values["PropertyName"] == (prop if prop.startswith("networkConfiguration") else base + prop)
    assert reason in values["Reason"]
