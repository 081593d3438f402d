#!/usr/bin/env bash
# End to end: `mshmon cycle` against a real mosquitto and the embedded broker — verdicts,
# exit codes, exports (streamed, killed, interrupted), secrets, bad input.
cd "$(dirname "$0")" && . ./lib.bash

PORT=$(free_port)
start_mosquitto "$PORT" || exit 1
B="--broker mqtt://127.0.0.1:$PORT"

echo "cycle: verdicts against mosquitto"
out=$("$MSHMON" cycle $B -n 200 --settle 20 2>&1); rc=$?
check "200 cycles exit 0" [ $rc = 0 ]
check "200 cycles: last line says no leak" grep -q '^verdict: no leak over 200 cycles' <<<"$(tail -n 1 <<<"$out")"
check "a line per cycle" [ "$(grep -c '^cycle ' <<<"$out")" = 200 ]

# A kept session: from the second cycle SUBSCRIBE waits for CONNACK, then PUBLISH follows it
# at once. mosquitto (no TCP_NODELAY) must not hold the PUBACK 40 ms waiting for our ACK, and
# the publish queue used once per connection must not creep up the heap.
out=$("$MSHMON" cycle $B -n 200 --settle 0 --no-clean-session --quiet 2>&1); rc=$?
check "--no-clean-session: 200 cycles, no leak" grep -q '^0:verdict: no leak over 200 cycles' <<<"$rc:$(tail -n 1 <<<"$out")"
rate=$(sed -n 's/^mshmon_cycles_rate: \([0-9]*\).*/\1/p' <<<"$out")
check "--no-clean-session: no 40 ms stall per cycle (${rate:-?} cycles/s)" [ "${rate:-0}" -gt 100 ]

out=$("$MSHMON" cycle $B -n 30 --inject-leak socket-race --quiet 2>&1); rc=$?
check "socket-race exits 3" [ $rc = 3 ]
check "socket-race names fds and CLOSE_WAIT" grep -q '^verdict: LEAK fds +1.00/cycle (socket, CLOSE_WAIT +1.00/cycle)' <<<"$out"

out=$("$MSHMON" cycle $B -n 30 --inject-leak ack-handler --quiet 2>&1); rc=$?
check "ack-handler exits 3" [ $rc = 3 ]
check "ack-handler names messageHandler" grep -q '^verdict: LEAK ledger messageHandler +2.00/cycle' <<<"$out"

out=$("$MSHMON" cycle $B -n 50 --no-sample 2>&1); rc=$?
check "--no-sample: exit 0, a timed line per cycle" [ "$rc:$(grep -cE '^cycle [0-9]+  [0-9.]+ ms$' <<<"$out")" = 0:50 ]
check "--no-sample: the rate line" grep -qE '^mshmon_cycles_rate: [0-9.]+ cycles/s$' <<<"$out"
check "--no-sample: the cycles that succeeded" grep -qx 'mshmon_cycles_ok: 50 of 50' <<<"$out"
fd0=$(sed -n 's/^mshmon_fd_before: \([0-9]*\) fds$/\1/p' <<<"$out"); fd1=$(sed -n 's/^mshmon_fd_after: \([0-9]*\) fds$/\1/p' <<<"$out")
check "--no-sample: fds before and after, equal ($fd0 -> $fd1)" [ -n "$fd0" -a "$fd0" = "$fd1" ]
check "--no-sample: RSS before and after" grep -qE '^mshmon_rss_after: [0-9]+ kB$' <<<"$out"
check "--no-sample: a verdict that measured nothing" grep -q '^verdict: nothing measured over 50 cycles (--no-sample)$' <<<"$(tail -n 1 <<<"$out")"

