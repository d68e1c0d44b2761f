#!/usr/bin/env bash
# End-to-end test: firn never serves or logs a secret of its configuration.
# A config holds known passwords and tokens in every place the schema has
# one (basic_auth.password, authorization.credentials, bearer_token, the same
# in kubernetes_sd_configs, Parca's object_storage) plus one in a comment;
# firn runs on it, scrapes (and fails: nothing listens), reloads on SIGHUP.
#  - /api/v1/status/config shows the document with each of them as
#    "<secret>" (Prometheus's behaviour) and everything else as written
#    (compared as data, read by PyYAML, with the expected masking applied by
#    jq to the file's own data);
#  - no secret in /api/v1/status/config, /api/v1/targets, /api/v1/status/flags,
#    /metrics, nor (lib.sh's finish) in firn's log.
#
# usage: api_secrets.sh FIRN
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

secrets=(pw-basic-81f2 pw-authz-77c1 pw-bearer-0d9e pw-k8s-basic-5a33 pw-k8s-bearer-c2b4
         pw-s3-secret-91aa pw-in-comment-4e07 pw-reloaded-6b18)
test_secret "${secrets[@]}"
printf 'pw-file-content-3f50\n' >"$tmp/password"
test_secret pw-file-content-3f50

# Port 1 on loopback: nothing listens, so every scrape and watch fails (and
# logs why).
cat >"$tmp/firn.yml" <<EOF
# the old password was pw-in-comment-4e07
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: basic
    basic_auth: {username: alice, password: "pw-basic-81f2"}
    static_configs: [{targets: ['127.0.0.1:1'], labels: {env: test}}]
  - job_name: authz
    authorization:
      type: Bearer
      credentials: pw-authz-77c1
    static_configs: [{targets: ['127.0.0.1:1']}]
  - job_name: bearer
    bearer_token: pw-bearer-0d9e
    static_configs: [{targets: ['127.0.0.1:1']}]
  - job_name: file
    basic_auth: {username: bob, password_file: $tmp/password}
    static_configs: [{targets: ['127.0.0.1:1']}]
  - job_name: k8s
    kubernetes_sd_configs:
      - role: pod
        api_server: http://127.0.0.1:1
        basic_auth: {username: kube, password: pw-k8s-basic-5a33}
      - role: node
        api_server: http://127.0.0.1:1
        bearer_token: pw-k8s-bearer-c2b4
object_storage:
  bucket:
    type: S3
    config: {bucket: profiles, secret_key: pw-s3-secret-91aa}
EOF
# The file's data with the secrets masked as Prometheus masks them.
masked='.scrape_configs[0].basic_auth.password = "<secret>"
    | .scrape_configs[1].authorization.credentials = "<secret>"
    | .scrape_configs[2].bearer_token = "<secret>"
    | .scrape_configs[4].kubernetes_sd_configs[0].basic_auth.password = "<secret>"
    | .scrape_configs[4].kubernetes_sd_configs[1].bearer_token = "<secret>"
    | .object_storage.bucket.config |= map_values("<secret>")'

if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT/api/v1
get() { curl_local --max-time 10 "$@"; }
served() { get "$api/status/config" | jq -r .data.yaml; }

# no_secret WHAT TEXT: none of the secrets in TEXT.
no_secret() {
    local s found=()
    for s in "${secrets[@]}" pw-file-content-3f50; do
        grep -qF -- "$s" <<<"$2" && found+=("$s")
    done
    if ((${#found[@]} == 0)) && [[ -n $2 ]]; then
        ok "$1: no secret"
    else
        fail "$1: ${found[*]:-empty answer}"
    fi
}

text=$(served)
no_secret "status/config" "$text"
# want: the file's data, masked by jq, in yaml_json's form
want() { yaml_json <"$tmp/firn.yml" | jq "$masked" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'; }
same "status/config: the configuration with each secret as <secret>" "$(yaml_json <<<"$text")" "$(want)"
same "status/config: seven values masked, paths and user names shown" \
    "$(grep -c '<secret>' <<<"$text") $(grep -c "password_file: $tmp/password" <<<"$text") $(grep -c 'username: alice' <<<"$text")" \
    "7 1 1"

# Let every job try (and fail) a scrape, so that the log has their errors.
failed_targets() {
    get "$api/targets" | jq -e '[.data.activeTargets[] | select(.lastError != "")] | length >= 4' >/dev/null
}
if wait_for 30 failed_targets; then
    ok "the four static jobs scraped and failed (their errors logged)"
else
    fail "scrapes: $(get "$api/targets" | jq -c '[.data.activeTargets[] | {job: .labels.job, lastError}]')"
fi
no_secret "targets" "$(get "$api/targets")"
no_secret "status/flags" "$(get "$api/status/flags")"
no_secret "metrics" "$(get "http://127.0.0.1:$FIRN_PORT/metrics")"

# A reload with a new password: the new one is masked too.
sed -i 's/pw-basic-81f2/pw-reloaded-6b18/' "$tmp/firn.yml"
kill -HUP "$FIRN_PID"
reloaded() { grep -q 'Completed loading of configuration file' "$tmp/firn.log"; }
if wait_for 20 reloaded; then
    no_secret "status/config after SIGHUP" "$(served)"
    same "status/config after SIGHUP: the reloaded configuration, masked" \
        "$(served | yaml_json)" "$(want)"
else
    fail "SIGHUP: no reload logged: $(tail -3 "$tmp/firn.log")"
fi
stop_pid "$FIRN_PID"
finish
