#!/usr/bin/env bash
# End to end: `mshmon cycle` watching other people's clients — a C client on libmosquitto
# (Tests/Targets/mqtt_cycler.c: clean and three leaks), mosquitto_sub launched and kicked,
# a running mosquitto_sub by --pid — with the verdict naming each leak and its owner, the
# exit status, and bad input.
cd "$(dirname "$0")" && . ./lib.bash

CYCLER=$WORK/mqtt_cycler
# Frame pointers, as a distribution builds many clients: the tap's sites are then stacks, so
# --alloc-wrapper can skip a wrapper frame. 20 ms between cycles unless said otherwise.
gcc -O2 -fno-omit-frame-pointer -Wall -o "$CYCLER" ../../Tests/Targets/mqtt_cycler.c -lmosquitto -lpthread || { fail "the C test client compiles (gcc, libmosquitto-dev)"; finish; exit 1; }

echo "target: a C client on libmosquitto"
out=$(timeout 180 "$MSHMON" cycle -n 200 --settle 10 --quiet -- "$CYCLER" {host} {port} clean 20 2>&1); rc=$?
check "clean: 200 cycles, exit 0 (exit $rc)" [ $rc = 0 ]
check "clean: no leak over 200 cycles" grep -q '^verdict: no leak over 200 cycles' <<<"$out"
check "clean: the heap comes from the tap" grep -qx 'mshmon_heap_source: heap: tap (per call site)' <<<"$out"

out=$(timeout 60 "$MSHMON" cycle -n 20 --settle 10 --quiet -- "$CYCLER" {host} {port} leak-heap 20 2>&1); rc=$?
check "leak-heap: exit 3 within 20 cycles (exit $rc)" [ $rc = 3 ]
check "leak-heap: 2 blocks x 20 B per cycle from mqtt_clean_session" \
    grep -q '^verdict: LEAK heap +40.00 B/cycle: 2.00 blocks × 20 B per cycle from mqtt_clean_session (mqtt_cycler)' <<<"$out"

out=$(timeout 60 "$MSHMON" cycle -n 20 --settle 10 --quiet -- "$CYCLER" {host} {port} leak-socket 20 2>&1); rc=$?
check "leak-socket: exit 3 within 20 cycles (exit $rc)" [ $rc = 3 ]
check "leak-socket: CLOSE_WAIT per cycle, with the broker's address" grep -Eq '^verdict: LEAK fds \+[0-9.]+/cycle \(socket, CLOSE_WAIT \+1.00/cycle to 127.0.0.1:[0-9]+\)' <<<"$out"

out=$(timeout 60 "$MSHMON" cycle -n 20 --settle 10 --quiet -- "$CYCLER" {host} {port} leak-thread 20 2>&1); rc=$?
check "leak-thread: exit 3 within 20 cycles (exit $rc)" [ $rc = 3 ]
check "leak-thread: the thread's name" grep -Eq '^verdict: LEAK threads \+1.00/cycle \(leaky-worker \+[0-9.]+/cycle\)' <<<"$out"

# 2 ms between cycles: faster than a sample, so a sample covers several cycles; the rates stay per cycle.
out=$(timeout 60 "$MSHMON" cycle -n 300 --settle 10 --quiet -- "$CYCLER" {host} {port} leak-heap 2 2>&1); rc=$?
check "a client faster than sampling: exit 3 (exit $rc)" [ $rc = 3 ]
# A sample can be a cycle or so ahead of its number (cycles close while it is taken): within 1.25 % over 300 cycles.
check "a client faster than sampling: 40 B and 2 blocks x 20 B per cycle, within 1.25 %" \
    grep -Eq '^verdict: LEAK heap \+(39\.[5-9][0-9]|40\.[0-4][0-9]) B/cycle: (1\.9[5-9]|2\.0[0-5]) blocks × 20 B per cycle from mqtt_clean_session \(mqtt_cycler\)' <<<"$out"
out=$(timeout 60 "$MSHMON" cycle -n 300 --settle 10 --quiet -- "$CYCLER" {host} {port} clean 2 2>&1); rc=$?
check "a clean client faster than sampling: exit 0, no leak (exit $rc: $out)" sh -c "[ $rc = 0 ] && grep -q '^verdict: no leak over 30[0-9] cycles' <<'O'
$out
O"

