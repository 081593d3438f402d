#!/usr/bin/env bash
# End to end: MQTT over TLS. `mshmon cycle` against mosquitto's TLS listeners (certificates made
# here with openssl): verification, each failure's one line and exit 1, client certificates,
# 1,000 cycles back to baseline, the injected TLS leak; the embedded broker's --tls with
# mosquitto_pub/mosquitto_sub both ways, and its TLS faults.
cd "$(dirname "$0")" && . ./lib.bash && . ./certs.bash

C=$WORK/certs
gen_certs "$C" || { fail "openssl made the test certificates"; finish; exit 1; }
chmod 755 "$C"

# One mosquitto, a listener per case: good, expired, wrong host, self-signed, another CA's,
# client certificates required, plain.
GOOD=$(free_port); EXPIRED=$(free_port); WRONG=$(free_port); SELF=$(free_port); STRANGER=$(free_port)
MTLS=$(free_port); PLAIN=$(free_port)
listener() {  # PORT CERT [extra lines]
    local port=$1 cert=$2; shift 2
    printf 'listener %s 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n' "$port" "$C/ca.pem" "$C/$cert.pem" "$C/$cert.key"
    local l; for l in "$@"; do echo "$l"; done
}
conf=$( { listener "$EXPIRED" expired; listener "$WRONG" wronghost; listener "$SELF" selfsigned
          listener "$STRANGER" stranger; listener "$MTLS" server "require_certificate true"
          echo "listener $PLAIN 127.0.0.1"; } )
mapfile -t lines <<<"$conf"
start_mosquitto "$GOOD" "cafile $C/ca.pem" "certfile $C/server.pem" "keyfile $C/server.key" "per_listener_settings false" "${lines[@]}" || exit 1
for p in "$EXPIRED" "$WRONG" "$SELF" "$STRANGER" "$MTLS" "$PLAIN"; do wait_listening "$p" || fail "mosquitto listens on $p"; done

echo "tls: verification against mosquitto"
out=$("$MSHMON" cycle --broker "mqtts://localhost:$GOOD" --cafile "$C/ca.pem" -n 20 --settle 0 2>&1); rc=$?
check "mqtts://localhost with --cafile: 20 cycles, exit 0, no leak" grep -q "^0:verdict: no leak over 20 cycles" <<<"$rc:$(tail -n 1 <<<"$out")"
out=$("$MSHMON" cycle --broker "mqtts://127.0.0.1:$GOOD" --cafile "$C/ca.pem" -n 5 --settle 0 2>&1); rc=$?
check "mqtts://127.0.0.1 (the certificate's IP address): exit 0" [ $rc = 0 ]

# expect_failure NAME EXPECTED-LINE ARGS...: exit 1 and exactly that one line on stderr, nothing on stdout past the first.
expect_failure() {
    local name=$1 expected=$2; shift 2
    local err
    err=$("$MSHMON" cycle "$@" -n 3 --settle 0 2>&1 >/dev/null); local rc=$?
    check "$name: exit 1 ($rc)" [ $rc = 1 ]
    check "$name: one line: $expected" [ "$err" = "$expected" ]
}
expect_failure "the system trust store does not know the test CA" \
    "mshmon: TLS with localhost:$GOOD: certificate verify failed: unknown CA: the certificate's issuer (CN=test CA,O=mshmon-test) is not trusted (--cafile names the CA to trust)" \
    --broker "mqtts://localhost:$GOOD"
expect_failure "expired" \
    "mshmon: TLS with localhost:$EXPIRED: certificate verify failed: certificate expired on 2024-02-01 00:00 UTC (CN=expired)" \
    --broker "mqtts://localhost:$EXPIRED" --cafile "$C/ca.pem"
expect_failure "host name mismatch" \
    "mshmon: TLS with localhost:$WRONG: certificate verify failed: host name mismatch, not valid for localhost: it is for wrong.example" \
    --broker "mqtts://localhost:$WRONG" --cafile "$C/ca.pem"
expect_failure "self-signed" \
    "mshmon: TLS with localhost:$SELF: certificate verify failed: self-signed certificate (CN=localhost,O=mshmon-test), not trusted: give it with --cafile" \
    --broker "mqtts://localhost:$SELF" --cafile "$C/ca.pem"
expect_failure "unknown CA" \
    "mshmon: TLS with localhost:$STRANGER: certificate verify failed: unknown CA: the certificate's issuer (CN=other CA,O=mshmon-test) is not trusted (--cafile names the CA to trust)" \
    --broker "mqtts://localhost:$STRANGER" --cafile "$C/ca.pem"
