#!/usr/bin/env bash
# Install batchyard and run the service on its embedded defaults (loopback, development account).
# Any arguments are passed to `batchyard serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# --azurite: a local Azurite (installed into .azurite/ with npm on first use) is the linked storage
# account, unless a storage account is configured (see README, Storage).
exec .venv/bin/batchyard serve --azurite "$@"
