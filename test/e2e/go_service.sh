#!/usr/bin/env bash
# End-to-end test: profiles served by a real Go program (net/http/pprof) must
# be read by `firnctl pprof info` with the same sample types and totals that
# `go tool pprof` reports, and `firnctl pprof convert` output must still be
# readable by `go tool pprof`.
#
# usage: go_service.sh FIRNCTL_PATH SOURCE_DIR
#
# Everything runs offline and on 127.0.0.1 only; every wait is bounded
# (timeouts on the build, every tool run and every curl; polling loops share
# a 30 s deadline).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 FIRNCTL_PATH SOURCE_DIR" >&2
  exit 2
fi
firnctl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
srcdir=$2
GO=${GO:-go}

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

tmp=$(mktemp -d)
pid=

# stop_service sends SIGTERM and waits at most ~10 s for the process to exit
# (SIGKILL after that). Sets service_rc to the exit status. A zombie still
# answers `kill -0`, so liveness is read from /proc instead.
service_rc=
stop_service() {
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i state
  for ((i = 0; i < 100; i++)); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [[ -z $state || $state == Z ]] && break
    sleep 0.1
  done
  if [[ -n $state && $state != Z ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  service_rc=0
  wait "$pid" 2>/dev/null || service_rc=$?
  pid=
}

cleanup() {
  stop_service
  # Go makes module-cache files read-only; make sure rm can remove them.
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# This script counts and reports its own checks (two-argument fail).
failures=0
ok() { echo "ok $1"; }
fail() {
  echo "FAIL $1: $2"
  failures=$((failures + 1))
}

go_env "$tmp"
# Never route loopback traffic through a proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

for tool in "$GO" jq curl; do
  if ! command -v "$tool" >/dev/null; then
    fail "prerequisites" "$tool not found in PATH"
    exit 1
  fi
done
if [[ ! -x $firnctl ]]; then
  fail "prerequisites" "firnctl not executable: $firnctl"
  exit 1
fi

# --- build the service -----------------------------------------------------
# Build from a copy so the source tree is never written to.
mkdir -p "$tmp/src"
cp "$srcdir/test/goservice/main.go" "$srcdir/test/goservice/go.mod" "$tmp/src/"
if (cd "$tmp/src" && timeout 300 "$GO" build -o "$tmp/goservice" .) >"$tmp/build.log" 2>&1; then
  ok "build go service"
else
  fail "build go service" "$(tail -n 20 "$tmp/build.log")"
  exit 1
fi

# --- start it and wait until it is ready -----------------------------------
"$tmp/goservice" -addr 127.0.0.1:0 -addr-file "$tmp/addr" >"$tmp/service.log" 2>&1 &
pid=$!

# One 30 s budget covers both the address file and /healthz.
deadline=$((SECONDS + 30))
service_alive() {
  local state
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ -n $state && $state != Z ]]
}

addr=
while ((SECONDS < deadline)); do
  if [[ -s $tmp/addr ]]; then
    addr=$(head -n 1 "$tmp/addr")
    break
  fi
  service_alive || break
  sleep 0.1
done
if [[ ! $addr =~ ^127\.0\.0\.1:[0-9]+$ ]]; then
  fail "service address" "no loopback address in addr file (got '${addr}'); log: $(tail -n 5 "$tmp/service.log")"
  exit 1
fi
ok "service address $addr"

curl_local() { curl --noproxy '*' --silent --show-error --fail "$@"; }

ready=0
while ((SECONDS < deadline)); do
  if [[ $(curl_local --max-time 1 "http://$addr/healthz" 2>/dev/null || true) == ok ]]; then
    ready=1
    break
  fi
  service_alive || break
  sleep 0.1
done
if ((ready == 0)); then
  fail "service healthz" "not ready within 30 s; log: $(tail -n 5 "$tmp/service.log")"
  exit 1
fi
ok "service healthz"

# --- helpers ----------------------------------------------------------------

# raw_totals FILE: raw_sample_sums of a -raw output file as a JSON array
# ("[]" when it has no sample line).
raw_totals() {
  local sums
  sums=$(raw_sample_sums "$1") || sums=
  echo "[${sums// /,}]"
}

# raw_units RAWFILE: the unit of each sample type, from the header line that
# follows "Samples:" in -raw output ("type/unit[dflt] type/unit ...").
raw_units() {
  awk '
    /^Samples:/ {
      getline
      gsub(/\[dflt\]/, "")
      for (k = 1; k <= NF; k++) {
        sub(/^[^\/]*\//, "", $k)
        print $k
      }
      exit
    }' "$1"
}

# top_totals FILE RAWFILE: per-sample-type totals as computed by
# `go tool pprof -top` ("... of N total"), as a JSON array. -top computes its
# total over every sample before any filtering, so unlike -raw it includes
# samples with no locations. -unit set to the sample type's own unit keeps
# the value an unscaled integer ("2040000000ns", "4560696B", "14").
top_totals() {
  local f=$1 raw=$2 i=0 unit line vals=()
  while read -r unit; do
    line=$(cd "$tmp" && timeout 60 "$GO" tool pprof -top -nodecount=1 -sample_index="$i" -unit="$unit" "$f" 2>/dev/null |
      sed -n 's/^Showing nodes accounting for .* of \(-\{0,1\}[0-9][0-9]*\)[A-Za-z]* total$/\1/p')
    vals+=("${line:-null}")
    i=$((i + 1))
  done < <(raw_units "$raw")
  local IFS=,
  echo "[${vals[*]}]"
}

# label_lines FILE: sample label lines ("key:[values]") from -raw output.
label_lines() {
  awk '
    /^Samples:/ { in_s = 1; next }
    in_s && /^Locations/ { in_s = 0 }
    in_s && /^[[:space:]]+[^[:space:]:]+:\[/ { print }' "$1"
}

# check_profile NAME PATH EXPECTED_TYPES_JSON
check_profile() {
  local name=$1 urlpath=$2 types=$3
  local f="$tmp/$name.pb.gz" conv="$tmp/$name.conv.pb.gz"

  if ! curl_local --max-time 30 -o "$f" "http://$addr$urlpath" 2>"$tmp/$name.curl.err"; then
    fail "$name: fetch $urlpath" "$(cat "$tmp/$name.curl.err")"
    return
  fi
  ok "$name: fetch $urlpath"

  if ! timeout 60 "$firnctl" pprof info "$f" >"$tmp/$name.info.json" 2>"$tmp/$name.info.err"; then
    fail "$name: firnctl pprof info" "$(head -n 5 "$tmp/$name.info.err")"
    return
  fi
  ok "$name: firnctl pprof info"

  local got
  # "|| ...": malformed JSON must fail the checks below, not abort (set -e).
  got=$(jq -c '[.sample_types[].type]' "$tmp/$name.info.json" 2>&1) || got="unparsable: $got"
  if jq -e --argjson want "$types" '[.sample_types[].type] == $want' "$tmp/$name.info.json" >/dev/null 2>&1; then
    ok "$name: sample types $got"
  else
    fail "$name: sample types" "got $got, want $types"
  fi

  local nsamples
  nsamples=$(jq '.counts.samples' "$tmp/$name.info.json" 2>/dev/null) || nsamples='?'
  if jq -e '.counts.samples > 0' "$tmp/$name.info.json" >/dev/null 2>&1; then
    ok "$name: $nsamples samples"
  else
    fail "$name: samples > 0" "counts.samples = $nsamples"
  fi

  if ! (cd "$tmp" && timeout 60 "$GO" tool pprof -raw "$f") >"$tmp/$name.raw" 2>"$tmp/$name.raw.err"; then
    fail "$name: go tool pprof -raw" "$(head -n 5 "$tmp/$name.raw.err")"
  else
    # Two references from go tool pprof: the -raw sample sums and the -top
    # totals. -raw omits samples with no locations (pprof's name filter
    # keeps only samples with a location, even with no filter set); Go 1.19
    # goroutine profiles nearly always carry one such sample. So firnctl
    # must match -top exactly, and must match -raw whenever go tool pprof's
    # own two views agree; when -raw is below -top, that is reported.
    local raw_tot top_tot got_tot top_ok=0
    raw_tot=$(raw_totals "$tmp/$name.raw")
    top_tot=$(top_totals "$f" "$tmp/$name.raw")
    got_tot=$(jq -c '[.sample_types[].total]' "$tmp/$name.info.json" 2>/dev/null) || got_tot='?'
    if jq -e --argjson want "$top_tot" '[.sample_types[].total] == $want' \
      "$tmp/$name.info.json" >/dev/null 2>&1; then
      ok "$name: totals $got_tot match go tool pprof -top"
      top_ok=1
    else
      fail "$name: totals vs go tool pprof -top" "firnctl $got_tot, go tool pprof -top $top_tot"
    fi
    if jq -e --argjson want "$raw_tot" '[.sample_types[].total] == $want' \
      "$tmp/$name.info.json" >/dev/null 2>&1; then
      ok "$name: totals $got_tot match go tool pprof -raw"
    elif ((top_ok)) && [[ $raw_tot != "$top_tot" ]] && jq -e -n --argjson raw "$raw_tot" --argjson top "$top_tot" \
      '($raw | length) == ($top | length) and ([$raw, $top] | transpose | all(.[0] <= .[1]))' >/dev/null 2>&1; then
      ok "$name: totals vs go tool pprof -raw: -raw sums $raw_tot are below its own -top totals $top_tot (-raw drops samples with no locations)"
    else
      fail "$name: totals vs go tool pprof -raw" "firnctl $got_tot, go tool pprof -raw $raw_tot"
    fi
  fi

  if ! timeout 60 "$firnctl" pprof convert "$f" "$conv" 2>"$tmp/$name.conv.err"; then
    fail "$name: firnctl pprof convert" "$(head -n 5 "$tmp/$name.conv.err")"
    return
  fi
  ok "$name: firnctl pprof convert"

  if (cd "$tmp" && timeout 60 "$GO" tool pprof -top "$conv") >"$tmp/$name.top" 2>"$tmp/$name.top.err"; then
    ok "$name: go tool pprof -top on converted"
  else
    fail "$name: go tool pprof -top on converted" "$(head -n 5 "$tmp/$name.top.err")"
  fi
}

# check_labels NAME FILE WANT: the file's sample labels (go tool pprof -raw
# label lines, e.g. "worker:[hash]") must include WANT.
check_labels() {
  local name=$1 f=$2 want=$3
  if ! (cd "$tmp" && timeout 60 "$GO" tool pprof -raw "$f") >"$f.raw" 2>"$f.raw.err"; then
    fail "$name" "go tool pprof -raw: $(head -n 5 "$f.raw.err")"
    return
  fi
  local labels
  labels=$(label_lines "$f.raw" | sed 's/^[[:space:]]*//' | sort -u | tr '\n' ' ')
  if [[ " $labels " == *" $want "* ]]; then
    ok "$name: $want among $labels"
  else
    fail "$name" "no '$want' among the sample labels of go tool pprof -raw: '$labels'"
  fi
}

# --- the checks -------------------------------------------------------------
heap_types='["alloc_objects","alloc_space","inuse_objects","inuse_space"]'
check_profile profile '/debug/pprof/profile?seconds=2' '["samples","cpu"]'
check_profile heap /debug/pprof/heap "$heap_types"
check_profile allocs /debug/pprof/allocs "$heap_types"
check_profile goroutine /debug/pprof/goroutine '["goroutine"]'
check_profile block /debug/pprof/block '["contentions","delay"]'
check_profile mutex /debug/pprof/mutex '["contentions","delay"]'

# The service labels its CPU work with pprof.Do; labels must be present in
# the served CPU profile and survive firnctl's re-encoding.
if [[ -s $tmp/profile.pb.gz ]]; then
  check_labels "profile: sample labels" "$tmp/profile.pb.gz" 'worker:[hash]'
fi
if [[ -s $tmp/profile.conv.pb.gz ]]; then
  check_labels "profile: sample labels after convert" "$tmp/profile.conv.pb.gz" 'worker:[hash]'
fi

stop_service
if [[ $service_rc == 0 ]]; then
  ok "service exits cleanly on SIGTERM"
else
  fail "service exits cleanly on SIGTERM" "exit status $service_rc; log: $(tail -n 5 "$tmp/service.log")"
fi

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
