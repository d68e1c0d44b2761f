#!/bin/bash
# agent_k8s.sh FIRN FIRN_AGENT WORKLOAD SRCDIR -- firn-agent's Kubernetes
# names, as root on a BTF kernel with a writable cgroup v2 hierarchy.
# The fake API server (test/kubeapi, on loopback) holds two pods: one on
# this node (namespace shop, two containers, labels app and tier) and one
# on another node.  Two workload processes are placed in cgroups whose
# paths are what the kubelet's systemd driver makes for containerd
# containers (kubepods.slice/.../kubepods-besteffort-pod<UID>.slice/
# cri-containerd-<ID>.scope): one in the first pod's "worker" container,
# one in the other node's pod's container.  firn-agent --kubeconfig
# --node=NODE watches this node's pods only (fieldSelector
# spec.nodeName=NODE, checked in the server's request log) and labels the
# first process's profiles namespace, pod, container, with the pod's labels
# made labels by a relabel_configs labelmap; the other process gets none
# of them (its pod is not this node's).  A label changed on the pod
# reaches later profiles.  The cgroups are removed at the end.
# Skipped (exit 77) without root, BTF, or a cgroup v2 hierarchy we may
# create directories in.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FIRN=$1 AGENT=$2 WORKLOAD=$3 SRCDIR=$4

need_bpf
# the cgroup v2 hierarchy: /sys/fs/cgroup itself, or /sys/fs/cgroup/unified
# beside v1 controllers (hybrid)
CG_ROOT=
for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    [ "$(stat -f -c %T "$d" 2>/dev/null)" = cgroup2fs ] && { CG_ROOT=$d; break; }
done
if [ -z "$CG_ROOT" ]; then
    echo "SKIP: no cgroup v2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified)"
    exit 77
fi

