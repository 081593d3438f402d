#!/usr/bin/env bash
# End to end: the dashboard in tmux (120x40) driven with send-keys, read with capture-pane,
# waiting for text with a deadline.
cd "$(dirname "$0")" && . ./lib.bash
ROOT=$(cd ../.. && pwd)  # before the tests cd into $WORK

S=mshmon-e2e-$$
T="tmux -L $S"
screen() { $T capture-pane -p -t main 2>/dev/null; }
shows() { screen | grep -q -- "$1"; }
wait_screen() { wait_for "${2:-10}" shows "$1"; }
cleanup_tmux() { $T kill-server 2>/dev/null; }
# Runs a shell command in a fresh 120x40 session "main". The server stays up with no session
# (exit-empty off): killing the last session and starting the next at once otherwise races the
# server's exit, and tmux says "server exited unexpectedly" (a CI run failed on it).
main_session() {
    $T kill-session -t main 2>/dev/null
    $T new-session -d -s main -x 120 -y 40 "$1" ||
        { sleep 0.5; $T new-session -d -s main -x 120 -y 40 "$1"; }
    $T set -s exit-empty off
}
trap 'cleanup_tmux; cleanup' EXIT

cd "$WORK"
main_session "'$MSHMON' --export '$WORK/live.jsonl'; echo EXITED \$?; sleep 60"
check "panes appear: total memory" wait_screen 'total memory:'
check "panes appear: fd type" wait_screen 'fd type'
check "panes appear: Active PCB states" wait_screen 'Active PCB states:'
# Heap figures are exact only with glibc's tcache off (one re-exec at start). An option with a
# value before it (`--export FILE`) once hid the subcommand and skipped the re-exec.
dash_pid=$(pgrep -P "$($T display -p -t main '#{pane_pid}')" | head -n 1)
check "the dashboard with --export runs with the tcache off" sh -c "tr '\\0' '\\n' < /proc/$dash_pid/environ | grep -q 'glibc.malloc.tcache_count=0'"
PORT=$(screen | sed -n 's/.*embedded broker mqtt:\/\/127.0.0.1:\([0-9]*\).*/\1/p' | head -n 1)
fds_before=$(screen | sed -n 's/.*fds  \([0-9]*\).*//p'; "$MSHMON" list_fd >/dev/null; echo)

$T send-keys -t main c
check "c: an ESTABLISHED row to the broker's port" wait_screen "<==> 127.0.0.1:$PORT .*state: ESTABLISHED"
check "c: header says connected" wait_screen 'client connected'
$T send-keys -t main d
check "d: a TIME_WAIT row of ours" wait_screen "<==> 127.0.0.1:$PORT .*state: TIME_WAIT"
check "d: no ESTABLISHED row left" wait_for 5 sh -c "! $T capture-pane -p -t main 2>/dev/null | grep -q 'state: ESTABLISHED'"

$T send-keys -t main ']' ']' ']' a
check "a: the cycle count passes 10" wait_for 30 sh -c "$T capture-pane -p -t main 2>/dev/null | grep -Eq 'cycles (1[1-9]|[2-9][0-9])'"
check "a no-leak verdict in the header once past the warm-up" wait_for 40 shows '^verdict: no leak over' ||
    screen | head -n 3 | sed 's/^/       /'
tw=$(screen | sed -n 's/^verdict: .*TIME_WAIT \([0-9]*\), expected ≤ \([0-9]*\).*/\1 \2/p' | head -n 1)
check "the connection made by hand is expected in TIME_WAIT too (${tw:-no TIME_WAIT note})" sh -c "set -- $tw; [ -n \"\$1\" ] && [ \"\$1\" -le \"\$2\" ]"
$T send-keys -t main a
check "a again: auto off" wait_screen 'auto off'

$T send-keys -t main e
check "e: export status shown" wait_screen 'exported ./mshmon-'
check "e: the three export files exist, transcript holds msh />netstat" sh -c "ls '$WORK'/mshmon-*.csv '$WORK'/mshmon-*.jsonl >/dev/null && grep -q '^msh />netstat' '$WORK'/mshmon-*.log"

$T send-keys -t main '?'
check "?: help from the key table" wait_screen 'auto-cycle on/off'
$T send-keys -t main x

