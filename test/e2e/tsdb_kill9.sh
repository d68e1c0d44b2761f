#!/bin/bash
# tsdb_kill9.sh FIRNCTL FIXTURES_DIR -- acknowledged writes survive kill -9,
# and no profile is ever half stored.
#
# Each round starts `firnctl tsdb append` on one store, appending two
# fixtures of two sample types each, alternately, one second apart; firnctl
# prints "stored FILE at TS ms: N series" right after each commit.  Once a
# random number of lines is out, the process gets SIGKILL.  Then the store
# must open, and hold, for every round so far:
#  - every acknowledged profile, in both sample-type series, with the
#    fixture's totals;
#  - nothing else but, at most, the one profile in flight when the kill
#    came (committed, not yet printed) -- and that one whole, too;
# and every profile stored must be in both series (all blocks or none).
#
# FIRN_KILL9_ROUNDS (default 25) sets the number of rounds, FIRN_KILL9_SEED
# the random seed (printed, so a failing run can be repeated).
set -uo pipefail
FIRNCTL=$1
FIXTURES=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

ROUNDS=${FIRN_KILL9_ROUNDS:-25}
case $ROUNDS in
'' | *[!0-9]*) echo "FIRN_KILL9_ROUNDS: \"$ROUNDS\" is not a count" >&2; exit 2 ;;
esac
SEED=${FIRN_KILL9_SEED:-$$}
RANDOM=$SEED
FIXTURE_A="$FIXTURES/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"
FIXTURE_B="$FIXTURES/pyro-pkg_pprof_testdata_go.cpu.labels.pprof"
NAME=process_cpu
REPEAT=100000
INTERVAL=1000
# A round that ran to its end would store 2 * REPEAT profiles INTERVAL ms
# apart: rounds this far apart never share a timestamp.
ROUND_SPAN=$((2 * REPEAT * INTERVAL))
WAIT_SECONDS=30

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
store="$tmp/store"
T0=$(($(date +%s) * 1000 - 24 * 3600 * 1000))
echo "# $ROUNDS rounds, seed $SEED, store $store"

# expected: "FIXTURE SERIES TOTAL" per sample type, FIXTURE 0 for A, 1 for B.
for i in 0 1; do
    f=$FIXTURE_A
    [ "$i" = 1 ] && f=$FIXTURE_B
    "$FIRNCTL" pprof info "$f" | jq -r --arg i "$i" --arg n "$NAME" '
        . as $p | .sample_types[] |
        "\($i) \($n):\(.type):\(.unit):\($p.period_type.type):\($p.period_type.unit):delta \(.total)"'
done >"$tmp/expected"
series=$(awk '{ print $2 }' "$tmp/expected" | sort -u)
if [ "$(awk '$1 == 0' "$tmp/expected" | wc -l)" = 2 ] &&
    [ "$(awk '$1 == 1' "$tmp/expected" | wc -l)" = 2 ] &&
    [ "$(printf '%s\n' "$series" | wc -l)" = 2 ]; then
    ok "fixtures: 2 sample types each, series $(printf '%s' "$series" | tr '\n' ' ')"
else
    fail "fixtures: want two with the same 2 sample types, got: $(tr '\n' ';' <"$tmp/expected")"
    finish
    exit
fi

# acks ROUND: the complete lines of that round's output (a line cut by the
# kill, if any, is not an acknowledgement).
acks() {
    local out="$tmp/round$1.out"
    head -n "$(wc -l <"$out")" "$out"
}

