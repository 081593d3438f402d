#!/usr/bin/env bash
# End to end: the embedded broker (`mshmon broker`) with clients nobody here wrote:
# mosquitto_pub / mosquitto_sub at QoS 0, 1, 2, retained, will, wildcards, a refused login,
# and a malformed client that must not disturb the others.
cd "$(dirname "$0")" && . ./lib.bash

# start_broker [args...] -> BPORT, BPID (BIND_SHOWN: how the listening line shows the address)
start_broker() {
    "$MSHMON" broker --port 0 "$@" > "$WORK/broker.out" 2> "$WORK/broker.err" &
    BPID=$!
    PIDS+=("$BPID")
    local shown=${BIND_SHOWN:-127.0.0.1}
    wait_for 10 grep -qF "listening on $shown:" "$WORK/broker.out" || { echo "broker did not start"; cat "$WORK/broker.err"; return 1; }
    BPORT=$(sed -n "s/^listening on .*://p" "$WORK/broker.out")
}

# subscribe OUT ARGS...: mosquitto_sub in the background (SUB: its pid), back once its SUBACK
# came, so what is published next reaches it (no sleep standing in for that).
subscribe() {
    local out=$1; shift
    timeout 10 stdbuf -oL mosquitto_sub -d "$@" > "$out.raw" 2>&1 &  # line-buffered: its SUBACK line shows at once
    SUB=$!
    wait_for 5 grep -q 'received SUBACK' "$out.raw" || echo "       (no SUBACK for mosquitto_sub $*)"
}
# received OUT: waits for that subscriber to end, then writes to OUT what it printed, its
# debug lines left out. (In this shell: `wait` only waits for this shell's children.)
received() { wait "$SUB"; grep -v '^Client \|^Subscribed\|^Timed out$' "$1.raw" > "$1"; }

start_broker || exit 1
echo "broker: listening on $BPORT"
check "prints 'listening on 127.0.0.1:PORT' and accepts" wait_listening "$BPORT"

for q in 0 1 2; do
    subscribe "$WORK/q$q" -p "$BPORT" -t "q$q/+/x" -q "$q" -C 1 -W 8 -v
    mosquitto_pub -p "$BPORT" -t "q$q/a/x" -m "hello $q" -q "$q"
    received "$WORK/q$q"; got=$(cat "$WORK/q$q")
    check "QoS $q publish/subscribe with a + filter" [ "$got" = "q$q/a/x hello $q" ]
done

subscribe "$WORK/deep" -p "$BPORT" -t 'deep/#' -q 1 -C 3 -W 8
for t in deep deep/a deep/a/b; do mosquitto_pub -p "$BPORT" -t "$t" -m "$t" -q 1; done
received "$WORK/deep"; got=$(cat "$WORK/deep")
check "# matches the parent and every level below" [ "$(echo $got)" = "deep deep/a deep/a/b" ]

mosquitto_pub -p "$BPORT" -t keep/me -m kept -r -q 1
got=$(timeout 10 mosquitto_sub -p "$BPORT" -t keep/me -C 1 -W 5 -v)
check "retained message delivered on subscribe" [ "$got" = "keep/me kept" ]
mosquitto_pub -p "$BPORT" -t keep/me -n -r -q 1
got=$(timeout 3 mosquitto_sub -p "$BPORT" -t keep/me -C 1 -W 1 2>/dev/null)
check "an empty retained payload clears it" [ -z "$got" ]

subscribe "$WORK/will" -p "$BPORT" -t 'will/#' -C 1 -W 8 -v
# The victim runs bare (not under timeout, which SIGKILL would stop without it).
stdbuf -oL mosquitto_sub -d -p "$BPORT" -t nothing --will-topic will/abrupt --will-payload gone -k 60 > "$WORK/victim.raw" 2>&1 &
VICTIM=$!
wait_for 5 grep -q 'received SUBACK' "$WORK/victim.raw"
kill -9 "$VICTIM"; wait "$VICTIM" 2>/dev/null
received "$WORK/will"
check "will published after an abnormal close" grep -q '^will/abrupt gone$' "$WORK/will"
subscribe "$WORK/nowill" -p "$BPORT" -t 'clean/#' -C 1 -W 2 -v
mosquitto_pub -p "$BPORT" -t x -m y --will-topic clean/exit --will-payload gone
received "$WORK/nowill"
check "no will after a clean DISCONNECT" [ ! -s "$WORK/nowill" ]

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

