"""`batchyard serve` options for diagnostic logs (README, Diagnostic logs)."""

from __future__ import annotations

import argparse
import os

from batchyard.service.config import DiagnosticLogs

LINKED = "linked"  # the linked storage account (--storage-connection-string, --azurite, ...)
STREAM_ONLY = "stream"  # no storage account: records are kept for GET /_batchyard/events only


def add_diagnostic_options(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("diagnostic logs (Service Logs; off by default)")
    group.add_argument(
        "--diagnostic-logs",
        metavar="DESTINATION",
        help=(
            f"turn Service Logs on, written to the storage account: '{LINKED}' (the linked account), "
            f"a storage connection string (or BATCHYARD_DIAGNOSTIC_LOGS, which keeps its key off the command "
            f"line), or '{STREAM_ONLY}' (only the live stream GET /_batchyard/events)"
        ),
    )
    group.add_argument(
        "--diagnostic-subscription",
        default=DiagnosticLogs.subscription_id,
        help="the subscription id in the records' resourceId and the blob paths",
    )
    group.add_argument(
        "--diagnostic-resource-group",
        default=DiagnosticLogs.resource_group,
        help="the resource group in the records' resourceId and the blob paths",
    )


def diagnostic_logs(args: argparse.Namespace, linked_connection_string: str | None) -> DiagnosticLogs | None:
    """The diagnostic log settings the options ask for, or None (off). ValueError for an unusable choice."""
    destination = args.diagnostic_logs or os.environ.get("BATCHYARD_DIAGNOSTIC_LOGS")
    if not destination:
        return None
    if destination == LINKED:
        if linked_connection_string is None:
            raise ValueError(
                "--diagnostic-logs linked needs a linked storage account (--storage-connection-string, --azurite)"
            )
        target: str | None = linked_connection_string
    elif destination == STREAM_ONLY:
        target = None
    else:
        from batchyard.service.storage.linked import LinkedStorage

        LinkedStorage.from_connection_string(destination)  # StorageConfigError (a ValueError) when unusable
        target = destination
    return DiagnosticLogs(target, args.diagnostic_subscription, args.diagnostic_resource_group)