e2e_workspace
NODE=firn-e2e-node-$$
NS=shop POD=checkout-7d9f
UID1=0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b$(printf '%04x' $(($$ % 65536)))
UID2=9a8b7c6d-1e2f-4a3b-8c4d-5e6f7a8b$(printf '%04x' $(($$ % 65536)))
CID1=$(printf '%s' "worker $$" | sha256sum | cut -c1-64)
CID2=$(printf '%s' "sidecar $$" | sha256sum | cut -c1-64)
CID3=$(printf '%s' "elsewhere $$" | sha256sum | cut -c1-64)
# cgroups as the kubelet's systemd driver names them ('-' of the uid as '_')
QOS=$CG_ROOT/kubepods.slice/kubepods-besteffort.slice
POD1_CG=$QOS/kubepods-besteffort-pod${UID1//-/_}.slice
POD2_CG=$QOS/kubepods-besteffort-pod${UID2//-/_}.slice
C1_CG=$POD1_CG/cri-containerd-$CID1.scope
C3_CG=$POD2_CG/cri-containerd-$CID3.scope
MADE=()   # directories this test created, parents first
mkcg() {
    local d
    for d in "$@"; do
        [ -d "$d" ] && continue
        mkdir "$d" || return 1
        MADE+=("$d")
    done
}
k8s_cleanup() {
    stop_tracked   # no process left in the cgroups
    local i
    for ((i = ${#MADE[@]} - 1; i >= 0; i--)); do
        rmdir "${MADE[$i]}" 2>/dev/null || echo "could not remove cgroup ${MADE[$i]}" >&2
    done
    e2e_cleanup
}
trap k8s_cleanup EXIT

if ! mkcg "$CG_ROOT/kubepods.slice" "$QOS" "$POD1_CG" "$C1_CG" "$POD2_CG" "$C3_CG"; then
    fail "as root, create cgroup directories under $CG_ROOT"
    finish
    exit 1
fi
ok "cgroup v2 at $CG_ROOT: made the pods' and containers' cgroups"

need_go "$SRCDIR" kubeapi "$tmp"
"$tmp/kubeapi" -addr 127.0.0.1:0 -addr-file "$tmp/kubeapi.addr" >"$tmp/kubeapi.log" 2>&1 &
track_pid $!
wait_for 30 test -s "$tmp/kubeapi.addr" || { fail "the fake API server starts"; finish; exit 1; }
KUBE_URL=http://$(head -n 1 "$tmp/kubeapi.addr")
ctl() { curl_local --fail --max-time 5 -X POST --data-binary "$2" "$KUBE_URL/_control/$1" >/dev/null; }

# pod NAME NS UID NODE LABELS CONTAINERS STATUSES: a Pod object
pod() {
    printf '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"%s","namespace":"%s","uid":"%s",' "$1" "$2" "$3"
    printf '"labels":%s},"spec":{"nodeName":"%s","containers":%s},' "$5" "$4" "$6"
    printf '"status":{"phase":"Running","podIP":"10.1.2.3","containerStatuses":%s}}' "$7"
}
POD1_CONTAINERS='[{"name":"worker","ports":[{"containerPort":8080},{"containerPort":9090}]},{"name":"sidecar"}]'
POD1_STATUSES="[{\"name\":\"worker\",\"containerID\":\"containerd://$CID1\"},{\"name\":\"sidecar\",\"containerID\":\"containerd://$CID2\"}]"
ctl apply "[{\"type\":\"ADDED\",\"object\":$(pod "$POD" "$NS" "$UID1" "$NODE" \
    '{"app":"checkout","tier":"web"}' "$POD1_CONTAINERS" "$POD1_STATUSES")},
  {\"type\":\"ADDED\",\"object\":$(pod other-pod default "$UID2" other-node '{"app":"other"}' \
    '[{"name":"c"}]' "[{\"name\":\"c\",\"containerID\":\"containerd://$CID3\"}]")}]" ||
    { fail "the pods are applied"; finish; exit 1; }

cat >"$tmp/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: test
contexts: [{name: test, context: {cluster: fake, user: agent}}]
clusters: [{name: fake, cluster: {server: "$KUBE_URL"}}]
users: [{name: agent, user: {}}]
EOF

start_firn "$FIRN" "$tmp/firn.log" --web.listen-address=127.0.0.1:0 \
    --storage.tsdb.path="$tmp/data" || { fail "firn starts: $(tail -3 "$tmp/firn.log")"; finish; exit 1; }

# start_in CGROUP: a workload process moved into CGROUP; its pid in W_PID
start_in() {
    "$WORKLOAD" cpu >"$tmp/w$1.out" 2>&1 &
    W_PID=$!
    track_pid "$W_PID"
    wait_for 10 grep -q ready "$tmp/w$1.out" || return 1
    echo "$W_PID" >"$2/cgroup.procs"
}
start_in 1 "$C1_CG" || { fail "workload 1 runs in $C1_CG"; finish; exit 1; }
P1=$W_PID
start_in 3 "$C3_CG" || { fail "workload 3 runs in $C3_CG"; finish; exit 1; }
P3=$W_PID
check "/proc/PID/cgroup shows the container's cgroup" \
    grep -q "^0::.*/cri-containerd-$CID1.scope\$" "/proc/$P1/cgroup"

cat >"$tmp/agent.yaml" <<EOF
relabel_configs:
  - source_labels: [pid]
    regex: "$P1|$P3"
    action: keep
  - regex: __meta_kubernetes_pod_label_(.+)
    action: labelmap
EOF
"$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
    --profiling-duration=2s --node="$NODE" --kubeconfig="$tmp/kubeconfig" \
    --config-path="$tmp/agent.yaml" >"$tmp/agent.log" 2>&1 &
track_pid $!
wait_for 60 grep -q 'agent is ready' "$tmp/agent.log" ||
    { fail "firn-agent starts: $(tail -5 "$tmp/agent.log")"; finish; exit 1; }
AGENT_PORT=$(sed -n 's/.*agent is ready.* http_port=\([0-9]*\).*/\1/p' "$tmp/agent.log")

# outside a cluster, --kubernetes (the in-cluster service account) is refused
out=$(env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT timeout 60 "$AGENT" --kubernetes \
    --http-address=127.0.0.1:0 2>&1)
rc=$?
[[ $rc -eq 1 && $out == *"--kubernetes"*"not running in a Kubernetes cluster"* ]] &&
    ok "--kubernetes outside a cluster: exit 1, says why" ||
    fail "--kubernetes outside a cluster: exit $rc: $(tail -1 <<<"$out")"

# labels PID: the label sets of PID's CPU series (JSON lines)
labels() {
    curl_local --fail -G "http://127.0.0.1:$FIRN_PORT/api/v1/series" \
        --data-urlencode "match[]=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{pid=\"$1\"}" \
        | jq -c '.data[]'
}
# (jq -s: an empty answer is an empty array, which any() does not pass)
named() {
    labels "$P1" | jq -s -e --arg ns "$NS" --arg pod "$POD" \
        'any(.namespace == $ns and .pod == $pod and .container == "worker" and
             .app == "checkout" and .tier == "web")' >/dev/null
}
if wait_for 90 named; then
    got=$(labels "$P1" | jq -c 'select(.container == "worker") |
        {namespace, pod, container, app, tier, container_id, pod_uid}' | head -1)
    [ -n "$got" ] && ok "the process in the worker container: $got" ||
        fail "pid $P1's series went away: $(curl_local -G "http://127.0.0.1:$FIRN_PORT/api/v1/series" \
            --data-urlencode "match[]=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{pid=\"$P1\"}" | head -c 600)"
else
    fail "no profile of pid $P1 with namespace=$NS pod=$POD container=worker app and tier: \
$(labels "$P1" | head -2); agent: $(grep -v level=info "$tmp/agent.log" | tail -3); \
firn: $(grep -v level=info "$tmp/firn.log" | tail -3)"
fi
all1=$(labels "$P1")
[ -n "$all1" ] && ! grep -q __meta <<<"$all1" && ok "no __meta_ label reaches firn" ||
    fail "pid $P1's series: $(head -c 400 <<<"$all1")"
other_seen() { [ -n "$(labels "$P3")" ]; }
if wait_for 60 other_seen; then
    got=$(labels "$P3" | jq -c '{namespace, pod, container, app, container_id}' | sort -u)
    [ "$(labels "$P3" | jq -r 'select(.namespace or .pod or .container or .app) | .pid')" = "" ] &&
        [ "$(labels "$P3" | jq -r '.container_id' | sort -u)" = "$CID3" ] &&
        ok "the process of the other node's pod: container_id from its cgroup, no pod names: $got" ||
        fail "the other node's pod's process got: $got"
else
    fail "no profile of pid $P3"
fi
check "the agent listed and watched pods with fieldSelector spec.nodeName=$NODE only" bash -c \
    "grep '/api/v1/pods' '$tmp/kubeapi.log' | grep -q 'fieldSelector=spec.nodeName%3D$NODE' &&
     ! grep '/api/v1/pods' '$tmp/kubeapi.log' | grep -v 'fieldSelector=spec.nodeName%3D$NODE' | grep -q ."
pods_gauge() {
    [ "$(curl_local "http://127.0.0.1:$AGENT_PORT/metrics" | awk '$1 == "firn_agent_kubernetes_pods" { print $2 }')" = "$1" ]
}
check "firn_agent_kubernetes_pods counts this node's one pod" pods_gauge 1

# a label changed on the pod reaches later profiles
ctl apply "{\"type\":\"MODIFIED\",\"object\":$(pod "$POD" "$NS" "$UID1" "$NODE" \
    '{"app":"checkout-v2","tier":"web"}' "$POD1_CONTAINERS" "$POD1_STATUSES")}" ||
    fail "the pod is modified"
relabeled() { labels "$P1" | jq -s -e 'any(.app == "checkout-v2" and .container == "worker")' >/dev/null; }
wait_for 60 relabeled && ok "the pod's new label app=checkout-v2 reaches its profiles" ||
    fail "app=checkout-v2 not seen: $(labels "$P1" | jq -c '{app}' | sort -u | tr '\n' ' ')"
# the pod deleted: the gauge follows
ctl apply "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"$POD\",\"namespace\":\"$NS\"}}}" ||
    fail "the pod is deleted"
wait_for 30 pods_gauge 0 && ok "the deleted pod is forgotten (firn_agent_kubernetes_pods 0)" ||
    fail "firn_agent_kubernetes_pods after the delete: $(curl_local "http://127.0.0.1:$AGENT_PORT/metrics" | grep kubernetes_pods)"
finish