expect_failure "a plain MQTT port on an mqtts URL" \
    "mshmon: TLS with localhost:$PLAIN: the broker closed the connection without a TLS answer (a plain MQTT port? it takes mqtt://)" \
    --broker "mqtts://localhost:$PLAIN" --cafile "$C/ca.pem"
expect_failure "a TLS port on an mqtt URL" \
    "mshmon: connection lost: connection reset by peer before CONNACK (a TLS port? it takes mqtts://)" \
    --broker "mqtt://localhost:$GOOD"

echo "tls: client certificates"
expect_failure "no client certificate where one is required" \
    "mshmon: TLS with localhost:$MTLS: the broker requires a client certificate (--cert and --key), alert certificate required" \
    --broker "mqtts://localhost:$MTLS" --cafile "$C/ca.pem"
expect_failure "a client certificate of another CA" \
    "mshmon: TLS with localhost:$MTLS: client certificate refused by the broker, alert unknown ca" \
    --broker "mqtts://localhost:$MTLS" --cafile "$C/ca.pem" --cert "$C/otherclient.pem" --key "$C/otherclient.key"
out=$("$MSHMON" cycle --broker "mqtts://localhost:$MTLS" --cafile "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key" -n 10 --settle 0 2>&1); rc=$?
check "--cert/--key accepted: exit 0" [ $rc = 0 ]
out=$(MSHMON_KEY_PASSWORD=s3cret "$MSHMON" cycle --broker "mqtts://localhost:$MTLS" --cafile "$C/ca.pem" --cert "$C/client.pem" \
      --key "$C/client-encrypted.key" -n 5 --settle 0 2>&1); rc=$?
check "an encrypted key with MSHMON_KEY_PASSWORD: exit 0" [ $rc = 0 ]
check "the passphrase is not in the output" bash -c "! grep -q s3cret <<<\"\$1\"" _ "$out"
expect_failure "an encrypted key without its passphrase" \
    "mshmon: --key $C/client-encrypted.key is encrypted: set its passphrase in MSHMON_KEY_PASSWORD" \
    --broker "mqtts://localhost:$MTLS" --cafile "$C/ca.pem" --cert "$C/client.pem" --key "$C/client-encrypted.key"
err=$(MSHMON_KEY_PASSWORD=wrong "$MSHMON" cycle --broker "mqtts://localhost:$MTLS" --cafile "$C/ca.pem" --cert "$C/client.pem" \
      --key "$C/client-encrypted.key" -n 3 2>&1 >/dev/null); rc=$?
check "a wrong passphrase: exit 1, said" [ "$rc:$err" = "1:mshmon: --key $C/client-encrypted.key: wrong passphrase (MSHMON_KEY_PASSWORD)" ]

echo "tls: options"
cat "$C/ca.pem" "$C/other.pem" > "$C/both.pem"
out=$("$MSHMON" cycle --broker "mqtts://localhost:$STRANGER" --cafile "$C/both.pem" -n 3 --settle 0 2>&1); rc=$?
check "a --cafile holding two CAs trusts the second's certificates too" [ $rc = 0 ]
# A TLS server of Python's ssl: the SNI asked for and the version agreed, per connection.
tls_server() {  # OUT COUNT [--max-tls12] -> TLSPORT
    TLSPORT=$(free_port)
    python3 ./tls_server.py "$TLSPORT" "$C" "$@" & PIDS+=($!)
    wait_listening "$TLSPORT"
}
tls_server "$WORK/sni" 2
"$MSHMON" cycle --broker "mqtts://localhost:$TLSPORT" --cafile "$C/ca.pem" -n 1 >/dev/null 2>&1
"$MSHMON" cycle --broker "mqtts://127.0.0.1:$TLSPORT" --cafile "$C/ca.pem" -n 1 >/dev/null 2>&1
wait_for 10 test -s "$WORK/sni"
check "SNI: the host name is sent, an IP address is not (RFC 6066)" [ "$(cut -d' ' -f1 "$WORK/sni" | tr '\n' ,)" = "localhost,None," ]
check "TLS 1.3 by default" [ "$(cut -d' ' -f2 "$WORK/sni" | tr '\n' ,)" = "TLSv1.3,TLSv1.3," ]
tls_server "$WORK/v12" 2 --max-tls12
"$MSHMON" cycle --broker "mqtts://localhost:$TLSPORT" --cafile "$C/ca.pem" -n 1 >/dev/null 2>&1
expect_failure "a TLS 1.2-only server with --tls-version 1.3" \
    "mshmon: TLS with localhost:$TLSPORT: handshake failed: the broker sent alert protocol version" \
    --broker "mqtts://localhost:$TLSPORT" --cafile "$C/ca.pem" --tls-version 1.3
