#!/usr/bin/env bash
# go_test.sh SOURCE_DIR PROGRAM -- run `go test` for the Go test program
# test/PROGRAM (its own tests: the fake Kubernetes API server's behaviour
# that disc_kubernetes.sh relies on), from a copy, offline, bounded.
set -uo pipefail
srcdir=$1
prog=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
mkdir -p "$tmp/src"
cp "$srcdir/test/$prog/"*.go "$srcdir/test/$prog/go.mod" "$tmp/src/"
if (cd "$tmp/src" && timeout 600 go test -count=1 ./...) >"$tmp/test.log" 2>&1; then
    ok "go test test/$prog: $(grep -E '^ok' "$tmp/test.log" | head -1)"
else
    fail "go test test/$prog: $(tail -15 "$tmp/test.log")"
fi
finish
