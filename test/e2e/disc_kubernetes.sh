#!/bin/bash
# disc_kubernetes.sh PROBE SOURCE_DIR FIRN -- kubernetes_sd_configs against a fake
# Kubernetes API server (test/kubeapi, Go, on loopback) that serves lists
# and watch streams in the real JSON shapes and takes scripted changes.
# disc_k8s_probe runs the providers of a config file and prints every
# update as a JSON line.  Checks Prometheus's groups and labels for the pod
# and endpoints roles, ADDED/MODIFIED/DELETED, bookmarks advancing the
# resource version, dropped connections, HTTP 410 and ERROR-410 events
# (re-list and diff), failures backing off and keeping the targets,
# namespaces, selectors, bearer-token files re-read, and the in-cluster
# service account over TLS.  Last, firn itself discovers a real Go pprof
# service as a pod, relabels it as Parca's examples do, and scrapes it.
set -uo pipefail
probe=$1
srcdir=$2
firn=$3
. "$(dirname "$0")/lib.sh"
e2e_workspace

need_go "$srcdir" kubeapi "$tmp"

# start_kubeapi NAME ARGS...: the fake API server on a free loopback port;
# its base URL in KUBE_URL.
start_kubeapi() {
    local name=$1 scheme=http
    shift
    [[ " $* " == *" -tls-cert "* ]] && scheme=https
    "$tmp/kubeapi" -addr 127.0.0.1:0 -addr-file "$tmp/$name.addr" "$@" >"$tmp/$name.log" 2>&1 &
    track_pid $!
    wait_for 30 test -s "$tmp/$name.addr" || return 1
    KUBE_URL=$scheme://$(head -n 1 "$tmp/$name.addr")
}
# ctl PATH [BODY]: POST to the control API of the server at $KUBE_URL.
ctl() {
    curl_local --insecure --fail --max-time 5 -X POST --data-binary "${2:-}" "$KUBE_URL/_control/$1" >/dev/null
}
open_watches() { curl_local --insecure --max-time 5 "$KUBE_URL/_control/watches" | jq -r "${1:-.open}"; }
watching() { (($(open_watches "${2:-.open}") >= $1)); }
requests() { curl_local --insecure --max-time 5 "$KUBE_URL/_control/requests"; }

# start_probe NAME CONFIG [SA_DIR]: the providers of CONFIG's first job.
start_probe() {
    firn_log "$tmp/$1.err"
    "$probe" "$2" 0 30 ${3:+"$3"} >"$tmp/$1.out" 2>"$tmp/$1.err" &
    track_pid "$!"
}
lines() { wc -l <"$tmp/$1.out"; }
# group NAME SOURCE: the last group sent for SOURCE, targets sorted by
# address (jq -S); "" when none was sent.
group() {
    grep '"event":"send"' "$tmp/$1.out" | jq -cS --arg s "$2" \
        '.groups[] | select(.source == $s) | .targets |= sort_by(.__address__)' | tail -1
}
group_is() { [[ $(group "$1" "$2") == "$3" ]]; }
expect_group() {  # WHAT NAME SOURCE WANT
    if wait_for 20 group_is "$2" "$3" "$4"; then ok "$1"; else
        fail "$1: got $(group "$2" "$3"), want $4"
    fi
}
refreshes() { grep -c "\"event\":\"refreshed\",\"ok\":$2" "$tmp/$1.out"; }
has_refreshes() { (($(refreshes "$1" "$2") >= $3)); }
sends() { grep -c '"event":"send"' "$tmp/$1.out"; }
add() { ctl apply "{\"type\":\"ADDED\",\"object\":$1}"; }
modify() { ctl apply "{\"type\":\"MODIFIED\",\"object\":$1}"; }
delete() { ctl apply "{\"type\":\"DELETED\",\"object\":$1}"; }