# The heap is read exactly (glibc's tcache off, by one re-exec at start) only when it is measured.
tunables_of() {  # the GLIBC_TUNABLES of a running `mshmon cycle ARGS`, 1 s into its run
    "$MSHMON" cycle $B --duration 3s "$@" >/dev/null 2>&1 &
    local pid=$!
    sleep 1
    tr '\0' '\n' < "/proc/$pid/environ" | grep '^GLIBC_TUNABLES=' || echo "GLIBC_TUNABLES="
    wait "$pid"
}
sampled=$(tunables_of)
unsampled=$(tunables_of --no-sample)
check "sampled cycles run with the tcache off ($sampled)" grep -q 'glibc.malloc.tcache_count=0' <<<"$sampled"
check "--no-sample keeps the tcache ($unsampled)" [ "$unsampled" = "GLIBC_TUNABLES=" ]

out=$("$MSHMON" cycle $B -n 20 --json 2>&1); rc=$?
check "--json: exit 0 and the last line is a JSON report" sh -c "[ $rc = 0 ] && tail -n 1 <<'J' | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"leak\"] is False and r[\"cycles\"]==20'
$out
J"

echo "cycle: IPv6 loopback"
if P6=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1])' 2>/dev/null); then
    printf 'listener %s ::1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$P6" > "$WORK/mosquitto-v6.conf"
    chmod 644 "$WORK/mosquitto-v6.conf"
    /usr/sbin/mosquitto -c "$WORK/mosquitto-v6.conf" > /dev/null 2>&1 &
    PIDS+=("$!")
    wait_listening "$P6"
    out=$("$MSHMON" cycle --broker "mqtt://[::1]:$P6" -n 30 --settle 20 2>&1); rc=$?
    check "[::1]: exit 0, no leak" grep -q '^0:verdict: no leak over 30 cycles ' <<<"$rc:$(tail -n 1 <<<"$out")"
    check "[::1]: our TIME_WAITs are ours" grep -qE '^cycle 30 .*sockets TIME_WAIT [0-9]+  ledger clean$' <<<"$out"
    out=$("$MSHMON" cycle --broker "mqtt://[::1]:$(free_port)" -n 3 2>&1); rc=$?
    check "[::1] with nobody listening: exit 1, refused" [ "$rc:$(grep -c 'connection refused' <<<"$out")" = 1:1 ]
else
    echo "  skip IPv6: this host has no ::1"
fi

echo "cycle: a broker restart during the run"
"$MSHMON" cycle $B -n 100 --interval 30 --settle 10 > "$WORK/restart.out" 2>&1 &
RUN=$!
PIDS+=("$RUN")
wait_for 10 grep -q '^cycle 20 ' "$WORK/restart.out"
kill "$MOSQ_PID"; wait "$MOSQ_PID" 2>/dev/null
sleep 1
start_mosquitto "$PORT"
wait "$RUN"; rc=$?
check "restart: cycles failed and no leak: exit 4 (exit $rc)" [ $rc = 4 ]
check "restart: failed cycles reported" grep -Eq 'FAILED: cannot connect' "$WORK/restart.out"
check "restart: the verdict names the failures and their cause" grep -Eq '^verdict: no leak over 100 cycles.*; [0-9]+ of 100 cycles failed: cannot connect to 127.0.0.1:[0-9]+: connection refused' "$WORK/restart.out"
# The same across a restart with the failures allowed: exit 0.
"$MSHMON" cycle $B -n 100 --interval 30 --settle 10 --allow-failures 50% > "$WORK/restart2.out" 2>&1 &
RUN=$!
PIDS+=("$RUN")
wait_for 10 grep -q '^cycle 20 ' "$WORK/restart2.out"
kill "$MOSQ_PID"; wait "$MOSQ_PID" 2>/dev/null
sleep 1
start_mosquitto "$PORT"
wait "$RUN"; rc=$?
check "restart with --allow-failures 50%: exit 0 (exit $rc; $(grep -c FAILED "$WORK/restart2.out") failed)" [ $rc = 0 ]