$T send-keys -t main ':' 'l' 'i' 'st_t' Tab
check ":: the msh prompt completes list_thread" wait_screen '^msh />list_thread _'
$T send-keys -t main Enter
check "list_thread output in the log pane" wait_screen 'thread   pri  status'
before=$(screen | sed -n 's/.*cycles \([0-9]*\).*/\1/p' | head -n 1)
$T send-keys -t main ':' 'c' 'y' 'c' 'l' 'e' ' ' '3' Enter
check "msh />cycle 3 runs three cycles ($before -> $((before + 3)))" wait_for 20 shows "cycles $((before + 3)) "
$T send-keys -t main ':' 'r' 'e' 'b' 'o' 'o' 't' Enter
check "unknown command: 'reboot: command not found.'" wait_screen 'reboot: command not found.'

$T send-keys -t main Tab
check "Tab: the next pane takes focus" wait_screen 'msh />log ◂'
$T send-keys -t main Tab Tab
check "Tab: focus wraps to list_fd" wait_screen 'msh />list_fd ◂'
# At 24 rows list_fd has more rows than its box (at 40 they all fit).
$T resize-window -t main -x 120 -y 24
$T send-keys -t main End
check "End: list_fd scrolls to its last fds" wait_for 5 sh -c "! $T capture-pane -p -t main 2>/dev/null | grep -q ' 0 device '"
$T send-keys -t main Home
check "Home: back to fd 0" wait_screen ' 0 device '
$T resize-window -t main -x 120 -y 40

$T resize-window -t main -x 60 -y 20 2>/dev/null || $T resize-pane -t main -x 60 -y 20
sleep 1
$T resize-window -t main -x 120 -y 40 2>/dev/null || $T resize-pane -t main -x 120 -y 40
check "resized to 60x20 and back: still running" wait_screen 'total memory:'
$T resize-window -t main -x 15 -y 4 2>/dev/null
sleep 1
$T resize-window -t main -x 120 -y 40 2>/dev/null
check "shrunk below 20x5 and back: still running" wait_screen 'Active PCB states:'

$T send-keys -t main q
check "q: exit 0 and the shell is back" wait_screen 'EXITED 0'
check "the streamed JSONL export parses" python3 -c "import json; [json.loads(l) for l in open('$WORK/live.jsonl')]"
check "no embedded broker left" wait_for 5 sh -c "! pgrep -f 'mshmon [b]roker --port 0' >/dev/null"

echo "dashboard: 16-colour, monochrome and unknown terminals"
# xterm-16color as ncurses-term ships it, compiled here (the package may be missing).
mkdir -p "$WORK/terminfo"
printf '%s\n' 'xterm-16color|xterm with 16 colors,' '	colors#16, pairs#256,' \
    '	setab=\E[%?%p1%{8}%<%t%p1%{40}%+%e%p1%{92}%+%;%dm,' \
    '	setaf=\E[%?%p1%{8}%<%t%p1%{30}%+%e%p1%{82}%+%;%dm,' '	use=xterm,' > "$WORK/terminfo/x16.src"
tic -o "$WORK/terminfo" "$WORK/terminfo/x16.src"
# The SGR colour codes tmux has for the pane: 30–37/40–47 basic, 90–97/100–107 bright, 38;5 / 48;5 256.
colours() { $T capture-pane -e -p -t main | grep -o $'\e\\[[0-9;]*m' | tr -d '\033[m' | tr ';' '\n' | grep -E '^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$' | sort -u | tr '\n' ' '; }
for term in xterm-16color vt100; do
    main_session "TERMINFO='$WORK/terminfo' TERM=$term '$MSHMON'; echo EXITED \$?; sleep 60"
    check "TERM=$term: panes appear" wait_screen 'Active PCB states:'
    used=$(colours)
    if [ $term = vt100 ]; then
        check "TERM=$term: no colour codes (got: ${used:-none})" [ -z "$used" ]
    else
        check "TERM=$term: basic colours only (got: $used)" sh -c "[ -n '$used' ] && ! echo '$used' | grep -Eq '(^| )(38|48|9[0-7]|10[0-7])( |$)'"
    fi
    $T send-keys -t main q
    check "TERM=$term: q exits 0" wait_screen 'EXITED 0'
done
main_session "TERM=no-such-terminal '$MSHMON'; echo EXITED \$?; sleep 60"
check "an unknown TERM is named in the error" wait_screen "unknown terminal type 'no-such-terminal'"
check "... and exits 1" wait_screen 'EXITED 1'
check "... leaving no embedded broker" wait_for 5 sh -c "! pgrep -f 'mshmon [b]roker --port 0' >/dev/null"