echo "broker: keepalive, refused subscriptions, listen address"
start_broker || exit 1
# A client that goes silent after CONNECT (keepalive 1, a will): closed after 1.5 s, will published.
subscribe "$WORK/kawill" -p "$BPORT" -t 'will/#' -C 1 -W 8 -v
python3 - "$BPORT" <<'PY' && pass "a silent client is closed after 1.5 x keepalive" || fail "a silent client is closed after 1.5 x keepalive"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
will_topic, will_msg = b"will/silent", b"gone"
vh = bytes([0, 4]) + b"MQTT" + bytes([4, 0x06, 0, 1])          # clean session + will, keepalive 1 s
pl = bytes([0, 6]) + b"silent" + len(will_topic).to_bytes(2, "big") + will_topic + len(will_msg).to_bytes(2, "big") + will_msg
s.sendall(bytes([0x10, len(vh) + len(pl)]) + vh + pl)
s.settimeout(4)
assert s.recv(4) == bytes([0x20, 2, 0, 0])
t = time.monotonic()
assert s.recv(16) == b"", "closed by the broker"
assert 1.2 < time.monotonic() - t < 2.5, time.monotonic() - t
PY
received "$WORK/kawill"
check "the silent client's will is published" grep -q '^will/silent gone$' "$WORK/kawill"
kill "$BPID"; wait "$BPID" 2>/dev/null

start_broker --fault deny-subscribe:test/nosubscribe || exit 1
python3 - "$BPORT" <<'PY' && pass "deny-subscribe: SUBACK 0x80 for the filter, 0x01 for another (paho test_subscribe_failure)" || fail "deny-subscribe: SUBACK 0x80 for the filter, 0x01 for another"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0]))
s.settimeout(3)
assert s.recv(4) == bytes([0x20, 2, 0, 0])
def f(t, q): return len(t).to_bytes(2, "big") + t + bytes([q])
body = bytes([0, 7]) + f(b"test/nosubscribe", 1) + f(b"test/ok", 1)
s.sendall(bytes([0x82, len(body)]) + body)
assert s.recv(6) == bytes([0x90, 4, 0, 7, 0x80, 0x01])
PY
kill "$BPID"; wait "$BPID" 2>/dev/null

for addr in 127.0.0.2 ::1; do
    shown=$addr; case $addr in *:*) shown="[$addr]";; esac
    if [ "$addr" = ::1 ] && ! python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
        fail "--bind ::1: this host has no ::1"; continue
    fi
    BIND_SHOWN=$shown start_broker --bind "$addr" || { fail "--bind $addr: the broker did not start"; continue; }
    check "--bind $addr: the listening line shows it" grep -qxF "listening on $shown:$BPORT" "$WORK/broker.out"
    subscribe "$WORK/bind" -h "$addr" -p "$BPORT" -t b -C 1 -W 8
    mosquitto_pub -h "$addr" -p "$BPORT" -t b -m "via $addr"
    received "$WORK/bind"; got=$(cat "$WORK/bind")
    check "--bind $addr: clients reach it there" [ "$got" = "via $addr" ]
    check "--bind $addr: not on 127.0.0.1" sh -c "! mosquitto_pub -h 127.0.0.1 -p $BPORT -t b -m x 2>/dev/null"
    kill "$BPID"; wait "$BPID" 2>/dev/null
    out=$(timeout 60 "$MSHMON" cycle --broker-bind "$addr" -n 6 --settle 0 2>&1); rc=$?
    check "cycle --broker-bind $addr: 6 cycles, exit 0 (exit $rc)" sh -c "[ $rc = 0 ] && grep -qx 'mshmon_cycles_ok: 6 of 6' <<'O'
$out
O"
done
"$MSHMON" broker --bind 300.1.1.1 > "$WORK/bind.out" 2>&1; rc=$?
check "--bind with a bad address: usage error, one line" sh -c "[ $rc = 2 ] && [ \$(wc -l < '$WORK/bind.out') = 1 ]"

"$MSHMON" broker --fault nonsense > "$WORK/fault.out" 2>&1; rc=$?
check "an unknown fault mode is a usage error" sh -c "[ $rc = 2 ] && [ \$(wc -l < '$WORK/fault.out') = 1 ]"
check "broker --help documents every fault mode" sh -c "'$MSHMON' broker --help | grep -c 'close-after-connack\|no-connack\|no-suback\|no-pingresp\|reset\|slow:MS\|garbage\|deny-subscribe:FILTER' | awk '{exit !(\$1 >= 8)}'"

finish
