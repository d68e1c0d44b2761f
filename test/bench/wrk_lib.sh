# wrk_lib.sh -- what the HTTP benchmarks share (sourced after
# test/e2e/lib.sh, with die and note defined): their arguments, a store of
# Go CPU profiles served by firn, and reading wrk's --latency reports.

# wrk_bench_args TARGETS SECONDS "$@": a benchmark's arguments, FIRN FIRNCTL
# FIXTURES_DIR [--targets N] [--profiles N] [--clients N] [--seconds S]
# (TARGETS and SECONDS the defaults), into firn, firnctl, targets, profiles,
# clients, seconds and fixture; dies on bad arguments, no wrk or no fixture.
wrk_bench_args() {
    targets=$1 seconds=$2 profiles=360 clients=8
    shift 2
    [[ $# -ge 3 ]] || die "usage: $0 FIRN FIRNCTL FIXTURES_DIR [--targets N] [--profiles N] [--clients N] [--seconds S]"
    firn=$1 firnctl=$2
    local fixtures=$3
    shift 3
    while [[ $# -gt 0 ]]; do
        case $1 in
        --targets) targets=$2 ;;
        --profiles) profiles=$2 ;;
        --clients) clients=$2 ;;
        --seconds) seconds=$2 ;;
        *) die "unknown argument $1" ;;
        esac
        shift 2
    done
    command -v wrk >/dev/null || die "wrk is not installed (Debian package wrk)"
    fixture=$fixtures/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz
    [[ -r $fixture ]] || die "missing fixture $fixture"
}

# fill_and_serve FIRN FIRNCTL FIXTURE TARGETS PROFILES: $tmp/data filled with
# TARGETS series (job=bench, instance=host-N:6060) of PROFILES copies of
# FIXTURE 10 s apart ending now (start_ms and end_ms set), then firn
# serving it on a free port (api set) with a config that scrapes nothing.
fill_and_serve() {
    local firn=$1 firnctl=$2 fixture=$3 targets=$4 profiles=$5 i
    local step_ms=10000
    end_ms=$(($(date +%s) * 1000))
    end_ms=$((end_ms - end_ms % step_ms))
    start_ms=$((end_ms - (profiles - 1) * step_ms))
    note "filling the store: $targets series x $profiles profiles"
    for ((i = 0; i < targets; i++)); do
        "$firnctl" tsdb append --storage.tsdb.path "$tmp/data" --storage.tsdb.retention.time 0 \
            --name process_cpu --delta --label job=bench --label "instance=host-$i:6060" \
            --timestamp "$start_ms" --interval "$step_ms" --repeat "$profiles" "$fixture" \
            >/dev/null 2>"$tmp/append.err" || die "append: $(tail -2 "$tmp/append.err")"
    done
    echo "scrape_configs: []" >"$tmp/firn.yml"
    start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" \
        --storage.tsdb.retention.time=0 || die "firn did not start: $(tail -5 "$tmp/firn.log")"
    api=http://127.0.0.1:$FIRN_PORT
}

# ms VALUE_WITH_UNIT: wrk's "1.23ms", "850.00us", "1.02s" in milliseconds.
ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
        else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}
# percentile FILE P: the latency wrk --latency reports for P (50, 99).
percentile() { ms "$(awk -v p="$2%" '$1 == p { print $2; exit }' "$1")"; }
requests_per_s() { awk '/^Requests\/sec:/ { printf "%.1f", $2 }' "$1"; }
# errors FILE: non-2xx answers and socket errors in a wrk report.
errors() {
    awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END { print n + 0 }' "$1"
}
enc() { jq -rn --arg v "$1" '$v | @uri'; }
