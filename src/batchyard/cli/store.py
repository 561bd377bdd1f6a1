"""`batchyard store migrate --to URL`: a SQLite data directory's state into an empty PostgreSQL database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_store_commands(commands: Any) -> None:
    store = commands.add_parser("store", help="the service's store (SQLite or PostgreSQL)")
    actions = store.add_subparsers(dest="store_command", required=True)
    migrate = actions.add_parser(
        "migrate",
        help="copy a stopped service's SQLite state (its data directory) into an empty PostgreSQL database;"
        " then run `serve --data-dir DIR --database URL`",
    )
    migrate.add_argument(
        "--data-dir", type=Path, default=Path("./batchyard-data"), help="the data directory of the SQLite store"
    )
    migrate.add_argument("--to", required=True, metavar="URL", help="the target database (postgresql://...)")


def run_store_command(args: argparse.Namespace) -> int:
    from batchyard.service.persistence.open import POSTGRES_SCHEMES
    from batchyard.service.persistence.schema import StoreError

    if not args.to.startswith(POSTGRES_SCHEMES):
        print("batchyard: --to takes a PostgreSQL URL (postgresql://user@host:port/name)", file=sys.stderr)
        return 2
    try:
        from batchyard.service.persistence.move import copy_to_postgres

        copied = copy_to_postgres(args.data_dir / "batchyard.db", args.to)
    except ImportError as exc:
        print(f"batchyard: PostgreSQL needs psycopg 3: pip install 'batchyard[postgres]' ({exc})", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"batchyard: {exc}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{count} {table}" for table, count in copied.items() if count)
    print(f"copied {summary or 'nothing'}")
    print(
        f"start the service with --data-dir {args.data_dir} --database <the URL> (its nodes' directories stay in"
        " the data directory); batchyard.db there is no longer used and may be removed"
    )
    return 0
