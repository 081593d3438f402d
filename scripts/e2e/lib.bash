# shellcheck shell=bash
# Helpers for the end-to-end tests: the real binary ($MSHMON_BIN), a real mosquitto on a free
# loopback port (stopped by PID), checks that count passes and failures. Source it.
set -u
MSHMON=${MSHMON_BIN:?set MSHMON_BIN to the mshmon binary}
WORK=$(mktemp -d /tmp/mshmon-e2e.XXXXXX)
chmod 755 "$WORK"
PASSED=0
FAILED=0
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${KEEP_E2E:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

pass() { PASSED=$((PASSED + 1)); echo "  ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; return 1; fi; }
finish() { echo "$(basename "$0"): $PASSED passed, $FAILED failed"; [ "$FAILED" = 0 ]; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_mosquitto PORT [config lines...] -> MOSQ_PID
start_mosquitto() {
    local port=$1; shift
    local conf=$WORK/mosquitto-$port.conf
    { echo "listener $port 127.0.0.1"; echo "persistence false"; echo "log_dest none"
      local l; local anon=1
      for l in "$@"; do echo "$l"; case $l in allow_anonymous*) anon=0;; esac; done
      [ $anon = 1 ] && echo "allow_anonymous true"; } > "$conf"
    chmod 644 "$conf"
    /usr/sbin/mosquitto -c "$conf" > "$WORK/mosquitto-$port.log" 2>&1 &
    MOSQ_PID=$!
    PIDS+=("$MOSQ_PID")
    wait_listening "$port" || { echo "mosquitto did not start"; cat "$WORK/mosquitto-$port.log"; return 1; }
}

wait_listening() {
    local i
    for i in $(seq 1 100); do
        ss -Hltn "( sport = :$1 )" | grep -q LISTEN && return 0
        sleep 0.05
    done
    return 1
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds or time runs out.
wait_for() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) + limit * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$end" ]; do "$@" && return 0; sleep 0.1; done
    "$@"
}
