#!/usr/bin/env bash
# End-to-end fault tests: real faults under a running firn taking pushes on
# POST /api/v1/ingest, and what it must not lose.
#  1. fsync failure: firn runs with test/fault/sync_fault.c preloaded; while
#     the fault is on a push is answered 5xx (never acknowledged) and nothing
#     of it is stored; once the fault stops pushes are taken again.
#  2. kill -9 during ingest: a client pushes without pause and records every
#     acknowledged (200) push; firn is killed with SIGKILL mid-stream and
#     restarted on the same store: every acknowledged profile is there, with
#     the totals `go tool pprof` gives for the file.
#  3. disk full: the store on a 1 MiB tmpfs (root only; otherwise this part
#     is reported as not run and the test exits 77, a skip): pushes until the
#     disk is full get 5xx naming the cause (no space), firn does not crash,
#     what was stored stays readable, and once space is freed pushes are
#     taken again.
#  4. a corrupt store (a copy truncated; copies with bits flipped): firn
#     refuses to start naming the file (or the store, when the damage hides
#     its schema record), or starts and serves what it can read; it never
#     dies of a signal.
#
# usage: faults.sh FIRN FIRNCTL FIXTURES_DIR SYNC_FAULT_LIB
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
firnctl=$2
fixtures=$3
shim=$4
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

cpu=$fixtures/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz
CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta
# The CPU total of the file, from go tool pprof (not firn's decoder).
want_total=$(pprof_raw_totals "$cpu" | cut -d' ' -f2)
[[ -n $want_total ]] && ok "the fixture's CPU total from go tool pprof: $want_total" ||
    fail "go tool pprof -raw $cpu gave no totals"
T0=$(($(date +%s) - 3600))

printf 'scrape_configs: []\n' >"$tmp/firn.yml"
# start_on DATA LOG [VAR=VALUE...]: firn on DATA with those variables in its
# environment, retention off (the profile times are chosen by the test).
start_on() {
    local data=$1 log=$2
    shift 2
    firn_log "$log"
    : >"$log"   # emptied before the start: a restart must not find the last "ready"
    env "$@" "$firn" --config.file="$tmp/firn.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$data" --storage.tsdb.retention.time=0 >>"$log" 2>&1 &
    FIRN_PID=$!
    track_pid "$FIRN_PID"
    wait_for 30 grep -q 'Server is ready to receive web requests' "$log" || return 1
    FIRN_PORT=$(sed -n 's/.*Server is ready to receive web requests.* port=\([0-9]*\).*/\1/p' "$log" | tail -1)
    [[ -n $FIRN_PORT ]]
}
# push I [JOB]: push the fixture as profile I (at T0 + I seconds); prints the
# HTTP status (000 when there was no answer).
push() {
    curl_local --max-time 20 -o /dev/null -w '%{http_code}' --data-binary @"$cpu" \
        "http://127.0.0.1:$FIRN_PORT/api/v1/ingest?name=process_cpu&job=${2:-f}&time=$((T0 + $1))" 2>/dev/null
}
# stored DATA [JOB]: "SECONDS TOTAL" of each stored CPU profile, sorted.
stored() {
    "$firnctl" tsdb dump --match "job=${2:-f}" --match "__name__=$CPU" --storage.tsdb.path "$1" \
        2>/dev/null | awk -v t0="$T0" '{for (i = 1; i <= NF; i++) if ($i ~ /^total=/) {
            sub(/total=/, "", $i); print $(i - 1) / 1000 - t0, $i }}' | sort -n
}

# ---- 1. fsync failure ---------------------------------------------------------------
flag=$tmp/sync-fault
data=$tmp/data-sync
# (an ASan build of firn must be told that a library comes before its runtime)
if start_on "$data" "$tmp/firn-sync.log" LD_PRELOAD="$shim" FIRN_FAULT_SYNC="$flag" \
        ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"; then
    same "sync: a push before the fault: 200" "$(push 1)" 200
    : >"$flag"
    code=$(push 2)
    code3=$(push 3)
    hits=$(stat -c %s "$flag")
    rm -f "$flag"
    [[ $code == 5* && $code3 == 5* ]] && ok "sync: pushes while syncs fail: $code $code3 (not acknowledged)" ||
        fail "sync: pushes while syncs fail answered $code $code3"
    ((hits > 0)) && ok "sync: the fault was hit ($hits failed syncs)" || fail "sync: no sync failed"
    same "sync: a push after the fault: 200" "$(push 4)" 200
    same "sync: a failed push sent again: 200" "$(push 2)" 200
    grep -q 'Input/output error' "$tmp/firn-sync.log" && ok "sync: the failure is logged with its cause" ||
        fail "sync: no I/O error in the log: $(grep level=error "$tmp/firn-sync.log" | tail -2)"
    stop_pid "$FIRN_PID"
    same "sync: stored: the acknowledged pushes, whole, and nothing of the failed one" \
        "$(stored "$data")" "$(printf '%s\n' "1 $want_total" "2 $want_total" "4 $want_total")"