# ---- objects ---------------------------------------------------------------------------
# pod NAME NS IP: the pod of Prometheus's makeMultiPortPods (pod_test.go),
# renamed and readdressed.
pod() {
    cat <<EOF
{"kind":"Pod","apiVersion":"v1",
 "metadata":{"name":"$1","namespace":"$2","uid":"abc123",
   "labels":{"test/label":"testvalue"},"annotations":{"test/annotation":"testannotationvalue"},
   "ownerReferences":[{"apiVersion":"apps/v1","kind":"testcontrollerkind","name":"testcontrollername",
                       "uid":"u1","controller":true}]},
 "spec":{"nodeName":"testnode",
   "containers":[
     {"name":"testcontainer0","image":"testcontainer0:latest",
      "ports":[{"name":"testport0","containerPort":9000,"protocol":"TCP"},
               {"name":"testport1","containerPort":9001,"protocol":"UDP"}]},
     {"name":"testcontainer1","image":"testcontainer1:latest"}]},
 "status":{"phase":"Running","podIP":"$3","podIPs":[{"ip":"$3"}],"hostIP":"2.3.4.5",
   "conditions":[{"type":"Ready","status":"True"}],
   "containerStatuses":[{"name":"testcontainer0","containerID":"docker://a1b2c3d4e5f6"},
                        {"name":"testcontainer1","containerID":"containerd://6f5e4d3c2b1a"}]}}
EOF
}
# pod_group NAME NS IP: the group Prometheus builds for it (TestPodDiscoveryBeforeRun).
pod_group() {
    local c='"__meta_kubernetes_pod_container_init":"false"'
    jq -cS . <<EOF
{"source":"pod/$2/$1",
 "labels":{"__meta_kubernetes_namespace":"$2","__meta_kubernetes_pod_name":"$1",
   "__meta_kubernetes_pod_ip":"$3","__meta_kubernetes_pod_ipv4":"$3",
   "__meta_kubernetes_pod_ready":"true",
   "__meta_kubernetes_pod_phase":"Running","__meta_kubernetes_pod_node_name":"testnode",
   "__meta_kubernetes_pod_host_ip":"2.3.4.5","__meta_kubernetes_pod_uid":"abc123",
   "__meta_kubernetes_pod_label_test_label":"testvalue",
   "__meta_kubernetes_pod_labelpresent_test_label":"true",
   "__meta_kubernetes_pod_annotation_test_annotation":"testannotationvalue",
   "__meta_kubernetes_pod_annotationpresent_test_annotation":"true",
   "__meta_kubernetes_pod_controller_kind":"testcontrollerkind",
   "__meta_kubernetes_pod_controller_name":"testcontrollername"},
 "targets":[
   {"__address__":"$3",$c,
    "__meta_kubernetes_pod_container_name":"testcontainer1",
    "__meta_kubernetes_pod_container_id":"containerd://6f5e4d3c2b1a",
    "__meta_kubernetes_pod_container_image":"testcontainer1:latest"},
   {"__address__":"$3:9000",$c,
    "__meta_kubernetes_pod_container_name":"testcontainer0",
    "__meta_kubernetes_pod_container_id":"docker://a1b2c3d4e5f6",
    "__meta_kubernetes_pod_container_image":"testcontainer0:latest",
    "__meta_kubernetes_pod_container_port_name":"testport0",
    "__meta_kubernetes_pod_container_port_number":"9000",
    "__meta_kubernetes_pod_container_port_protocol":"TCP"},
   {"__address__":"$3:9001",$c,
    "__meta_kubernetes_pod_container_name":"testcontainer0",
    "__meta_kubernetes_pod_container_id":"docker://a1b2c3d4e5f6",
    "__meta_kubernetes_pod_container_image":"testcontainer0:latest",
    "__meta_kubernetes_pod_container_port_name":"testport1",
    "__meta_kubernetes_pod_container_port_number":"9001",
    "__meta_kubernetes_pod_container_port_protocol":"UDP"}]}
EOF
}
empty_group() { printf '{"source":"%s","targets":[]}' "$1"; }

# ---- the pod role: bearer token file, two namespaces -----------------------------------
test_secret secret-1 secret-2 kube-token-3
printf 'secret-1\n' >"$tmp/server-token"
printf 'secret-1\n' >"$tmp/client-token"
if start_kubeapi api -token-file "$tmp/server-token"; then
    ok "fake API server at $KUBE_URL"
else
    fail "fake API server did not start: $(tail -3 "$tmp/api.log")"
    finish
    exit
fi
add "$(pod testpod default 1.2.3.4)"
add "$(pod elsewhere kube-system 1.2.3.9)"
cat >"$tmp/pods.yml" <<EOF
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        api_server: $KUBE_URL
        authorization: {credentials_file: $tmp/client-token}
        namespaces: {names: [default, other]}
EOF
start_probe pods "$tmp/pods.yml"
expect_group "pod: Prometheus's group for a multi-port pod (one target per port, a portless container's bare IP)" \
    pods pod/default/testpod "$(pod_group testpod default 1.2.3.4)"
