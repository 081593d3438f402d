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
check "the man page documents mshmon cycle and its exit codes" grep -q 'Exit status: 0 no leak, 3 leak found' ../../Resources/mshmon.1
check "bash completion offers the subcommands" grep -q 'cycle' ../../Resources/completions/mshmon.bash
finish
