#!/usr/bin/env bash
# End to end: the run's Prometheus metrics. A real Prometheus (Debian's package) scrapes
# `mshmon cycle --metrics` on loopback and is queried through its HTTP API; promtool checks
# the exposition and the node_exporter textfile (--metrics-file); a target's metrics carry
# its label; an injected leak shows in mshmon_leak_detected; bad input is refused.
cd "$(dirname "$0")" && . ./lib.bash

MPORT=$(free_port); PPORT=$(free_port)
# Prometheus first, as in a fleet: its first scrape, and the connection it keeps open (a
# step of the heap and one socket), come during mshmon's warm-up.
cat > "$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: mshmon
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PPORT" \
    > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_listening "$PPORT" || { fail "prometheus listens on $PPORT"; tail -n 5 "$WORK/prometheus.log"; }
"$MSHMON" cycle -n 200 --interval 100 --warmup 20 --metrics "127.0.0.1:$MPORT" --metrics-file "$WORK/run.prom" --quiet \
    > "$WORK/run.out" 2>&1 &
RUN=$!
PIDS+=($RUN)
wait_listening "$MPORT" || fail "mshmon serves metrics on 127.0.0.1:$MPORT"

echo "metrics: the exposition"
wait_for 10 sh -c "curl -sf http://127.0.0.1:$MPORT/metrics | grep -q '^mshmon_cycles_total{target=\"self\"} [1-9]'"
curl -sf "http://127.0.0.1:$MPORT/metrics" > "$WORK/scrape.txt"
check "GET /metrics: mshmon_cycles_total counts cycles" grep -q '^mshmon_cycles_total{target="self"} [1-9]' "$WORK/scrape.txt"
for m in mshmon_heap_used_bytes 'mshmon_open_fds{type="socket"' 'mshmon_tcp_sockets{state="TIME_WAIT"' 'mshmon_ledger_live{kind="tls"' \
         mshmon_threads mshmon_leak_detected; do
    check "GET /metrics has $m" grep -qF "$m" "$WORK/scrape.txt"
done
check "promtool check metrics passes on the exposition" promtool check metrics < "$WORK/scrape.txt"
check "another path is 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" = 404 ]
check "POST is 405" [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MPORT/metrics")" = 405 ]
wait_for 5 test -s "$WORK/run.prom"
check "the textfile is written during the run and passes promtool" sh -c "promtool check metrics < '$WORK/run.prom'"

echo "metrics: a real Prometheus scrapes them"
query() { curl -sf "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1"; }
value_above() {  # QUERY MIN: the first result's value is above MIN
    query "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r and float(r[0]["value"][1]) > float(sys.argv[1]) else 1)' "$2"
}
check "Prometheus has mshmon_cycles_total > 0 for job mshmon" wait_for 30 value_above 'mshmon_cycles_total{job="mshmon",target="self"}' 0
check "Prometheus has mshmon_tcp_sockets{state=TIME_WAIT} > 0 (our TIME_WAIT sockets)" wait_for 30 value_above 'mshmon_tcp_sockets{state="TIME_WAIT",target="self"}' 0
check "Prometheus sees the cycle rate" wait_for 30 value_above 'rate(mshmon_cycles_total[5s])' 0
check "Prometheus: the target is up" wait_for 10 value_above 'up{job="mshmon"}' 0.5
wait $RUN; rc=$?
check "200 cycles scraped every second: exit 0, no leak (the scrapes' connection is a step)" grep -q "^0:verdict: no leak over" <<<"$rc:$(tail -n 1 "$WORK/run.out")" ||
    tail -n 1 "$WORK/run.out" | sed 's/^/       /' 
cycles=$(sed -n 's/^mshmon_cycles_total{target="self"} \([0-9]*\)$/\1/p' "$WORK/run.prom")
ok=$(sed -n 's/^mshmon_cycles_ok: \([0-9]*\) of.*/\1/p' "$WORK/run.out")
check "the last textfile counts every cycle ($cycles, the run says $ok)" [ -n "$cycles" ] && [ "$cycles" = "$ok" ]
check "no temporary textfile is left" sh -c "! ls '$WORK'/run.prom.*.tmp 2>/dev/null | grep -q ."

echo "metrics: a leak, a target, bad input"
"$MSHMON" cycle -n 30 --inject-leak socket-race --metrics-file "$WORK/leak.prom" --quiet >/dev/null 2>&1; rc=$?
check "socket-race: exit 3, mshmon_leak_detected 1" [ "$rc:$(sed -n 's/^mshmon_leak_detected{target="self"} //p' "$WORK/leak.prom")" = "3:1.0" ]
check "socket-race: the fds slope is 1 per cycle" grep -q '^mshmon_leak_slope_per_cycle{series="fds",target="self"} 1.0$' "$WORK/leak.prom"
"$MSHMON" cycle -n 4 --kick-every 200ms --timeout 20s --metrics-file "$WORK/target.prom" --quiet -- mosquitto_sub -h {host} -p {port} -t 'm/#' >/dev/null 2>&1; rc=$?
check "a target's metrics carry its pid and name, exit 0" sh -c "[ $rc = 0 ] && grep -q '^mshmon_cycles_total{target=\"pid [0-9]* mosquitto_sub\"} 4$' '$WORK/target.prom'"
check "a target's metrics have no ledger" sh -c "! grep -q mshmon_ledger_live '$WORK/target.prom'"
err=$("$MSHMON" cycle -n 1 --metrics-file "$WORK/x.txt" 2>&1); rc=$?
check "--metrics-file without .prom: exit 2, said" [ "$rc" = 2 ] && grep -q "must end in .prom" <<<"$err"
err=$("$MSHMON" cycle -n 1 --metrics localhost:9 2>&1); rc=$?
check "--metrics with a name: exit 2, said" [ "$rc" = 2 ] && grep -q "ADDRESS:PORT with an IP address" <<<"$err"
err=$("$MSHMON" cycle -n 1 --metrics "127.0.0.1:$PPORT" 2>&1 >/dev/null); rc=$?
check "--metrics on a port in use: exit 1, one line" [ "$rc:$(wc -l <<<"$err")" = "1:1" ] && grep -q "cannot serve metrics on 127.0.0.1:$PPORT" <<<"$err"
err=$("$MSHMON" cycle -n 1 --metrics-file "$WORK/no/such/dir.prom" 2>&1 >/dev/null); rc=$?
check "--metrics-file in a missing folder: exit 1, named" [ "$rc" = 1 ] && grep -q "cannot write $WORK/no/such/dir.prom" <<<"$err"

finish
