#!/bin/bash
# disc_dns.sh PROBE -- dns_sd_configs against a real DNS server: dnsmasq on
# a loopback port serves SRV, A, AAAA, MX and NS records; disc_dns_probe runs
# one provider per record type against it (1 s refresh) and prints every
# update as a JSON line.  Checks the groups and Prometheus's __meta_dns_*
# labels, a record change, NXDOMAIN emptying a group, and two outages
# (server stopped: connection refused; server frozen: timeout) keeping
# the old targets while refreshes report failure.
set -uo pipefail
probe=$1
. "$(dirname "$0")/lib.sh"
e2e_workspace

dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
if [[ ! -x $dnsmasq ]]; then
    fail "dnsmasq is not installed (scripts/deps test)"
    finish
    exit
fi

# start_probe NAME TYPE PORT NAME...: a provider against the dnsmasq.
start_probe() {
    local name=$1
    shift
    firn_log "$tmp/$name.err"
    "$probe" "127.0.0.1:$DNS_PORT" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    eval "PROBE_$name=$!"
    track_pid "$!"
}

# The groups of the last update of probe NAME from line FROM on, one a
# line, sorted, targets sorted by address: {"source":...,"targets":[...]}.
last_groups() {
    tail -n +"${2:-1}" "$tmp/$1.out" | grep '"event":"send"' | tail -1 |
        jq -cS '.groups | map(.targets |= sort_by(.__address__)) | sort_by(.source) | .[]'
}
# refreshes NAME OK FROM: refreshed(OK) lines of probe NAME from line FROM on.
refreshes() {
    tail -n +"$3" "$tmp/$1.out" | grep -c "\"event\":\"refreshed\",\"ok\":$2"
}
has_refreshes() { (($(refreshes "$@") >= ${4:-1})); }
lines() { wc -l <"$tmp/$1.out"; }
group_is() { [[ $(last_groups "$1" "$2" | grep -F "\"source\":\"$3\"") == "$4" ]]; }

# srv TARGET PORT: the labels of an SRV target of _prom._tcp.example.test.
srv() {
    printf '{"__address__":"%s:%s","__meta_dns_name":"%s","__meta_dns_srv_record_port":"%s","__meta_dns_srv_record_target":"%s."}' \
        "$1" "$2" "${3:-_prom._tcp.example.test}" "$2" "$1"
}

# ---- version 1 of the records --------------------------------------------------
v1=(--srv-host=_prom._tcp.example.test,web1.example.test,9100,0,10
    --srv-host=_prom._tcp.example.test,web2.example.test,9200,0,20
    --srv-host=_gone._tcp.example.test,web3.example.test,9300
    --host-record=web1.example.test,127.0.0.1,::1
    --host-record=web2.example.test,127.0.0.2
    --mx-host=example.test,mail.example.test,10
    --auth-server=ns1.example.test,127.0.0.1 --auth-zone=test --auth-sec-servers=ns2.other.test)
if start_dnsmasq dns1 "${v1[@]}"; then
    ok "dnsmasq serving on 127.0.0.1:$DNS_PORT"
else
    fail "dnsmasq did not start: $(tail -3 "$tmp/dns1.log" | tr '\n' ' ')"
    finish
    exit
fi

start_probe srv SRV 0 1000 _prom._tcp.example.test _gone._tcp.example.test _missing._tcp.example.test
start_probe a A 9100 1000 web1.example.test web2.example.test.
start_probe aaaa AAAA 9100 1000 web1.example.test
start_probe mx MX 9100 1000 example.test
start_probe ns NS 53 1000 test
for p in srv a aaaa mx ns; do
    wait_for 20 has_refreshes "$p" true 1 || fail "$p: no successful refresh: $(tail -3 "$tmp/$p.err")"
done

same "SRV: two records with their labels; NXDOMAIN name is an empty group" "$(last_groups srv)" \
    "$(printf '%s\n' \
        "{\"source\":\"_gone._tcp.example.test\",\"targets\":[$(srv web3.example.test 9300 _gone._tcp.example.test)]}" \
        '{"source":"_missing._tcp.example.test","targets":[]}' \
        "{\"source\":\"_prom._tcp.example.test\",\"targets\":[$(srv web1.example.test 9100),$(srv web2.example.test 9200)]}")"
same "A: ip:port per name; __meta_dns_name as written (rooted)" "$(last_groups a)" "$(printf '%s\n' \
    '{"source":"web1.example.test","targets":[{"__address__":"127.0.0.1:9100","__meta_dns_name":"web1.example.test"}]}' \
    '{"source":"web2.example.test.","targets":[{"__address__":"127.0.0.2:9100","__meta_dns_name":"web2.example.test."}]}')"
same "AAAA: [ip6]:port" "$(last_groups aaaa)" \
    '{"source":"web1.example.test","targets":[{"__address__":"[::1]:9100","__meta_dns_name":"web1.example.test"}]}'
