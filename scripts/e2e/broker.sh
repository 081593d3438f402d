#!/usr/bin/env bash
# End to end: the embedded broker (`mshmon broker`) with clients nobody here wrote:
# mosquitto_pub / mosquitto_sub at QoS 0, 1, 2, retained, will, wildcards, a refused login,
# and a malformed client that must not disturb the others.
cd "$(dirname "$0")" && . ./lib.bash

# start_broker [args...] -> BPORT, BPID
start_broker() {
    "$MSHMON" broker --port 0 "$@" > "$WORK/broker.out" 2> "$WORK/broker.err" &
    BPID=$!
    PIDS+=("$BPID")
    wait_for 10 grep -q '^listening on 127.0.0.1:' "$WORK/broker.out" || { echo "broker did not start"; cat "$WORK/broker.err"; return 1; }
    BPORT=$(sed -n 's/^listening on 127.0.0.1://p' "$WORK/broker.out")
}

start_broker || exit 1
echo "broker: listening on $BPORT"
check "prints 'listening on 127.0.0.1:PORT' and accepts" wait_listening "$BPORT"

for q in 0 1 2; do
    got=$(timeout 10 mosquitto_sub -p "$BPORT" -t "q$q/+/x" -q "$q" -C 1 -W 8 -v & sleep 0.4; mosquitto_pub -p "$BPORT" -t "q$q/a/x" -m "hello $q" -q "$q"; wait)
    check "QoS $q publish/subscribe with a + filter" [ "$got" = "q$q/a/x hello $q" ]
done

got=$(timeout 10 mosquitto_sub -p "$BPORT" -t 'deep/#' -q 1 -C 3 -W 8 & sleep 0.4
      for t in deep deep/a deep/a/b; do mosquitto_pub -p "$BPORT" -t "$t" -m "$t" -q 1; done; wait)
check "# matches the parent and every level below" [ "$(echo $got)" = "deep deep/a deep/a/b" ]

mosquitto_pub -p "$BPORT" -t keep/me -m kept -r -q 1
got=$(timeout 10 mosquitto_sub -p "$BPORT" -t keep/me -C 1 -W 5 -v)
check "retained message delivered on subscribe" [ "$got" = "keep/me kept" ]
mosquitto_pub -p "$BPORT" -t keep/me -n -r -q 1
got=$(timeout 3 mosquitto_sub -p "$BPORT" -t keep/me -C 1 -W 1 2>/dev/null)
check "an empty retained payload clears it" [ -z "$got" ]

timeout 10 mosquitto_sub -p "$BPORT" -t 'will/#' -C 1 -W 8 -v > "$WORK/will.out" &
SUB=$!
sleep 0.3
mosquitto_sub -p "$BPORT" -t nothing --will-topic will/abrupt --will-payload gone -k 60 &
VICTIM=$!
sleep 0.5
kill -9 "$VICTIM"; wait "$VICTIM" 2>/dev/null
wait "$SUB"
check "will published after an abnormal close" grep -q '^will/abrupt gone$' "$WORK/will.out"
timeout 4 mosquitto_sub -p "$BPORT" -t 'clean/#' -C 1 -W 2 -v > "$WORK/nowill.out" 2>/dev/null &
SUB=$!
sleep 0.3
mosquitto_pub -p "$BPORT" -t x -m y --will-topic clean/exit --will-payload gone
wait "$SUB"
check "no will after a clean DISCONNECT" [ ! -s "$WORK/nowill.out" ]

echo "broker: malformed client"
python3 - "$BPORT" <<'PY' && pass "malformed bytes close that connection only; level 5 gets CONNACK 1" || fail "malformed bytes close that connection only; level 5 gets CONNACK 1"
import socket, sys, time
port = int(sys.argv[1])
bad = socket.create_connection(("127.0.0.1", port))
bad.sendall(bytes([0xF0, 0x00]))          # reserved packet type 15
bad.settimeout(3)
assert bad.recv(16) == b"", "the broker must close the malformed connection"
good = socket.create_connection(("127.0.0.1", port))
good.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0]))
good.settimeout(3)
assert good.recv(4) == bytes([0x20, 2, 0, 0]), "a well-behaved client still gets CONNACK"
v5 = socket.create_connection(("127.0.0.1", port))
v5.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([5, 2, 0, 60, 0, 0]))
v5.settimeout(3)
assert v5.recv(4) == bytes([0x20, 2, 0, 1]), "protocol level 5 gets CONNACK 1 (unacceptable protocol version)"
PY
kill "$BPID"; wait "$BPID" 2>/dev/null

echo "broker: password file"
printf 'device:right\n' > "$WORK/users"
start_broker --password-file "$WORK/users" || exit 1
mosquitto_pub -p "$BPORT" -t a -m b -u device -P wrong > "$WORK/refused.out" 2>&1; rc=$?
check "wrong password refused" sh -c "[ $rc != 0 ] && grep -qi 'not authori[sz]ed\|bad user name or password' '$WORK/refused.out'"
mosquitto_pub -p "$BPORT" -t a -m b -u device -P right; rc=$?
check "right password accepted" [ $rc = 0 ]
kill -TERM "$BPID"; wait "$BPID"; rc=$?
check "SIGTERM stops the broker with exit 0" [ $rc = 0 ]

"$MSHMON" broker --fault nonsense > "$WORK/fault.out" 2>&1; rc=$?
check "an unknown fault mode is a usage error" sh -c "[ $rc = 2 ] && [ \$(wc -l < '$WORK/fault.out') = 1 ]"
check "broker --help documents every fault mode" sh -c "'$MSHMON' broker --help | grep -c 'close-after-connack\|no-connack\|no-suback\|no-pingresp\|reset\|slow:MS\|garbage' | awk '{exit !(\$1 >= 7)}'"

finish
