#!/bin/bash
# pprof_fixtures.sh FIRNCTL FIXTURES_DIR -- firnctl against `go tool pprof`
# on every shared fixture:
#  - valid profiles: per-sample-type totals equal what `go tool pprof -raw`
#    reports; `firnctl pprof convert` output is read by `go tool pprof` with
#    the same totals and counts; `firnctl pprof top` rows (flat, name) equal
#    `go tool pprof -top` rows for every sample type;
#  - a file firnctl refuses ("not a pprof protobuf") go tool pprof refuses
#    too;
#  - the three legacy binary CPU profiles (gperftools, old Go, Java) are read
#    and compared as above, like every other fixture, and `go tool pprof
#    -raw` prints the same samples, locations and mappings for firn's
#    converted file as for the original;
#  - .NET profiles whose function ids are all 0 (go tool pprof refuses them)
#    are read, repaired, and converted into files go tool pprof accepts.
set -uo pipefail
FIRNCTL=$1
FIXTURES=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

e2e_workspace

# go tool pprof simplifies names that look like demangled C++ (drops "()"
# and "<...>": Go generic shapes, Rust impls): firnctl prints names as
# stored, so these fixtures' rows are compared after the same rule
# (pprof_simplify.py).  go tool pprof prints the control characters of the
# invalid_utf8 fixture's names raw, newlines included, which splits its rows:
# that one's top rows are not compared (its totals are).
TOP_SIMPLIFY="pyro-pkg_pprof_testdata_gotruncatefix_heap_go_truncated_3.pb.gz
pyro-pkg_pprof_testdata_profile_rust"
TOP_SKIP="pyro-pkg_og_convert_pprof_testdata_invalid_utf8.pb.gz"
# Legacy (pre-protobuf) binary CPU profiles: read by both, and checked to be
# read (not refused) by name, so that losing the format cannot pass unseen.
LEGACY="pprof-fuzz_corpus_go.crc32.cpu.pb
pprof-internal_driver_testdata_cppbench.cpu
pprof-profile_testdata_java.cpu"

n=0
legacy_read=0
for f in "$FIXTURES"/*; do
    name=$(basename "$f")
    [ "$name" = MANIFEST.md ] && continue
    n=$((n + 1))
    if ! info=$("$FIRNCTL" pprof info "$f" 2>"$tmp/err"); then
        if ! grep -q "not a pprof protobuf" "$tmp/err"; then
            fail "$name: refused without a clear reason: $(cat "$tmp/err")"
        elif ! go tool pprof -raw "$f" >/dev/null 2>&1; then
            ok "$name: refused, as go tool pprof refuses it: $(cut -c1-120 "$tmp/err" | sed 's/.*: not a pprof/not a pprof/')"
        else
            fail "$name: firn refuses a file go tool pprof reads: $(cat "$tmp/err")"
        fi
        continue
    fi
    grep -qx "$name" <<<"$LEGACY" && legacy_read=$((legacy_read + 1))
    ours=$(printf '%s' "$info" | jq -r '[.sample_types[].total | tostring] | join(" ")')
    repairs=$(printf '%s' "$info" | jq -r '.repairs | length')

    if theirs=$(pprof_raw_totals "$f"); then
        [ "$ours" = "$theirs" ] && ok "$name: totals $ours" ||
            fail "$name: totals: firn [$ours], go tool pprof [$theirs]"
    elif [ "$repairs" -gt 0 ]; then
        ok "$name: go tool pprof refuses it; firn repaired: $(printf '%s' "$info" | jq -r '.repairs | join("; ")')"
    else
        fail "$name: go tool pprof cannot read it and firn reported no repair"
    fi

    conv="$tmp/conv.pb.gz"
    if ! "$FIRNCTL" pprof convert "$f" "$conv" 2>"$tmp/err"; then
        fail "$name: convert: $(cat "$tmp/err")"
        continue
    fi
    theirs=$(pprof_raw_totals "$conv") || theirs="(unreadable)"
    [ "$ours" = "$theirs" ] && ok "$name: converted: go tool pprof totals $theirs" ||
        fail "$name: converted: go tool pprof totals [$theirs], want [$ours]"
    check "$name: converted: go tool pprof -top reads it" go tool pprof -top "$conv"
    # A legacy profile's stacks, addresses (pcs but the leaf minus 1, pprof's
    # clean-ups), mappings and Java frame names as firn read them: go tool
    # pprof -raw of firn's converted file must print what it prints for the
    # original.
    if grep -qx "$name" <<<"$LEGACY"; then
        go tool pprof -raw "$f" >"$tmp/raw_orig.txt" 2>/dev/null
        go tool pprof -raw "$conv" >"$tmp/raw_conv.txt" 2>/dev/null
        if [ -s "$tmp/raw_orig.txt" ] && cmp -s "$tmp/raw_orig.txt" "$tmp/raw_conv.txt"; then
            ok "$name: converted: go tool pprof -raw identical to the original's ($(awk '/^Samples:/ { s = 1; getline; next } /^Locations/ { s = 0 } s { n++ } END { print n + 0 }' "$tmp/raw_orig.txt") samples)"
        else
            fail "$name: converted: go tool pprof -raw differs: $(diff "$tmp/raw_orig.txt" "$tmp/raw_conv.txt" | head -4 | tr '\n' ' ')"
        fi
    fi
    a=$(printf '%s' "$info" | jq -c .counts)
    b=$("$FIRNCTL" pprof info "$conv" | jq -c .counts)
    [ "$a" = "$b" ] && ok "$name: converted: same counts" || fail "$name: converted: counts $b, want $a"

    if grep -qx "$name" <<<"$TOP_SKIP"; then
        continue
    fi
    # go tool pprof cannot read the repaired .NET originals: compare on the
    # converted file, which holds the same content.
    src=$f
    [ "$repairs" -gt 0 ] && src=$conv
    types=$(printf '%s' "$info" | jq -r '.sample_types | length')
    for ((i = 0; i < types; i++)); do
        top_rows_go "$src" "$i" >"$tmp/go.txt"
        if grep -qx "$name" <<<"$TOP_SIMPLIFY"; then
            top_rows_firn "$FIRNCTL" "$f" "$i" | python3 "$HERE/pprof_simplify.py" | sort >"$tmp/firn.txt"
        else
            top_rows_firn "$FIRNCTL" "$f" "$i" >"$tmp/firn.txt"
        fi
        if [ ! -s "$tmp/go.txt" ] && [ ! -s "$tmp/firn.txt" ]; then
            ok "$name: top[$i]: no rows (all-zero column), as go tool pprof -top"
        elif diff -q "$tmp/go.txt" "$tmp/firn.txt" >/dev/null; then
            ok "$name: top[$i]: $(wc -l <"$tmp/go.txt") rows as go tool pprof -top"
        else
            fail "$name: top[$i] differs from go tool pprof -top: $(diff "$tmp/go.txt" "$tmp/firn.txt" | head -4 | tr '\n' ' ')"
        fi
    done
done
[ "$n" -ge 60 ] && ok "$n fixture files examined" || fail "only $n fixture files found in $FIXTURES"
same "the three legacy CPU profiles were read and compared" "$legacy_read" 3
finish