echo "target: an allocation wrapper"
out=$(timeout 60 "$MSHMON" cycle -n 20 --settle 10 --quiet -- "$CYCLER" {host} {port} leak-wrapped 20 2>&1)
check "a wrapper not named as one is the site without --alloc-wrapper" grep -q ' per cycle from pool_get (mqtt_cycler)$' <<<"$out"
out=$(timeout 60 "$MSHMON" cycle -n 20 --settle 10 --quiet --alloc-wrapper pool_get -- "$CYCLER" {host} {port} leak-wrapped 20 2>&1)
check "--alloc-wrapper pool_get: the site is its caller" grep -q '^verdict: LEAK heap +40.00 B/cycle: 2.00 blocks × 20 B per cycle from session_store (mqtt_cycler)$' <<<"$out"

out=$(timeout 60 "$MSHMON" cycle -n 10 --settle 10 --json -- "$CYCLER" {host} {port} clean 100 2>&1); rc=$?
check "--json: exit 0, the target and the heap source in the report" sh -c "[ $rc = 0 ] && tail -n 1 <<'J' | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"cycles\"]==10 and r[\"heapSource\"]==\"tap\" and r[\"target\"].startswith(\"target pid \"), r'
$out
J"

E=$WORK/target
timeout 60 "$MSHMON" cycle -n 6 --settle 10 --export "$E.log" --export "$E.csv" -- "$CYCLER" {host} {port} leak-heap 100 > /dev/null 2>&1
check "export: the transcript holds the target's output" grep -q '\] target: cycle 1 done$' "$E.log"
check "export: the transcript's memtrace names the call site" grep -Eq '^\[0x[0-9a-f]{12} - +[0-9]+\] mqtt mqtt_clean_session \(mqtt_cycler\), [0-9]+ blocks$' "$E.log"
check "export: one CSV row per cycle" [ "$(grep -c '^20' "$E.csv")" = 6 ]

# Output on a pseudo-terminal: a program's stdio writes each line as it comes (to a pipe it
# would keep it in a 4 KiB buffer until exit), so it lands in the transcript before the cycles.
timeout 30 "$MSHMON" cycle --every 200ms -n 3 --export "$E-py.log" -- python3 -c "print('hello from the target'); import time; time.sleep(30)" > /dev/null 2>&1
check "a target's line is in the transcript as it prints it, before the first cycle" \
    sh -c "grep -n -e '] target: hello from the target\$' -e '] cycle 1: ' '$E-py.log' | head -n 1 | grep -q hello"

echo "target: mosquitto_sub, launched and kicked"
# libmosquitto waits 1 s before it reconnects: 100 kicked cycles take about 100 s.
out=$(timeout 240 "$MSHMON" cycle -n 100 --kick-every 200ms --settle 20 --quiet -- mosquitto_sub -h {host} -p {port} -t 'mshmon/#' -i mshmon-e2e-sub 2>&1); rc=$?
check "kicked every 200 ms: 100 reconnects, exit 0 (exit $rc)" [ $rc = 0 ]
check "kicked every 200 ms: no leak over 100 cycles" grep -q '^verdict: no leak over 100 cycles' <<<"$out"
check "no mosquitto_sub left running" sh -c "! pgrep -f 'mshmon-e2e-su[b]' >/dev/null"

echo "target: a client of another broker (mosquitto), its connections seen by polling"
PORT=$(free_port)
start_mosquitto "$PORT" || exit 1
# 60 ms connected (polled every 20 ms), 150 ms apart: each sample falls between two cycles.
out=$(CYCLER_HOLD_MS=60 timeout 60 "$MSHMON" cycle --broker "mqtt://127.0.0.1:$PORT" -n 12 --settle 10 -- "$CYCLER" 127.0.0.1 "$PORT" leak-heap 150 2>&1); rc=$?
check "--broker: cycles seen at mosquitto's address (exit $rc)" grep -q "^mshmon: watching target pid [0-9]* .*; cycles seen at .*127.0.0.1:$PORT" <<<"$out"
check "--broker: 12 cycles, the heap leak named, exit 3 (exit $rc)" sh -c "[ $rc = 3 ] && grep -q '^verdict: LEAK heap +40.00 B/cycle: 2.00 blocks × 20 B per cycle from mqtt_clean_session (mqtt_cycler)' <<'O'
$out
O"