echo "dashboard: every exit path gives the terminal back; NO_COLOR; p publishes"
alternate() { $T display -p -t main '#{alternate_on}'; }
for how in C-c SIGTERM; do
    main_session "NO_COLOR=1 '$MSHMON'; echo EXITED \$?; sleep 60"
    check "$how run: panes appear" wait_screen 'Active PCB states:'
    check "$how run: curses holds the alternate screen" [ "$(alternate)" = 1 ]
    if [ $how = C-c ]; then
        used=$(colours)
        check "NO_COLOR: no colour codes (got: ${used:-none})" [ -z "$used" ]
        $T send-keys -t main p
        check "p while disconnected: says so" wait_screen 'publish failed: not connected'
        $T send-keys -t main c
        check "c: connected" wait_screen 'client connected'
        $T send-keys -t main p
        check "p: a QoS 1 PUBLISH goes out and is acknowledged" wait_screen 'PUBACK id 1 in'
        check "p: the status line says published" wait_screen '^published'
        $T send-keys -t main C-c
    else
        pid=$(pgrep -P "$($T display -p -t main '#{pane_pid}')" | head -n 1)
        kill -TERM "$pid"
    fi
    check "$how: exits 0" wait_screen 'EXITED 0'
    check "$how: the terminal is restored (alternate screen off)" [ "$(alternate)" = 0 ]
    check "$how: no embedded broker left" wait_for 5 sh -c "! pgrep -f 'mshmon [b]roker --port 0' >/dev/null"
done

echo "dashboard: mouse (xterm X10 reports, as a terminal sends them)"
# A press+release (or a wheel step) at 0-based column x, row y: ESC [ M, then 32+button, 33+x, 33+y.
mouse() { python3 -c "import sys; b,x,y,n=map(int,sys.argv[1:]); sys.stdout.write(('\x1b[M'+chr(32+b)+chr(33+x)+chr(33+y))*n)" "$@"; }
click() { $T send-keys -t main -l "$(mouse 0 "$1" "$2" 1)$(mouse 3 "$1" "$2" 1)"; }
for flag in "" --no-mouse; do
    main_session "'$MSHMON' $flag; echo EXITED \$?; sleep 60"
    check "mouse $flag: panes appear" wait_screen 'Active PCB states:'
    # 24 rows: list_fd has more rows than its box, so the wheel has something to scroll.
    $T resize-window -t main -x 120 -y 24
    wait_for 5 sh -c "[ \$($T capture-pane -p -t main | wc -l) = 24 ] && $T capture-pane -p -t main | grep -q 'msh />list_fd'"
    # list_fd's title: its row (0-based) and column, from the screen.
    # Counted in characters (the box edges are several bytes each).
    read -r row col < <(screen | python3 -c 'import sys
for y, line in enumerate(sys.stdin):
    if "msh />list_fd" in line: print(y, line.index("msh />list_fd")); break')
    click $((col + 10)) $((row + 3))
    if [ -z "$flag" ]; then
        check "a click in list_fd focuses it" wait_screen 'msh />list_fd ◂'
        $T send-keys -t main -l "$(mouse 65 $((col + 10)) $((row + 3)) 3)"
        check "the wheel scrolls list_fd down" wait_for 5 sh -c "! $T capture-pane -p -t main 2>/dev/null | grep -q ' 0 device '"
        $T send-keys -t main -l "$(mouse 64 $((col + 10)) $((row + 3)) 3)"
        check "... and back up" wait_screen ' 0 device '
    else
        sleep 1
        check "--no-mouse: a click focuses nothing" sh -c "! $T capture-pane -p -t main 2>/dev/null | grep -q 'msh />list_fd ◂'"
        check "--no-mouse: still running" shows 'Active PCB states:'
    fi
    $T send-keys -t main q
    check "mouse $flag: q exits 0" wait_screen 'EXITED 0'
done

echo "dashboard: --export-dir"
mkdir -p "$WORK/exports"
main_session "'$MSHMON' --export-dir '$WORK/exports'; echo EXITED \$?; sleep 60"
check "--export-dir: panes appear" wait_screen 'Active PCB states:'
# Connect and disconnect by hand, no cycle: the export still holds a sample taken at export
# time, rendered as the panes show it (issue 14.3: the .log held only events, the .csv 0 bytes).
$T send-keys -t main c
check "c before exporting: connected" wait_screen 'client connected'
$T send-keys -t main d
check "d before exporting: disconnected" wait_screen 'client disconnected'
$T send-keys -t main e
check "e: the status names the folder" wait_screen "exported $WORK/exports/mshmon-"
X=$(ls "$WORK"/exports/mshmon-*.log 2>/dev/null | head -n 1); X=${X%.log}
check "e: .log, .csv and .jsonl are in it" sh -c "[ -n '$X' ] && [ -s '$X.log' ] && [ -s '$X.csv' ] && [ -s '$X.jsonl' ]"
for cmd in free list_fd netstat memtrace; do
    check "e without a cycle: the .log holds msh />$cmd" grep -qx "msh />$cmd" "$X.log"
done
check "e without a cycle: the .log has the session header and the events" sh -c "grep -q '^# mshmon session log' '$X.log' && grep -q 'CONNECT out' '$X.log'"
check "e without a cycle: the .csv is its header and the export-time row" python3 -c "
import csv; rows = list(csv.reader(open('$X.csv', newline='')))
assert rows[0][:4] == ['time', 'cycle', 'total', 'used'] and len(rows) == 2, rows
assert rows[1][1] == '' and int(rows[1][3]) > 0 and len(rows[1]) == len(rows[0]), rows"
check "e without a cycle: the .jsonl ends with the export-time sample" python3 -c "
import json; lines = [json.loads(l) for l in open('$X.jsonl')]
assert lines[0]['type'] == 'header' and lines[-1]['type'] == 'snapshot' and lines[-1]['fds'] > 0, lines[-1]"
# The prompt's export takes every format of the one table (.jsonl failed there).
for ext in log csv jsonl; do
    $T send-keys -t main ':' "export $WORK/exports/prompt.$ext" Enter
    check "prompt export .$ext: confirmed" wait_screen "exported $WORK/exports/prompt.$ext"
    check "prompt export .$ext: written with the export-time sample" sh -c "case $ext in
        log) grep -qx 'msh />memtrace' '$WORK/exports/prompt.log';;
        csv) [ \$(grep -c . '$WORK/exports/prompt.csv') -ge 2 ];;
        jsonl) tail -n 1 '$WORK/exports/prompt.jsonl' | grep -q '\"type\":\"snapshot\"';; esac"
