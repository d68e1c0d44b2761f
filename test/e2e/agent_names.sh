#!/bin/bash
# agent_names.sh FIRN FIRN_AGENT SRCDIR -- firn-agent names C++ and Rust
# functions readably, as root on a BTF kernel.  Three programs without
# frame pointers, built here: test/agent/names_workload.cc (g++ -O2 -g:
# names from DWARF's linkage names) and test/agent/names_workload.rs
# (rustc -O, no debug info: names from the symbol table), the latter with
# the legacy mangling and with v0.  One agent samples them and pushes to
# firn.  For each hot function of each program, the profile firn stored
# (read by `go tool pprof -raw`) must name it as binutils' `nm -C` names
# that symbol in the same binary, and its system_name must be the mangled
# symbol `nm` prints (-raw shows it after the name when the two differ).
# Without root or BTF the test is skipped (exit 77); without g++ or rustc
# (scripts/deps test installs both) it fails.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FIRN=$1 AGENT=$2 SRCDIR=$3

need_bpf

e2e_workspace
go_env "$tmp"
CPU_TYPE='process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta'

# -- the programs
if ! g++ -O2 -fomit-frame-pointer -g -o "$tmp/cxx" "$SRCDIR/test/agent/names_workload.cc" \
        >"$tmp/build.log" 2>&1; then
    fail "g++ builds names_workload.cc: $(tail -3 "$tmp/build.log")"
    finish
    exit 1
fi
# legacy is rustc's default (naming it needs -Z unstable-options).  The v0
# build is a crate of another name: firn's store knows a symbolized frame
# by its function's name (pprof/identity.c), so the same name from two
# binaries would be one frame, with the system_name first stored.
# Debian's rustc (scripts/deps) before any other on PATH (rustup's)
RUSTC=$(command -v /usr/bin/rustc rustc | head -1)
for m in legacy v0; do
    flags=()
    [ $m = v0 ] && flags=(-C symbol-mangling-version=v0 --crate-name names_workload_v0)
    if ! timeout 300 "$RUSTC" -O "${flags[@]}" -o "$tmp/rust-$m" \
            "$SRCDIR/test/agent/names_workload.rs" >"$tmp/build.log" 2>&1; then
        fail "rustc builds names_workload.rs ($m): $(tail -3 "$tmp/build.log")"
        finish
        exit 1
    fi
done
ok "built the C++ program (g++ -O2) and the Rust one ($RUSTC $("$RUSTC" --version | cut -d' ' -f2), legacy and v0)"

start_firn "$FIRN" "$tmp/firn.log" --web.listen-address=127.0.0.1:0 \
    --storage.tsdb.path="$tmp/data" || { fail "firn starts: $(tail -3 "$tmp/firn.log")"; finish; exit 1; }

declare -A PID
for prog in cxx rust-legacy rust-v0; do
    "$tmp/$prog" >"$tmp/$prog.out" 2>&1 &
    PID[$prog]=$!
    track_pid "${PID[$prog]}"
    wait_for 10 grep -q ready "$tmp/$prog.out" || { fail "$prog starts"; finish; exit 1; }
done
printf 'relabel_configs:\n  - source_labels: [pid]\n    regex: "%s|%s|%s"\n    action: keep\n' \
    "${PID[cxx]}" "${PID[rust-legacy]}" "${PID[rust-v0]}" >"$tmp/agent.yaml"
"$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
    --profiling-duration=2s --config-path="$tmp/agent.yaml" >"$tmp/agent.log" 2>&1 &
track_pid $!
wait_for 60 grep -q 'agent is ready' "$tmp/agent.log" ||
    { fail "firn-agent starts: $(tail -5 "$tmp/agent.log")"; finish; exit 1; }

# fetch PROG: firn's merged profile of PROG's process as pprof, in
# $tmp/PROG.pb.gz.
fetch() {
    local now
    now=$(date +%s)
    curl_local --fail -G "http://127.0.0.1:$FIRN_PORT/api/v1/profile" \
        --data-urlencode "query=$CPU_TYPE{pid=\"${PID[$1]}\"}" \
        --data-urlencode "start=$((now - 600))" --data-urlencode "end=$((now + 60))" \
        --data-urlencode "format=pprof" -o "$tmp/$1.pb.gz"
}
# names PROG: "NAME<TAB>SYSTEM_NAME" for each line of each location of
# PROG's profile, as `go tool pprof -raw` prints them: "ID: 0xADDR M=N
# NAME FILE:LINE s=START(SYSTEM_NAME)", the parenthesized system name only
# when it differs from the name, further lines of an inlined location
# indented (NAME may hold spaces and parentheses; FILE may be empty).
names() {
    go tool pprof -raw "$tmp/$1.pb.gz" 2>/dev/null |
        awk '/^Locations/ { s = 1; next } /^Mappings/ { s = 0 }
             s && /^ *[0-9]+: 0x/ { $1 = ""; $2 = ""; $3 = ""; print; next }
             s && /^ +[^ ]/ { print }' |
        sed -E 's/^ +//; s/^(.*) [^ ]*:[0-9]+ s=[0-9]+(\((.*)\))?$/\1\t\3/'
}
# has_name PROG NAME: PROG's profile has a function named NAME.
has_name() { fetch "$1" && names "$1" | cut -f1 | grep -qxF "$2"; }

# expect PROG SYMBOL_REGEX: the function of the symbol matching
# SYMBOL_REGEX in PROG's binary is named as nm -C names it in firn's
# profile, with the symbol as its system_name.
expect() {
    local prog=$1 sym want mangled addr
    sym=$(nm "$tmp/$prog" | awk -v re="$2" '$3 ~ re { print $1, $3; exit }')
    addr=${sym%% *} mangled=${sym#* }
    want=$(nm -C "$tmp/$prog" | awk -v a="$addr" '$1 == a { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }')
    if [ -z "$sym" ] || [ -z "$want" ] || [ "$want" = "$mangled" ]; then
        fail "$prog: nm finds no mangled symbol matching $2 ('$sym' -> '$want')"
        return
    fi
    if ! wait_for 90 has_name "$prog" "$want"; then
        fail "$prog: no function \"$want\" ($mangled) in firn's profile; its names: \
$(names "$prog" | cut -f1 | sort -u | head -12 | tr '\n' '|')"
    elif names "$prog" | grep -qxF "$want"$'\t'"$mangled"; then
        ok "$prog: $mangled is \"$want\" in firn's profile, as nm -C names it, system_name kept"
    else
        fail "$prog: \"$want\" has another system_name than $mangled: \
$(names "$prog" | grep -F "$want" | sort -u | head -3 | tr '\n' '|')"
    fi
}

expect cxx '^_ZNK10firn_names5MixerImE4spinEm$'
expect cxx '^_ZN10firn_names6Worker3runEi$'
expect cxx '^_ZN12_GLOBAL__N_14stepE'
expect rust-legacy '^_ZN14names_workload4work5Mixer4spin17h'
expect rust-legacy '^_ZN14names_workload4work3run17h'
expect rust-v0 '^_RNvMNtCs[A-Za-z0-9_]+17names_workload_v04workNtB2_5Mixer4spin$'
expect rust-v0 '^_RNvNtCs[A-Za-z0-9_]+17names_workload_v04work3run$'
# C names stay as they are
check "C's main stays main (no system_name of its own) in the C++ program's profile" bash -c \
    "$(declare -f names); tmp=$tmp; names cxx | grep -qx 'main'$'\t'"
finish