same "pod: a namespace not configured is not listed" "$(group pods pod/kube-system/elsewhere)" ""
reqs=$(requests)
same "pod: one list per namespace, with resourceVersion=0 and limit" \
    "$(jq -r '[.[] | select(.watch | not) | .path + "?" + .query] | sort | .[]' <<<"$reqs")" \
    "$(printf '%s\n' '/api/v1/namespaces/default/pods?limit=500&resourceVersion=0' \
        '/api/v1/namespaces/other/pods?limit=500&resourceVersion=0')"
same "pod: the bearer token from the credentials file, JSON asked for" \
    "$(jq -r '[.[] | .authorization + " " + .accept] | unique | .[]' <<<"$reqs")" \
    "Bearer secret-1 application/json"
wait_for 20 watching 2 && ok "pod: both namespaces watched" || fail "pod: watches open: $(open_watches)"
watch_q=$(jq -r '[.[] | select(.watch)][0].query' <<<"$(requests)")
check "pod: the watch asks for bookmarks from the list's version with a timeout" \
    grep -Eq '(^|&)allowWatchBookmarks=true(&|$)' <<<"$watch_q"
check "pod: the watch has timeoutSeconds" grep -Eq '(^|&)timeoutSeconds=30(&|$)' <<<"$watch_q"

modify "$(pod testpod default 1.2.3.5)"
expect_group "pod: MODIFIED moves the targets to the new IP" pods pod/default/testpod \
    "$(pod_group testpod default 1.2.3.5)"
add "$(pod second other 1.2.3.6)"
expect_group "pod: ADDED in the other namespace" pods pod/other/second "$(pod_group second other 1.2.3.6)"
delete '{"kind":"Pod","metadata":{"name":"second","namespace":"other"}}'
expect_group "pod: DELETED empties its source" pods pod/other/second "$(empty_group pod/other/second)"
noip=$(pod testpod default 1.2.3.5 | jq -c '.status.podIP = "" | .status.podIPs = []')
modify "$noip"
expect_group "pod: a pod without an IP has no targets" pods pod/default/testpod "$(empty_group pod/default/testpod)"
modify "$(pod testpod default 1.2.3.4)"
expect_group "pod: and gets them back with one" pods pod/default/testpod "$(pod_group testpod default 1.2.3.4)"

# Bookmarks advance the version the next watch starts from.
rv=$(curl_local --fail -X POST "$KUBE_URL/_control/bookmark" | jq -r '.resourceVersion // empty')
ctl requests/reset
sends_before=$(sends pods)
ctl drop
rewatched() { [[ $(requests | jq '[.[] | select(.watch)] | length') -ge 2 ]]; }
wait_for 20 rewatched && ok "pod: a dropped watch is watched again" || fail "pod: no new watch after a drop"
same "pod: no list after a dropped connection (the watch resumes)" \
    "$(requests | jq '[.[] | select(.watch | not)] | length')" 0
last_rv=$(curl_local "$KUBE_URL/api/v1/pods?limit=1" -H "Authorization: Bearer secret-1" |
    jq -r .metadata.resourceVersion)
same "pod: the new watch starts from the last version seen (the bookmark's)" \
    "$(requests | jq -r '[.[] | select(.watch) | .query | capture("resourceVersion=(?<v>[^&]*)").v] | unique | .[]')" \
    "${rv:-$last_rv}"
same "pod: a bookmark and a reconnect send nothing" "$(sends pods)" "$sends_before"

# The watch expires (ERROR event with code 410): list again, diff.
ctl requests/reset
ctl expire
relisted() { [[ $(requests | jq '[.[] | select(.watch | not)] | length') -ge $1 ]]; }
wait_for 20 relisted 2 && ok "pod: an ERROR 410 event makes a new list" || fail "pod: no list after ERROR 410"
same "pod: that list is a consistent read (no resourceVersion)" \
    "$(requests | jq -r '[.[] | select(.watch | not) | .query | test("resourceVersion")] | unique | .[]')" false
same "pod: nothing changed, nothing sent" "$(sends pods)" "$sends_before"

# Changes while the server fails (HTTP 500) and its history is compacted:
# the watch gets HTTP 410 and the re-list's diff sends what was missed.
failed_before=$(refreshes pods false)
ctl 'fail?count=100000&status=500'
ctl drop
wait_for 20 has_refreshes pods false $((failed_before + 2)) &&
    ok "pod: failed requests count as failed refreshes" || fail "pod: no failed refresh counted"