done
$T send-keys -t main ':' "export $WORK/exports/prompt.txt" Enter
check "prompt export .txt: refused" wait_screen "export failed: cannot export to"
check "prompt export .txt: nothing written" [ ! -e "$WORK/exports/prompt.txt" ]
$T send-keys -t main q
check "--export-dir: q exits 0" wait_screen 'EXITED 0'
out=$("$MSHMON" --export-dir "$WORK/no-such-folder" 2>&1); code=$?
check "a missing --export-dir is a usage error before anything starts (exit $code: $out)" \
    sh -c "[ $code = 2 ] && echo '$out' | grep -q 'export-dir .*no such folder'"

echo "dashboard: resize redraws at once"
# Issue 14.4: with --refresh 5000 the screen kept its old layout, scrolled, until the next tick
# (SIGWINCH went to another thread). Line 1 must be the header within 300 ms of each resize.
main_session "'$MSHMON' --refresh 5000; echo EXITED \$?; sleep 60"
check "resize: panes appear" wait_screen 'Active PCB states:'
first_line_is_header() { [ "$($T capture-pane -p -t main 2>/dev/null | head -n 1 | cut -c 1-6)" = mshmon ]; }
late=""
for i in $(seq 1 20); do
    if [ "$i" = 20 ]; then w=20; h=5; else w=$(( 20 + RANDOM % 181 )); h=$(( 5 + RANDOM % 56 )); fi
    $T resize-window -t main -x "$w" -y "$h"
    t0=$(date +%s%N)
    ok=""
    while [ $(( $(date +%s%N) - t0 )) -lt 300000000 ]; do
        if first_line_is_header && [ "$($T capture-pane -p -t main | wc -l)" = "$h" ]; then ok=1; break; fi
        sleep 0.02
    done
    [ -n "$ok" ] || late="$late ${w}x$h"
