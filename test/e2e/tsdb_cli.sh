#!/bin/bash
# tsdb_cli.sh FIRNCTL FIXTURES_DIR -- the store as a user drives it with
# `firnctl tsdb`, read back by `go tool pprof`:
#  - append: a Go CPU profile with pprof labels (three times), a heap
#    profile with four sample types, another CPU profile; `series`,
#    `labels`, `values` and `dump` list exactly what was stored, with the
#    fixtures' totals;
#  - export: a range of the three CPU profiles reads in `go tool pprof` as
#    3x the fixture (-raw sums; -top lists the same functions in the same
#    order); each heap sample type exports as that column of the fixture;
#    one profile (--time) keeps its sample labels, with the same sums per
#    label set as the fixture;
#  - errors a user meets (a store path that is a file, a data.mdb of
#    garbage or truncated, a file that is not pprof, a bad regex, nothing
#    to export, an expired or duplicate timestamp) exit non-zero, without a
#    crash, with a message that says what is wrong, and change nothing;
#  - clean: with a 1h retention, profiles 2h old go, and with them the
#    series (and label names and values) left without profiles.
set -uo pipefail
FIRNCTL=$1
FIXTURES=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

e2e_workspace

CPU="$FIXTURES/pyro-pkg_pprof_testdata_go.cpu.labels.pprof"
CPU2="$FIXTURES/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"
HEAP="$FIXTURES/alloy-heap.pprof"
store="$tmp/store"
NOW=$(($(date +%s) * 1000))
T1=$((NOW - 10 * 60 * 1000))
CPU_SERIES=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta

# tsdb COMMAND ARGS...: firnctl tsdb COMMAND on the store.
tsdb() {
    "$FIRNCTL" tsdb "$1" --storage.tsdb.path "$store" "${@:2}"
}

# column N WORDS...: the Nth (0-based) word.
column() {
    local n=$1
    shift
    local w=("$@")
    printf '%s' "${w[$n]:-}"
}

# type_index FILE TYPE: the index of sample type TYPE in FILE.
type_index() {
    "$FIRNCTL" pprof info "$1" | jq -r --arg t "$2" '.sample_types | map(.type) | index($t)'
}

# label_sums FILE COLUMN: "label set<TAB>sum of column COLUMN" per label set
# of the samples in `go tool pprof -raw` (samples without labels under "-").
label_sums() {
    go tool pprof -raw "$1" 2>/dev/null | awk -v col="$2" '
        /^Samples:/ { s = 1; header = 1; next }
        s && header { header = 0; next }
        /^Locations/ { s = 0 }
        !s { next }
        /^ *-?[0-9]+( +-?[0-9]+)*:/ {
            if (have) sum["-"] += v
            split(substr($0, 1, index($0, ":") - 1), f, " "); v = f[col + 1]; have = 1
            next
        }
        have { l = $0; sub(/^ +/, "", l); sum[l] += v; have = 0 }
        END {
            if (have) sum["-"] += v
            for (l in sum) printf "%s\t%.0f\n", l, sum[l]
        }' | sort
}

# top_names FILE TYPE: function names of `go tool pprof -top` for one
# sample type, in report order.
top_names() {
    go tool pprof -top -nodefraction=0 -sample_index="$2" "$1" 2>/dev/null | awk '
        /flat%/ { s = 1; next }
        s { name = ""; for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i; print name }'
}

# expect_fail WHAT PATTERN COMMAND...: the command must exit non-zero
# without a crash, with a message on standard error matching PATTERN.
expect_fail() {
    local what=$1 pattern=$2 rc
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "$what: exited 0"
    elif [ "$rc" -ge 128 ]; then
        fail "$what: crashed (exit $rc): $(tail -3 "$tmp/err")"
    elif ! grep -Eq -- "$pattern" "$tmp/err"; then
        fail "$what: exit $rc, no /$pattern/ in: $(head -3 "$tmp/err")"
    else
        ok "$what: exit $rc: $(grep -E -- "$pattern" "$tmp/err" | head -1)"
    fi
}

# ---- append, and list what is stored ----------------------------------------

out=$(tsdb append --name process_cpu --delta --label job=api --label instance=host:8080 \
    --timestamp "$T1" --interval 10000 --repeat 3 "$CPU")
same "append Go CPU profile 3 times" "$out" "$(for i in 0 1 2; do
    echo "stored $CPU at $((T1 + i * 10000)) ms: 2 series"
done)"
out=$(tsdb append --name memory --label job=api --label instance=host:8080 --timestamp "$T1" "$HEAP")
same "append heap profile" "$out" "stored $HEAP at $T1 ms: 4 series"
out=$(tsdb append --name process_cpu --delta --label job=worker --timestamp "$T1" "$CPU2")
same "append another CPU profile" "$out" "stored $CPU2 at $T1 ms: 2 series"

