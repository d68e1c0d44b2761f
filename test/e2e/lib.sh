# lib.sh -- shared helpers for firn's end-to-end tests (sourced, not run).
#
# Each check prints "ok <what>" or "FAIL <what>: <why>"; a test script ends
# with `finish`, which prints a count and exits non-zero if any check failed.

E2E_PASSED=0
E2E_FAILED=0

ok() {
    E2E_PASSED=$((E2E_PASSED + 1))
    echo "ok $*"
}

fail() {
    E2E_FAILED=$((E2E_FAILED + 1))
    echo "FAIL $*"
}

# check WHAT COMMAND...: ok if the command succeeds, FAIL with its output if not.
check() {
    local what=$1
    shift
    local out
    if out=$("$@" 2>&1); then
        ok "$what"
    else
        fail "$what: $(printf '%s' "$out" | tail -5)"
    fi
}

# same WHAT GOT WANT: ok if the two texts are equal, else FAIL with a diff.
same() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        fail "$1: $(diff <(printf '%s\n' "$3") <(printf '%s\n' "$2") | grep '^[<>]' | head -6 | tr '\n' ';')"
    fi
}

# Secrets a test hands to firn (passwords, tokens) and the logs firn's own
# processes write: `finish` checks that no secret appears in any of those
# logs (firn never logs a secret).  start_firn registers its log.
E2E_SECRETS=()
E2E_FIRN_LOGS=()
test_secret() { E2E_SECRETS+=("$@"); }
firn_log() { E2E_FIRN_LOGS+=("$@"); }