done
check "resize: line 1 is the header within 300 ms of each of 20 resizes, down to 20x5 (late:${late:- none})" [ -z "$late" ]
check "resize: still running after the resizes" sh -c "! $T capture-pane -p -t main | grep -q EXITED"
$T resize-window -t main -x 120 -y 40
check "resize: back at 120x40, the panes again" wait_for 2 shows 'Active PCB states:'
$T send-keys -t main q
check "resize: q exits 0" wait_screen 'EXITED 0'
check "resize: the terminal is restored (alternate screen off)" [ "$($T display -p -t main '#{alternate_on}')" = 0 ]

echo "dashboard: watching a target"
CYCLER=$WORK/mqtt_cycler
gcc -O2 -o "$CYCLER" "$ROOT/Tests/Targets/mqtt_cycler.c" -lmosquitto -lpthread || fail "the C test client compiles"
main_session "'$MSHMON' -- '$CYCLER' {host} {port} leak-heap 20; echo EXITED \$?; sleep 60"
check "target: the header names it and its heap source" wait_screen '^mshmon  target pid [0-9]* .*mqtt_cycler .*(heap: tap (per call site))'
check "target: the verdict names the leaking call site" wait_for 40 shows '^verdict: LEAK heap +40.00 B/cycle: 2.00 blocks × 20 B per cycle from mqtt_clean_session'
check "target: its output is in the log pane" wait_screen 'target| cycle [0-9]* done'
check "target: the footer has k Kick and R Restart, not the client's keys" sh -c "$T capture-pane -p -t main | tail -n 1 | grep -q 'kKick.*RRestart' && ! $T capture-pane -p -t main | tail -n 1 | grep -q 'cConnect'"
tpid=$(screen | sed -n 's/^mshmon  target pid \([0-9]*\) .*/\1/p' | head -n 1)
$T send-keys -t main c
check "target: c does nothing (no client of ours)" sh -c "sleep 0.3; ! $T capture-pane -p -t main | grep -q 'connecting…'"
$T send-keys -t main k
check "target: k kicks its connection (said in the log)" wait_screen "│kicked the target.s connection"
$T send-keys -t main R
check "target: R restarts the command" wait_for 20 shows 'restarted the target: target pid [0-9]* '
npid=$(screen | sed -n 's/^mshmon  target pid \([0-9]*\) .*/\1/p' | head -n 1)
check "target: a new process (pid ${npid:-?}) in the old one's place (pid ${tpid:-?}), which is stopped" \
    sh -c "[ -n '$npid' ] && [ '$npid' != '$tpid' ] && kill -0 $npid && ! kill -0 $tpid 2>/dev/null"
check "target: the new process's run makes its own verdict" wait_for 40 shows '^verdict: LEAK heap +40.00 B/cycle: 2.00 blocks × 20 B per cycle from mqtt_clean_session'
$T send-keys -t main q
check "target: q exits 0" wait_screen 'EXITED 0'
check "target: the target (pid ${npid:-?}) is stopped on exit" sh -c "[ -n '$npid' ] && ! kill -0 $npid 2>/dev/null"

echo "dashboard: watching a device"
SIM="$ROOT/Tests/Device/simdevice.py"
main_session "'$MSHMON' --console 'exec:python3 $SIM --broker {host}:{port} --leak socket --version 5 --noise 0.02 --cycle-ms 200'; echo EXITED \$?; sleep 60"
check "device: the header names its console, the broker substituted" wait_screen "^mshmon  device on exec:python3 .*simdevice.py --broker 127.0.0.1:[0-9]"
check "device: the free pane shows its own 5.x lines" wait_screen '^│total    : 4194304'
check "device: the list_fd pane shows its rows" wait_screen '/dev/uart0'
check "device: the netstat pane shows its CLOSE_WAIT PCBs" wait_for 20 shows 'state: CLOSE_WAIT'
check "device: its log lines are in the log pane" wait_for 20 shows 'device| \[I/mqtt\] connected, port'
check "device: the verdict names the CLOSE_WAIT leak" wait_for 60 shows '^verdict: LEAK fds +1.00/cycle (socket, CLOSE_WAIT'
$T send-keys -t main k
check "device: k kicks its connection (said in the log)" wait_screen "│kicked the target.s connection"
$T send-keys -t main : v e r s i o n Enter
check "device: the : prompt is the device's shell (its version banner)" wait_screen 'Thread Operating System'
$T send-keys -t main : r e b o o t x Enter
check "device: its own 'command not found'" wait_screen 'rebootx: command not found.'
$T send-keys -t main q
check "device: q exits 0" wait_screen 'EXITED 0'
check "device: the simulated device is stopped on exit" sh -c "! pgrep -f '^python3 .*simdevice.py' >/dev/null"