same "pod: while the server fails the targets stay" "$(group pods pod/default/testpod)" \
    "$(pod_group testpod default 1.2.3.4)"
add "$(pod third default 1.2.3.7)"
delete '{"kind":"Pod","metadata":{"name":"testpod","namespace":"default"}}'
ctl 'compact?mode=status'
ctl requests/reset
ctl 'fail?count=0'
expect_group "pod: after HTTP 410 the re-list adds what was added meanwhile" pods pod/default/third \
    "$(pod_group third default 1.2.3.7)"
expect_group "pod: and empties what was deleted meanwhile" pods pod/default/testpod \
    "$(empty_group pod/default/testpod)"
check "pod: the watch was answered 410 and a list followed" \
    jq -e '[.[] | select(.watch | not)] | length >= 1' <<<"$(requests)"

# The same with the ERROR event form of 410 on reconnect.
ctl 'fail?count=100000&status=500&only=watch'
ctl drop
modify "$(pod third default 1.2.3.8)"
ctl 'compact?mode=event'
ctl 'fail?count=0'
expect_group "pod: after an ERROR 410 event on reconnect the re-list has the change" pods \
    pod/default/third "$(pod_group third default 1.2.3.8)"

# The token file is read at each request: the server's token rotates, the
# client fails until its file has the new one.
printf 'secret-2\n' >"$tmp/server-token"
failed_before=$(refreshes pods false)
ctl drop
wait_for 20 has_refreshes pods false $((failed_before + 1)) &&
    ok "pod: a stale token is refused (401) and counted" || fail "pod: no failure with a stale token"
printf 'secret-2\n' >"$tmp/client-token"
ctl requests/reset
good_token() { requests | jq -e '[.[] | select(.authorization == "Bearer secret-2")] | length >= 1' >/dev/null; }
wait_for 40 good_token && ok "pod: the rotated token is read from the file" || fail "pod: the new token was never sent"
add "$(pod fourth default 1.2.3.10)"
expect_group "pod: events flow again after the rotation" pods pod/default/fourth \
    "$(pod_group fourth default 1.2.3.10)"

# Watch events split across chunks at arbitrary bytes.
ctl 'chunks?size=7'
ctl drop
wait_for 20 watching 2 && ok "pod: watching again after the drop" ||
    fail "pod: no new watch after the drop"
add "$(pod fifth default 1.2.3.11)"
expect_group "pod: an event split over 7-byte chunks is read whole" pods pod/default/fifth \
    "$(pod_group fifth default 1.2.3.11)"
ctl 'chunks?size=0'
check "pod: the probe logged no crash" test -z "$(grep -i 'sanitizer\|segmentation' "$tmp/pods.err")"

# ---- the endpoints role: pods and services looked up, selectors ------------------------
svc='{"kind":"Service","apiVersion":"v1","metadata":{"name":"testendpoints","namespace":"default",
  "labels":{"app/name":"test"}},"spec":{"type":"ClusterIP","clusterIP":"10.0.0.1",
  "ports":[{"name":"testport","port":9000,"protocol":"TCP"}]}}'
eps='{"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"testendpoints","namespace":"default",
  "labels":{"app/name":"test"}},
  "subsets":[{"addresses":[{"ip":"1.2.3.4","nodeName":"testnode","hostname":"testendpoint1",
                            "targetRef":{"kind":"Pod","name":"fourth","namespace":"default"}}],
              "ports":[{"name":"testport","port":9000,"protocol":"TCP"}]}]}'
other_eps='{"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"unselected","namespace":"default",
  "labels":{"app/name":"other"}},
  "subsets":[{"addresses":[{"ip":"1.2.3.9"}],"ports":[{"port":80}]}]}'
add "$svc"
add "$eps"
add "$other_eps"
cat >"$tmp/eps.yml" <<EOF
scrape_configs:
  - job_name: endpoints
    kubernetes_sd_configs:
      - role: endpoints
        api_server: $KUBE_URL
        authorization: {credentials: secret-2}
        namespaces: {names: [default]}
        selectors: [{role: endpoints, label: "app/name=test"}]
