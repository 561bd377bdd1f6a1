#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: lint, types, the main suite with the current
# SDK (azure-batch 15.x) and azure-cli, and the compatibility suite with the legacy SDK (azure-batch 14.2.0).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/progress.sh
scripts/setup.sh test || exit 1
# The storage tests run Azurite (npm package, pinned in .azurite/package.json): install it once, up front.
step "installing Azurite (npm, pinned in .azurite/package.json)"
.venv/bin/batchyard install-azurite >/dev/null || exit 1
# Components the tests need are installed here; where the machine can install them (root, Debian), a
# failure stops the run rather than letting their tests skip unnoticed.
can_install=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then can_install=1; fi
# The MPI tests (tests/api/test_multi_instance_mpi.py): MPICH from Debian, mpi4py built against it.
if ! command -v mpicc >/dev/null && [ $can_install = 1 ]; then
    step "installing Debian's MPICH (MPI tests)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        mpich libmpich-dev python3-dev >/dev/null) || { echo "MPICH could not be installed" >&2; exit 1; }
fi
if command -v mpicc >/dev/null && ! .venv/bin/python -c "from mpi4py import MPI" 2>/dev/null; then
    # From source: the PyPI wheel looks for libmpi.so.12, which Debian's MPICH names libmpich.so.12.
    step "building mpi4py against MPICH (a few minutes the first time; pip caches the wheel)"
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-binary mpi4py --force-reinstall mpi4py \
        || { echo "mpi4py could not be installed" >&2; exit 1; }
fi
# Tasks as their users (tests/api/test_task_users.py) name them through nss_wrapper (scripts/setup.sh
# installs it as root) and start them through util-linux's setpriv.
if [ $can_install = 1 ] && ! ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1; then
    echo "libnss-wrapper is missing after scripts/setup.sh" >&2
    exit 1
fi
if [ $can_install = 1 ] && ! command -v setpriv >/dev/null; then
    step "installing Debian's util-linux (setpriv)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux >/dev/null \
        || { echo "util-linux (setpriv) could not be installed" >&2; exit 1; }
fi
# The Slurm provider's tests (tests/api/test_slurm_*.py) start a single-host Slurm cluster of their own
# (tests/slurm_cluster.py) from Debian's slurm-wlm and munge.
if [ $can_install = 1 ] && ! { command -v slurmctld && command -v slurmd && command -v munged; } >/dev/null; then
    step "installing Debian's slurm-wlm and munge (Slurm provider tests)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge >/dev/null) || { echo "slurm-wlm and munge could not be installed" >&2; exit 1; }
fi
# The dashboard's browser tests (tests/api/test_dashboard.py) drive Debian's Chromium through Debian's
# chromedriver (Selenium is given its path, so it never downloads a driver).
if [ $can_install = 1 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
    step "installing Debian's chromium and chromium-driver (dashboard tests)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null) || { echo "chromium and chromium-driver could not be installed" >&2; exit 1; }
fi
# Windows pools' command lines (tests/api/test_windows_pools.py) run through Debian's Wine: `wine` has the
# command, `wine64` the 64-bit Wine it starts.
if [ $can_install = 1 ] && ! command -v wine >/dev/null; then
    step "installing Debian's wine and wine64 (Windows pool tests)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        wine wine64 >/dev/null) || { echo "wine and wine64 could not be installed" >&2; exit 1; }
fi
# Container workloads (tests/api/test_containers.py, test_container_registry.py): rootful podman with runc
# (the agents write their own containers.conf: runc, no default ulimits), busybox-static for the test image,
# and Debian's docker-registry with apache2-utils' htpasswd for a registry on the loopback. Nothing is
# pulled from the internet.
if [ $can_install = 1 ] && ! { command -v podman && command -v runc && command -v docker-registry \
        && command -v htpasswd && dpkg-query -W -f='${Status}' busybox-static | grep " installed"; } >/dev/null 2>&1; then
    step "installing Debian's podman, runc, busybox-static, docker-registry, apache2-utils (container tests)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc busybox-static docker-registry apache2-utils >/dev/null) \
        || { echo "podman, runc, busybox-static, docker-registry or apache2-utils could not be installed" >&2; exit 1; }
fi
# The PostgreSQL store's tests (tests/unit/test_store_*.py, tests/unit/test_postgres_filters.py, and the API tests
# run again with --store postgresql below) start a cluster of Debian's server in a temporary directory.
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    if [ $can_install = 1 ]; then
        step "installing Debian's postgresql (PostgreSQL store tests)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            postgresql >/dev/null) || { echo "PostgreSQL could not be installed" >&2; exit 1; }
    else
        echo "PostgreSQL is missing: install Debian's postgresql package (as root: apt-get install postgresql)" >&2
        exit 1
    fi
fi
if [ ! -x .venv-legacy/bin/python ]; then
    python3 -m venv .venv-legacy || exit 1
fi
step "installing azure-batch 14.2.0 into .venv-legacy (legacy SDK tests)"
.venv-legacy/bin/python -m pip install -q --disable-pip-version-check "azure-batch==14.2.0" pytest httpx -e . || exit 1
# azure-cli for tests/api/test_azure_cli.py: large, and it pins its own azure-batch, so in an environment of
# its own, installed once and kept (like .venv-legacy). A failed install stops the run.
AZURE_CLI_VERSION=2.91.0
# (sed reads pip's whole answer: `grep -q` would stop reading at the match, and under pipefail pip's
# SIGPIPE made an installed azure-cli look missing)
if [ "$(.venv-az/bin/python -m pip show azure-cli 2>/dev/null | sed -n 's/^Version: //p')" != "$AZURE_CLI_VERSION" ]; then
    step "installing azure-cli $AZURE_CLI_VERSION into .venv-az (a few minutes the first time)"
    (python3 -m venv .venv-az \
        && .venv-az/bin/python -m pip install -q --disable-pip-version-check "azure-cli==$AZURE_CLI_VERSION") \
        || { rm -rf .venv-az; echo "azure-cli $AZURE_CLI_VERSION could not be installed" >&2; exit 1; }
fi

status=0
step "lint, format and types (ruff, mypy)"
.venv/bin/ruff check src tests examples benchmarks || status=1
.venv/bin/ruff format --check src tests examples benchmarks || status=1
.venv/bin/mypy src || status=1  # settings in pyproject.toml: strict on the pure core
# Two workers (pytest-xdist): each test file runs whole in one of them, with its own services on free ports;
# files sharing a machine-wide component (podman, Slurm) run in one worker (tests/conftest.py).
# BATCHYARD_TEST_WORKERS=0 runs in one process.
step "the main suite"
workers=(-n "${BATCHYARD_TEST_WORKERS:-2}" --dist loadgroup)
.venv/bin/python -m pytest tests --ignore=tests/legacy -q "${workers[@]}" "$@" || status=1
# The same service on the PostgreSQL store: the API tests of what it keeps (609 tests, 80 s on a quiet machine).
# (Failover, tests/api/test_failover.py, needs two instances on one database: it starts them on the cluster
# whatever --store says, so it runs in the main pass above, as test_postgres_store.py does.)
step "the PostgreSQL pass"
.venv/bin/python -m pytest -q "${workers[@]}" --store postgresql tests/api/test_pools.py tests/api/test_jobs.py \
    tests/api/test_tasks.py tests/api/test_lists.py tests/api/test_dependencies.py tests/api/test_durability.py \
    "$@" || status=1
step "the legacy SDK suite"
.venv-legacy/bin/python -m pytest tests/legacy -q "$@" || status=1
exit $status
