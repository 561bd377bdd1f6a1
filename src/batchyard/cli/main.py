"""The `batchyard` command: `serve` runs the service, `agent` runs a compute node agent."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

from batchyard.agent.command import AGENT_HELP, add_agent_arguments, run_agent_command
from batchyard.cli.applications import add_application_commands, run_application_command
from batchyard.cli.autoscale import add_autoscale_commands, add_autoscale_options, autoscale_timing
from batchyard.cli.commands import register
from batchyard.cli.https import add_https_options
from batchyard.cli.nodes import add_node_commands, run_node_command
from batchyard.cli.principals import add_principal_commands, run_principal_command
from batchyard.cli.resources import RESOURCE_COMMANDS
from batchyard.cli.setup_commands import add_setup_commands, install_azurite, join_token
from batchyard.cli.slurm import add_slurm_options, slurm_options
from batchyard.cli.store import add_store_commands, run_store_command
from batchyard.service.config import (
    AUTHENTICATION_MODES,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT,
    Settings,
    SettingsError,
    Timing,
    account_from_environment,
    parse_authentication_modes,
)
from batchyard.service.data_dir import prepare as prepare_data_dir
from batchyard.service.diagnostics.options import add_diagnostic_options
from batchyard.service.storage.options import add_storage_options


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="batchyard", description="A self-hostable Azure Batch service.")
    parser.add_argument("--version", action="version", version=f"batchyard {version('batchyard')}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the Batch service")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default: {DEFAULT_PORT})")
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./batchyard-data"),
        help="where the service keeps its state, nodes and files (default: ./batchyard-data)",
    )
    serve.add_argument(
        "--database",
        default=os.environ.get("BATCHYARD_DATABASE"),
        help="keep the service's state in PostgreSQL at this postgresql:// URL (or BATCHYARD_DATABASE, which"
        " other local users cannot read as they can a command line) instead of SQLite in the data directory",
    )
    serve.add_argument("--account-name", help="account name (or BATCHYARD_ACCOUNT_NAME)")
    serve.add_argument(
        "--account-key",
        help="base64 account key (or BATCHYARD_ACCOUNT_KEY); other local users can read a command line: "
        "prefer --account-key-file",
    )
    serve.add_argument(
        "--account-key-file",
        type=Path,
        help="file whose first line is the base64 account key (or BATCHYARD_ACCOUNT_KEY_FILE)",
    )
    serve.add_argument("--public-url", help="URL clients and nodes use to reach the service")
    serve.add_argument(
        "--peer-url",
        action="append",
        default=[],
        help="(with --database) the URL of another service instance on the same database, repeated for each:"
        " one instance is active, the others stand by; node agents try every URL in turn",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=("debug", "info", "warning", "error", "critical"),
        help="the service log's threshold (default: info)",
    )
    serve.add_argument(
        "--adjustable-clock",
        action="store_true",
        help="for tests: let signed POST /_batchyard/clock {advanceSeconds} move the service's clock forward",
    )
    serve.add_argument("--job-quota", type=int, default=300, help="active jobs and job schedules together")
    serve.add_argument("--pool-quota", type=int, default=100, help="pools the account may have, auto pools included")
    serve.add_argument(
        "--account-quota",
        type=int,
        default=3,
        help="Batch accounts the service may have, its own included (made with the management plane)",
    )
    serve.add_argument("--core-quota", type=int, default=500, help="dedicated cores all pools may hold")
    serve.add_argument(
        "--low-priority-core-quota", type=int, default=100, help="Spot/low-priority cores all pools may hold"
    )
    serve.add_argument(
        "--node-lost-grace",
        type=float,
        default=Timing.node_lost_grace,
        help="seconds before a node whose agent is gone becomes unusable",
    )
    serve.add_argument(
        "--adopt-grace",
        type=float,
        default=Timing.adopt_grace,
        help="seconds a restarted service waits for running agents to reconnect",
    )
    serve.add_argument(
        "--metrics-token-file",
        type=Path,
        help="a file whose first line is the bearer token GET /metrics asks for (without it, /metrics is open)",
    )
    serve.add_argument(
        "--agent-lease",
        type=float,
        default=Timing.agent_lease,
        help="seconds an agent on another host may be cut off from the service before it ends its runs"
        " (the service requeues them only after that)",
    )
    serve.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=Timing.heartbeat_timeout,
        help="seconds of silence (no heartbeat) after which a node's agent counts as lost",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="open HTTP connections and agent WebSockets together (fewer if the open-file limit is low)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        help="seconds a connection may take to send a request's headers (from its start or its last answer)",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=int,
        default=DEFAULT_KEEP_ALIVE_TIMEOUT,
        help="seconds an idle keep-alive connection stays open after an answer",
    )

    serve.add_argument(
        "--authentication-modes",
        default=",".join(AUTHENTICATION_MODES),
        help="the account's allowedAuthenticationModes, comma-separated: SharedKey, AAD (bearer tokens), "
        "TaskAuthenticationToken (default: all; /_batchyard/ routes take the account key whatever they are)",
    )
    add_https_options(serve)
    add_storage_options(serve)
    add_diagnostic_options(serve)
    add_autoscale_options(serve)
    add_slurm_options(serve)
    add_application_commands(commands)
    add_autoscale_commands(commands)
    add_node_commands(commands)
    add_principal_commands(commands)
    add_store_commands(commands)
    register(commands, RESOURCE_COMMANDS)

    add_agent_arguments(commands.add_parser("agent", help=AGENT_HELP))

    add_setup_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "resource_command", None) is not None:
        from batchyard.cli.commands import run

        return run(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "join-token":
        return join_token(args)
    if args.command == "install-azurite":
        return install_azurite()
    if args.command == "nodes":
        return run_node_command(args)
    if args.command == "principals":
        return run_principal_command(args)
    if args.command == "applications":
        return run_application_command(args)
    if args.command == "store":
        return run_store_command(args)
    if args.command == "autoscale":
        from batchyard.cli.autoscale import run_autoscale_command

        return run_autoscale_command(args)
    return run_agent_command(args)


def _serve(args: argparse.Namespace) -> int:
    from batchyard.service.log_filter import RepeatedMessageFilter

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The storage SDK logs each request at INFO (the diagnostic log shipper sends some every second).
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        # a flood of one error (say "Too many open files" on every accept) must not fill the disk
        handler.addFilter(RepeatedMessageFilter())
    try:
        name, keys = account_from_environment(args.account_name, args.account_key, args.host, args.account_key_file)
        modes = parse_authentication_modes(args.authentication_modes)
    except SettingsError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 2
    if args.account_key:
        logging.getLogger("batchyard").warning(
            "--account-key shows the key to every local user (/proc/<pid>/cmdline): use --account-key-file"
        )
    if problem := prepare_data_dir(args.data_dir):
        print(f"batchyard: {problem}", file=sys.stderr)
        return 2
    from batchyard.service.metrics import read_token

    try:
        metrics_token = read_token(args.metrics_token_file)
    except (OSError, ValueError) as exc:
        print(f"batchyard: --metrics-token-file: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir.resolve(),
        database=args.database or None,
        account_name=name,
        account_keys=keys,
        public_url=args.public_url,
        timing=Timing(
            node_lost_grace=args.node_lost_grace,
            adopt_grace=args.adopt_grace,
            heartbeat_timeout=args.heartbeat_timeout,
            agent_lease=args.agent_lease,
        ),
        pool_quota=args.pool_quota,
        account_quota=args.account_quota,
        core_quota=args.core_quota,
        low_priority_core_quota=args.low_priority_core_quota,
        adjustable_clock=args.adjustable_clock,
        job_quota=args.job_quota,
        autoscale=autoscale_timing(args),
        metrics_token=metrics_token,
        slurm=slurm_options(args),
        authentication_modes=modes,
        peer_urls=tuple(args.peer_url),
    )
    from batchyard.service.storage.azurite import AzuriteError
    from batchyard.service.storage.linked import StorageConfigError
    from batchyard.service.storage.options import start_storage

    try:
        storage, azurite = start_storage(args, settings.data_dir)
    except (StorageConfigError, AzuriteError) as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 2
    from batchyard.service.diagnostics.options import diagnostic_logs

    try:
        diagnostics = diagnostic_logs(args, storage.connection_string if storage else None)
    except ValueError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        if azurite is not None:
            azurite.stop()
        return 2
    settings = dataclasses.replace(
        settings,
        storage_connection_string=storage.connection_string if storage else None,
        diagnostic_logs=diagnostics,
        application_quota=args.application_quota,
        package_quota=args.package_quota,
    )
    try:
        return _run_server(args, settings, name, keys)
    finally:
        if azurite is not None:
            azurite.stop()


def _run_server(args: argparse.Namespace, settings: Settings, name: str, keys: tuple[str, ...]) -> int:
    import uvicorn

    from batchyard.cli.https import bind_https_socket, certificate_files, https_port
    from batchyard.service.access_log import AccessLog
    from batchyard.service.app import build_service, close_event_streams
    from batchyard.service.connections import (
        ConnectionGuard,
        connection_limits,
        guarded_protocol,
        raise_open_file_limit,
    )
    from batchyard.service.persistence.schema import StoreError
    from batchyard.service.tls import TlsError, server_context

    if args.max_connections < 1 or args.header_timeout <= 0 or args.keep_alive_timeout < 1:
        print("batchyard: --max-connections, --header-timeout, --keep-alive-timeout must be positive", file=sys.stderr)
        return 2
    open_files = raise_open_file_limit()
    max_connections, backlog = connection_limits(args.max_connections, open_files)
    if max_connections < args.max_connections:
        logging.getLogger("batchyard").warning(
            "at most %d connections (not --max-connections %d): the open-file limit is %d",
            max_connections,
            args.max_connections,
            open_files,
        )
    https: tuple[ssl.SSLContext, socket.socket] | None = None
    ready = [f"batchyard: Batch service listening on {settings.base_url} (account {name})"]
    port = https_port(args)
    if port is not None:
        try:
            files = certificate_files(args, settings.data_dir)
            https = server_context(files), bind_https_socket(args.host, port)
        except (TlsError, OSError) as exc:
            print(f"batchyard: HTTPS on port {port}: {exc}", file=sys.stderr)
            return 2
        settings = dataclasses.replace(settings, https_port=https[1].getsockname()[1])
        trust = f"clients trust the CA {files.ca}" if files.ca else f"certificate {files.cert}"
        ready.append(f"batchyard: HTTPS on {settings.https_url} ({trust})")
    try:
        app = build_service(settings)
    except StoreError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 2
    if settings.uses_dev_account:
        print(f"batchyard: using the well-known development account {name} with key {keys[0]}", flush=True)
    config = uvicorn.Config(
        AccessLog(app),
        host=args.host,
        port=args.port,
        log_level="warning",
        log_config=None,  # uvicorn's messages go through the service's handler (its format, its filter)
        access_log=False,  # batchyard.access instead: uvicorn's shows query strings (SAS signatures too)
        lifespan="on",
        http=guarded_protocol(ConnectionGuard(max_connections, args.header_timeout)),
        timeout_keep_alive=args.keep_alive_timeout,
        backlog=backlog,
        ws="websockets-sansio",  # the legacy websockets implementation warns at every start
        ws_per_message_deflate=False,  # agents are on a local or trusted link; compression costs CPU per task
        # X-Forwarded-* headers are not trusted (uvicorn trusts them from 127.0.0.1): a local client could
        # otherwise make a plain-HTTP request count as HTTPS, where bearer tokens are taken.
        proxy_headers=False,
    )
    server = _server_class()(config, "\n".join(ready), https, args.header_timeout, lambda: close_event_streams(app))
    server.run()
    return 0


def _server_class() -> type:
    import uvicorn

    from batchyard.cli.https import start_https_listener
    from batchyard.service.connections import widen_listen_queue

    class Server(uvicorn.Server):
        """Prints the endpoints when ready, HTTPS beside HTTP; a stop by SIGTERM/SIGINT is a clean exit (0)."""

        def __init__(
            self,
            config: uvicorn.Config,
            ready_message: str,
            https: tuple[ssl.SSLContext, socket.socket] | None,
            handshake_timeout: float,
            before_shutdown: Callable[[], None] | None = None,
        ) -> None:
            super().__init__(config)
            self.before_shutdown = before_shutdown
            self.ready_message = ready_message
            self.https = https
            self.handshake_timeout = handshake_timeout

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                if self.https is not None:
                    context, listening = self.https
                    self.servers.append(await start_https_listener(self, context, listening, self.handshake_timeout))
                widen_listen_queue(self.servers)  # config.backlog is how many are accepted in one go
                print(self.ready_message, flush=True)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if self.before_shutdown is not None:
                self.before_shutdown()  # ends the event streams, which the shutdown would otherwise wait for
            await super().shutdown(sockets)
            self._captured_signals.clear()

    return Server


if __name__ == "__main__":
    sys.exit(main())