echo "target: --pid of a client started by hand under the tap (LD_PRELOAD, MSHMON_TAP_FILE)"
TAPFILE=$(mktemp /dev/shm/mshmon-e2e-tap.XXXXXX)
MSHMON_TAP_FILE=$TAPFILE LD_PRELOAD="$(dirname "$MSHMON")/libmshmontap.so" "$CYCLER" 127.0.0.1 "$PORT" leak-heap 20 > /dev/null 2>&1 &
HANDPID=$!
PIDS+=("$HANDPID")
wait_for 5 sh -c "'$MSHMON' memtrace --pid $HANDPID | grep -q mqtt_clean_session"
check "memtrace --pid: the call sites, from its table" sh -c "'$MSHMON' memtrace --pid $HANDPID | grep -Eq '^\[0x[0-9a-f]+ - +[0-9]+\] mqtt mqtt_clean_session \(mqtt_cycler\), [0-9]+ blocks$'"
out=$(timeout 60 "$MSHMON" cycle --pid "$HANDPID" --every 200ms -n 10 --quiet 2>&1); rc=$?
check "cycle --pid --every: the heap leak and its site, from the tap (exit $rc)" sh -c "[ $rc = 3 ] && grep -q '^mshmon_heap_source: heap: tap (per call site)$' <<'O'
$out
O
grep -q 'per cycle from mqtt_clean_session (mqtt_cycler)' <<'O'
$out
O"
kill "$HANDPID"; wait "$HANDPID" 2>/dev/null
check "the table is left to whoever made it" [ -e "$TAPFILE" ]
rm -f "$TAPFILE"

echo "target: a running mosquitto_sub by --pid"
mosquitto_sub -p "$PORT" -t 'x/#' -i mshmon-e2e-pid > /dev/null 2>&1 &
SUB=$!
PIDS+=("$SUB")
wait_for 5 sh -c "ss -Htn state established '( dport = :$PORT )' | grep -q ."
out=$("$MSHMON" netstat --pid "$SUB" 2>&1)
check "netstat --pid: its connection to mosquitto" grep -Eq "^#0 127.0.0.1:[0-9]+ <==> 127.0.0.1:$PORT .*state: ESTABLISHED$" <<<"$out"
check "list_fd --pid: its socket" sh -c "'$MSHMON' list_fd --pid $SUB | grep -Eq '^ *[0-9]+ socket '"
check "free --pid: figures from smaps_rollup" sh -c "'$MSHMON' free --pid $SUB | grep -Eq '^used memory : [1-9][0-9]*$'"
check "memtrace --pid: says there is no tap" sh -c "'$MSHMON' memtrace --pid $SUB | grep -q 'no heap tap'"
out=$(timeout 60 "$MSHMON" cycle --pid "$SUB" --every 100ms -n 8 --quiet 2>&1); rc=$?
check "cycle --pid --every: 8 samples, exit 0 (exit $rc)" [ $rc = 0 ]
check "cycle --pid: the heap source is named" grep -qx 'mshmon_heap_source: heap: smaps_rollup (Anonymous, 4 KiB pages: coarser)' <<<"$out"
check "cycle --pid: the attached process is left running" kill -0 "$SUB"
kill "$SUB"; wait "$SUB" 2>/dev/null

echo "target: the broker's address in ARGS and in the environment"
timeout 30 "$MSHMON" cycle --every 100ms -n 2 --export "$E-env.log" -- \
    sh -c 'echo "url {url} host {host} port {port} env $MSHMON_BROKER_URL $MSHMON_BROKER_HOST $MSHMON_BROKER_PORT"; sleep 30' > /dev/null 2>&1
check "{url} {host} {port} and MSHMON_BROKER_URL/HOST/PORT name the embedded broker" \
    grep -Eq '\] target: url mqtt://127\.0\.0\.1:([0-9]+) host 127\.0\.0\.1 port \1 env mqtt://127\.0\.0\.1:\1 127\.0\.0\.1 \1$' "$E-env.log"

echo "target: mshmon stopped by SIGTERM or SIGINT stops the target"
for sig in TERM INT; do
    "$MSHMON" cycle --settle 10 -- "$CYCLER" {host} {port} clean 100 > "$WORK/sig.out" 2>&1 &
    RUN=$!
    wait_for 10 grep -q '^cycle 2 ' "$WORK/sig.out"
    TPID=$(sed -n 's/^mshmon: watching target pid \([0-9]*\) .*/\1/p' "$WORK/sig.out")
    kill -s "$sig" "$RUN"; wait "$RUN"; rc=$?
    check "SIG$sig: mshmon ends with the verdict over the cycles seen (exit $rc)" sh -c "[ $rc = 0 ] && grep -q '^verdict: ' '$WORK/sig.out'"
    check "SIG$sig: the target (pid ${TPID:-?}) is stopped" sh -c "[ -n '$TPID' ] && sleep 0.3 && ! kill -0 $TPID 2>/dev/null"
done

out=$(timeout 60 "$MSHMON" cycle -n 20 --settle 10 --export "$E-exit.log" -- "$CYCLER" {host} {port} clean 20 6 2>&1); rc=$?
check "a target exiting after 6 of 20 cycles: exit 4, its status in the verdict (exit $rc)" sh -c "[ $rc = 4 ] && grep -q 'cycles failed: the target exited with status 0 after 6 cycles' <<'O'
$out
O"
check "... and its exit is an event in the transcript" grep -q 'target exited with status 0' "$E-exit.log"

