#!/bin/bash
# rules_test.sh FIRNCTL DIR -- `firnctl test rules` against the real
# `promtool test rules` (Debian's Prometheus 2.42) on every unit-test file
# of DIR (test/rules/unittest: the files with a tests: key; the others are
# their rule files): the same stdout, stderr and exit code.  The files
# cover Prometheus's alerting_test.go and promtool testdata cases that the
# query language can express: for, keep_firing_for (TestKeepFiringFor),
# templated labels flipping an alert's identity, annotations, recording
# chains, ALERTS and ALERTS_FOR_STATE, stale and omitted samples,
# group_eval_order, and promtool's failure messages and refusals.
set -uo pipefail
FIRNCTL=$1
DIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

e2e_workspace
command -v promtool >/dev/null || { fail "promtool not installed (scripts/deps test)"; finish; exit 1; }
cd "$DIR" || exit 1
n=0
passing=0
for f in *.yml; do
    grep -q '^tests:' "$f" || continue
    n=$((n + 1))
    "$FIRNCTL" test rules "$f" >"$tmp/f.out" 2>"$tmp/f.err"
    frc=$?
    promtool test rules "$f" >"$tmp/p.out" 2>"$tmp/p.err"
    prc=$?
    [ "$prc" -eq 0 ] && passing=$((passing + 1))
    same "$f: exit code" "$frc" "$prc"
    same "$f: stdout" "$(cat "$tmp/f.out")" "$(cat "$tmp/p.out")"
    same "$f: stderr" "$(cat "$tmp/f.err")" "$(cat "$tmp/p.err")"
done
[ "$n" -ge 6 ] && ok "$n unit-test files compared ($passing pass in promtool)" || fail "only $n files"
[ "$passing" -ge 2 ] && ok "passing files among them" || fail "no passing file"
# several files: exit 1 when any fails, as promtool
"$FIRNCTL" test rules unittest.yml failing.yml >/dev/null 2>&1
frc=$?
promtool test rules unittest.yml failing.yml >/dev/null 2>&1
same "two files, one failing: exit code" "$frc" "$?"
finish