wait_for 10 test -s "$WORK/v12"
check "a TLS 1.2-only server: TLS 1.2 by default, refused with --tls-version 1.3" [ "$(tr '\n' , < "$WORK/v12")" = "localhost TLSv1.2,None UNSUPPORTED_PROTOCOL," ]
out=$("$MSHMON" cycle --broker "mqtts://localhost:$SELF" --insecure -n 3 --settle 0 2>&1 >/dev/null); rc=$?
check "--insecure connects to a self-signed broker" [ $rc = 0 ]
check "--insecure says so in one warning line" [ "$(grep -c '^mshmon: warning: --insecure' <<<"$out")" = 1 ]
out=$("$MSHMON" cycle --broker "mqtts://localhost:$GOOD" --cafile "$C/ca.pem" --tls-version 1.3 -n 3 --settle 0 2>&1); rc=$?
check "--tls-version 1.3 against mosquitto: exit 0" [ $rc = 0 ]
usage() {  # NAME EXPECTED ARGS: exit 2 with that line
    local name=$1 expected=$2; shift 2
    local err; err=$("$MSHMON" cycle "$@" -n 1 2>&1 >/dev/null); local rc=$?
    check "$name: exit 2 and says why" bash -c '[ "$1" = 2 ] && grep -qF -- "$2" <<<"$3"' _ "$rc" "$expected" "$err"
}
usage "--cafile on plain MQTT" "--cafile needs TLS: --broker mqtts://HOST:PORT, or --tls" --broker "mqtt://localhost:$PLAIN" --cafile "$C/ca.pem"
usage "--cert without --key" "--cert and --key go together" --broker "mqtts://localhost:$MTLS" --cert "$C/client.pem"
usage "--tls with --broker" "--tls is for the embedded broker" --broker "mqtt://localhost:$PLAIN" --tls
usage "a bad --tls-version" "tls-version" --tls --tls-version 1.1
usage "tls-context without TLS" "--inject-leak tls-context needs TLS" --broker "mqtt://localhost:$PLAIN" --inject-leak tls-context
err=$("$MSHMON" cycle --broker "mqtts://localhost:$GOOD" --cafile "$WORK/nope.pem" -n 1 2>&1 >/dev/null); rc=$?
check "a missing --cafile: exit 1, named" [ "$rc:$err" = "1:mshmon: --cafile $WORK/nope.pem: no such file" ]

echo "tls: 1,000 cycles against mosquitto, and the injected TLS leak"
out=$("$MSHMON" cycle --broker "mqtts://localhost:$GOOD" --cafile "$C/ca.pem" -n 1000 --settle 0 --quiet \
      --export "$WORK/tls1000.jsonl" 2>&1); rc=$?
check "1,000 TLS cycles: exit 0, no leak" grep -q "^0:verdict: no leak over 1000 cycles" <<<"$rc:$(tail -n 1 <<<"$out")"
check "1,000 TLS cycles: fds, sockets and every ledger kind back at the first cycle's" python3 - "$WORK/tls1000.jsonl" <<'PY'
import json, sys
samples = [json.loads(l) for l in open(sys.argv[1]) if '"type":"sample"' in l]
first, last = samples[0], samples[-1]
assert len(samples) == 1000, len(samples)
assert last["fds"] == first["fds"], (first["fds"], last["fds"])
ours = lambda s: {k: v for k, v in s["sockets"].items() if k != "TIME_WAIT" and v}
assert ours(last) == ours(first) == {}, (ours(first), ours(last))
kinds = {k: v for k, v in last["ledger"].items() if k != "eventLoop" and v}
assert kinds == {}, kinds
assert "tls" in last["ledger"], "the tls kind is exported"
PY
out=$("$MSHMON" cycle --broker "mqtts://localhost:$GOOD" --cafile "$C/ca.pem" -n 20 --settle 0 --inject-leak tls-context --quiet 2>&1); rc=$?
check "--inject-leak tls-context: exit 3 within 20 cycles" [ $rc = 3 ]
check "--inject-leak tls-context: the verdict names the tls kind" grep -q '^verdict: LEAK ledger tls +1.00/cycle' <<<"$out"

