#!/usr/bin/env bash
# Install batchyard and run the service on its embedded defaults (loopback, development account).
# Any arguments are passed to `batchyard serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/batchyard serve "$@"
