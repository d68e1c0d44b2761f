#!/bin/bash
# bench_smoke.sh FIRNCTL FIXTURES_DIR -- `firnctl bench decode` runs on the
# fixtures and prints its figures in the `figure_name value` form scripts
# read.  This checks the form, never the speed: speed is measured, not
# asserted.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
out=$("$1" bench decode --seconds 0.2 "$2"/* 2>/dev/null)
rc=$?
[ $rc -eq 0 ] && ok "bench decode exits 0" || fail "bench decode exited $rc"
for fig in bench_files decode_mb_per_s decode_profiles_per_s inflate_mb_per_s decode_vs_inflate_ratio; do
    if printf '%s\n' "$out" | grep -Eq "^$fig [0-9]+(\.[0-9]+)?$"; then
        ok "figure $(printf '%s\n' "$out" | grep "^$fig ")"
    else
        fail "figure $fig missing or malformed in: $(printf '%s' "$out" | tr '\n' '|')"
    fi
done
bad=$(printf '%s\n' "$out" | grep -Evc '^[a-z0-9_]+ [0-9]+(\.[0-9]+)?$')
[ "$bad" -eq 0 ] && ok "every output line is 'figure_name value'" || fail "$bad malformed lines"
files=$(printf '%s\n' "$out" | awk '$1 == "bench_files" { print $2 }')
[ "${files:-0}" -ge 60 ] && ok "all $files decodable fixtures timed" || fail "only ${files:-0} fixtures timed"
finish