api='instance="host:8080", job="api"'
want_series="{__name__=\"memory:alloc_objects:count:space:bytes\", $api}
{__name__=\"memory:alloc_space:bytes:space:bytes\", $api}
{__name__=\"memory:inuse_objects:count:space:bytes\", $api}
{__name__=\"memory:inuse_space:bytes:space:bytes\", $api}
{__name__=\"$CPU_SERIES\", $api}
{__name__=\"$CPU_SERIES\", job=\"worker\"}
{__name__=\"process_cpu:samples:count:cpu:nanoseconds:delta\", $api}
{__name__=\"process_cpu:samples:count:cpu:nanoseconds:delta\", job=\"worker\"}"
same "series" "$(tsdb series | sort)" "$want_series"
same "series --match job=worker" "$(tsdb series --match job=worker | sort)" \
    "$(printf '%s\n' "$want_series" | grep 'job="worker"')"
same "series --match __name__=~memory:.*_space:.*" \
    "$(tsdb series --match '__name__=~memory:.*_space:.*' | sort)" \
    "$(printf '%s\n' "$want_series" | grep -E '"memory:[a-z]+_space:')"
same "labels" "$(tsdb labels)" "$(printf '%s\n' __name__ instance job)"
same "values __name__" "$(tsdb values __name__)" \
    "$(printf '%s\n' "$want_series" | sed 's/^{__name__="\([^"]*\)".*/\1/' | sort -u)"
same "values job" "$(tsdb values job)" "$(printf '%s\n' api worker)"
same "values instance --match job=worker" "$(tsdb values instance --match job=worker)" ""

# dump: "SERIES TIME total=T" for each stored profile and sample type, as the
# fixtures' totals say.
dump_rows() {
    sed -E 's/^\{__name__="([^"]*)", (.*)\} ([0-9]+) (total=-?[0-9]+) .*/\1 {\2} \3 \4/' | sort
}
want_rows() { # FILE NAME SUFFIX LABELS TIME
    "$FIRNCTL" pprof info "$1" | jq -r --arg n "$2" --arg d "$3" --arg l "$4" --arg t "$5" '
        . as $p | .sample_types[] |
        "\($n):\(.type):\(.unit):\($p.period_type.type):\($p.period_type.unit)\($d) {\($l)} \($t) total=\(.total)"'
}
want_dump=$({
    for i in 0 1 2; do want_rows "$CPU" process_cpu :delta "$api" $((T1 + i * 10000)); done
    want_rows "$HEAP" memory "" "$api" "$T1"
    want_rows "$CPU2" process_cpu :delta 'job="worker"' "$T1"
} | sort)
same "dump: 12 profiles with the fixtures' totals" "$(tsdb dump | dump_rows)" "$want_dump"
same "dump --match job=api --start --end: one time" \
    "$(tsdb dump --match job=api --start $((T1 + 10000)) --end $((T1 + 10000)) | dump_rows)" \
    "$(printf '%s\n' "$want_dump" | grep "job=\"api\"} $((T1 + 10000)) ")"

# ---- export, read by go tool pprof -------------------------------------------

cpu_col=$(type_index "$CPU" cpu)
fixture_cpu=$(column "$cpu_col" $(pprof_raw_totals "$CPU"))
for n in 2 3; do
    exp="$tmp/cpu$n.pb.gz"
    if tsdb export --match "__name__=$CPU_SERIES" --match job=api \
        --start "$T1" --end $((T1 + (n - 1) * 10000)) -o "$exp" 2>"$tmp/err"; then
        same "export of $n profiles: go tool pprof -raw sum is ${n}x the fixture's" \
            "$(pprof_raw_totals "$exp")" "$((n * fixture_cpu))"
    else
        fail "export of $n profiles: $(cat "$tmp/err")"
    fi
done
top_names "$CPU" cpu >"$tmp/top.fixture"
top_names "$tmp/cpu3.pb.gz" cpu >"$tmp/top.export"
if [ -s "$tmp/top.fixture" ] && cmp -s "$tmp/top.fixture" "$tmp/top.export"; then
    ok "export of 3 profiles: go tool pprof -top lists the fixture's $(wc -l <"$tmp/top.fixture") functions in its order ($(head -3 "$tmp/top.fixture" | tr '\n' ' '))"
else
    fail "export of 3 profiles: go tool pprof -top: $(diff "$tmp/top.fixture" "$tmp/top.export" | grep '^[<>]' | head -4 | tr '\n' ';')"
fi

heap_sums=($(pprof_raw_totals "$HEAP"))
k=0
for t in $("$FIRNCTL" pprof info "$HEAP" | jq -r '.sample_types[] | "\(.type):\(.unit)"'); do
    exp="$tmp/heap$k.pb.gz"
    if tsdb export --match "__name__=memory:$t:space:bytes" --time "$T1" -o "$exp" 2>"$tmp/err"; then
        same "export memory:$t: go tool pprof -raw sum is the fixture's column $k" \
            "$(pprof_raw_totals "$exp")" "${heap_sums[$k]}"
    else
        fail "export memory:$t: $(cat "$tmp/err")"
    fi
    k=$((k + 1))
done

one="$tmp/one.pb.gz"
if tsdb export --match "__name__=$CPU_SERIES" --match job=api --time $((T1 + 10000)) \
    -o "$one" 2>"$tmp/err"; then
    same "export --time: go tool pprof -raw sum is the fixture's" \
        "$(pprof_raw_totals "$one")" "$fixture_cpu"
    label_sums "$CPU" "$cpu_col" >"$tmp/labels.fixture"
    label_sums "$one" 0 >"$tmp/labels.export"
    if grep -q '^foo:\[bar\]' "$tmp/labels.export"; then
        ok "export --time: sample labels kept ($(grep -c . "$tmp/labels.export") label sets, e.g. $(grep '^foo:\[bar\]' "$tmp/labels.export" | head -1 | cut -f1))"
    else
        fail "export --time: no foo:[bar] label line in go tool pprof -raw"
    fi
    if [ -s "$tmp/labels.fixture" ] && cmp -s "$tmp/labels.fixture" "$tmp/labels.export"; then
        ok "export --time: per-label-set sums equal the fixture's"
    else
        fail "export --time: per-label-set sums: $(diff "$tmp/labels.fixture" "$tmp/labels.export" | grep '^[<>]' | head -4 | tr '\n' ';')"
    fi
else
    fail "export --time: $(cat "$tmp/err")"
fi

# ---- errors a user meets -------------------------------------------------------

counts() { tsdb stats | jq -c '{series, blocks}'; }
before=$(counts)

echo "not a directory" >"$tmp/afile"
expect_fail "dump, store path is a file" "afile: not a directory" \
    "$FIRNCTL" tsdb dump --storage.tsdb.path "$tmp/afile"
expect_fail "append, store path is a file" "afile: not a directory" \
    "$FIRNCTL" tsdb append --storage.tsdb.path "$tmp/afile" --name process_cpu "$CPU"
same "store path that is a file is left as it was" "$(cat "$tmp/afile")" "not a directory"
expect_fail "dump, no store at the path" "no store" \
    "$FIRNCTL" tsdb dump --storage.tsdb.path "$tmp/nothing"

cp -r "$store" "$tmp/garbage"
echo "this is not a database, just some text" >"$tmp/garbage/data.mdb"
cp "$tmp/garbage/data.mdb" "$tmp/garbage.orig"
expect_fail "dump, data.mdb of text" "data.mdb: not an LMDB data file" \
    "$FIRNCTL" tsdb dump --storage.tsdb.path "$tmp/garbage"
expect_fail "append, data.mdb of text" "data.mdb: not an LMDB data file" \
    "$FIRNCTL" tsdb append --storage.tsdb.path "$tmp/garbage" --name process_cpu \
    --timestamp "$NOW" "$CPU"
cmp -s "$tmp/garbage/data.mdb" "$tmp/garbage.orig" &&
    ok "data.mdb of text is left as it was" || fail "append changed a data.mdb of text"

size=$(stat -c %s "$store/data.mdb")
for eighths in 7 4 1; do
    cut="$tmp/cut$eighths"
    cp -r "$store" "$cut"
    truncate -s $((size * eighths / 8)) "$cut/data.mdb"
    expect_fail "series, data.mdb cut to $eighths/8 of $size bytes" \
        "data.mdb: (truncated|not an LMDB)" "$FIRNCTL" tsdb series --storage.tsdb.path "$cut"
done
cp "$tmp/cut4/data.mdb" "$tmp/cut4.orig"
expect_fail "append, data.mdb cut to half" "data.mdb: (truncated|not an LMDB)" \
    "$FIRNCTL" tsdb append --storage.tsdb.path "$tmp/cut4" --name process_cpu \
    --timestamp "$NOW" "$CPU"
cmp -s "$tmp/cut4/data.mdb" "$tmp/cut4.orig" &&
    ok "truncated data.mdb is left as it was" || fail "append changed a truncated data.mdb"
cp "$store/data.mdb" "$tmp/cut1/data.mdb"
truncate -s 100 "$tmp/cut1/data.mdb"
expect_fail "series, data.mdb cut to 100 bytes" "data.mdb: (truncated|not an LMDB)" \
    "$FIRNCTL" tsdb series --storage.tsdb.path "$tmp/cut1"

expect_fail "append a text file" "MANIFEST.md: not a pprof protobuf" \
    tsdb append --name process_cpu --timestamp "$NOW" "$FIXTURES/MANIFEST.md"
# A legacy binary CPU profile cut inside its 11th stack (byte 1184 + 2
# words + 13 pcs > 1300 bytes).
head -c 1300 "$FIXTURES/pprof-internal_driver_testdata_cppbench.cpu" >"$tmp/truncated.cpu"
expect_fail "append a truncated legacy binary profile" \
    "truncated.cpu: legacy CPU profile: sample 10 at byte 1184: a stack of 13 words runs past the end" \
    tsdb append --name process_cpu --timestamp "$NOW" "$tmp/truncated.cpu"
expect_fail "append a profile and a text file" "MANIFEST.md: not a pprof protobuf" \
    tsdb append --name process_cpu --label job=mixed --timestamp "$NOW" "$CPU" "$FIXTURES/MANIFEST.md"
expect_fail "append older than the retention" "older than the retention" \
    tsdb append --name process_cpu --label job=old --timestamp $((NOW - 16 * 24 * 3600 * 1000)) "$CPU"
expect_fail "append a different profile at a time the series already holds" "already has a different profile at $T1 ms" \
    tsdb append --name process_cpu --delta --label job=worker --timestamp "$T1" "$CPU"
same "failed appends store nothing" "$(counts)" "$before"

expect_fail "series --match with a bad regex" 'invalid regex "\("' \
    tsdb series --match 'job=~('
expect_fail "dump --match with a bad regex" 'invalid regex "\[a-"' \
    tsdb dump --match '__name__=~[a-'
expect_fail "export, no series matches" "no profile of the matching series in \[$T1, $NOW\]" \
    tsdb export --match job=nope --start "$T1" --end "$NOW" -o "$tmp/none.pb.gz"
expect_fail "export, no profile between two of the series" "no profile of the matching series in" \
    tsdb export --match "__name__=$CPU_SERIES" --match job=api --start $((T1 + 1)) \
    --end $((T1 + 9999)) -o "$tmp/none.pb.gz"
expect_fail "export --time, no profile then" "no profile of the matching series at $((T1 + 1)) ms" \
    tsdb export --match "__name__=$CPU_SERIES" --match job=api --time $((T1 + 1)) -o "$tmp/none.pb.gz"
expect_fail "export of two profile types" "cannot merge profiles of different types" \
    tsdb export --match job=api --time "$T1" -o "$tmp/none.pb.gz"
[ ! -e "$tmp/none.pb.gz" ] && ok "failed export writes no file" || fail "failed export wrote $tmp/none.pb.gz"

# ---- clean: retention --------------------------------------------------------

store="$tmp/retention"
OLD=$((NOW - 2 * 3600 * 1000))
RECENT=$((NOW - 60 * 1000))
tsdb append --name process_cpu --delta --label job=old --label env=staging \
    --timestamp "$OLD" --interval 60000 --repeat 3 "$CPU" >/dev/null
tsdb append --name process_cpu --delta --label job=new --timestamp "$OLD" "$CPU2" >/dev/null
tsdb append --name process_cpu --delta --label job=new --timestamp "$RECENT" "$CPU2" >/dev/null
same "before clean: 5 profiles in 4 series" "$(tsdb dump | wc -l) $(tsdb series | wc -l)" "10 4"
out=$(tsdb clean --storage.tsdb.retention.time 1h 2>"$tmp/err")
rc=$?
same "clean --storage.tsdb.retention.time 1h" "$rc: $out" \
    "0: deleted 8 profiles older than the retention"
same "after clean: dump shows only the recent profile" "$(tsdb dump | dump_rows)" \
    "$(want_rows "$CPU2" process_cpu :delta 'job="new"' "$RECENT" | sort)"
same "after clean: series without profiles are gone" "$(tsdb series | sort)" \
    "{__name__=\"$CPU_SERIES\", job=\"new\"}
{__name__=\"process_cpu:samples:count:cpu:nanoseconds:delta\", job=\"new\"}"
same "after clean: labels" "$(tsdb labels)" "$(printf '%s\n' __name__ job)"
same "after clean: values job" "$(tsdb values job)" "new"
same "after clean: values env" "$(tsdb values env)" ""
same "after clean: stats" "$(counts)" '{"series":2,"blocks":2}'

finish
