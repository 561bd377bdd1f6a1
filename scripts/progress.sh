# Sourced by the setup scripts: `step WHAT` says what the next (possibly long) step does, on stderr, so
# that a first run is never silent for minutes. BATCHYARD_QUIET_SETUP=1 silences it.
step() {
    if [ "${BATCHYARD_QUIET_SETUP:-0}" != 1 ]; then echo "batchyard setup: $*" >&2; fi
}