else
    fail "sync: start firn with the fault shim: $(tail -3 "$tmp/firn-sync.log")"
fi

# ---- 2. kill -9 during ingest ---------------------------------------------------------
data=$tmp/data-kill
if start_on "$data" "$tmp/firn-kill.log"; then
    (
        for ((i = 1; i <= 100000; i++)); do
            echo "$i $(push "$i")" >>"$tmp/acks"
            [[ -e $tmp/stop-pushing ]] && break
        done
    ) &
    pusher=$!
    track_pid "$pusher"
    enough() { (($(grep -c ' 200$' "$tmp/acks" 2>/dev/null) >= 30)); }
    if wait_for 120 enough; then
        kill -KILL "$FIRN_PID"
        wait "$FIRN_PID" 2>/dev/null
        ok "kill -9 after $(grep -c ' 200$' "$tmp/acks") acknowledged pushes"
    else
        fail "kill -9: fewer than 30 pushes acknowledged: $(tail -3 "$tmp/acks" | tr '\n' ' ')"
    fi
    touch "$tmp/stop-pushing"
    wait "$pusher"
    acked=$(awk '$2 == 200 {print $1}' "$tmp/acks" | sort -n)
    if start_on "$data" "$tmp/firn-kill2.log"; then
        ok "kill -9: firn restarts on the store"
        got=$(stored "$data")
        missing=$(comm -23 <(sort <<<"$acked") <(awk -v w="$want_total" '$2 == w {print $1}' <<<"$got" | sort))
        same "kill -9: every acknowledged push is stored with its total ($(wc -l <<<"$acked"))" \
            "$missing" ""
        same "kill -9: nothing stored that was not pushed, no total torn" \
            "$(awk -v w="$want_total" -v n="$(wc -l <"$tmp/acks")" '$2 != w || $1 > n' <<<"$got")" ""
        stop_pid "$FIRN_PID"
    else
        fail "kill -9: restart: $(tail -3 "$tmp/firn-kill2.log")"
    fi
else
    fail "kill -9: start firn: $(tail -3 "$tmp/firn-kill.log")"
fi

# ---- 4. a corrupt store ----------------------------------------------------------------
# (before 3, which may skip.)  The store of part 2, copied and damaged.
# outcome DATA LOG: "refused" (exit 1 naming the store), "served" (answers
# queries, then stops on TERM), or what else happened.
outcome() {
    local data=$1 log=$2
    firn_log "$log"
    timeout 60 "$firn" --config.file="$tmp/firn.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$data" --storage.tsdb.retention.time=0 >"$log" 2>&1 &
    local pid=$!
    track_pid "$pid"
    started() { grep -q 'Server is ready to receive web requests' "$1" || ! alive "$2"; }
    wait_for 30 started "$log" "$pid"
    if ! alive "$pid"; then
        wait "$pid"
        local rc=$?
        # refused: exit 1 and an error naming the store (its data.mdb, or the
        # directory when the damage hides firn's schema record)
        if ((rc == 1)) && grep -q "level=error.*$data" "$log"; then echo refused; else echo "exit $rc: $(tail -2 "$log")"; fi
        return
    fi
    local port
    port=$(sed -n 's/.*Server is ready to receive web requests.* port=\([0-9]*\).*/\1/p' "$log" | tail -1)
    local q
    for q in "/api/v1/series?match[]=%7Bjob%3D%22f%22%7D" "/api/v1/labels" \
        "/api/v1/query?query=$CPU" "/api/v1/profile?query=$CPU%7Bjob%3D%22f%22%7D&time=$((T0 + 5))&format=top"; do
        curl_local --max-time 20 -o /dev/null "http://127.0.0.1:$port$q" 2>/dev/null
    done
    stop_pid "$pid"
    wait "$pid" 2>/dev/null
    local rc=$?
    if alive "$pid"; then echo "still running"; elif ((rc < 128)); then echo served; else echo "signal $((rc - 128)): $(tail -2 "$log")"; fi
}
if [[ -f $tmp/data-kill/data.mdb ]]; then
    size=$(stat -c %s "$tmp/data-kill/data.mdb")
    cp -r "$tmp/data-kill" "$tmp/trunc"
    rm -f "$tmp/trunc/lock.mdb"
    truncate -s $((size / 3)) "$tmp/trunc/data.mdb"
    same "corrupt: a truncated data file is refused, the file named" "$(outcome "$tmp/trunc" "$tmp/firn-trunc.log")" refused
    for seed in 1 2 3 4 5; do
        cp -r "$tmp/data-kill" "$tmp/flip$seed"
        rm -f "$tmp/flip$seed/lock.mdb"
        python3 - "$tmp/flip$seed/data.mdb" "$seed" <<'EOF'
