package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ---- helpers ---------------------------------------------------------------

// TestMain silences the request log (main logs every API request).
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

func startServer(t *testing.T, setup func(*server)) (*server, *httptest.Server) {
	t.Helper()
	s := newServer()
	if setup != nil {
		setup(s)
	}
	ts := httptest.NewServer(s.handler())
	t.Cleanup(func() { s.closeWatches(); ts.Close() })
	return s, ts
}

func pod(ns, name string, labels map[string]string, node string) map[string]any {
	l := map[string]any{}
	for k, v := range labels {
		l[k] = v
	}
	return map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": l},
		"spec":     map[string]any{"nodeName": node, "containers": []any{map[string]any{"name": "c"}}},
		"status":   map[string]any{"phase": "Running", "podIP": "10.0.0.1"},
	}
}

func ev(typ string, obj map[string]any) map[string]any {
	return map[string]any{"type": typ, "object": obj}
}

// apply posts events and returns the reply's resourceVersion.
func apply(t *testing.T, base string, events ...map[string]any) string {
	t.Helper()
	var body []byte
	if len(events) == 1 {
		body, _ = json.Marshal(events[0])
	} else {
		body, _ = json.Marshal(events)
	}
	code, out := do(t, "POST", base+"/_control/apply", body, nil)
	if code != 200 {
		t.Fatalf("apply: %d %v", code, out)
	}
	return out["resourceVersion"].(string)
}

func post(t *testing.T, url string) map[string]any {
	t.Helper()
	code, out := do(t, "POST", url, nil, nil)
	if code != 200 {
		t.Fatalf("POST %s: %d %v", url, code, out)
	}
	return out
}

// do sends a request and decodes a JSON object reply.
func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d, body not a JSON object: %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func get(t *testing.T, url string) (int, map[string]any) { return do(t, "GET", url, nil, nil) }

func itemNames(list map[string]any) []string {
	var names []string
	for _, it := range list["items"].([]any) {
		m := it.(map[string]any)
		if _, ok := m["kind"]; ok {
			panic("list item carries kind")
		}
		names = append(names, m["metadata"].(map[string]any)["name"].(string))
	}
	return names
}

func wantNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// stream is an open watch read line by line.
type stream struct {
	resp  *http.Response
	lines chan map[string]any
	done  chan error // the read error at the end (io.EOF = clean end)
}

func watch(t *testing.T, url string) *stream {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("watch %s: HTTP %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("watch Content-Type %q", ct)
	}
	st := &stream{resp: resp, lines: make(chan map[string]any, 100), done: make(chan error, 1)}
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				st.done <- err
				close(st.lines)
				return
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				st.done <- fmt.Errorf("bad line %q: %v", line, err)
				close(st.lines)
				return
			}
			st.lines <- m
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return st
}

// next returns the next event, failing after 5 s.
func (st *stream) next(t *testing.T) (typ, name, rv string, obj map[string]any) {
	t.Helper()
	select {
	case m, ok := <-st.lines:
		if !ok {
			t.Fatalf("watch ended: %v", <-st.done)
		}
		obj = m["object"].(map[string]any)
		meta, _ := obj["metadata"].(map[string]any)
		name, _ = meta["name"].(string)
		rv, _ = meta["resourceVersion"].(string)
		return m["type"].(string), name, rv, obj
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event within 5s")
	}
	return
}

func (st *stream) expect(t *testing.T, typ, name string) map[string]any {
	t.Helper()
	gotTyp, gotName, _, obj := st.next(t)
	if gotTyp != typ || gotName != name {
		t.Fatalf("event %s %q, want %s %q (%v)", gotTyp, gotName, typ, name, obj)
	}
	return obj
}

// end waits for the stream's end and returns the read error.
func (st *stream) end(t *testing.T) error {
	t.Helper()
	select {
	case m, ok := <-st.lines:
		if ok {
			t.Fatalf("unexpected event %v", m)
		}
		return <-st.done
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end within 5s")
	}
	return nil
}

