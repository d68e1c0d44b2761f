#!/usr/bin/env bash
# bench_fleet.sh -- `firnctl bench fleet` with real profiles recorded from
# test/goservice at the start (a Go CPU profile, its heap and its
# goroutines) added to the fixtures the bench builds its fleet from.
#
# usage: bench_fleet.sh FIRNCTL FIXTURES_DIR [bench fleet flags...]
#
# The Go service runs on 127.0.0.1 only and is stopped on exit; without Go
# the bench runs on the fixtures alone (and says so).  Figures go to
# standard output as `figure_name value` lines, notes to standard error.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
. "$SRCDIR/test/e2e/lib.sh"

firnctl=$1 fixtures=$2
shift 2
tmp=$(mktemp -d /var/tmp/firn-fleet-go.XXXXXX)
trap 'stop_tracked; rm -rf "$tmp"' EXIT

recorded=()
if command -v go >/dev/null && build_go "$SRCDIR" goservice "$tmp" && start_goservice "$tmp" svc; then
    for p in "profile?seconds=2 cpu" "heap heap" "goroutine goroutine"; do
        path=${p% *} name=${p#* }
        if curl_local --fail --silent --max-time 20 -o "$tmp/$name.pb.gz" "http://$GO_ADDR/debug/pprof/$path"; then
            recorded+=("$tmp/$name.pb.gz")
        else
            echo "bench_fleet.sh: recording $path from the Go service failed" >&2
        fi
    done
    stop_tracked
    echo "bench_fleet.sh: recorded ${#recorded[@]} profiles from test/goservice" >&2
else
    echo "bench_fleet.sh: no Go service (is golang-go installed?): fixtures only" >&2
fi
"$firnctl" bench fleet --fixtures "$fixtures" "$@" "${recorded[@]}"