check_logs_for_secrets() {
    ((${#E2E_SECRETS[@]} > 0)) || return 0
    local s f leaks=() logs=()
    for f in "${E2E_FIRN_LOGS[@]}"; do
        [[ -f $f ]] && logs+=("$f")
    done
    for s in "${E2E_SECRETS[@]}"; do
        for f in "${logs[@]}"; do
            grep -qF -- "$s" "$f" && leaks+=("'$s' in $(basename "$f")")
        done
    done
    if ((${#leaks[@]} == 0)); then
        ok "no test secret (${#E2E_SECRETS[@]}) in firn's logs (${#logs[@]} files)"
    else
        fail "a secret in firn's logs: ${leaks[*]}"
    fi
}

# In the sanitizer stage of scripts/test (FIRN_E2E_SANITIZED=1, firn built
# with ASan+UBSan) a report in any of firn's logs fails the test.
check_logs_for_sanitizer() {
    [[ -n ${FIRN_E2E_SANITIZED:-} ]] || return 0
    local f reports=()
    for f in "${E2E_FIRN_LOGS[@]}"; do
        [[ -f $f ]] && grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$f" &&
            reports+=("$(basename "$f"): $(grep -m1 -E 'Sanitizer|runtime error:' "$f")")
    done
    if ((${#reports[@]} == 0)); then
        ok "no sanitizer report in firn's logs (${#E2E_FIRN_LOGS[@]})"
    else
        fail "sanitizer reports: ${reports[*]}"
    fi
}

finish() {
    # stopped first, so that their logs are complete (a sanitizer reports
    # leaks at exit)
    stop_tracked
    check_logs_for_secrets
    check_logs_for_sanitizer
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
    [ "$E2E_FAILED" -eq 0 ]
}

# go_env TMPDIR: Go's tools, offline and hermetic: no module proxy, no
# toolchain download, no user config, caches inside TMPDIR.
go_env() {
    export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOTELEMETRY=off GOENV=off \
        GOWORK=off GO111MODULE=on GOCACHE="$1/gocache" GOPATH="$1/gopath" \
        PPROF_TMPDIR="$1/pprof"
}

# raw_sample_sums [FILE]: per-sample-type sums of `go tool pprof -raw`
# output (FILE or standard input), space-separated.  In the "Samples:"
# section the first line is the sample-type header; sample lines are
# "v1 v2 ...: loc loc ..."; label lines ("bytes:[1024]") have a non-number
# before the ':' and are skipped.  Fails when there is no sample line.
# Note: -raw leaves out samples that have no locations.
raw_sample_sums() {
    awk '
        /^Samples:/ { s = 1; header = 1; next }
        s && header { header = 0; next }
        /^Locations/ { s = 0 }
        s {
            i = index($0, ":"); if (i == 0) next
            n = split(substr($0, 1, i - 1), v, " ")
            if (n == 0) next
            for (k = 1; k <= n; k++) if (v[k] !~ /^-?[0-9]+$/) next
            for (k = 1; k <= n; k++) t[k] += v[k]
            if (n > cols) cols = n
        }
        END {
            if (cols == 0) exit 1
            # %.0f: mawk prints large integers in exponent form with print.
            for (k = 1; k <= cols; k++) printf "%s%.0f", (k > 1 ? " " : ""), t[k]
            print ""
        }' "$@"
}

# pprof_raw_totals FILE: the per-sample-type totals `go tool pprof -raw`
# reports for FILE, space-separated.
pprof_raw_totals() {
    go tool pprof -raw "$1" 2>/dev/null | raw_sample_sums
}

# firn_totals FIRNCTL FILE: the same figures from `firnctl pprof info`.
firn_totals() {
    "$1" pprof info "$2" | jq -r '[.sample_types[].total | tostring] | join(" ")'
}

# top_rows TOOL FILE INDEX: "flat<TAB>name" rows of a -top report, sorted, so
# that reports from go tool pprof and firnctl compare line by line.
top_rows_go() {
    go tool pprof -top -nodefraction=0 -sample_index="$2" "$1" 2>/dev/null | awk '
        /flat%/ { s = 1; next }
        s { name = ""; for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i
            sub(/ \((partial-)?inline\)$/, "", name); print $1 "\t" name }' | sort
}

top_rows_firn() {
    "$1" pprof top "$2" --sample-index "$3" | awk '
        /flat%/ { s = 1; next }
        s { name = ""; for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i
            print $1 "\t" name }' | sort
}

# check_figures NAME OUTPUT FIGURE...: each figure present as a number, and
# every line of OUTPUT in the `figure_name value` form (benchmarks' smoke
# tests check the form, never the speed).
check_figures() {
    local name=$1 out=$2 fig
    shift 2
    for fig in "$@"; do
        # a here-string, not a pipe: grep -q exits at its first match, and
        # under pipefail printf's next write would then fail the check
        if grep -Eq "^$fig [0-9]+(\.[0-9]+)?$" <<<"$out"; then
            ok "$name figure $(printf '%s\n' "$out" | grep "^$fig ")"
        else
            fail "$name figure $fig missing or malformed in: $(printf '%s' "$out" | tr '\n' '|')"
        fi
    done
    local bad
    bad=$(printf '%s\n' "$out" | grep -Evc '^[a-z0-9_]+ [0-9]+(\.[0-9]+)?$')
    [ "$bad" -eq 0 ] && ok "every $name line is 'figure_name value'" || fail "$name: $bad malformed lines"
}

# yaml_json: the YAML document on standard input as canonical JSON (keys
# sorted), read by PyYAML: a parser other than firn's, to compare documents.
yaml_json() {
    python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin), sort_keys=True))'
}

# ---- processes ---------------------------------------------------------------
# e2e_workspace: make the temporary directory $tmp, removed on exit after
# every tracked process is stopped; Go's tools hermetic inside it; no proxy
# for loopback traffic.  Call once, at the top level of a test script.
e2e_workspace() {
    tmp=$(mktemp -d)
    trap e2e_cleanup EXIT
    trap 'exit 130' INT TERM
    go_env "$tmp"
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
}

e2e_cleanup() {
    stop_tracked
    # Go makes module-cache files read-only; make sure rm can remove them.
    chmod -R u+w "$tmp" 2>/dev/null
    rm -rf "$tmp"
}

# Tests start servers in the background, record their PIDs with track_pid,
# and stop every one of them on exit (stop_tracked from an EXIT trap).

E2E_PIDS=()

track_pid() { E2E_PIDS+=("$1"); }

# alive PID: the process exists and is not a zombie.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
    [[ -n $state && $state != Z ]]
}

# stop_pid PID [SIGNAL]: send SIGNAL (TERM), wait up to 10 s, then KILL.
stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

stop_tracked() {
    local p
    for p in "${E2E_PIDS[@]}"; do
        alive "$p" && stop_pid "$p"
    done
    E2E_PIDS=()
}

# wait_for SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds;
# fails after SECONDS.  For readiness conditions only, never as a delay.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while ((SECONDS < deadline)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "$@" >/dev/null 2>&1
}

curl_local() { curl --noproxy '*' --silent --show-error "$@"; }

# free_port: a free loopback port for a peer that cannot listen on port 0
# and report it (Alertmanager, Prometheus): bind port 0, read what the
# kernel gave, release it.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# need_bpf: end the test as skipped (exit 77, ctest's SKIP_RETURN_CODE)
# unless it runs as root on a kernel with BTF, which firn-agent needs.
need_bpf() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: firn-agent needs root to load BPF programs (running as uid $(id -u))"
        exit 77
    fi
    if [ ! -r /sys/kernel/btf/vmlinux ]; then
        echo "SKIP: this kernel has no BTF (/sys/kernel/btf/vmlinux), which firn-agent needs"
        exit 77
    fi
}

# build_go SRCDIR PROGRAM TMPDIR: build the Go program test/PROGRAM into
# TMPDIR/PROGRAM (from a copy, so the source tree is never written to); the
# log is TMPDIR/PROGRAM-build.log.
build_go() {
    mkdir -p "$3/$2-src"
    cp "$1/test/$2/"*.go "$1/test/$2/go.mod" "$3/$2-src/"
    rm -f "$3/$2-src/"*_test.go
    (cd "$3/$2-src" && timeout 300 go build -o "$3/$2" .) >"$3/$2-build.log" 2>&1
}

# need_go SRCDIR PROGRAM TMPDIR: build_go, or fail with the build log's
# tail and end the test (exit 1).
need_go() {
    build_go "$@" && return 0
    fail "build test/$2: $(tail -5 "$3/$2-build.log")"
    finish
    exit 1
}

# start_goservice TMPDIR NAME [ARGS...]: start the built service (with
# ARGS, e.g. -fixtures DIR or -tls-cert/-tls-key) on a free loopback port
# and wait until it answers /healthz; its address is in GO_ADDR.
# (Not to be run in $(...): the PID must be tracked by this shell.)
GO_ADDR=
start_goservice() {
    local dir=$1 name=$2 scheme=http
    shift 2
    [[ " $* " == *" -tls-cert "* ]] && scheme=https
    "$dir/goservice" -addr 127.0.0.1:0 -addr-file "$dir/$name.addr" "$@" >"$dir/$name.log" 2>&1 &
    track_pid $!
    wait_for 30 test -s "$dir/$name.addr" || return 1
    GO_ADDR=$(head -n 1 "$dir/$name.addr")
    wait_for 30 curl_local --insecure --fail --max-time 1 "$scheme://$GO_ADDR/healthz"
}

# start_firn FIRN LOG ARGS...: start the server with ARGS (which should
# listen on 127.0.0.1:0) and wait until it logs that it is ready; its PID
# is in FIRN_PID and its port in FIRN_PORT.
FIRN_PID=
FIRN_PORT=
start_firn() {
    local firn=$1 log=$2
    shift 2
    firn_log "$log"
    # emptied here, not by the background redirection: a restart on the same
    # log must not find the last run's "ready" line before its child opens it
    : >"$log"
    "$firn" "$@" >>"$log" 2>&1 &
    FIRN_PID=$!
    track_pid "$FIRN_PID"
    wait_for 30 grep -q 'Server is ready to receive web requests' "$log" || return 1
    FIRN_PORT=$(sed -n 's/.*Server is ready to receive web requests.* port=\([0-9]*\).*/\1/p' "$log" | tail -1)
    [[ -n $FIRN_PORT ]]
}

# ---- dnsmasq -------------------------------------------------------------------
# start_dnsmasq NAME RECORD_ARGS...: a DNS server on 127.0.0.1 serving the
# records given as dnsmasq options (--srv-host=, --host-record=, ...) and
# nothing else, its log in $tmp/NAME.log.  The first start picks a random
# high port (retrying when taken) into DNS_PORT; later starts (after
# stop_dnsmasq, to change the records: dnsmasq reads them only at start)
# reuse it.  Unknown names under .test get NXDOMAIN (--local) instead of
# REFUSED for want of an upstream.  The PID is in DNS_PID.
DNS_PORT=
DNS_PID=
start_dnsmasq() {
    local name=$1 try port dnsmasq
    shift
    dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
    for ((try = 0; try < 20; try++)); do
        port=${DNS_PORT:-$((20000 + RANDOM % 40000))}
        "$dnsmasq" --port="$port" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
            --no-hosts --conf-file=/dev/null --keep-in-foreground --log-facility=- \
            --pid-file= --local=/test/ "$@" >"$tmp/$name.log" 2>&1 &
        DNS_PID=$!
        wait_for 10 dnsmasq_settled "$DNS_PID" "$tmp/$name.log"
        if alive "$DNS_PID" && grep -q 'started, version' "$tmp/$name.log"; then
            track_pid "$DNS_PID"
            DNS_PORT=$port
            return 0
        fi
        wait "$DNS_PID" 2>/dev/null
        [[ -n $DNS_PORT ]] && sleep 0.2   # the fixed port: its old owner is on its way out
    done
    return 1
}
dnsmasq_settled() { ! alive "$1" || grep -q 'started, version' "$2"; }

stop_dnsmasq() {
    [[ -n $DNS_PID ]] && stop_pid "$DNS_PID"
    DNS_PID=
}