echo "cycle: exports"
E=$WORK/run
"$MSHMON" cycle $B -n 10 --export "$E.log" --export "$E.csv" --export "$E.jsonl" > /dev/null 2>&1
check "transcript has msh headers" grep -q '^msh />netstat$' "$E.log"
check "transcript has free output" grep -q '^total memory: ' "$E.log"
# mosquitto closes on DISCONNECT as fast as the client does, so most TIME_WAITs land on its
# side; the embedded broker waits for the client's FIN, as a device's peer would.
"$MSHMON" cycle -n 5 --export "$E-embedded.log" > /dev/null 2>&1
check "transcript has a TIME_WAIT row of ours" grep -Eq "^#[0-9]+ 127.0.0.1:[0-9]+ <==> 127.0.0.1:[0-9]+ snd_nxt 0x[0-9A-F]{8} rcv_nxt 0x[0-9A-F]{8} state: TIME_WAIT$" "$E-embedded.log"
check "transcript ends with the verdict" grep -q 'verdict: no leak over 10 cycles' "$E.log"
check "CSV: header + one row per cycle, parses" python3 -c "
import csv; rows=list(csv.reader(open('$E.csv', newline='')))
assert rows[0][:3]==['time','cycle','total'] and len(rows)==11 and all(len(r)==len(rows[0]) for r in rows), rows[:2]"
check "JSONL: every line parses, 10 samples and a verdict" python3 -c "
import json; lines=[json.loads(l) for l in open('$E.jsonl')]
assert sum(1 for l in lines if l['type']=='sample')==10 and lines[-1]['type']=='verdict'"

echo "cycle: SIGKILL mid-run leaves whole lines"
K=$WORK/killed
"$MSHMON" cycle $B -n 100000 --settle 0 --export "$K.log" --export "$K.csv" --export "$K.jsonl" > /dev/null 2>&1 &
RUN=$!
PIDS+=("$RUN")
wait_for 10 sh -c "[ \$(cat '$K.csv' 2>/dev/null | wc -l) -ge 6 ]"
kill -9 "$RUN"; wait "$RUN" 2>/dev/null
check "killed: JSONL lines all complete" python3 -c "
import json; [json.loads(l) for l in open('$K.jsonl')]"
check "killed: CSV rows all complete" python3 -c "
import csv; rows=list(csv.reader(open('$K.csv', newline=''))); assert len(rows)>5 and all(len(r)==len(rows[0]) for r in rows)"
check "killed: transcript ends with a newline" sh -c "[ \"\$(tail -c 1 '$K.log' | od -An -c | tr -d ' ')\" = '\\n' ]"

echo "cycle: SIGINT stops with the verdict"
I=$WORK/interrupted
"$MSHMON" cycle $B -n 100000 --settle 5 --export "$I.log" > "$I.out" 2>&1 &
RUN=$!
PIDS+=("$RUN")
wait_for 10 grep -q '^cycle 12 ' "$I.out"
kill -INT "$RUN"; wait "$RUN"; rc=$?
check "SIGINT: exit 0 (no leak) (exit $rc)" [ $rc = 0 ]
[ $rc = 0 ] || tail -n 3 "$I.out"
check "SIGINT: verdict printed" grep -q '^verdict: no leak over' "$I.out"
check "SIGINT: verdict appended to the export" grep -q 'verdict: no leak over' "$I.log"

out=$("$MSHMON" cycle --broker "mqtt://localhost:$PORT" -n 300 --settle 2 --quiet 2>&1); rc=$?
check "a host name: 300 cycles, no leak (NIO's resolver runs once, not per cycle)" grep -q '^0:verdict: no leak over 300 cycles' <<<"$rc:$(tail -n 1 <<<"$out")"

