"""Inbound NAT pools: each node's inbound endpoints, and the contract's refusals, through the SDK."""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import create_job, create_pool, delete_pool_quietly, error_code, error_values
from tests.conftest import free_port, wait_for

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


def _free_range(size: int, above: int = 0) -> int:
    """The first of `size` consecutive ports nothing listens on, below the reserved 50000-55000."""
    for start in range(max(above, 20000 + os.getpid() % 1000 * 20), 50000 - size, size):
        try:
            with contextlib.ExitStack() as stack:
                for port in range(start, start + size):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
    raise AssertionError("no free port range")


def _ask(port: int, question: bytes, source_port: int = 0, host: str = "127.0.0.1") -> bytes | None:
    """Send through the frontend port, half-close, and read the whole answer; None until one comes."""
    try:
        with socket.create_connection((host, port), 5, (host, source_port)) as sock:
            sock.sendall(question)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            return answer or None
    except OSError:
        return None


# A server on the node: it answers each connection with what it was sent, once the client has sent it all.
_ECHO = (
    "python3 -c \"import socket; s = socket.create_server(('0.0.0.0', {port}))\n"
    "while True:\n"
    "    c, _ = s.accept(); d = b''\n"
    "    while (b := c.recv(4096)): d += b\n"
    "    c.sendall(b'node got ' + d); c.close()\""
)


def test_a_tcp_endpoint_reaches_its_node(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("natfwd"), unique("job")
    frontend, backend = _free_range(40), free_port()
    create_pool(client, pool_id, nodes=1, network_configuration=_network(_nat("app", backend, frontend, frontend + 39)))
    try:
        create_job(client, job_id, pool_id)
        command = "/bin/bash -c " + shlex.quote(_ECHO.format(port=backend))
        client.create_task(job_id, m.BatchTaskCreateOptions(id="server", command_line=command))
        wait_for(
            lambda: client.get_task(job_id, "server").state == "running" or None, timeout=60, what="the node's server"
        )
        answer = wait_for(lambda: _ask(frontend, b"hello"), what="an answer through the frontend port")
        assert answer == b"node got hello"
        assert _ask(frontend, b"x" * 300_000) == b"node got " + b"x" * 300_000  # more than one read's worth
    finally:
        client.begin_delete_job(job_id, polling_interval=0.2).result(timeout=30)
        client.begin_delete_pool(pool_id, polling_interval=0.2).result(timeout=60)
    # The node is gone: so is its frontend port.
    wait_for(lambda: _ask(frontend, b"anyone?") is None and _port_free(frontend) or None, what="the port to close")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_tcp_endpoints_security_rules_decide_who_connects(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("natnsg"), unique("job")
    frontend, backend = _free_range(40), free_port()
    allowed_source = _free_range(5, above=frontend + 40)
    # Only connections from the allowed source ports pass; everything else meets DenyAllInBound.
    rules = [
        m.NetworkSecurityGroupRule(
            priority=150,
            access="allow",
            source_address_prefix="127.0.0.0/8",
            source_port_ranges=[f"{allowed_source}-{allowed_source + 4}"],
        )
    ]
    nat = _nat("guarded", backend, frontend, frontend + 39, network_security_group_rules=rules)
    create_pool(client, pool_id, nodes=1, network_configuration=_network(nat))
    try:
        create_job(client, job_id, pool_id)
        command = "/bin/bash -c " + shlex.quote(_ECHO.format(port=backend))
        client.create_task(job_id, m.BatchTaskCreateOptions(id="server", command_line=command))
        wait_for(
            lambda: client.get_task(job_id, "server").state == "running" or None, timeout=60, what="the node's server"
        )
        answer = wait_for(lambda: _ask(frontend, b"let in", allowed_source + 1), what="an allowed answer")
        assert answer == b"node got let in"
        # The server answers: an ephemeral source port gets nothing, as no rule allows it.
        assert _ask(frontend, b"denied?") is None
        assert _ask(frontend, b"again", allowed_source + 2) == b"node got again"
    finally:
        client.begin_delete_job(job_id, polling_interval=0.2).result(timeout=30)
        delete_pool_quietly(client, pool_id)


def test_a_dual_stack_pool_has_ipv6_endpoints_and_login_that_reach_its_node(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("dual"), unique("job")
    frontend, backend = _free_range(40), free_port()
    network = _network(
        _nat("app", backend, frontend, frontend + 39),
        public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(ip_families=["IPv4", "IPv6"]),
    )
    create_pool(client, pool_id, nodes=1, network_configuration=network)
    try:
        create_job(client, job_id, pool_id)
        node = wait_for(lambda: next(iter(client.list_nodes(pool_id)), None), what="the node")
        assert node.ipv6_address == "::1"
        endpoints = node.endpoint_configuration.inbound_endpoints
        assert [(e.name, e.public_ip_address, e.frontend_port) for e in endpoints] == [
            ("app.0", "127.0.0.1", frontend),
            ("app.0", "::1", frontend),
        ]
        command = "/bin/bash -c " + shlex.quote(_ECHO.format(port=backend))
        client.create_task(job_id, m.BatchTaskCreateOptions(id="server", command_line=command))
        answer = wait_for(lambda: _ask(frontend, b"over v6", host="::1"), timeout=60, what="an answer over IPv6")
        assert answer == b"node got over v6"
        assert _ask(frontend, b"over v4") == b"node got over v4"

        # Remote login over IPv6 reaches the node's SSH server (its banner) through the service.
        login = client.get_node_remote_login_settings(pool_id, node.id)
        assert (login.ipv6_remote_login_ip_address, login.ipv6_remote_login_port) == ("::1", login.remote_login_port)
        banner = wait_for(lambda: _banner("::1", login.ipv6_remote_login_port), what="the SSH banner over IPv6")
        assert banner.startswith(b"SSH-2.0-")
    finally:
        client.begin_delete_job(job_id, polling_interval=0.2).result(timeout=30)
        client.begin_delete_pool(pool_id, polling_interval=0.2).result(timeout=60)


def test_a_pool_without_ipv6_has_no_ipv6_address_or_login(client: Any, unique: Unique) -> None:
    pool_id = unique("v4only")
    create_pool(client, pool_id, nodes=1)
    try:
        node = wait_for(
            lambda: next((n for n in client.list_nodes(pool_id) if n.state == "idle"), None), what="an idle node"
        )
        assert node.ipv6_address is None
        login = client.get_node_remote_login_settings(pool_id, node.id)
        assert login.ipv6_remote_login_ip_address is None and login.ipv6_remote_login_port is None
    finally:
        client.begin_delete_pool(pool_id, polling_interval=0.2).result(timeout=60)


def _banner(host: str, port: int) -> bytes | None:
    try:
        with socket.create_connection((host, port), 5) as sock:
            return sock.recv(64) or None
    except OSError:
        return None