echo "dashboard: injected leak"
main_session "'$MSHMON' --inject-leak socket-race; echo EXITED \$?; sleep 60"
check "red banner for the injected leak" wait_screen 'LEAK INJECTED ON PURPOSE: socket-race'
$T send-keys -t main ']' ']' ']' ']' ']' ']' ']' ']' ']' ']' a
check "CLOSE_WAIT rows pile up" wait_for 30 sh -c "[ \$($T capture-pane -p -t main 2>/dev/null | grep -c 'state: CLOSE_WAIT') -ge 3 ]"
check "the header verdict turns to LEAK within 20 cycles" wait_for 40 shows '^verdict: LEAK fds'
cycles=$(screen | sed -n 's/.*cycles \([0-9]*\).*/\1/p' | head -n 1)
check "... at cycle $cycles (≤ 20 needed)" [ "${cycles:-99}" -le 20 ]
$T send-keys -t main q
check "q exits 0" wait_screen 'EXITED 0'

echo "dashboard: TLS (--tls)"
main_session "'$MSHMON' --tls; echo EXITED \$?; sleep 60"
check "tls: the header names the mqtts broker" wait_screen 'embedded broker mqtts://127.0.0.1:'
$T send-keys -t main c
check "tls: connected, the header says which TLS" wait_screen 'client connected (TLS 1\.[23])'
check "tls: netstat marks the ESTABLISHED socket TLS" wait_screen 'state: ESTABLISHED TLS'
check "tls: the ledger line counts the tls record" wait_screen 'tls 1'
check "tls: the log says the handshake was made" wait_screen 'TLS 1\.[23] established'
$T send-keys -t main d
# The socket closes on the broker's FIN, or at the command timeout (4 s) without it. The
# TIME_WAIT is ours when our FIN goes first, which it does, yet full CI runs have seen a
# disconnect leave none (cause not found). Such a disconnect
# is said, with the kernel's view of the broker's port, and the next one is tried (3 at most).
BROKER_PORT=$(screen | sed -n 's/.*embedded broker mqtts:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' | head -n 1)
tw_tls=1
for attempt in 1 2 3; do
    if wait_screen 'state: TIME_WAIT TLS' 10; then tw_tls=0; break; fi
    echo "       disconnect $attempt left no TIME_WAIT row; the kernel has, at port ${BROKER_PORT:-?}:"
    ss -tan "( sport = :${BROKER_PORT:-0} or dport = :${BROKER_PORT:-0} )" | sed 's/^/       /'
    screen | grep -A4 'msh />netstat' | sed 's/^/       /'
    $T send-keys -t main c
    wait_screen 'state: ESTABLISHED TLS' 10
    $T send-keys -t main d
done
check "tls: netstat marks its TIME_WAIT TLS" [ $tw_tls = 0 ]
$T send-keys -t main q
check "tls: q exits 0" wait_screen 'EXITED 0'


echo "cycle: the status line on a terminal"
main_session "'$MSHMON' cycle -n 300 --settle 20 --quiet; echo EXITED \$?; sleep 60"
check "status: cycle n of N, rate, time left, the running verdict" wait_screen 'cycle [0-9]* of 300 · [0-9.]* cycles/s · [0-9]* s left · '
check "status: the running verdict appears" wait_for 20 shows 'of 300 · .*· no leak over'
check "status: the run ends, exit 0" wait_for 60 shows 'EXITED 0'
check "status: cleared at the end, the verdict stays" sh -c "! $T capture-pane -p -t main | grep -q ' of 300 · ' && $T capture-pane -p -t main | grep -q '^verdict: no leak over 300 cycles'"
main_session "'$MSHMON' cycle --duration 20s --settle 20 --quiet; echo EXITED \$?; sleep 60"
check "status: --duration shows elapsed of 20 s and time left" wait_screen 'cycle [0-9]* · [0-9.]* cycles/s · [0-9]* s of 20 s · [0-9]* s left'
$T send-keys -t main C-c
check "status: SIGINT ends it with the verdict" wait_for 20 shows 'EXITED 0'
main_session "'$MSHMON' cycle -n 200 --settle 20 > '$WORK/status.out'; echo EXITED \$?; sleep 60"
check "status: a run drawing it is not judged a leak (its text is in storage made once)" wait_for 40 shows 'EXITED [0-9]'
check "status: ... the verdict says no leak" grep -q '^verdict: no leak over 200 cycles' "$WORK/status.out" ||
    tail -n 1 "$WORK/status.out" | sed 's/^/       /' 
