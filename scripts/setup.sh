#!/usr/bin/env bash
# Create the project's virtual environment and install batchyard into it (idempotent).
# Usage: scripts/setup.sh [extra ...]   e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/progress.sh
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "batchyard needs Python 3.11 or newer" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    step "creating the virtual environment .venv"
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian ships venv separately.
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$PYTHON" -m venv .venv
    fi
fi
extras=""
if [ $# -gt 0 ]; then extras="[$(IFS=,; echo "$*")]"; fi
step "installing batchyard${extras} and its Python packages into .venv (about a minute the first time)"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
# SFTP on the nodes' SSH servers: Debian's sftp-server, and nss_wrapper so that it runs as the uids
# given to node users (see src/batchyard/agent/accounts.py). Installed only where we can (root).
if [ ! -x /usr/lib/openssh/sftp-server ] || ! ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing Debian's openssh-sftp-server and libnss-wrapper (SFTP on the nodes)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            openssh-sftp-server libnss-wrapper >/dev/null) || echo "openssh-sftp-server not installed: no SFTP on nodes" >&2
    else
        echo "note: install openssh-sftp-server and libnss-wrapper for SFTP on the nodes' SSH servers" >&2
    fi
fi
# Container pools (README, Container workloads): the local nodes run their containers with rootful podman
# and runc (the agents write their own containers.conf). Installed only where we can (root).
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing Debian's podman and runc (container pools)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            podman runc >/dev/null) || echo "podman not installed: container pools' nodes will be unusable" >&2
    else
        echo "note: install podman and runc (as root) for pools with a containerConfiguration" >&2
    fi
fi