# verify ROUNDS_DONE: checks the dump of the store against the
# acknowledgements of rounds 0..ROUNDS_DONE-1; prints one line per problem,
# or "whole PROFILES EXTRA" (profiles stored, of which committed but not
# acknowledged) when there is none.
verify() {
    local done=$1 q
    for ((q = 0; q < done; q++)); do
        acks "$q" | awk -v q="$q" '{ print "ACK", q, $0 }'
    done >"$tmp/acks"
    awk -v t0="$T0" -v span="$ROUND_SPAN" -v step="$INTERVAL" -v done="$done" \
        -v a="$FIXTURE_A" -v b="$FIXTURE_B" '
        function ms(x) { return sprintf("%.0f", x) }
        FILENAME == ARGV[1] { want[$1, $2] = $3; if (!($2 in name)) nseries++; name[$2] = 1; next }
        FILENAME == ARGV[2] {
            # ACK ROUND stored FILE at TS ms: N series
            if (!match($0, / at -?[0-9]+ ms: [0-9]+ series$/) || $3 != "stored") {
                print "round " $2 ": malformed acknowledgement: " substr($0, 7); next
            }
            q = $2; ts = $(NF - 3); file = substr($0, length("ACK " q " stored ") + 1)
            file = substr(file, 1, length(file) - (length($0) - RSTART + 1))
            i = acked[q]++
            if (ts != t0 + q * span + i * step)
                print "round " q ": acknowledgement " i + 1 " at " ts ", want " ms(t0 + q * span + i * step)
            if (file != (i % 2 ? b : a))
                print "round " q ": acknowledgement " i + 1 " names " file
            next
        }
        # {__name__="SERIES", job="kill9"} TS total=T samples=...
        {
            if (!match($0, /__name__="[^"]*"/)) { print "dump: no __name__: " $0; next }
            s = substr($0, RSTART + 10, RLENGTH - 11)
            rest = substr($0, index($0, "} ") + 2); split(rest, f, " ")
            ts = f[1]; total = f[2]; sub(/^total=/, "", total)
            if (!(s in name)) { print "dump: unexpected series " s; next }
            if ((s, ts) in got) print "dump: " s " at " ts " twice"
            got[s, ts] = total; stamps[ts] = 1
        }
        END {
            for (ts in stamps) {
                off = ts - t0; q = int(off / span); i = (off - q * span) / step
                if (off < 0 || q >= done || i != int(i)) { print "stored profile at " ts " belongs to no round"; continue }
                fx = i % 2; n = 0
                for (s in name) {
                    if (!((s, ts) in got)) continue
                    n++
                    if (got[s, ts] != want[fx, s])
                        print "round " q ": profile " i + 1 " at " ts ": " s " total " got[s, ts] ", want " want[fx, s]
                }
                if (n != nseries)
                    print "round " q ": profile " i + 1 " at " ts " half stored: " n " of " nseries " series"
                if (i >= acked[q] + 1)
                    print "round " q ": profile " i + 1 " at " ts " stored, but only " acked[q] " were acknowledged"
                if (i >= acked[q]) extra++
                profiles++
                held[q, i] = 1
            }
            for (q = 0; q < done; q++)
                for (i = 0; i < acked[q]; i++)
                    if (!((q, i) in held))
                        print "round " q ": acknowledged profile " i + 1 " at " ms(t0 + q * span + i * step) " is lost"
            print "whole " profiles + 0 " " extra + 0
        }' "$tmp/expected" "$tmp/acks" "$tmp/dump"
}

start=$SECONDS
total_acked=0
profiles=0
for ((round = 0; round < ROUNDS; round++)); do
    out="$tmp/round$round.out"
    target=$((RANDOM % 200 + 1))
    "$FIRNCTL" tsdb append --storage.tsdb.path "$store" --name "$NAME" --delta \
        --label job=kill9 --timestamp $((T0 + round * ROUND_SPAN)) --interval "$INTERVAL" \
        --repeat "$REPEAT" "$FIXTURE_A" "$FIXTURE_B" >"$out" 2>"$tmp/append.err" &
    pid=$!
    deadline=$((SECONDS + WAIT_SECONDS))
    lines=0
    while [ "$lines" -lt "$target" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.01
        lines=$(wc -l <"$out")
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    status=$?
    pid=
    if [ "$status" -ne 137 ]; then
        fail "round $round: append exited $status before the kill: $(tail -3 "$tmp/append.err")"
        break
    fi
    if [ "$lines" -lt "$target" ]; then
        fail "round $round: $lines of $target acknowledgements within ${WAIT_SECONDS}s"
        break
    fi
    acked=$(acks "$round" | wc -l)
    total_acked=$((total_acked + acked))
    if ! "$FIRNCTL" tsdb dump --storage.tsdb.path "$store" >"$tmp/dump" 2>"$tmp/dump.err"; then
        fail "round $round: store does not open after kill -9: $(tail -3 "$tmp/dump.err")"
        break
    fi
    verify $((round + 1)) >"$tmp/verify"
    if [ "$(wc -l <"$tmp/verify")" = 1 ] && read -r _ profiles extra <"$tmp/verify" &&
        [ "$profiles" -ge "$total_acked" ]; then
        ok "round $round: killed after $acked acknowledged (waited for $target); store holds $profiles whole profiles, all $total_acked acknowledged + $extra committed unacknowledged (in flight at a kill)"
    else
        fail "round $round: killed after $acked acknowledged: $(grep -v '^whole ' "$tmp/verify" | head -5 | tr '\n' ';')"
        break
    fi
done

if [ "$E2E_FAILED" -eq 0 ] && [ "$ROUNDS" -gt 0 ]; then
    stats=$("$FIRNCTL" tsdb stats --storage.tsdb.path "$store" | jq -c '{series, blocks}')
    want="{\"series\":2,\"blocks\":$((2 * profiles))}"
    [ "$stats" = "$want" ] && ok "stats after $ROUNDS kills: $stats" ||
        fail "stats after $ROUNDS kills: $stats, want $want"
fi
echo "# $((SECONDS - start))s"
finish
