"""`batchyard serve`'s HTTPS: its options, the certificate it serves, and the second listener beside HTTP.

Both listeners belong to one uvicorn server in one event loop (one engine, one lifespan): the HTTPS one
is another asyncio server made with the same protocol factory, so the connection guard counts and limits
the connections of both together.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # cryptography takes tens of ms to import: only `serve` makes certificates
    from batchyard.service.tls import TlsFiles

SHUTDOWN_TIMEOUT = 1.0  # seconds a closing TLS connection waits for the peer's close_notify


def add_https_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--https-port",
        type=int,
        help="HTTPS port beside HTTP (default: --port + 1); bearer tokens and the identity provider are there",
    )
    serve.add_argument("--no-https", action="store_true", help="serve plain HTTP only (no bearer tokens)")
    serve.add_argument(
        "--tls-name",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name or address the local certificate covers (repeatable; loopback is always covered)",
    )
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate (chain) to serve instead of the local CA's")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")


def https_port(args: argparse.Namespace) -> int | None:
    """The HTTPS port asked for: None with --no-https; by default the HTTP port + 1 (any free one for port 0)."""
    if args.no_https:
        return None
    if args.https_port is not None:
        return int(args.https_port)
    return int(args.port) + 1 if args.port else 0


def certificate_files(args: argparse.Namespace, data_dir: Path) -> TlsFiles:
    """The user's certificate and key, or the local CA's certificate (made if need be) for the names asked for
    and the host of --public-url (which the HTTPS URL takes)."""
    from batchyard.service.tls import TlsError, TlsFiles, local_certificates, server_names

    if (args.tls_cert is None) != (args.tls_key is None):
        raise TlsError("--tls-cert and --tls-key go together")
    if args.tls_cert is not None:
        return TlsFiles(cert=args.tls_cert.resolve(), key=args.tls_key.resolve(), ca=None)
    public_host = urlsplit(args.public_url).hostname if args.public_url else None
    return local_certificates(data_dir, server_names(args.host, [*args.tls_name, *filter(None, [public_host])]))


def bind_https_socket(host: str, port: int) -> socket.socket:
    """The HTTPS listening socket, bound before the service starts: a port that cannot be had stops the start
    (OSError), and port 0 has its number known for the service's URLs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host.strip("[]"), port), family=family)


async def start_https_listener(
    server: Any, context: ssl.SSLContext, listening: socket.socket, handshake_timeout: float
) -> asyncio.Server:
    """Serve HTTPS on `listening` with `server`'s (a started `uvicorn.Server`) protocol, state and app. The
    handshake gets the time a connection has to send its headers: the connection guard only sees a TLS
    connection once its handshake is done."""
    config = server.config
    protocol_class: Any = config.http_protocol_class

    def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
        protocol: asyncio.Protocol = protocol_class(
            config=config, server_state=server.server_state, app_state=server.lifespan.state, _loop=_loop
        )
        return protocol

    return await asyncio.get_running_loop().create_server(
        create_protocol,
        sock=listening,
        ssl=context,
        backlog=config.backlog,
        ssl_handshake_timeout=handshake_timeout,
        # Closing a TLS connection waits for the peer's close_notify, 30 s by default: an idle client in a
        # connection pool never sends it, and a stopping service waits for its connections to close.
        ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