EOF
start_probe eps "$tmp/eps.yml"
has_group() { [[ -n $(group "$1" "$2") ]]; }
wait_for 20 has_group eps endpoints/default/testendpoints &&
    ok "endpoints: the selected Endpoints give a group" || fail "endpoints: no group: $(tail -2 "$tmp/eps.err")"
g=$(group eps endpoints/default/testendpoints)
t9000=$(jq -c '.targets[] | select(.__address__ == "1.2.3.4:9000")' <<<"$g")
same "endpoints: the endpoint's labels (Prometheus's endpoints role)" \
    "$(jq -r '[.__meta_kubernetes_endpoint_port_name, .__meta_kubernetes_endpoint_port_protocol,
              .__meta_kubernetes_endpoint_ready, .__meta_kubernetes_endpoint_node_name,
              .__meta_kubernetes_endpoint_hostname, .__meta_kubernetes_endpoint_address_target_kind,
              .__meta_kubernetes_endpoint_address_target_name] | join(" ")' <<<"$t9000")" \
    "testport TCP true testnode testendpoint1 Pod fourth"
same "endpoints: the backing pod's labels on its endpoint" \
    "$(jq -r '[.__meta_kubernetes_pod_name, .__meta_kubernetes_pod_container_name,
              .__meta_kubernetes_pod_container_port_number] | join(" ")' <<<"$t9000")" \
    "fourth testcontainer0 9000"
same "endpoints: the service's labels on the group" \
    "$(jq -r '[.labels.__meta_kubernetes_service_name, .labels.__meta_kubernetes_service_label_app_name,
              .labels.__meta_kubernetes_endpoints_name, .labels.__meta_kubernetes_namespace] | join(" ")' <<<"$g")" \
    "testendpoints test testendpoints default"
same "endpoints: the pod's container ports no endpoint covers become targets" \
    "$(jq -r '[.targets[].__address__] | sort | join(" ")' <<<"$g")" "1.2.3.10:9001 1.2.3.4:9000"
same "endpoints: the label selector is passed to the API server" \
    "$(requests | jq -r '[.[] | select(.path | endswith("/endpoints")) | .query |
        capture("labelSelector=(?<s>[^&]*)").s] | unique | .[]')" "app%2Fname%3Dtest"
same "endpoints: the unselected Endpoints give nothing" "$(group eps endpoints/default/unselected)" ""
modify "$(echo "$svc" | jq -c '.metadata.labels["app/name"] = "changed"')"
svc_changed() {
    [[ $(group eps endpoints/default/testendpoints | jq -r .labels.__meta_kubernetes_service_label_app_name) == changed ]]
}
wait_for 20 svc_changed && ok "endpoints: a service change rebuilds its endpoints' group" ||
    fail "endpoints: the service change did not reach the group"

# ---- in-cluster: service account token and CA over TLS, own namespace ------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kubernetes -keyout "$tmp/tls.key" \
    -out "$tmp/tls.crt" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1 ||
    fail "openssl could not make a certificate"
mkdir -p "$tmp/sa"
cp "$tmp/tls.crt" "$tmp/sa/ca.crt"
printf 'sa-token\n' >"$tmp/sa/token"
printf 'monitoring\n' >"$tmp/sa/namespace"
if start_kubeapi tls -token sa-token -tls-cert "$tmp/tls.crt" -tls-key "$tmp/tls.key"; then
    ok "fake API server with TLS at $KUBE_URL"
    add "$(pod incluster monitoring 1.2.3.12)"
    add "$(pod notmine default 1.2.3.13)"
    cat >"$tmp/incluster.yml" <<EOF
scrape_configs:
  - job_name: incluster
    kubernetes_sd_configs: [{role: pod, namespaces: {own_namespace: true}}]
