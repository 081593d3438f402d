#!/usr/bin/env bash
# End to end: `mshmon cycle --console` watching a simulated RT-Thread device
# (Tests/Device/simdevice.py) on a program's pty (exec:), a serial line (a pty), and telnet;
# its MQTT client really cycling against the embedded broker. Each leak named within 20 cycles
# (exit 3), 200 clean cycles (exit 0), both free forms and list_memheap, log lines interleaved
# anywhere, missing and hanging commands, silence, a reset, a cycle command, bad input.
cd "$(dirname "$0")" && . ./lib.bash

SIM=$(cd ../../Tests/Device && pwd)/simdevice.py
dev() { echo "exec:python3 $SIM --broker {host}:{port} $*"; }

echo "device: leaks named within 20 cycles"
out=$(timeout 90 "$MSHMON" cycle -n 20 --quiet --console "$(dev --leak heap:40 --noise 0.3)" 2>&1); rc=$?
check "heap +40 B/cycle: exit 3 (exit $rc)" [ $rc = 3 ]
check "heap: the owner is memtrace's tag" grep -q '^verdict: LEAK heap +40.00 B/cycle: 1.00 blocks × 40 B per cycle from tag `mqtt`$' <<<"$out"
check "heap: the source is the device's free" grep -qx "mshmon_heap_source: heap: the device's free" <<<"$out"
out=$(timeout 90 "$MSHMON" cycle -n 20 --quiet --console "$(dev --leak socket --noise 0.3)" 2>&1); rc=$?
check "socket in CLOSE_WAIT: exit 3 (exit $rc)" [ $rc = 3 ]
check "socket: CLOSE_WAIT per cycle, to the broker" grep -Eq '^verdict: LEAK fds \+1.00/cycle \(socket, CLOSE_WAIT \+1.00/cycle to 127.0.0.1:[0-9]+\)$' <<<"$out"
out=$(timeout 90 "$MSHMON" cycle -n 20 --quiet --console "$(dev --leak fd --noise 0.3)" 2>&1); rc=$?
check "fd: exit 3 (exit $rc)" [ $rc = 3 ]
check "fd: +1 file per cycle" grep -Eq '^verdict: LEAK fds \+1.00/cycle \(file' <<<"$out"
out=$(timeout 90 "$MSHMON" cycle -n 20 --quiet --console "$(dev --leak thread --smp)" 2>&1); rc=$?
check "thread (an SMP list_thread): exit 3 (exit $rc)" [ $rc = 3 ]
check "thread: named" grep -Eq '^verdict: LEAK threads \+1.00/cycle \(mqtt_rx' <<<"$out"

echo "device: clean"
out=$(timeout 300 "$MSHMON" cycle -n 200 --quiet --console "$(dev --noise 0.2 --cycle-ms 20)" 2>&1); rc=$?
check "200 clean cycles with log lines interleaved: exit 0 (exit $rc)" [ $rc = 0 ]
check "200 clean cycles: no leak" grep -q '^verdict: no leak over 20[0-9] cycles' <<<"$out"

echo "device: free in both forms, and list_memheap"
E=$WORK/dev
for form in "--version 4" "--version 5" "--memheap"; do
    timeout 60 "$MSHMON" cycle -n 6 --quiet --export "$E.jsonl" --console "$(dev $form --leak heap:100 --noise 0.5)" > /dev/null 2>&1
    # Every sample's used figure, against what the device said it was: the sim's used grows 100 B a cycle from 61000.
    check "free $form: every sample parsed, none shifted by a log line" python3 - "$E.jsonl" <<'P'
import json, sys
samples = [json.loads(l) for l in open(sys.argv[1])]
samples = [s for s in samples if s.get("type") == "sample"]
assert len(samples) >= 2, samples
for s in samples:
    used = s["heap"]["used"]
    # list_memheap sums two heaps: the second holds 48 B. A sample may find the device's
    # client already connected for its next cycle: 3,072 B more (the sim's connection), and
    # its socket in list_fd (free and list_fd are asked one after the other, so either or both).
    assert any((used - 61000 - c) % 100 in (0, 48) and used - c >= 61000 for c in (0, 3072)), used
    assert s["threads"] == 8 and s["fds"] in (1, 2) and s["sockets"].get("LISTEN") == 1, s
P
done
out=$(timeout 60 "$MSHMON" cycle -n 6 --quiet --export "$E.log" --console "$(dev --version 5 --noise 0.5)" 2>&1)
check "the transcript keeps the device's own lines" grep -q '\] device: \[I/mqtt\] connected, port' "$E.log"

echo "device: commands the image lacks, and one that hangs"
out=$(timeout 90 "$MSHMON" cycle -n 20 --export "$E.log" --console "$(dev --missing list_fd,memtrace --leak heap:40)" 2>&1); rc=$?
check "missing list_fd and memtrace: the run goes on, the heap leak found (exit $rc)" [ $rc = 3 ]
check "missing: said once" [ "$(grep -c '`list_fd`: not on this device; not asked again' <<<"$out")" = 1 ]
out=$(timeout 90 "$MSHMON" cycle -n 8 --console-timeout 500ms --console "$(dev --hang netstat)" 2>&1); rc=$?
check "netstat hangs the shell: its pane is 'no answer', not asked again" [ "$(grep -c '`netstat`: no answer; not asked again' <<<"$out")" = 1 ]
check "netstat hangs the shell: samples after it are missing, never zero" sh -c "grep -q 'this sample is missing' <<'O'
$out
O"