import random, sys
path, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
with open(path, 'r+b') as f:
    data = bytearray(f.read())
    # past the two meta pages: flips in the tree and the profiles
    for _ in range(64):
        i = rnd.randrange(8192, len(data))
        data[i] ^= 1 << rnd.randrange(8)
    f.seek(0)
    f.write(data)
EOF
        r=$(outcome "$tmp/flip$seed" "$tmp/firn-flip$seed.log")
        [[ $r == refused || $r == served ]] && ok "corrupt: 64 flipped bits (seed $seed): $r, no crash" ||
            fail "corrupt: 64 flipped bits (seed $seed): $r"
    done
else
    fail "corrupt: no store from part 2 to damage"
fi

# ---- 3. disk full ----------------------------------------------------------------------
small=$tmp/small
mkdir -p "$small"
if [[ $(id -u) -ne 0 ]] || ! mount -t tmpfs -o size=1m tmpfs "$small" 2>"$tmp/mount.err"; then
    echo "did not run: disk full needs root to mount a tmpfs: $(cat "$tmp/mount.err" 2>/dev/null)"
    finish
    exit 77
fi
cleanup_mount() { umount "$small" 2>/dev/null; e2e_cleanup; }
trap cleanup_mount EXIT
# A filler to free later: the store gets what is left of 1 MiB.
dd if=/dev/zero of="$small/filler" bs=64k count=4 status=none
if start_on "$small/data" "$tmp/firn-full.log"; then
    codes=""
    last=0
    for ((i = 1; i <= 5000; i++)); do
        c=$(push "$i")
        [[ $c == 200 ]] && last=$i
        [[ $c != 200 ]] && { codes="$c"; break; }
    done
    [[ $codes == 5* ]] && ok "full: push $i refused with $codes once the disk is full ($last stored)" ||
        fail "full: no refusal after $((i - 1)) pushes (last: ${codes:-200})"
    same "full: pushes while full: 5xx" "$(push $((i + 1)) | cut -c1)" 5
    alive "$FIRN_PID" && ok "full: firn is running" || fail "full: firn died: $(tail -3 "$tmp/firn-full.log")"
    grep -q "$small/data/data.mdb: writing: No space left on device" "$tmp/firn-full.log" &&
        ok "full: the log says why: $(grep -m1 -o 'err="[^"]*"' "$tmp/firn-full.log")" ||
        fail "full: no '$small/data/data.mdb: writing: No space left on device' in the log: $(grep level=error "$tmp/firn-full.log" | tail -2)"
    same "full: the stored profiles answer a query" \
        "$(curl_local --max-time 20 "http://127.0.0.1:$FIRN_PORT/api/v1/query?query=count($CPU)&time=$((T0 + last))" | jq -r '.data.result[0].value[1]')" 1
    rm -f "$small/filler"
    same "full: space freed, a push is taken" "$(push $((i + 2)))" 200
    stop_pid "$FIRN_PID"
    got=$(stored "$small/data")
    same "full: every stored profile whole" "$(awk -v w="$want_total" '$2 != w' <<<"$got")" ""
    same "full: the pushes before the disk filled and the one after, nothing else" \
        "$(awk '{print $1}' <<<"$got" | tr '\n' ' ')" "$(seq -s ' ' 1 "$last") $((i + 2)) "
else
    fail "full: start firn on the tmpfs: $(tail -3 "$tmp/firn-full.log")"
fi
finish