echo "target: mshmon killed with SIGKILL, the target goes on"
"$MSHMON" cycle --settle 10 -- "$CYCLER" {host} {port} clean 100 > "$WORK/kill.out" 2>&1 &
RUN=$!
wait_for 10 grep -q '^cycle 3 ' "$WORK/kill.out"
TPID=$(sed -n 's/^mshmon: watching target pid \([0-9]*\) .*/\1/p' "$WORK/kill.out")
kill -9 "$RUN"; wait "$RUN" 2>/dev/null
check "after SIGKILL the target (pid ${TPID:-?}) still runs" sh -c "[ -n '$TPID' ] && sleep 0.5 && kill -0 $TPID"
[ -n "$TPID" ] && kill "$TPID" 2>/dev/null

echo "target: bad input"
out=$("$MSHMON" cycle --pid 999999 -n 3 2>&1); rc=$?
check "--pid of no process: exit 1, one line (exit $rc)" sh -c "[ $rc = 1 ] && [ \$(wc -l <<'O'
$out
O
) = 1 ] && grep -q 'no process 999999' <<'O'
$out
O"
out=$("$MSHMON" cycle -n 3 -- no-such-client-xyz 2>&1); rc=$?
check "a command not found: exit 1 (exit $rc: $out)" sh -c "[ $rc = 1 ] && echo '$out' | grep -q 'no-such-client-xyz: command not found'"
out=$("$MSHMON" cycle -n 3 -- /bin/false 2>&1); rc=$?
check "a command exiting at once: exit 1 with its status (exit $rc: $out)" sh -c "[ $rc = 1 ] && echo '$out' | grep -q 'exited with status 1 before its first cycle'"
out=$(timeout 30 "$MSHMON" cycle -n 3 --timeout 1s -- sleep 20 2>&1); rc=$?
check "no cycle within --timeout: exit 4 (exit $rc)" [ $rc = 4 ]
check "no cycle within --timeout: the verdict asks whether it connects" grep -Eq '; 1 of 0 cycles failed: no cycle observed in [0-9.]+ s: is the client connecting to mqtt://127.0.0.1:[0-9]+\?$' <<<"$out"
check "no sleep left running" sh -c "! pgrep -x -f 'slee[p] 20' >/dev/null"
# Another user's process: run mshmon as nobody against this one (root) — /proc/PID/fd is not readable.
NOBODY=$(mktemp -d); chmod 755 "$NOBODY"; cp "$MSHMON" "$NOBODY/mshmon"; chmod 755 "$NOBODY/mshmon"
out=$(cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups "$NOBODY/mshmon" list_fd --pid $$ 2>&1); rc=$?
check "list_fd --pid of another user's process: exit 1, one line naming the cause (exit $rc: $out)" sh -c "[ $rc = 1 ] && [ \$(wc -l <<'O'
$out
O
) = 1 ] && grep -q 'cannot read /proc/$$/fd: permission denied' <<'O'
$out
O"
out=$(cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups "$NOBODY/mshmon" cycle --pid $$ -n 3 2>&1); rc=$?
check "cycle --pid of another user's process: exit 1 (exit $rc)" sh -c "[ $rc = 1 ] && grep -q 'permission denied' <<'O'
$out
O"
# A copy of mshmon without the tap library beside it.
out=$(timeout 20 "$NOBODY/mshmon" cycle -n 3 -- "$CYCLER" {host} {port} clean 20 2>&1); rc=$?
check "the tap library missing: exit 1, named (exit $rc: $out)" sh -c "[ $rc = 1 ] && grep -q 'the heap tap library is missing: $NOBODY/libmshmontap.so' <<'O'
$out
O"
check "the tap library missing: no target left running" sh -c "! pgrep -f 'mqtt_cycler 127.0.0.1 [0-9]* clean 20$' >/dev/null"
rm -rf "$NOBODY"
"$MSHMON" cycle --pid 1 -- true > /dev/null 2>&1; rc=$?
check "--pid and -- COMMAND together: usage error" [ $rc = 2 ]
"$MSHMON" list_fd --pid abc > /dev/null 2>&1; rc=$?
check "list_fd --pid abc: usage error" [ $rc = 2 ]
out=$("$MSHMON" netstat --pid 999999 --all 2>&1); rc=$?
check "netstat --pid of no process --all: exit 1, named (exit $rc: $out)" sh -c "[ $rc = 1 ] && grep -q 'no process 999999' <<'O'
$out
O"
"$MSHMON" cycle --kick-every 1s > /dev/null 2>&1; rc=$?
check "--kick-every without a target: usage error" [ $rc = 2 ]

finish