"$MSHMON" cycle -n 20 --settle 0 --quiet 2> "$WORK/status.err" >/dev/null
check "status: nothing of it when stderr is not a terminal" [ ! -s "$WORK/status.err" ]

echo "dashboard: the chart, boxed panes, marks since the baseline"
main_session "'$MSHMON' --inject-leak socket-race --keepalive 2; echo EXITED \$?; sleep 60"
check "boxes: each pane titled in its box's top edge" wait_screen '^┌─ msh />free ─'
check "boxes: list_fd and netstat boxed too" sh -c "$T capture-pane -p -t main | grep -q '┌─ msh />list_fd ─' && $T capture-pane -p -t main | grep -q '┌─ msh />netstat ◂ ─'"
$T send-keys -t main n
check "chart: after a cycle it spans cycles 1–1" wait_screen 'chart: cycles 1–1 · g/G series'
$T send-keys -t main n n n n n
check "chart: the heap on top, its value and slope per cycle" wait_for 20 shows '│heap  [0-9]* B  [+-][0-9.]* B/cycle'
check "marks: the leaked fds are new since cycle 1, counted in list_fd's title" wait_for 20 shows 'msh />list_fd  +[1-9][0-9]* since cycle 1'
# The leaked fds are the newest, at the end of list_fd: focus it (Tab from netstat: log,
# free, list_fd) and go to its end.
$T send-keys -t main Tab Tab Tab End
check "marks: at list_fd's end, a leaked fd's row has a + at the box's edge" wait_for 5 sh -c "$T capture-pane -p -t main | grep -Eq '│.*\+[ 0-9][0-9] socket'"
$T send-keys -t main g
check "g: fds on top of the chart, with its range and a graph" wait_screen '│fds  [0-9]*  +[0-9.]*/cycle'
$T send-keys -t main ':' 'c' 'y' 'c' 'l' 'e' ' ' '2' '0' Enter
check "g: ... LEAK once the verdict names it" wait_for 30 shows '│fds  [0-9]*  +[0-9.]*/cycle  LEAK'
$T send-keys -t main G
check "G: back to the heap" wait_screen '│heap  [0-9]* B'
check "the embedded broker's notes go to the log pane (a leaked socket's keepalive), not over the screen" \
    wait_for 20 shows '^│mshmon broker: closing mshmon-[0-9]*: keepalive expired'
check "... the header still on the first line" sh -c "$T capture-pane -p -t main | head -n 1 | grep -q '^mshmon  embedded broker'"
$T resize-window -t main -x 80 -y 24
check "80x24: still boxed, the chart still there" wait_for 5 sh -c "$T capture-pane -p -t main | grep -q '┌─ msh />free' && $T capture-pane -p -t main | grep -q 'chart: cycles'"
$T resize-window -t main -x 120 -y 40
$T send-keys -t main q
check "chart: q exits 0" wait_screen 'EXITED 0'

