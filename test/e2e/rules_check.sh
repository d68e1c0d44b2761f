#!/bin/bash
# rules_check.sh FIRNCTL RULES_DIR -- `firnctl check rules` against the real
# `promtool check rules` (Debian's Prometheus 2.42) on every file of
# RULES_DIR (test/rules/check: Prometheus's rulefmt and promtool test cases
# re-written as ours, plus crafted ones): the same stdout, the same stderr
# (every error text, FILE:LINE:COL included) and the same exit code.
# Files outside the query language's PromQL subset (subqueries, @) and a
# record: name that is a profile type are refused by firnctl alone: those
# assert firnctl's own message.  Then the flags and exit codes: --lint-fatal
# (3), --lint=none, several files (1 if any has an error), a missing file.
set -uo pipefail
FIRNCTL=$1
DIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

e2e_workspace
command -v promtool >/dev/null || { fail "promtool not installed (scripts/deps test)"; finish; exit; }

# firn-only refusals: file -> the text firnctl must print
declare -A FIRN_ONLY=(
    [subquery.yml]='could not parse expression: 1:22: parse error: subqueries are not supported'
    [at_modifier.yml]='could not parse expression: 1:10: parse error: the @ modifier is not supported'
    [profile_type_record.yml]='invalid recording rule name: process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta: a profile type'
)

cd "$DIR" || exit 1
n=0
for f in *.yml; do
    n=$((n + 1))
    "$FIRNCTL" check rules "$f" >"$tmp/f.out" 2>"$tmp/f.err"
    frc=$?
    if [ -n "${FIRN_ONLY[$f]:-}" ]; then
        if [ $frc -eq 1 ] && grep -qF -- "${FIRN_ONLY[$f]}" "$tmp/f.err"; then
            ok "$f: refused by firn: ${FIRN_ONLY[$f]}"
        else
            fail "$f: rc $frc, stderr $(head -3 "$tmp/f.err")"
        fi
        # promtool accepts it: the difference is firn's, and stays documented
        promtool check rules "$f" >/dev/null 2>&1
        same "$f: promtool accepts it" "$?" 0
        continue
    fi
    promtool check rules "$f" >"$tmp/p.out" 2>"$tmp/p.err"
    prc=$?
    same "$f: exit code" "$frc" "$prc"
    same "$f: stdout" "$(cat "$tmp/f.out")" "$(cat "$tmp/p.out")"
    same "$f: stderr" "$(cat "$tmp/f.err")" "$(cat "$tmp/p.err")"
done
[ "$n" -ge 30 ] && ok "$n rule files compared" || fail "only $n rule files"

# flags and exit codes, each against promtool
for args in "--lint-fatal duplicates.yml" "--lint=none duplicates.yml" "--lint=all duplicates.yml" \
            "good.yml duplicates.yml bad_expr.yml" "good.yml duplicates.yml" "good.yml good.yml" \
            "nope.yml" "good.yml nope.yml"; do
    # shellcheck disable=SC2086
    "$FIRNCTL" check rules $args >"$tmp/f.out" 2>"$tmp/f.err"
    frc=$?
    # shellcheck disable=SC2086
    promtool check rules $args >"$tmp/p.out" 2>"$tmp/p.err"
    prc=$?
    same "check rules $args: exit code" "$frc" "$prc"
    same "check rules $args: stdout" "$(cat "$tmp/f.out")" "$(cat "$tmp/p.out")"
    same "check rules $args: stderr" "$(sed 's/^firnctl:/promtool:/' "$tmp/f.err")" "$(cat "$tmp/p.err")"
done
finish