echo "tls: the embedded broker"
out=$("$MSHMON" cycle --tls -n 50 --settle 0 --export "$WORK/tls-embedded.jsonl" 2>&1); rc=$?
check "cycle --tls: 50 cycles, exit 0, no leak" grep -q "^0:verdict: no leak over 50 cycles" <<<"$rc:$(tail -n 1 <<<"$out")"
check "cycle --tls: the export's header says mqtts" grep -q '"broker":"embedded broker mqtts://127.0.0.1:' "$WORK/tls-embedded.jsonl"
check "cycle --tls: its CA file is removed with the broker" bash -c '! ls /tmp/mshmon-ca-*.pem 2>/dev/null | grep -q .' 
EP=$(free_port)
"$MSHMON" broker --tls --port "$EP" --ca-out "$WORK/embedded-ca.pem" > "$WORK/embedded.out" 2>&1 &
PIDS+=($!)
wait_listening "$EP" || fail "mshmon broker --tls listens"
check "broker --tls names its CA file first" [ "$(head -n 1 "$WORK/embedded.out")" = "CA certificate: $WORK/embedded-ca.pem" ]
for host in localhost 127.0.0.1; do
    timeout 10 mosquitto_sub --cafile "$WORK/embedded-ca.pem" -h "$host" -p "$EP" -t "tls/$host" -C 1 > "$WORK/sub-$host.out" 2>&1 &
    sub=$!
    ok=0
    for _ in $(seq 1 50); do  # until the subscriber is in: a retained-free publish reaches only subscribers present
        mosquitto_pub --cafile "$WORK/embedded-ca.pem" -h "$host" -p "$EP" -t "tls/$host" -m "hello over $host" 2>/dev/null
        if ! kill -0 $sub 2>/dev/null; then ok=1; break; fi
        sleep 0.1
    done
    wait $sub
    check "mosquitto_pub → broker --tls → mosquitto_sub --cafile, via $host" [ "$ok:$(cat "$WORK/sub-$host.out")" = "1:hello over $host" ]
done
err=$(mosquitto_pub -h localhost -p "$EP" -t x -m y 2>&1); rc=$?
check "plain mosquitto_pub to broker --tls fails" [ $rc != 0 ]

echo "tls: the project's client at mosquitto_sub, and mosquitto_pub at the embedded broker's TLS from mshmon's side"
timeout 10 mosquitto_sub --cafile "$C/ca.pem" -h localhost -p "$GOOD" -t 'mshmon/tls-interop/up' -C 1 > "$WORK/sub-up.out" 2>&1 &
sub=$!
for _ in $(seq 1 50); do
    "$MSHMON" cycle --broker "mqtts://localhost:$GOOD" --cafile "$C/ca.pem" -i tls-interop -n 1 --settle 0 --quiet >/dev/null 2>&1
    kill -0 $sub 2>/dev/null || break
    sleep 0.1
done
wait $sub
check "mshmon's publish over TLS reaches mosquitto_sub" [ -s "$WORK/sub-up.out" ]

echo "tls: a target over TLS ({cafile})"
out=$("$MSHMON" cycle --tls -n 5 --kick-every 300ms --timeout 20s -- mosquitto_sub --cafile {cafile} -h {host} -p {port} -t 'tls/#' 2>&1); rc=$?
check "mosquitto_sub over TLS as a target: 5 cycles seen at the embedded broker, exit 0" [ "$rc:$(grep -c '^cycle ' <<<"$out")" = 0:5 ] ||
    tail -n 5 <<<"$out" | sed 's/^/       /'
err=$("$MSHMON" cycle --tls --cafile x.pem -n 1 -- true 2>&1 >/dev/null); rc=$?
check "--cafile with a target is refused: a target brings its own" [ "$rc" = 2 ] && grep -q "a target brings its own TLS settings" <<<"$err"

echo "tls: the embedded broker's TLS faults"
for f in "tls-expired:certificate verify failed: certificate expired on " \
         "tls-wrong-host:certificate verify failed: host name mismatch, not valid for 127.0.0.1: it is for wrong-host.invalid" \
         "tls-close-mid-handshake:the broker closed the connection in the middle of the TLS handshake"; do
    err=$("$MSHMON" cycle --broker-fault "${f%%:*}" -n 3 2>&1 >/dev/null); rc=$?
    check "--broker-fault ${f%%:*}: exit 1, one line" [ "$rc:$(wc -l <<<"$err")" = "1:1" ]
    check "--broker-fault ${f%%:*}: ${f#*:}" grep -qF -- "${f#*:}" <<<"$err"
done

finish