echo "device: silence and reset"
out=$(timeout 90 "$MSHMON" cycle -n 14 --console-timeout 1s --console "$(dev --silent-at 5 --silent-for 2.5 --cycle-ms 100)" 2>&1); rc=$?
check "silent: a status line and a retry" grep -q 'the device is silent: no prompt within 1.0 s of `free`; waking it and asking once more' <<<"$out"
check "silent: the run goes on (exit $rc)" [ $rc = 0 ]
out=$(timeout 90 "$MSHMON" cycle -n 24 --export "$E.jsonl" --console "$(dev --reset-at 8 --leak heap:40 --cycle-ms 60)" 2>&1); rc=$?
check "reset: an event, the window starts again" grep -Eq 'the target was reset \((boot banner seen|maximum allocated memory fell)' "$E.jsonl"
check "reset: the leak before it is not judged across the reset (exit $rc)" grep -q '^verdict: no leak' <<<"$out"

echo "device: a cycle command, a serial line, telnet"
out=$(timeout 60 "$MSHMON" cycle -n 12 --quiet --cycle-command mqtt_cycle --console "$(dev --cycle-command --leak heap:24)" 2>&1); rc=$?
check "--cycle-command: the device's own cycles, the leak found (exit $rc)" grep -q '^verdict: LEAK heap +24.00 B/cycle' <<<"$out"
"$MSHMON" broker --port 0 > "$WORK/broker.out" 2>&1 &
PIDS+=($!)
wait_for 10 grep -q 'listening on' "$WORK/broker.out"
BPORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/broker.out" | head -n 1)
python3 "$SIM" --broker "127.0.0.1:$BPORT" --serve "pty:$WORK/pty" --leak heap:40 &
PIDS+=($!)
wait_for 10 test -s "$WORK/pty"
out=$(timeout 60 "$MSHMON" cycle -n 20 --quiet --every 150ms --console "$(cat "$WORK/pty")" --baud 115200 2>&1); rc=$?
check "serial (a pty at 115200 8N1), sampled --every: the heap leak (exit $rc)" grep -q '^verdict: LEAK heap +' <<<"$out"
python3 "$SIM" --broker "127.0.0.1:$BPORT" --serve "telnet:$WORK/telnet" --leak socket --client-id tel-1 &
PIDS+=($!)
wait_for 10 test -s "$WORK/telnet"
out=$(timeout 60 "$MSHMON" cycle -n 12 --quiet --every 150ms --console "telnet://127.0.0.1:$(cat "$WORK/telnet")" 2>&1); rc=$?
check "telnet: its negotiation answered, the CLOSE_WAIT leak found (exit $rc)" grep -Eq '^verdict: LEAK fds \+[0-9.]+/cycle \(socket, CLOSE_WAIT' <<<"$out"
out=$(timeout 60 "$MSHMON" cycle -n 6 --client-id rtt-7 --quiet --console "$(dev --client-id rtt-7)" 2>&1); rc=$?
check "--client-id: the device's connections are its cycles (exit $rc)" [ $rc = 0 ]

echo "device: bad input"
out=$("$MSHMON" cycle --console /dev/nonexistent-tty 2>&1); rc=$?
check "a missing serial path: one line, exit 1 (exit $rc)" sh -c "[ $rc = 1 ] && [ \$(wc -l <<'O'
$out
O
) = 1 ] && grep -q 'no such serial device' <<'O'
$out
O"
out=$("$MSHMON" cycle --console /dev/ttyS0 --baud 12345 2>&1); rc=$?
check "an unsupported baud rate: exit 2 (exit $rc)" sh -c "[ $rc = 2 ] && grep -q 'unsupported baud rate 12345' <<'O'
$out
O"
out=$("$MSHMON" cycle --console "telnet://127.0.0.1:$(free_port)" 2>&1); rc=$?
check "telnet refused: one line, exit 1 (exit $rc)" sh -c "[ $rc = 1 ] && grep -q 'connection refused' <<'O'
$out
O"
out=$("$MSHMON" cycle --console /etc/hostname 2>&1); rc=$?
check "not a serial line: exit 1 (exit $rc)" sh -c "[ $rc = 1 ] && grep -q 'not a serial line' <<'O'
$out
O"
out=$("$MSHMON" cycle --console exec:true --pid 1 2>&1); rc=$?
check "--console with --pid: exit 2 (exit $rc)" [ $rc = 2 ]
out=$("$MSHMON" cycle --console exec:true --broker mqtt://127.0.0.1:1883 2>&1); rc=$?
check "a device with another broker and no --every: exit 2, saying why (exit $rc)" sh -c "[ $rc = 2 ] && grep -q 'give --every or --cycle-command' <<'O'
$out
O"
out=$("$MSHMON" cycle --baud 9600 2>&1); rc=$?
check "--baud without --console: exit 2 (exit $rc)" [ $rc = 2 ]

finish
