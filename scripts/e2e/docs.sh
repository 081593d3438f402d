#!/usr/bin/env bash
# The man page and the shell completions in Resources/ are what the argument parser generates
# today: regenerate them elsewhere and compare (fails when they fall out of date; fix with
# scripts/gen-docs).
cd "$(dirname "$0")" && . ./lib.bash
OUT=$WORK/docs
( cd ../.. && scripts/gen-docs "$OUT" ) > "$WORK/gen.log" 2>&1 || { cat "$WORK/gen.log"; fail "scripts/gen-docs ran"; }
for f in mshmon.1 completions/mshmon.bash completions/mshmon.zsh completions/mshmon.fish; do
    check "Resources/$f is up to date" diff -q "../../Resources/$f" "$OUT/$f"
done
check "the man page documents mshmon cycle and its exit codes" sh -c "grep -q '^  3  a leak was found' ../../Resources/mshmon.1 && grep -q '^  4  cycles failed beyond --allow-failures' ../../Resources/mshmon.1"
check "the man page documents --allow-failures, --broker-bind, --bind and deny-subscribe" sh -c "grep -q 'Fl -allow-failures Ar' ../../Resources/mshmon.1 && grep -q 'Fl -broker-bind Ar' ../../Resources/mshmon.1 && grep -q 'Fl -bind Ar' ../../Resources/mshmon.1 && grep -q 'deny-subscribe:FILTER' ../../Resources/mshmon.1"
check "the man page documents the device console options" sh -c "for o in console baud prompt cycle-command console-timeout broker-port; do grep -q \"Fl -\$o Ar\" ../../Resources/mshmon.1 || exit 1; done"
check "the man page documents the TLS options and faults" sh -c "for o in cafile cert key tls-version ca-out; do grep -q \"Fl -\$o Ar\" ../../Resources/mshmon.1 || exit 1; done; grep -q 'Fl -insecure' ../../Resources/mshmon.1 && grep -q 'Fl -tls' ../../Resources/mshmon.1 && grep -q 'tls-close-mid-handshake' ../../Resources/mshmon.1"
check "the man page documents --metrics and --metrics-file" sh -c "grep -q 'Fl -metrics Ar' ../../Resources/mshmon.1 && grep -q 'Fl -metrics-file Ar' ../../Resources/mshmon.1"
check "the man page documents mshmon report" grep -q 'mshmon report' ../../Resources/mshmon.1
check "the man page documents mshmon replay and the chart's keys" sh -c "grep -q 'mshmon replay' ../../Resources/mshmon.1 && grep -q 'g / G the chart' ../../Resources/mshmon.1"
check "cycle --help explains TLS" sh -c "'$MSHMON' cycle --help | grep -q 'TLS: --broker mqtts://HOST\[:8883\] verifies'"
check "cycle --help explains devices and their consoles" sh -c "'$MSHMON' cycle --help | grep -q 'Devices: .--console. watches an RT-Thread device'"
check "bash completion offers the subcommands" grep -q 'cycle' ../../Resources/completions/mshmon.bash
finish