same "MX: host:port with __meta_dns_mx_record_target" "$(last_groups mx)" \
    '{"source":"example.test","targets":[{"__address__":"mail.example.test:9100","__meta_dns_mx_record_target":"mail.example.test.","__meta_dns_name":"example.test"}]}'
same "NS: host:port with __meta_dns_ns_record_target" "$(last_groups ns)" \
    '{"source":"test","targets":[{"__address__":"ns1.example.test:53","__meta_dns_name":"test","__meta_dns_ns_record_target":"ns1.example.test."},{"__address__":"ns2.other.test:53","__meta_dns_name":"test","__meta_dns_ns_record_target":"ns2.other.test."}]}'
same "no failed refresh while the server is up" "$(refreshes srv false 1)$(refreshes a false 1)" "00"

# ---- outage: server stopped (connection refused) -------------------------------
stop_pid "$DNS_PID"
from_srv=$(($(lines srv) + 1))
from_a=$(($(lines a) + 1))
if wait_for 20 has_refreshes srv false "$from_srv" 2 && wait_for 20 has_refreshes a false "$from_a" 2; then
    ok "server stopped: refreshes report failure"
else
    fail "server stopped: no failed refreshes: $(tail -2 "$tmp/srv.out")"
fi
# A refresh that was answered just before the stop may still land; after
# the first failure nothing may be sent.
after_failure() { tail -n +"$2" "$tmp/$1.out" | sed -n '/"ok":false/,$p' | grep -c '"event":"send"'; }
same "server stopped: nothing sent, the old targets stay" "$(after_failure srv "$from_srv") $(after_failure a "$from_a")" "0 0"

# ---- version 2: a record change and a removed name -----------------------------
v2=(--srv-host=_prom._tcp.example.test,web1.example.test,9101,0,10
    --srv-host=_prom._tcp.example.test,web4.example.test,9400,0,20
    --host-record=web1.example.test,127.0.0.3,::1
    --host-record=web2.example.test,127.0.0.2
    --mx-host=example.test,mail.example.test,10
    --auth-server=ns1.example.test,127.0.0.1 --auth-zone=test --auth-sec-servers=ns2.other.test)
start_dnsmasq dns2 "${v2[@]}" || fail "dnsmasq did not restart on port $DNS_PORT: $(tail -3 "$tmp/dns2.log")"
from_srv=$(($(lines srv) + 1))
from_a=$(($(lines a) + 1))
want_srv=$(printf '%s\n' \
    '{"source":"_gone._tcp.example.test","targets":[]}' \
    '{"source":"_missing._tcp.example.test","targets":[]}' \
    "{\"source\":\"_prom._tcp.example.test\",\"targets\":[$(srv web1.example.test 9101),$(srv web4.example.test 9400)]}")
srv_is() { [[ $(last_groups srv "$from_srv") == "$want_srv" ]]; }
wait_for 20 srv_is
same "records changed: new SRV targets at the next refresh; removed name (NXDOMAIN) emptied" \
    "$(last_groups srv "$from_srv")" "$want_srv"
want_a='{"source":"web1.example.test","targets":[{"__address__":"127.0.0.3:9100","__meta_dns_name":"web1.example.test"}]}'
wait_for 20 group_is a "$from_a" web1.example.test "$want_a"
same "records changed: new A address" \
    "$(last_groups a "$from_a" | grep -F '"source":"web1.example.test"')" "$want_a"
wait_for 20 has_refreshes srv true "$from_srv" && ok "server back: refreshes succeed again" ||
    fail "server back: no successful refresh"

# ---- outage: server frozen (queries time out) -----------------------------------
kill -STOP "$DNS_PID"
from_a=$(($(lines a) + 1))
if wait_for 30 has_refreshes a false "$from_a"; then
    ok "server frozen: a timed-out refresh reports failure"
else
    fail "server frozen: no failed refresh"
fi
same "server frozen: nothing sent" "$(after_failure a "$from_a")" "0"

# Stop a provider while its query is waiting for the frozen server: the
# stop wakes it at once instead of waiting for the DNS timeout (2 s a try,
# more than one try).  The bound, half a try, leaves room for a loaded
# machine and still catches a stop that waits for the timeout.
from_srv=$(($(lines srv) + 1))
stop_pid "$PROBE_srv"
stop_ms=$(tail -n +"$from_srv" "$tmp/srv.out" | jq -r 'select(.event == "stopped") | .stop_ms')
if [[ -n $stop_ms ]] && ((stop_ms < 1000)); then
    ok "stop during a pending query returns promptly (${stop_ms} ms)"
else
    fail "stop during a pending query: stop_ms='$stop_ms'"
fi
kill -CONT "$DNS_PID"

for p in a aaaa mx ns; do
    pid_var=PROBE_$p
    stop_pid "${!pid_var}"
done
same "every probe stopped cleanly" "$(cat "$tmp"/{a,aaaa,mx,ns}.out | grep -c '"event":"stopped"')" "4"
errors=$(grep -hE 'level=error|Sanitizer|runtime error' "$tmp"/*.err)
same "no error logged (nor a sanitizer report)" "$errors" ""
finish