EOF
    port=${KUBE_URL##*:}
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$port start_probe incluster \
        "$tmp/incluster.yml" "$tmp/sa"
    expect_group "in-cluster: the service account's token and CA, its own namespace" incluster \
        pod/monitoring/incluster "$(pod_group incluster monitoring 1.2.3.12)"
    same "in-cluster: only its own namespace is listed" \
        "$(requests | jq -r '[.[] | select(.watch | not) | .path] | unique | .[]')" \
        /api/v1/namespaces/monitoring/pods
    # A kubeconfig file: the CA inline (-data), the token from a file next to it.
    printf 'sa-token\n' >"$tmp/kube-token"
    cat >"$tmp/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: test
contexts: [{name: test, context: {cluster: fake, user: firn, namespace: monitoring}}]
clusters: [{name: fake, cluster: {server: "$KUBE_URL", certificate-authority-data: $(base64 -w0 "$tmp/tls.crt")}}]
users: [{name: firn, user: {tokenFile: kube-token}}]
preferences: {}
EOF
    cat >"$tmp/kubeconfig.yml" <<EOF
scrape_configs:
  - job_name: kubeconfig
    kubernetes_sd_configs: [{role: pod, kubeconfig_file: $tmp/kubeconfig, namespaces: {names: [default]}}]
EOF
    start_probe kubeconfig "$tmp/kubeconfig.yml"
    expect_group "kubeconfig: its server, inline CA and token file" kubeconfig \
        pod/default/notmine "$(pod_group notmine default 1.2.3.13)"
else
    fail "fake API server with TLS did not start: $(tail -3 "$tmp/tls.log")"
fi
out=$(env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT "$probe" "$tmp/incluster.yml" 0 30 "$tmp/sa" 2>&1)
rc=$?
check "in-cluster: outside a cluster the provider refuses to start, saying why" \
    test "$rc" = 1 -a -n "$(grep 'not running in a Kubernetes cluster' <<<"$out")"

# ---- firn: a pod's pprof port discovered, relabeled and scraped --------------------------
need_go "$srcdir" goservice "$tmp"
start_goservice "$tmp" svc || { fail "start the go service"; finish; exit; }
go_port=${GO_ADDR##*:}
start_kubeapi firnapi -token kube-token-3
add "$(pod app prod 127.0.0.1 | jq -c --argjson p "$go_port" '
    .metadata.annotations["parca.dev/scrape"] = "true" | .metadata.labels.app = "checkout" |
    .spec.containers[0].ports = [{"name":"pprof","containerPort":$p,"protocol":"TCP"},
                                 {"name":"http","containerPort":1,"protocol":"TCP"}]')"
cat >"$tmp/firn.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - {role: pod, api_server: "$KUBE_URL", authorization: {credentials: kube-token-3}}
    relabel_configs:
      - {source_labels: [__meta_kubernetes_pod_annotation_parca_dev_scrape], action: keep, regex: "true"}
      - {source_labels: [__meta_kubernetes_pod_container_port_name], action: keep, regex: pprof}
      - {action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}
      - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
      - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
    profiling_config:
      pprof_config:
        process_cpu: {enabled: false}
        block: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}
EOF
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit
fi
api=http://127.0.0.1:$FIRN_PORT
targets() { curl_local --max-time 5 "$api/api/v1/targets?state=${1:-active}"; }
up() { targets | jq -e '.data.activeTargets[] | select(.health == "up")' >/dev/null; }
wait_for 30 up && ok "firn: the pod's pprof port is scraped" ||
    fail "firn: no target up: $(targets | jq -c '.data.activeTargets[0] | {lastError, health}')"
t=$(targets | jq -c '.data.activeTargets[0]')
same "firn: the target's labels come from relabeling the pod's metadata" \
    "$(jq -r '.labels | [.app, .namespace, .pod, .instance, .job] | join(" ")' <<<"$t")" \
    "checkout prod app 127.0.0.1:$go_port kubernetes-pods"
same "firn: /api/v1/targets shows the discovered __meta_kubernetes_* labels" \
    "$(jq -r '.discoveredLabels | [.__meta_kubernetes_pod_name, .__meta_kubernetes_pod_container_port_name,
        .__meta_kubernetes_pod_annotation_parca_dev_scrape] | join(" ")' <<<"$t")" "app pprof true"
same "firn: the pod's other port and its portless container are dropped by relabeling" \
    "$(targets dropped | jq -r '[.data.droppedTargets[].discoveredLabels.__address__] | sort | join(" ")')" \
    "127.0.0.1 127.0.0.1:1"
stored() {
    curl_local --max-time 5 "$api/api/v1/series" --data-urlencode 'match[]={pod="app",namespace="prod"}' |
        jq -e '.data | length > 0' >/dev/null
}
wait_for 30 stored && ok "firn: profiles stored with the pod's labels" || fail "firn: no series with pod=app"
delete '{"kind":"Pod","metadata":{"name":"app","namespace":"prod"}}'
gone() { [[ $(targets | jq '.data.activeTargets | length') == 0 ]]; }
wait_for 30 gone && ok "firn: a deleted pod's target goes" || fail "firn: the target stayed"

stop_tracked
finish