echo "cycle: every fault mode of the embedded broker ends, each with its symptom"
# A connection lost after CONNACK fails the cycle at once (its QoS 1 publish would otherwise
# wait for a reconnect); requests behind a swallowed CONNECT are swallowed with it.
fault_run() {  # MODE N -> $WORK/fault.out, rc in $frc
    timeout -s KILL 30 "$MSHMON" cycle -n "$2" --settle 0 --broker-fault "$1" > "$WORK/fault.out" 2>&1; frc=$?
}
# Cycles that fail exit 4, with the cause in the verdict, unless --allow-failures covers them.
fault_run close-after-connack 3
check "close-after-connack: 3 failed cycles, exit 4 (exit $frc)" sh -c "[ $frc = 4 ] && grep -qx 'mshmon_cycles_ok: 0 of 3' '$WORK/fault.out' && grep -q 'FAILED: connection closed by the broker' '$WORK/fault.out'"
check "close-after-connack: the verdict names the cause" grep -q '; 3 of 3 cycles failed: connection ' "$WORK/fault.out"
fault_run reset 3
check "reset: 3 failed cycles, exit 4 (exit $frc)" sh -c "[ $frc = 4 ] && grep -qx 'mshmon_cycles_ok: 0 of 3' '$WORK/fault.out' && grep -q 'FAILED: connection lost: connection reset by peer' '$WORK/fault.out'"
fault_run no-suback 1
check "no-suback: the subscribe times out, exit 4 (exit $frc)" sh -c "[ $frc = 4 ] && grep -q 'FAILED: no SUBACK within 4000 ms' '$WORK/fault.out'"
fault_run 'deny-subscribe:#' 6
check "deny-subscribe:#: every cycle fails, exit 4 (exit $frc)" [ $frc = 4 ]
check "deny-subscribe:#: the verdict names the refusal" grep -Eq '^verdict: .*; 6 of 6 cycles failed: subscription refused by the broker: SUBACK 0x80 for ' "$WORK/fault.out"
check "deny-subscribe:#: the handlers are back at baseline every cycle" [ "$(grep -c '^cycle [0-9].*ledger clean  FAILED' "$WORK/fault.out")" = 6 ]
timeout -s KILL 30 "$MSHMON" cycle -n 3 --settle 0 --broker-fault 'deny-subscribe:#' --allow-failures 3 > "$WORK/fault.out" 2>&1; frc=$?
check "--allow-failures 3 with 3 failed: exit 0 (exit $frc)" [ $frc = 0 ]
timeout -s KILL 30 "$MSHMON" cycle -n 3 --settle 0 --broker-fault 'deny-subscribe:#' --allow-failures 2 --json > "$WORK/fault.out" 2>&1; frc=$?
check "--json: exit 4, the failures by cause with counts" sh -c "[ $frc = 4 ] && tail -n 1 '$WORK/fault.out' | python3 -c 'import json,sys; r=json.load(sys.stdin); f=r[\"failures\"]; assert r[\"exitStatus\"]==4 and r[\"failedCycles\"]==3 and len(f)==1 and f[0][\"count\"]==3 and f[0][\"cause\"].startswith(\"subscription refused\"), r'"
# A broker that breaks the protocol after CONNACK: each cycle is a protocol error, exit 4.
for mode in suback-reserved garbage-after-connack; do
    python3 ./hostile_broker.py "$mode" > "$WORK/hostile.out" 2>&1 &
    HPID=$!; PIDS+=("$HPID")
    wait_for 5 grep -q '^listening on' "$WORK/hostile.out"
    HPORT=$(sed -n 's/^listening on 127.0.0.1://p' "$WORK/hostile.out")
    timeout -s KILL 30 "$MSHMON" cycle --broker "mqtt://127.0.0.1:$HPORT" -n 3 --settle 0 > "$WORK/fault.out" 2>&1; frc=$?
    kill "$HPID"; wait "$HPID" 2>/dev/null
    check "$mode: exit 4 (exit $frc)" [ $frc = 4 ]
    check "$mode: the verdict names the protocol error" grep -Eq '^verdict: too few cycles to judge .*; 3 of 3 cycles failed: protocol error: ' "$WORK/fault.out"
    [ "$mode" = suback-reserved ] && check "$mode: the cause cites the spec clause" grep -q '^verdict: .*\[MQTT-3.9.3-2\]$' "$WORK/fault.out"
done

fault_run no-connack 1
check "no-connack: the first connect times out, exit 1 (exit $frc)" sh -c "[ $frc = 1 ] && grep -qx 'mshmon: no CONNACK within 4000 ms' '$WORK/fault.out'"
fault_run garbage 1
check "garbage: a protocol error, exit 1 (exit $frc)" sh -c "[ $frc = 1 ] && grep -q '^mshmon: protocol error: reserved control packet type 15' '$WORK/fault.out'"
check "garbage: the broker takes what came behind CONNECT without a word" sh -c "! grep -q 'before CONNECT' '$WORK/fault.out'"
for mode in no-pingresp slow:100; do
    fault_run "$mode" 3
    check "$mode: 3 cycles succeed (exit $frc)" sh -c "[ $frc = 0 ] && grep -qx 'mshmon_cycles_ok: 3 of 3' '$WORK/fault.out'"