echo "replay: a recorded run, stepped through"
"$MSHMON" cycle -n 30 --warmup 2 --settle 20 --inject-leak socket-race --quiet --export "$WORK/leak.jsonl" >/dev/null; rc=$?
check "replay: the run to replay leaked (exit 3, exit $rc)" [ $rc = 3 ]
main_session "'$MSHMON' replay '$WORK/leak.jsonl'; echo EXITED \$?; sleep 60"
check "replay: opens at the last sampled cycle" wait_screen '^mshmon  replay .*leak.jsonl  cycle 30  sample 30 of 30  at embedded broker'
$T send-keys -t main Tab Home
check "replay: the log opens with when and how the run was recorded (Tab, Home)" wait_screen '│recorded 20[0-9-]* [0-9:]* UTC: .*mshmon cycle -n 30 '
$T send-keys -t main End
check "replay: the run's own verdict in the status line" wait_screen 'the run ended: verdict: LEAK fds'
check "replay: the verdict as it was, judged again" wait_screen '^verdict: LEAK fds +1.00/cycle'
check "replay: list_fd marks 29 fds new since cycle 1" wait_screen 'msh />list_fd  +29 since cycle 1'
check "replay: netstat has the leaked sockets" wait_screen 'state: \(ESTABLISHED\|CLOSE_WAIT\)'
check "replay: the chart up to cycle 30" wait_screen 'chart: cycles 1–30'
check "replay: the footer has ← Back and → Next, no Connect or Export" sh -c "$T capture-pane -p -t main | tail -n 1 | grep -q '←Back →Next' && ! $T capture-pane -p -t main | tail -n 1 | grep -q 'cConnect\|eExport'"
$T send-keys -t main Left
check "←: cycle 29" wait_screen 'cycle 29  sample 29 of 30'
check "←: list_fd as it was then (+28)" wait_screen 'msh />list_fd  +28 since cycle 1'
$T send-keys -t main '[' 
check "[: ten back, cycle 19" wait_screen 'cycle 19  sample 19 of 30'
$T send-keys -t main Right
check "→: cycle 20" wait_screen 'cycle 20  sample 20 of 30'
$T send-keys -t main ':' 'c' 'y' 'c' 'l' 'e' ' ' '1' Enter
check ":cycle 1: the first sample, nothing marked" sh -c "sleep 0.3; $T capture-pane -p -t main | grep -q 'cycle 1  sample 1 of 30' && ! $T capture-pane -p -t main | grep -q 'since cycle 1'"
check ":cycle 1: too few cycles to judge" wait_screen '^verdict: .*\(not enough\|too few\)'
$T send-keys -t main ':' 'f' 'r' 'e' 'e' Enter
used=$(screen | sed -n 's/^│\(used memory : [0-9]*\) .*/\1/p' | head -n 1)
check ":free reads the cycle shown (${used:-no free pane}: in the pane and in the log)" wait_for 5 sh -c "[ -n '$used' ] && [ \$($T capture-pane -p -t main | grep -c '$used') = 2 ]"
$T send-keys -t main q
check "replay: q exits 0" wait_screen 'EXITED 0'
"$MSHMON" replay "$WORK/leak.csv" > "$WORK/replay.out" 2>&1; rc=$?
check "replay: a .csv is refused with the reason (exit 2, exit $rc)" sh -c "[ $rc = 2 ] && grep -q 'a .csv export holds counts only' '$WORK/replay.out'"
"$MSHMON" replay "$WORK/none.jsonl" > "$WORK/replay.out" 2>&1; rc=$?
check "replay: a missing file is named (exit 1, exit $rc)" sh -c "[ $rc = 1 ] && grep -q 'cannot read $WORK/none.jsonl' '$WORK/replay.out'"
"$MSHMON" replay "$WORK/leak.jsonl" < /dev/null > "$WORK/replay.out" 2>&1; rc=$?
check "replay: without a terminal, it says so and names the report (exit $rc)" sh -c "[ $rc = 1 ] && grep -q 'needs a terminal; .mshmon report' '$WORK/replay.out'"

echo "dashboard: fast auto-cycling, no export"
# The TIME_WAIT rows kept for the screen grew the heap in steps up to 40 of them, which the
# header read as "LEAK heap +149 B/cycle" around cycle 70 (gone by ~200).
F="tmux -L $S-fast"
$F new-session -d -s fast -x 120 -y 40 "'$MSHMON'; sleep 30"
fast() { $F capture-pane -p -t fast 2>/dev/null; }
wait_for 10 sh -c "$F capture-pane -p -t fast 2>/dev/null | grep -q 'client idle'"
$F send-keys -t fast ']' ']' ']' ']' a
check "fast: the cycle count passes 60" wait_for 60 sh -c "$F capture-pane -p -t fast 2>/dev/null | grep -Eq 'cycles ([6-9][0-9]|[1-9][0-9][0-9])'"
check "fast: no leak in the header past cycle 60, TIME_WAIT rows piling up" sh -c "$F capture-pane -p -t fast 2>/dev/null | grep -q '^verdict: no leak over'" ||
    fast | head -n 3 | sed 's/^/       /'
$F send-keys -t fast q
sleep 1
$F kill-server 2>/dev/null

finish