func (st *stream) quiet(t *testing.T) {
	t.Helper()
	select {
	case m := <-st.lines:
		t.Fatalf("unexpected event %v", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func waitWatches(t *testing.T, base string, n int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		_, out := get(t, base+"/_control/watches")
		if int(out["open"].(float64)) == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("open watches never reached %d", n)
}

// ---- tests -----------------------------------------------------------------

func TestListAndGet(t *testing.T) {
	_, ts := startServer(t, nil)
	apply(t, ts.URL, ev("ADDED", pod("default", "b", nil, "n1")))
	rv := apply(t, ts.URL,
		ev("ADDED", pod("default", "a", nil, "n1")),
		ev("ADDED", pod("kube-system", "c", nil, "n2")),
		ev("ADDED", map[string]any{"kind": "Node", "metadata": map[string]any{"name": "n1"}}),
		ev("ADDED", map[string]any{"kind": "EndpointSlice", "metadata": map[string]any{"name": "s1", "namespace": "default"},
			"addressType": "IPv4", "endpoints": []any{}}))
	if rv != "5" {
		t.Fatalf("rv %s", rv)
	}
	code, list := get(t, ts.URL+"/api/v1/pods")
	if code != 200 || list["kind"] != "PodList" || list["apiVersion"] != "v1" {
		t.Fatalf("%d %v", code, list)
	}
	meta := list["metadata"].(map[string]any)
	if meta["resourceVersion"] != "5" || meta["continue"] != nil {
		t.Errorf("list metadata %v", meta)
	}
	wantNames(t, "all pods", itemNames(list), "a", "b", "c")
	item := list["items"].([]any)[0].(map[string]any)["metadata"].(map[string]any)
	if item["resourceVersion"] != "2" || item["uid"] == "" || item["namespace"] != "default" {
		t.Errorf("item metadata %v", item)
	}
	_, list = get(t, ts.URL+"/api/v1/namespaces/kube-system/pods")
	wantNames(t, "kube-system pods", itemNames(list), "c")
	_, list = get(t, ts.URL+"/api/v1/nodes")
	wantNames(t, "nodes", itemNames(list), "n1")
	_, list = get(t, ts.URL+"/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")
	if list["kind"] != "EndpointSliceList" || list["apiVersion"] != "discovery.k8s.io/v1" {
		t.Errorf("endpointslices %v", list)
	}
	wantNames(t, "endpointslices", itemNames(list), "s1")
	_, list = get(t, ts.URL+"/apis/networking.k8s.io/v1/ingresses")
	if list["kind"] != "IngressList" || len(list["items"].([]any)) != 0 {
		t.Errorf("ingresses %v", list)
	}

	code, obj := get(t, ts.URL+"/api/v1/namespaces/default/pods/a")
	if code != 200 || obj["kind"] != "Pod" || obj["apiVersion"] != "v1" {
		t.Errorf("get: %d %v", code, obj)
	}
	for _, p := range []string{"/api/v1/namespaces/default/pods/zz", "/api/v1/foo", "/apis/discovery.k8s.io/v1/pods",
		"/api/v1/namespaces/default/nodes", "/nope", "/api/v1/pods/a"} {
		code, st := get(t, ts.URL+p)
		if code != 404 || st["kind"] != "Status" || st["reason"] != "NotFound" || st["code"] != 404.0 {
			t.Errorf("%s: %d %v", p, code, st)
		}
	}
	// Control errors.
	for _, e := range []map[string]any{
		ev("ADDED", pod("default", "a", nil, "")),     // exists
		ev("MODIFIED", pod("default", "zz", nil, "")), // missing
		ev("ADDED", map[string]any{"kind": "Secret"}), // unknown kind
		ev("BOGUS", pod("default", "q", nil, "")),     // unknown type
	} {
		body, _ := json.Marshal(e)
		if code, _ := do(t, "POST", ts.URL+"/_control/apply", body, nil); code < 400 {
			t.Errorf("apply %v: %d", e, code)
		}
	}
}

func TestPagination(t *testing.T) {
	_, ts := startServer(t, nil)
	for _, n := range []string{"p1", "p2", "p3", "p4", "p5"} {
		apply(t, ts.URL, ev("ADDED", pod("default", n, nil, "")))
	}
	_, page := get(t, ts.URL+"/api/v1/pods?limit=2")
	wantNames(t, "page 1", itemNames(page), "p1", "p2")
	meta := page["metadata"].(map[string]any)
	cont, _ := meta["continue"].(string)
	if cont == "" || meta["remainingItemCount"] != 3.0 || meta["resourceVersion"] != "5" {
		t.Fatalf("page 1 metadata %v", meta)
	}
	// Changes after the first page do not show: pages are a snapshot.
	apply(t, ts.URL, ev("DELETED", pod("default", "p3", nil, "")), ev("ADDED", pod("default", "p6", nil, "")))
	_, page = get(t, ts.URL+"/api/v1/pods?limit=2&continue="+cont)
	wantNames(t, "page 2", itemNames(page), "p3", "p4")
	meta = page["metadata"].(map[string]any)
	if meta["resourceVersion"] != "5" {
		t.Errorf("page 2 metadata %v", meta)
	}
	cont2 := meta["continue"].(string)
	_, page = get(t, ts.URL+"/api/v1/pods?limit=2&continue="+cont2)
	wantNames(t, "page 3", itemNames(page), "p5")
	if page["metadata"].(map[string]any)["continue"] != nil {
		t.Errorf("last page has continue")
	}
	// resourceVersion with continue, garbage token, then compaction.
	if code, _ := get(t, ts.URL+"/api/v1/pods?limit=2&resourceVersion=3&continue="+cont); code != 400 {
		t.Errorf("rv+continue: %d", code)
	}
	if code, _ := get(t, ts.URL+"/api/v1/pods?limit=2&continue=garbage"); code != 400 {
		t.Errorf("garbage continue: %d", code)
	}
	post(t, ts.URL+"/_control/compact")
	code, st := get(t, ts.URL+"/api/v1/pods?limit=2&continue="+cont2)
	if code != 410 || st["reason"] != "Expired" || st["code"] != 410.0 {
		t.Errorf("expired continue: %d %v", code, st)
	}
	// Exact list of an old RV.
	code, st = get(t, ts.URL+"/api/v1/pods?resourceVersion=2&resourceVersionMatch=Exact")
	if code != 410 {
		t.Errorf("exact too old: %d %v", code, st)
	}
	rv := apply(t, ts.URL, ev("DELETED", pod("default", "p1", nil, "")))
	_, page = get(t, ts.URL+"/api/v1/pods?resourceVersion=7&resourceVersionMatch=Exact")
	wantNames(t, "exact rv 7", itemNames(page), "p1", "p2", "p4", "p5", "p6")
	_, page = get(t, ts.URL+"/api/v1/pods?resourceVersion=0")
	wantNames(t, "rv "+rv, itemNames(page), "p2", "p4", "p5", "p6")
	// A selector that matches nothing after the first page leaves an
	// empty last page.
	apply(t, ts.URL, ev("MODIFIED", pod("default", "p2", map[string]string{"x": "1"}, "")))
	_, page = get(t, ts.URL+"/api/v1/pods?limit=1&labelSelector=x")
	wantNames(t, "selector page 1", itemNames(page), "p2")
	meta = page["metadata"].(map[string]any)
	if meta["remainingItemCount"] != nil {
		t.Errorf("remainingItemCount with a selector: %v", meta)
	}
	_, page = get(t, ts.URL+"/api/v1/pods?limit=1&labelSelector=x&continue="+meta["continue"].(string))
	wantNames(t, "selector page 2", itemNames(page))
}

func TestSelectors(t *testing.T) {
	_, ts := startServer(t, nil)
	apply(t, ts.URL,
		ev("ADDED", pod("default", "a", map[string]string{"app": "web", "tier": "fe"}, "n1")),
		ev("ADDED", pod("default", "b", map[string]string{"app": "db"}, "n2")),
		ev("ADDED", pod("other", "c", map[string]string{"app": "web", "example.com/x": "1"}, "n1")),
		ev("ADDED", pod("other", "d", nil, "")))
	cases := []struct{ label, field, want string }{
		{"app=web", "", "a,c"},
		{"app==web", "", "a,c"},
		{"app!=web", "", "b,d"},
		{"app", "", "a,b,c"},
		{"!app", "", "d"},
		{"app=web,tier", "", "a"},
		{"app in (web, db)", "", "a,b,c"},
		{"app notin (web)", "", "b,d"},
		{"example.com/x=1", "", "c"},
		{"example.com/x>0", "", "c"},
		{"", "spec.nodeName=n1", "a,c"},
		{"", "spec.nodeName==n1,metadata.namespace=other", "c"},
		{"", "spec.nodeName!=n1", "b,d"},
		{"", "spec.nodeName=", "d"},
		{"", "metadata.name=b", "b"},
		{"", "status.phase=Running", "a,b,c,d"},
		{"app=web", "metadata.namespace!=default", "c"},
	}
	for _, c := range cases {
		u := ts.URL + "/api/v1/pods?labelSelector=" + urlq(c.label) + "&fieldSelector=" + urlq(c.field)
		code, list := get(t, u)
		if code != 200 {
			t.Errorf("%q/%q: %d %v", c.label, c.field, code, list)
			continue
		}
		wantNames(t, c.label+" / "+c.field, itemNames(list), strings.Split(c.want, ",")...)
	}
	for _, bad := range []string{"labelSelector=app%3D%3D%3D", "labelSelector=app+in+web", "labelSelector=a%2C",
		"labelSelector=-bad-=x", "labelSelector=a+in+()", "fieldSelector=spec.foo%3Dx", "fieldSelector=nodename",
		"fieldSelector=metadata.name%3Da%5Cq"} {
		code, st := get(t, ts.URL+"/api/v1/pods?"+bad)
		if code != 400 || st["reason"] != "BadRequest" {
			t.Errorf("%s: %d %v", bad, code, st)
		}
	}
	// Cluster-scoped: no metadata.namespace; nodes know spec.unschedulable.
	apply(t, ts.URL, ev("ADDED", map[string]any{"kind": "Node", "metadata": map[string]any{"name": "n1"}}))
	if code, _ := get(t, ts.URL+"/api/v1/nodes?fieldSelector=metadata.namespace%3Dx"); code != 400 {
		t.Errorf("node namespace field: %d", code)
	}
	_, list := get(t, ts.URL+"/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse")
	wantNames(t, "schedulable nodes", itemNames(list), "n1")
}

func urlq(s string) string {
	r := strings.NewReplacer(" ", "+", "=", "%3D", ",", "%2C", "!", "%21", "(", "%28", ")", "%29", "/", "%2F", ">", "%3E")
	return r.Replace(s)
}

func TestParseLabelSelector(t *testing.T) {
	good := map[string]string{
		"":                       "",
		"a=b":                    "a = [b]",
		"a==b, c!=d":             "a = [b];c != [d]",
		"a=":                     "a = []",
		"a,!b":                   "a exists [];b ! []",
		"x in (a,b),y notin (c)": "x in [a b];y notin [c]",
		"k8s.io/app=v":           "k8s.io/app = [v]",
	}
	for in, want := range good {
		sel, err := parseLabelSelector(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		var parts []string
		for _, r := range sel {
			vals := fmt.Sprint(r.values)
			if r.values == nil || (len(r.values) == 1 && r.values[0] == "") {
				vals = "[]"
			}
			parts = append(parts, r.key+" "+r.op+" "+vals)
		}
		if got := strings.Join(parts, ";"); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"a=b,", ",", "a in (b", "a in b", "!", "a=b=c", "a < x", "Bad_/x=1", "a=(b)"} {
		if _, err := parseLabelSelector(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestWatchInitialAndLive(t *testing.T) {
	_, ts := startServer(t, nil)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", nil, "")), ev("ADDED", pod("other", "b", nil, "")))
	all := watch(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=0")
	def := watch(t, ts.URL+"/api/v1/namespaces/default/pods?watch=1")
	nodes := watch(t, ts.URL+"/api/v1/nodes?watch=true&resourceVersion=0")
	obj := all.expect(t, "ADDED", "a")
	if obj["kind"] != "Pod" || obj["apiVersion"] != "v1" {
		t.Errorf("watch object without kind/apiVersion: %v", obj)
	}
	all.expect(t, "ADDED", "b")
	def.expect(t, "ADDED", "a")
	waitWatches(t, ts.URL, 3)
	_, out := get(t, ts.URL+"/_control/watches")
	by := out["by_resource"].(map[string]any)
	if by["pods"] != 2.0 || by["nodes"] != 1.0 || by["ingresses"] != 0.0 {
		t.Errorf("watches %v", out)
	}

	p := pod("other", "b", nil, "")
	delete(p["metadata"].(map[string]any), "uid")
	apply(t, ts.URL, ev("MODIFIED", p), ev("DELETED", map[string]any{"kind": "Pod", "metadata": map[string]any{"name": "a", "namespace": "default"}}))
	_, _, rv, obj := all.next(t)
	if rv != "3" || obj["metadata"].(map[string]any)["uid"] == nil {
		t.Errorf("MODIFIED %s %v", rv, obj)
	}
	typ, name, rv, obj := all.next(t)
	if typ != "DELETED" || name != "a" || rv != "4" || obj["spec"] == nil {
		t.Errorf("DELETED: %s %s %s %v", typ, name, rv, obj)
	}
	def.expect(t, "DELETED", "a")
	def.quiet(t)
	nodes.quiet(t)
	apply(t, ts.URL, ev("ADDED", map[string]any{"kind": "Node", "metadata": map[string]any{"name": "n1"}}))
	if obj := nodes.expect(t, "ADDED", "n1"); obj["metadata"].(map[string]any)["namespace"] != nil {
		t.Errorf("node has a namespace: %v", obj)
	}
}

func TestWatchReplay(t *testing.T) {
	_, ts := startServer(t, nil)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", nil, "")))
	_, list := get(t, ts.URL+"/api/v1/pods")
	listRV := list["metadata"].(map[string]any)["resourceVersion"].(string)
	apply(t, ts.URL, ev("ADDED", pod("default", "b", nil, "")), ev("MODIFIED", pod("default", "a", nil, "x")))
	apply(t, ts.URL, ev("ADDED", map[string]any{"kind": "Service", "metadata": map[string]any{"name": "svc"}}))
	st := watch(t, ts.URL+"/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion="+listRV+"&timeoutSeconds=30")
	st.expect(t, "ADDED", "b")
	st.expect(t, "MODIFIED", "a")
	st.quiet(t)
	apply(t, ts.URL, ev("DELETED", pod("default", "b", nil, "")))
	if typ, name, rv, _ := st.next(t); typ != "DELETED" || name != "b" || rv != "5" {
		t.Errorf("live: %s %s %s", typ, name, rv)
	}
	// Watching from the current RV replays nothing.
	st2 := watch(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=5")
	st2.quiet(t)
	// A non-numeric RV is a bad request.
	if code, _ := get(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=abc"); code != 400 {
		t.Errorf("bad rv: %d", code)
	}
}

func TestWatchSelectorTransitions(t *testing.T) {
	_, ts := startServer(t, nil)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", map[string]string{"app": "web"}, "")))
	st := watch(t, ts.URL+"/api/v1/pods?watch=true&labelSelector=app%3Dweb")
	st.expect(t, "ADDED", "a")
	apply(t, ts.URL, ev("MODIFIED", pod("default", "a", map[string]string{"app": "db"}, "")))
	obj := st.expect(t, "DELETED", "a")
	meta := obj["metadata"].(map[string]any)
	if meta["labels"].(map[string]any)["app"] != "web" || meta["resourceVersion"] != "2" {
		t.Errorf("DELETED carries %v, want the previous state at RV 2", meta)
	}
	apply(t, ts.URL, ev("MODIFIED", pod("default", "a", map[string]string{"app": "db", "x": "y"}, "")))
	st.quiet(t)
	apply(t, ts.URL, ev("MODIFIED", pod("default", "a", map[string]string{"app": "web"}, "")))
	st.expect(t, "ADDED", "a")
	apply(t, ts.URL, ev("MODIFIED", pod("default", "a", map[string]string{"app": "web", "v": "2"}, "")))
	st.expect(t, "MODIFIED", "a")
	// Field selector on node name.
	fs := watch(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=5&fieldSelector=spec.nodeName%3Dn1")
	apply(t, ts.URL, ev("ADDED", pod("default", "b", nil, "n2")), ev("ADDED", pod("default", "c", nil, "n1")))
	fs.expect(t, "ADDED", "c")
}

func TestBookmarks(t *testing.T) {
	_, ts := startServer(t, nil)
	with := watch(t, ts.URL+"/api/v1/pods?watch=true&allowWatchBookmarks=true")
	without := watch(t, ts.URL+"/api/v1/pods?watch=true")
	eps := watch(t, ts.URL+"/api/v1/endpoints?watch=true&allowWatchBookmarks=true")
	waitWatches(t, ts.URL, 3)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", nil, "")))
	post(t, ts.URL+"/_control/bookmark")
	with.expect(t, "ADDED", "a")
	typ, _, rv, obj := with.next(t)
	if typ != "BOOKMARK" || rv != "1" || obj["kind"] != "Pod" || obj["apiVersion"] != "v1" || len(obj) != 3 ||
		len(obj["metadata"].(map[string]any)) != 1 {
		t.Errorf("bookmark %s %v", typ, obj)
	}
	if typ, _, _, obj := eps.next(t); typ != "BOOKMARK" || obj["kind"] != "Endpoints" {
		t.Errorf("endpoints bookmark %s %v", typ, obj)
	}
	without.expect(t, "ADDED", "a")
	without.quiet(t)

	// sendInitialEvents: initial state, then the annotated bookmark.
	if code, _ := get(t, ts.URL+"/api/v1/pods?watch=true&sendInitialEvents=true"); code != 400 {
		t.Errorf("sendInitialEvents without resourceVersionMatch: %d", code)
	}
	si := watch(t, ts.URL+"/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
	si.expect(t, "ADDED", "a")
	typ, _, rv, obj = si.next(t)
	ann, _ := obj["metadata"].(map[string]any)["annotations"].(map[string]any)
	if typ != "BOOKMARK" || rv != "1" || ann["k8s.io/initial-events-end"] != "true" {
		t.Errorf("initial-events-end bookmark %s %v", typ, obj)
	}
}

func TestTooOldStatus(t *testing.T) {
	_, ts := startServer(t, nil)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", nil, "")), ev("ADDED", pod("default", "b", nil, "")))
	post(t, ts.URL+"/_control/compact")
	apply(t, ts.URL, ev("ADDED", pod("default", "c", nil, "")))
	code, st := get(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=1")
	if code != 410 || st["kind"] != "Status" || st["status"] != "Failure" || st["reason"] != "Expired" ||
		st["code"] != 410.0 || st["message"] != "too old resource version: 1 (2)" {
		t.Errorf("too old: %d %v", code, st)
	}
	// The compaction point itself and "0" are fine.
	s := watch(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=2")
	s.expect(t, "ADDED", "c")
	s = watch(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=0")
	s.expect(t, "ADDED", "a")
}

func TestTooOldEvent(t *testing.T) {
	_, ts := startServer(t, nil)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", nil, "")), ev("ADDED", pod("default", "b", nil, "")))
	post(t, ts.URL+"/_control/compact?mode=event")
	st := watch(t, ts.URL+"/api/v1/pods?watch=true&resourceVersion=1")
	typ, _, _, obj := st.next(t)
	if typ != "ERROR" || obj["kind"] != "Status" || obj["reason"] != "Expired" || obj["code"] != 410.0 ||
		obj["message"] != "too old resource version: 1 (2)" {
		t.Errorf("ERROR event %s %v", typ, obj)
	}
	if err := st.end(t); err != io.EOF {
		t.Errorf("stream end: %v", err)
	}
	waitWatches(t, ts.URL, 0)
}

func TestExpire(t *testing.T) {
	_, ts := startServer(t, nil)
	a := watch(t, ts.URL+"/api/v1/pods?watch=true")
	b := watch(t, ts.URL+"/api/v1/nodes?watch=true")
	waitWatches(t, ts.URL, 2)
	if out := post(t, ts.URL+"/_control/expire"); out["watches"] != 2.0 {
		t.Errorf("expire %v", out)
	}
	for _, st := range []*stream{a, b} {
		typ, _, _, obj := st.next(t)
		if typ != "ERROR" || obj["code"] != 410.0 || obj["reason"] != "Expired" {
			t.Errorf("%s %v", typ, obj)
		}
		if err := st.end(t); err != io.EOF {
			t.Errorf("end: %v", err)
		}
	}
	waitWatches(t, ts.URL, 0)
}

func TestTimeout(t *testing.T) {
	_, ts := startServer(t, nil)
	start := time.Now()
	st := watch(t, ts.URL+"/api/v1/pods?watch=true&timeoutSeconds=1")
	if err := st.end(t); err != io.EOF {
		t.Errorf("end: %v", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("timeoutSeconds=1 ended after %v", d)
	}
}

func TestDrop(t *testing.T) {
	_, ts := startServer(t, nil)
	st := watch(t, ts.URL+"/api/v1/pods?watch=true")
	waitWatches(t, ts.URL, 1)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", nil, "")))
	st.expect(t, "ADDED", "a")
	post(t, ts.URL+"/_control/drop")
	if err := st.end(t); err == io.EOF || err == nil {
		t.Errorf("dropped watch ended cleanly: %v", err)
	}
	waitWatches(t, ts.URL, 0)

	// On the wire: no terminating chunk, just a closed connection.
	raw := rawWatch(t, ts.Listener.Addr().String(), "/api/v1/pods?watch=true")
	waitWatches(t, ts.URL, 1)
	post(t, ts.URL+"/_control/drop")
	data, _ := io.ReadAll(raw)
	if !bytes.Contains(data, []byte("Transfer-Encoding: chunked")) || bytes.HasSuffix(data, []byte("0\r\n\r\n")) {
		t.Errorf("raw dropped response %q", data)
	}
}

// rawWatch sends a GET on a plain connection and returns it.
func rawWatch(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n", path)
	return c
}

func TestChunks(t *testing.T) {
	_, ts := startServer(t, nil)
	post(t, ts.URL+"/_control/chunks?size=7")
	c := rawWatch(t, ts.Listener.Addr().String(), "/api/v1/pods?watch=true&timeoutSeconds=1")
	waitWatches(t, ts.URL, 1)
	apply(t, ts.URL, ev("ADDED", pod("default", "a", nil, "")), ev("ADDED", pod("default", "b", nil, "")))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp
	// http.ReadResponse would de-chunk the body; read the raw chunks from
	// the same reader instead.
	var body []byte
	chunks := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("chunk header: %v (body so far %q)", err, body)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			t.Fatalf("chunk size %q", line)
		}
		if n == 0 {
			break
		}
		if n > 7 {
			t.Errorf("chunk of %d bytes", n)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		body = append(body, buf[:n]...)
		chunks++
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 2 || chunks < 20 {
		t.Errorf("%d chunks, lines %q", chunks, lines)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("bad line %q", l)
		}
	}
}

func TestFailAndRequests(t *testing.T) {
	_, ts := startServer(t, nil)
	post(t, ts.URL+"/_control/fail?count=2&status=503")
	for i := 0; i < 2; i++ {
		code, st := get(t, ts.URL+"/api/v1/pods")
		if code != 503 || st["kind"] != "Status" || st["reason"] != "ServiceUnavailable" || st["code"] != 503.0 {
			t.Errorf("fail %d: %d %v", i, code, st)
		}
	}
	if code, _ := get(t, ts.URL+"/api/v1/pods"); code != 200 {
		t.Errorf("after failures: %d", code)
	}
	// Only watches.
	post(t, ts.URL+"/_control/fail?count=1&status=429&only=watch")
	if code, _ := get(t, ts.URL+"/api/v1/pods"); code != 200 {
		t.Errorf("list with watch-only failure: %d", code)
	}
	resp, err := http.Get(ts.URL + "/api/v1/pods?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("watch failure: %d %v", resp.StatusCode, resp.Header)
	}

	var reqs []requestRecord
	readReqs := func() {
		resp, err := http.Get(ts.URL + "/_control/requests")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		reqs = nil
		if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil {
			t.Fatal(err)
		}
	}
	readReqs()
	if len(reqs) != 5 || reqs[4].Path != "/api/v1/pods" || !reqs[4].Watch || reqs[4].Query != "watch=true" ||
		reqs[0].Watch || reqs[0].Method != "GET" || reqs[0].Time == "" {
		t.Errorf("requests %+v", reqs)
	}
	post(t, ts.URL+"/_control/requests/reset")
	do(t, "GET", ts.URL+"/api/v1/nodes?limit=5", nil, map[string]string{"Authorization": "Bearer xyz"})
	readReqs()
	if len(reqs) != 1 || reqs[0].Authorization != "Bearer xyz" || reqs[0].Query != "limit=5" {
		t.Errorf("requests after reset %+v", reqs)
	}
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("one\n"), 0o600)
	_, ts := startServer(t, func(s *server) {
		s.token, s.tokenFile = "static", tokenFile
		s.basicUser, s.basicPass, s.basicSet = "u", "p", true
	})
	try := func(hdr map[string]string) int {
		code, st := do(t, "GET", ts.URL+"/api/v1/pods", nil, hdr)
		if code == 401 && (st["reason"] != "Unauthorized" || st["code"] != 401.0 || st["kind"] != "Status") {
			t.Errorf("401 body %v", st)
		}
		return code
	}
	cases := []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer static", 200},
		{"bearer static", 200},
		{"Bearer one", 200},
		{"Bearer two", 401},
		{"Basic dTpw", 200}, // u:p
		{"Basic dTpx", 401}, // u:q
	}
	for _, c := range cases {
		hdr := map[string]string{}
		if c.auth != "" {
			hdr["Authorization"] = c.auth
		}
		if got := try(hdr); got != c.want {
			t.Errorf("%q: %d, want %d", c.auth, got, c.want)
		}
	}
	// Rotation: the file is re-read on every request.
	os.WriteFile(tokenFile, []byte("two"), 0o600)
	if try(map[string]string{"Authorization": "Bearer two"}) != 200 || try(map[string]string{"Authorization": "Bearer one"}) != 401 {
		t.Errorf("token rotation not seen")
	}
	// Unknown paths need auth too; /healthz and control do not.
	if code, _ := get(t, ts.URL+"/nope"); code != 401 {
		t.Errorf("unauthenticated unknown path: %d", code)
	}
	if resp, err := http.Get(ts.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", err, resp)
	}
	if code, _ := get(t, ts.URL+"/_control/watches"); code != 200 {
		t.Errorf("control: %d", code)
	}
}

// TestClientCertAndHTTP2 runs the server on TLS with a client CA, as main
// sets it up, over HTTP/2.
func TestClientCertAndHTTP2(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	cliKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cliTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "firn"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	cliDER, _ := x509.CreateCertificate(rand.Reader, cliTmpl, caCert, &cliKey.PublicKey, caKey)

	s := newServer()
	s.clientCA = true
	ts := httptest.NewUnstartedServer(s.handler())
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	ts.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(func() { s.closeWatches(); ts.Close() })

	noCert := ts.Client()
	withCert := ts.Client()
	tr := withCert.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}}
	withCert = &http.Client{Transport: tr}

	resp, err := noCert.Get(ts.URL + "/api/v1/pods")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no client cert: %d", resp.StatusCode)
	}
	resp, err = withCert.Get(ts.URL + "/api/v1/pods?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("with client cert: %d %s", resp.StatusCode, resp.Proto)
	}
	// Drop over HTTP/2 resets the stream: the body read fails.
	for i := 0; i < 500 && func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.watchers) == 0 }(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	resp2, err := noCert.Post(ts.URL+"/_control/drop", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	_, err = io.ReadAll(resp.Body)
	if err == nil || errors.Is(err, io.EOF) {
		t.Errorf("HTTP/2 drop: body read error %v", err)
	}
}
