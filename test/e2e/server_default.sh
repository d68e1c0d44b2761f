#!/usr/bin/env bash
# End-to-end test of firn on its embedded configuration: it scrapes its own
# CPU and heap profiles, `go tool pprof` reads them over HTTP, overlapping
# CPU profile requests both succeed, and SIGTERM stops firn promptly even
# while a long CPU profile is being recorded.
#
# usage: server_default.sh FIRN FIRNCTL
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
firnctl=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
e2e_workspace

data=$tmp/data
if ! start_firn "$firn" "$tmp/firn.log" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT
ok "firn ready on port $FIRN_PORT with its embedded config"

same "the embedded config scrapes firn itself" \
    "$(curl_local "$api/api/v1/targets" | jq -r '[.data.activeTargets[] | .labels.__name__ + " " + .scrapeUrl] | sort | join(",")')" \
    "memory http://127.0.0.1:$FIRN_PORT/debug/pprof/allocs,process_cpu http://127.0.0.1:$FIRN_PORT/debug/pprof/profile?seconds=9"

stored() {
    "$firnctl" tsdb values __name__ --match job=firn --storage.tsdb.path "$data" 2>/dev/null |
        tr '\n' ' '
}
want="memory:alloc_objects:count:space:bytes:delta memory:alloc_space:bytes:space:bytes:delta memory:inuse_objects:count:space:bytes memory:inuse_space:bytes:space:bytes process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta process_cpu:samples:count:cpu:nanoseconds:delta "
has_all() { [[ $(stored) == "$want" ]]; }
if wait_for 45 has_all; then ok "firn's own CPU and memory profiles are stored"; else same "stored types" "$(stored)" "$want"; fi

# go tool pprof over HTTP, as a user types it.
pprof_top() {  # NAME URL
    if timeout 60 go tool pprof -top "$2" >"$tmp/$1.top" 2>"$tmp/$1.err"; then
        ok "go tool pprof -top reads $1"
    else
        fail "go tool pprof -top $1: $(tail -2 "$tmp/$1.err")"
    fi
}
pprof_top heap "$api/debug/pprof/heap"
pprof_top allocs "$api/debug/pprof/allocs"
grep -q 'Type: inuse_space' "$tmp/heap.top" && ok "heap defaults to inuse_space" || fail "heap: $(head -5 "$tmp/heap.top")"
grep -q 'Type: alloc_space' "$tmp/allocs.top" && ok "allocs defaults to alloc_space" || fail "allocs: $(head -5 "$tmp/allocs.top")"

# Two overlapping CPU profiles (and the self-scrape's): all succeed.
timeout 60 go tool pprof -top "$api/debug/pprof/profile?seconds=3" >"$tmp/cpu1.top" 2>"$tmp/cpu1.err" &
p1=$!
timeout 60 go tool pprof -top "$api/debug/pprof/profile?seconds=2" >"$tmp/cpu2.top" 2>"$tmp/cpu2.err" &
p2=$!
wait "$p1" && ok "a 3 s CPU profile over HTTP" || fail "3 s profile: $(tail -2 "$tmp/cpu1.err")"
wait "$p2" && ok "an overlapping 2 s CPU profile" || fail "2 s profile: $(tail -2 "$tmp/cpu2.err")"
# The duration is measured, as Go's is: a loaded machine may stretch it
# past 3.005 s, which pprof prints as 3.01s; 2 s or 30 s would be wrong.
grep -Eq 'Duration: 3(\.0[0-9])?s' "$tmp/cpu1.top" && ok "the 3 s profile says so" || fail "cpu1: $(head -6 "$tmp/cpu1.top")"

# firn's own frames carry file and line.
curl_local -o "$tmp/heap.pb.gz" "$api/debug/pprof/heap"
if go tool pprof -raw "$tmp/heap.pb.gz" 2>/dev/null | grep -Eq ' M=1 [a-z_]+ /.*\.c:[0-9]+'; then
    ok "firn's frames are symbolized with file:line"
else
    fail "no firn frame with file:line in the heap profile"
fi

# SIGTERM during a 30 s CPU profile request: firn stops well before the
# profile would end (20 s: room for a loaded machine, and still short of
# the 30 s a stop that waits for the request takes).
curl_local -o /dev/null --trace-ascii "$tmp/trace" "$api/debug/pprof/profile?seconds=30" &
track_pid $!
sent() { grep -q 'GET /debug/pprof/profile?seconds=30' "$tmp/trace"; }
wait_for 10 sent && ok "a 30 s CPU profile request is being served" ||
    fail "the CPU profile request was not sent: $(tail -3 "$tmp/trace")"
start=$SECONDS
kill -TERM "$FIRN_PID"
gone() { ! alive "$FIRN_PID"; }
if wait_for 20 gone; then ok "SIGTERM stops firn in $((SECONDS - start)) s during a long CPU profile"; else fail "firn still running 20 s after SIGTERM"; fi
wait "$FIRN_PID" 2>/dev/null
grep -q 'See you next time' "$tmp/firn.log" && ok "firn logged a clean stop" || fail "shutdown: $(tail -3 "$tmp/firn.log")"
finish