done

echo "cycle: a second SIGINT stops at once"
S=$WORK/second
"$MSHMON" cycle -n 5 --broker-fault no-connack > "$S.out" 2>&1 &  # the first cycle waits 4 s
RUN=$!
PIDS+=("$RUN")
sleep 1
started=$(date +%s%N)
kill -INT "$RUN"; sleep 0.3
check "one SIGINT waits for the current cycle" kill -0 "$RUN"
kill -INT "$RUN"; wait "$RUN"; rc=$?
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
check "the second ends it at once ($elapsed_ms ms, exit $rc)" sh -c "[ $rc = 130 ] && [ $elapsed_ms -lt 2500 ]"

echo "cycle: the password never shows"
SECRET="s3cr3t-$RANDOM-pw"
/usr/bin/mosquitto_passwd -c -b "$WORK/passwd" device "$SECRET"
chmod 644 "$WORK/passwd"
SPORT=$(free_port)
start_mosquitto "$SPORT" "allow_anonymous false" "password_file $WORK/passwd"
S=$WORK/secret
MSHMON_PASSWORD=$SECRET "$MSHMON" cycle --broker "mqtt://127.0.0.1:$SPORT" -u device -n 6 \
    --export "$S.log" --export "$S.csv" --export "$S.jsonl" > "$S.out" 2>&1; rc=$?
check "password login works (exit 0)" [ $rc = 0 ]
check "secret in no output or export" sh -c "! grep -rq '$SECRET' '$S.out' '$S.log' '$S.csv' '$S.jsonl'"
MSHMON_PASSWORD=wrong "$MSHMON" cycle --broker "mqtt://127.0.0.1:$SPORT" -u device -n 2 > "$S.bad" 2>&1; rc=$?
check "wrong password: exit 1 with one clear line" sh -c "[ $rc = 1 ] && grep -q 'connection refused by broker' '$S.bad' && [ \$(wc -l < '$S.bad') = 1 ]"

echo "cycle: bad input"
for args in "-n 0" "-n -5" "--inject-leak nope" "--broker http://x" "--export $WORK/missing/dir/x.log -n 1"; do
    "$MSHMON" cycle $B $args > "$WORK/bad.out" 2>&1; rc=$?
    check "'$args' fails (exit 2 or 1) with one line" sh -c "[ $rc = 2 -o $rc = 1 ] && [ \$(wc -l < '$WORK/bad.out') = 1 ]"
done
start=$(date +%s%N)
"$MSHMON" cycle --broker "mqtt://127.0.0.1:$(free_port)" -n 3 > "$WORK/unreach.out" 2>&1; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "unreachable broker: exit 1 within the connect timeout ($ms ms)" sh -c "[ $rc = 1 ] && [ $ms -lt 5000 ] && grep -q 'cannot connect to 127.0.0.1' '$WORK/unreach.out'"

echo "cycle: the embedded broker"
out=$("$MSHMON" cycle -n 50 --settle 10 2>&1); rc=$?
check "embedded: 50 cycles exit 0, no leak" sh -c "[ $rc = 0 ] && tail -n 1 <<'V' | grep -q '^verdict: no leak over 50 cycles'
$out
V"
check "embedded: no broker process left" sh -c "! pgrep -f 'mshmon [b]roker --port 0' > /dev/null"
"$MSHMON" cycle -n 100000 --settle 0 --quiet > /dev/null 2>&1 &
RUN=$!
wait_for 10 pgrep -f 'mshmon [b]roker --port 0' > /dev/null
kill -9 "$RUN"; wait "$RUN" 2>/dev/null
check "embedded: SIGKILL of the parent leaves no broker" wait_for 5 sh -c "! pgrep -f 'mshmon [b]roker --port 0' > /dev/null"

finish
