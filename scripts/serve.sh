#!/usr/bin/env bash
# Install batchyard and run the service on its embedded defaults (loopback, development account).
# Any arguments are passed to `batchyard serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/progress.sh
scripts/setup.sh
# --azurite: a local Azurite (installed into .azurite/ with npm on first use) is the linked storage
# account, unless a storage account is configured (see README, Storage).
# As root, tasks run as users of their own, who must pass through to the node roots under the data
# directory: when this checkout sits below a directory they may not pass (/root, say), the data goes to
# /var/lib/batchyard instead (an explicit --data-dir is used as given).
data_dir=()
if [ "$(id -u)" = 0 ] && [[ " $* " != *" --data-dir"* ]]; then
    blocked=$(.venv/bin/python -c 'from pathlib import Path; from batchyard.agent.accounts import unreachable_parent as u; print(u(Path("batchyard-data").resolve()) or "")')
    if [ -n "$blocked" ]; then
        echo "batchyard: $blocked is closed to task users: keeping the service's data in /var/lib/batchyard" >&2
        data_dir=(--data-dir /var/lib/batchyard)
    fi
fi
step "starting the service (its first start installs Azurite with npm, about a minute)"
exec .venv/bin/batchyard serve --azurite "${data_dir[@]}" "$@"
