// Command kubeapi is a loopback fake Kubernetes API server for firn's
// Kubernetes service discovery tests.  It speaks the JSON list+watch
// protocol of a real kube-apiserver (see PROMETHEUS.md §3.4.1) for a fixed
// set of resources, keeps its objects in memory, and is driven by the tests
// through a small control API.  Standard library only.
//
// # Flags
//
//	-addr HOST:PORT      listen address (default 127.0.0.1:0: a free port)
//	-addr-file FILE      write the actual listen address ("127.0.0.1:PORT\n")
//	                     to FILE once the port accepts connections
//	-token T             accept "Authorization: Bearer T"
//	-token-file F        accept the bearer token held in F (trimmed), re-read
//	                     on every request so a test can rotate it
//	-basic-auth U:P      accept HTTP basic auth with user U, password P
//	-tls-cert, -tls-key  serve HTTPS (HTTP/2 offered through ALPN, as the
//	                     real server does) with this PEM certificate and key
//	-client-ca F         verify client certificates against the PEM CAs in F;
//	                     a verified client certificate authenticates
//	-no-http2            with TLS, offer HTTP/1.1 only
//
// Authentication follows the real server: when no method is configured
// every request is allowed; otherwise a request passes when any configured
// method accepts it (a bearer token is matched case-insensitively on the
// "Bearer" word), and is otherwise answered 401 with an Unauthorized
// Status.  A client certificate is asked for but not required by the TLS
// handshake, so /healthz and /_control/ stay reachable without one.
//
// # API
//
// GET only.  Resources: /api/v1/{pods,services,endpoints,nodes,namespaces},
// /apis/discovery.k8s.io/v1/endpointslices and
// /apis/networking.k8s.io/v1/ingresses; the namespaced ones also as
// .../namespaces/{ns}/{resource}; a single object as .../{resource}/{name}.
// Lists support limit, continue, labelSelector (=, ==, !=, in, notin,
// exists, !exists, <, >), fieldSelector (=, ==, !=; metadata.name, for
// namespaced resources metadata.namespace, and the per-resource fields in
// the resources table), resourceVersion and resourceVersionMatch
// (NotOlderThan, Exact).  Pages are consistent snapshots: a continue token
// lists the state at the first page's resourceVersion; once a compaction
// passes that version it is answered 410 Expired (an undecodable token is
// 400, as on a real server).  watch=true|1 streams events; see watch().
// Also /healthz, /livez, /readyz ("ok", no auth) and /version.
//
// # Control API (no authentication; not recorded; never failed)
//
//	POST /_control/apply      body {"type":"ADDED"|"MODIFIED"|"DELETED","object":{...}}
//	                          or a JSON array of those, applied in order, each
//	                          taking the next resourceVersion.  The object's kind
//	                          (Pod, Service, Endpoints, Node, Namespace,
//	                          EndpointSlice, Ingress) picks the resource and
//	                          metadata.namespace (default "default" for namespaced
//	                          kinds) + metadata.name the object.  ADDED of an
//	                          existing object is 409, MODIFIED or DELETED of a
//	                          missing one 404 (earlier array items stay applied).
//	                          ADDED sets metadata.uid when missing; MODIFIED keeps
//	                          the stored uid when missing; DELETED sends the stored
//	                          last state (the body only names the object).  Replies
//	                          {"resourceVersion":"N"} (N of the last event).
//	POST /_control/bookmark   a BOOKMARK with the current RV to every open watch
//	                          that asked for allowWatchBookmarks.
//	POST /_control/compact?mode=status|event
//	                          forget the event history up to the current RV; a
//	                          later watch from an older RV (other than "0"/"") gets
//	                          HTTP 410 with an Expired Status (mode=status, the
//	                          default) or HTTP 200 and one ERROR event carrying it
//	                          (mode=event).  Older continue tokens expire too.
//	POST /_control/expire     send every open watch an ERROR event (410 Expired
//	                          Status) and end it cleanly.
//	POST /_control/drop       close every open watch connection abruptly: no
//	                          final chunk (HTTP/1: hijack + close the TCP
//	                          connection; HTTP/2: reset the stream).
//	POST /_control/fail?count=N&status=CODE[&only=list|watch|get]
//	                          the next N API requests (optionally only watches,
//	                          only lists, or only single-object GETs) are answered
//	                          CODE (default 500) with a Status body; 429 also gets
//	                          "Retry-After: 1".  count=0 cancels.
//	POST /_control/chunks?size=N
//	                          from now on split every watch write into pieces of
//	                          at most N bytes, each flushed as its own chunk, so
//	                          lines straddle chunks; 0 (default) restores the
//	                          normal behaviour: events are flushed whenever no
//	                          more are pending, as the real server does, so events
//	                          queued together (an apply array) share a chunk.
//	GET  /_control/watches    {"open":N,"by_resource":{"pods":n,...}} (every
//	                          resource listed, 0 included).
//	GET  /_control/requests   JSON array of API requests so far (everything but
//	                          /_control/ and /healthz|livez|readyz), oldest first:
//	                          {"method","path","query" (raw),"authorization",
//	                          "accept","watch":bool,"time" (RFC 3339, ns)}.
//	POST /_control/requests/reset  clear that list.
//
// Control answers are JSON ({"error":"..."} with 4xx on bad input).
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ---- resources -------------------------------------------------------------

// resource describes one served resource type.
type resource struct {
	name       string   // plural, as in URLs: "pods"
	kind       string   // "Pod"
	group      string   // "" for the core group
	namespaced bool     // lives in namespaces
	fields     []string // field selector labels beyond metadata.name/namespace
}

const version = "v1" // every resource here is served at v1

func (r *resource) apiVersion() string {
	if r.group == "" {
		return version
	}
	return r.group + "/" + version
}

var resources = []*resource{
	{name: "pods", kind: "Pod", namespaced: true, fields: []string{
		"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
		"spec.serviceAccountName", "spec.hostNetwork", "status.phase",
		"status.podIP", "status.nominatedNodeName"}},
	{name: "services", kind: "Service", namespaced: true},
	{name: "endpoints", kind: "Endpoints", namespaced: true},
	{name: "nodes", kind: "Node", fields: []string{"spec.unschedulable"}},
	{name: "namespaces", kind: "Namespace", fields: []string{"status.phase"}},
	{name: "endpointslices", kind: "EndpointSlice", group: "discovery.k8s.io", namespaced: true},
	{name: "ingresses", kind: "Ingress", group: "networking.k8s.io", namespaced: true},
}

// boolFields are field labels whose value is a Go bool on the real server,
// so an absent field reads "false".
var boolFields = map[string]bool{"spec.unschedulable": true, "spec.hostNetwork": true}

func resourceByKind(kind string) *resource {
	for _, r := range resources {
		if r.kind == kind {
			return r
		}
	}
	return nil
}

func resourceByPath(group, name string) *resource {
	for _, r := range resources {
		if r.group == group && r.name == name {
			return r
		}
	}
	return nil
}

// ---- objects ---------------------------------------------------------------

// object is a decoded JSON object (numbers kept as json.Number).  Stored
// objects are never modified in place: changes make a copy (withRV), so
// the store, the history and the watch queues can share them.  They are
// kept without kind/apiVersion, which only watch events and single GETs
// carry (list items omit them, like the real server's).
type object = map[string]any

func metaOf(o object) map[string]any {
	m, _ := o["metadata"].(map[string]any)
	return m
}

func metaString(o object, field string) string {
	s, _ := metaOf(o)[field].(string)
	return s
}

func labelsOf(o object) map[string]string {
	out := map[string]string{}
	l, _ := metaOf(o)["labels"].(map[string]any)
	for k, v := range l {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// withRV returns a copy of o (top level and metadata) with
// metadata.resourceVersion set to rv.
func withRV(o object, rv uint64) object {
	c := make(object, len(o))
	for k, v := range o {
		c[k] = v
	}
	m := map[string]any{}
	for k, v := range metaOf(o) {
		m[k] = v
	}
	m["resourceVersion"] = strconv.FormatUint(rv, 10)
	c["metadata"] = m
	return c
}

// fieldValue reads a dotted field label ("spec.nodeName") as the real
// server's field-set functions do: strings as they are, absent as "".
func fieldValue(o object, path string) string {
	var cur any = o
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			cur = nil
			break
		}
		cur = m[part]
	}
	switch v := cur.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	}
	if boolFields[path] {
		return "false"
	}
	return ""
}

// encodeObject marshals o, with kind and apiVersion first when kind is set
// (the rest in sorted key order, which puts metadata, spec, status in the
// usual order anyway).
func encodeObject(o object, kind, apiVersion string) []byte {
	body, err := json.Marshal(o)
	if err != nil {
		panic(err) // objects come from JSON, so they always re-encode
	}
	if kind == "" {
		return body
	}
	k, _ := json.Marshal(kind)
	a, _ := json.Marshal(apiVersion)
	var b bytes.Buffer
	b.WriteString(`{"kind":`)
	b.Write(k)
	b.WriteString(`,"apiVersion":`)
	b.Write(a)
	if len(body) > 2 {
		b.WriteByte(',')
		b.Write(body[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes()
}

// eventLine is one watch event as sent: JSON plus a newline.
func eventLine(typ string, obj []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"`)
	b.WriteString(typ)
	b.WriteString(`","object":`)
	b.Write(obj)
	b.WriteString("}\n")
	return b.Bytes()
}

// ---- Status ----------------------------------------------------------------

type statusDetails struct {
	Name string `json:"name,omitempty"`
	Kind string `json:"kind,omitempty"`
}

// status is a metav1.Status, the body of every API error.
type status struct {
	Kind       string         `json:"kind"`
	APIVersion string         `json:"apiVersion"`
	Metadata   struct{}       `json:"metadata"`
	Status     string         `json:"status"`
	Message    string         `json:"message"`
	Reason     string         `json:"reason,omitempty"`
	Details    *statusDetails `json:"details,omitempty"`
	Code       int            `json:"code"`
}

// reasons maps HTTP codes to Status reasons (metav1.StatusReason).
var reasons = map[int]string{
	400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
	405: "MethodNotAllowed", 409: "AlreadyExists", 410: "Expired",
	422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
	503: "ServiceUnavailable", 504: "Timeout",
}

func newStatus(code int, msg string) *status {
	return &status{Kind: "Status", APIVersion: "v1", Status: "Failure",
		Message: msg, Reason: reasons[code], Code: code}
}

func tooOld(rv, oldest uint64) *status {
	return newStatus(410, fmt.Sprintf("too old resource version: %d (%d)", rv, oldest))
}

func writeStatus(w http.ResponseWriter, st *status) {
	body, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	if st.Code == 429 {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(st.Code)
	w.Write(append(body, '\n'))
}

// ---- selectors -------------------------------------------------------------

// requirement is one term of a label selector.  op is one of "=", "!=",
// "in", "notin", "exists", "!" (does not exist), "<", ">".
type requirement struct {
	key    string
	op     string
	values []string
}

type labelSelector []requirement

func (sel labelSelector) matches(labels map[string]string) bool {
	for _, r := range sel {
		v, has := labels[r.key]
		ok := false
		switch r.op {
		case "exists":
			ok = has
		case "!":
			ok = !has
		case "=", "in":
			ok = has && contains(r.values, v)
		case "!=", "notin":
			ok = !has || !contains(r.values, v)
		case "<", ">":
			a, err1 := strconv.ParseInt(v, 10, 64)
			b, _ := strconv.ParseInt(r.values[0], 10, 64)
			ok = has && err1 == nil && ((r.op == "<" && a < b) || (r.op == ">" && a > b))
		}
		if !ok {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lexLabels splits a label selector into tokens the way apimachinery's
// lexer does: operators "!", "!=", "=", "==", "(", ")", ",", "<", ">", and
// identifiers (runs of anything else but white space).
func lexLabels(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte("!=(),<>", c) >= 0:
			if (c == '!' || c == '=') && i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, s[i:i+2])
				i += 2
			} else {
				toks = append(toks, s[i:i+1])
				i++
			}
		default:
			j := i
			for j < len(s) && strings.IndexByte("!=(),<> \t\n\r", s[j]) < 0 {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func isOperator(tok string) bool { return strings.IndexByte("!=(),<>", tok[0]) >= 0 }

var (
	nameRE   = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	prefixRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// validKey checks a qualified label key: [dns-subdomain/]name.
func validKey(k string) bool {
	if prefix, name, ok := strings.Cut(k, "/"); ok {
		if len(prefix) == 0 || len(prefix) > 253 || !prefixRE.MatchString(prefix) {
			return false
		}
		k = name
	}
	return len(k) > 0 && len(k) <= 63 && nameRE.MatchString(k)
}

func validValue(v string) bool { return v == "" || (len(v) <= 63 && nameRE.MatchString(v)) }

// parseLabelSelector parses the labelSelector query parameter.
func parseLabelSelector(s string) (labelSelector, error) {
	toks := lexLabels(s)
	if len(toks) == 0 {
		return nil, nil
	}
	p := 0
	peek := func() string {
		if p < len(toks) {
			return toks[p]
		}
		return ""
	}
	next := func() string { t := peek(); p++; return t }
	ident := func() (string, error) {
		t := next()
		if t == "" || isOperator(t) {
			return "", fmt.Errorf("found '%s', expected: identifier", t)
		}
		return t, nil
	}
	var sel labelSelector
	for {
		var r requirement
		t := next()
		switch {
		case t == "!":
			key, err := ident()
			if err != nil {
				return nil, err
			}
			r = requirement{key: key, op: "!"}
		case t != "" && !isOperator(t):
			r.key = t
			if peek() == "" || peek() == "," {
				r.op = "exists"
				break
			}
			switch op := next(); op {
			case "=", "==", "!=":
				r.op = "="
				if op == "!=" {
					r.op = "!="
				}
				v := ""
				if peek() != "" && peek() != "," {
					var err error
					if v, err = ident(); err != nil {
						return nil, err
					}
				}
				r.values = []string{v}
			case "in", "notin":
				r.op = op
				if next() != "(" {
					return nil, fmt.Errorf("found '%s', expected: '('", toks[p-1])
				}
				for {
					v, err := ident()
					if err != nil {
						return nil, err
					}
					r.values = append(r.values, v)
					if sep := next(); sep == ")" {
						break
					} else if sep != "," {
						return nil, fmt.Errorf("found '%s', expected: ',' or ')'", sep)
					}
				}
			case "<", ">":
				r.op = op
				v, err := ident()
				if err != nil {
					return nil, err
				}
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					return nil, fmt.Errorf("for 'Gt', 'Lt' operators, the value must be an integer")
				}
				r.values = []string{v}
			default:
				return nil, fmt.Errorf("found '%s', expected: '=', '!=', '==', 'in', notin'", op)
			}
		default:
			return nil, fmt.Errorf("found '%s', expected: !, identifier, or 'end of string'", t)
		}
		if !validKey(r.key) {
			return nil, fmt.Errorf("invalid label key %q", r.key)
		}
		for _, v := range r.values {
			if r.op != "<" && r.op != ">" && !validValue(v) {
				return nil, fmt.Errorf("invalid label value: %q", v)
			}
		}
		sel = append(sel, r)
		if p >= len(toks) {
			return sel, nil
		}
		if t := next(); t != "," {
			return nil, fmt.Errorf("found '%s', expected: ',' or 'end of string'", t)
		}
	}
}

// fieldRequirement is one term of a field selector: op is "=" or "!=".
type fieldRequirement struct{ field, op, value string }

// parseFieldSelector parses the fieldSelector query parameter as
// apimachinery's fields.ParseSelector does (terms split on unescaped
// commas; \\, \, and \= escapes in values), then checks each field label
// is supported for res.
func parseFieldSelector(s string, res *resource) ([]fieldRequirement, error) {
	var terms []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		} else if s[i] == ',' {
			terms = append(terms, s[start:i])
			start = i + 1
		}
	}
	terms = append(terms, s[start:])
	var reqs []fieldRequirement
	for _, term := range terms {
		if term == "" {
			continue
		}
		var r fieldRequirement
		found := false
	scan:
		for i := 0; i < len(term); i++ {
			if term[i] == '\\' {
				i++
				continue
			}
			for _, op := range []string{"!=", "==", "="} {
				if strings.HasPrefix(term[i:], op) {
					r.field, r.op = term[:i], "="
					if op == "!=" {
						r.op = "!="
					}
					v, err := unescapeFieldValue(term[i+len(op):])
					if err != nil {
						return nil, err
					}
					r.value = v
					found = true
					break scan
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("invalid selector: '%s'; can't understand '%s'", s, term)
		}
		if !fieldSupported(res, r.field) {
			return nil, fmt.Errorf("field label not supported: %s", r.field)
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

func unescapeFieldValue(v string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			if i+1 >= len(v) || strings.IndexByte(`\,=`, v[i+1]) < 0 {
				return "", fmt.Errorf("invalid field selector value %q: invalid escape sequence", v)
			}
			i++
			b.WriteByte(v[i])
		case ',', '=':
			return "", fmt.Errorf("invalid field selector value %q: unescaped %q", v, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func fieldSupported(res *resource, f string) bool {
	return f == "metadata.name" || (f == "metadata.namespace" && res.namespaced) || contains(res.fields, f)
}

func fieldsMatch(reqs []fieldRequirement, o object) bool {
	for _, r := range reqs {
		if (fieldValue(o, r.field) == r.value) != (r.op == "=") {
			return false
		}
	}
	return true
}

// filter is what a list or watch selects: namespace and selectors.
type filter struct {
	ns     string // "" = all namespaces
	labels labelSelector
	fields []fieldRequirement
}

func (f *filter) matches(o object) bool {
	return (f.ns == "" || metaString(o, "namespace") == f.ns) &&
		f.labels.matches(labelsOf(o)) && fieldsMatch(f.fields, o)
}

// ---- store and history -----------------------------------------------------

// event is one change, as kept in the history.
type event struct {
	rv   uint64
	res  *resource
	key  string
	typ  string // ADDED, MODIFIED, DELETED
	obj  object // new state; for DELETED the last state with the deletion's RV
	prev object // state before the change; nil for ADDED
}

type requestRecord struct {
	Method        string `json:"method"`
	Path          string `json:"path"`
	Query         string `json:"query"`
	Authorization string `json:"authorization"`
	Accept        string `json:"accept"`
	Watch         bool   `json:"watch"`
	Time          string `json:"time"`
}

type server struct {
	// Authentication (read-only after setup).
	token, tokenFile     string
	basicUser, basicPass string
	basicSet, clientCA   bool

	chunkSize atomic.Int64 // see /_control/chunks

	mu            sync.Mutex
	rv            uint64                          // the global resourceVersion counter
	objects       map[*resource]map[string]object // by key: "ns/name" or "name"
	history       []event                         // every event with rv > compacted
	compacted     uint64
	tooOldAsEvent bool // compaction mode "event"
	uids          uint64
	watchers      map[*watcher]struct{}
	failCount     int
	failStatus    int
	failOnly      string
	requests      []requestRecord
}

func newServer() *server {
	s := &server{objects: map[*resource]map[string]object{}, watchers: map[*watcher]struct{}{}}
	for _, r := range resources {
		s.objects[r] = map[string]object{}
	}
	return s
}

func objectKey(res *resource, ns, name string) string {
	if res.namespaced {
		return ns + "/" + name
	}
	return name
}

// apply applies one control event; the caller holds s.mu.
func (s *server) apply(typ string, obj object) (uint64, int, error) {
	kind, _ := obj["kind"].(string)
	res := resourceByKind(kind)
	if res == nil {
		return 0, 400, fmt.Errorf("unknown kind %q", kind)
	}
	meta := metaOf(obj)
	name, _ := meta["name"].(string)
	if name == "" {
		return 0, 400, errors.New("object has no metadata.name")
	}
	// A private copy without kind/apiVersion, with the namespace defaulted.
	o := object{}
	for k, v := range obj {
		if k != "kind" && k != "apiVersion" {
			o[k] = v
		}
	}
	o = withRV(o, 0)
	meta = metaOf(o)
	ns := ""
	if res.namespaced {
		ns, _ = meta["namespace"].(string)
		if ns == "" {
			ns = "default"
			meta["namespace"] = ns
		}
	}
	key := objectKey(res, ns, name)
	cur, exists := s.objects[res][key]
	ev := event{res: res, key: key, typ: typ, prev: cur}
	switch typ {
	case "ADDED":
		if exists {
			return 0, 409, fmt.Errorf("%s %q already exists", res.name, key)
		}
		if _, ok := meta["uid"].(string); !ok {
			s.uids++
			meta["uid"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", s.uids)
		}
	case "MODIFIED", "DELETED":
		if !exists {
			return 0, 404, fmt.Errorf("%s %q not found", res.name, key)
		}
		if typ == "DELETED" {
			o = cur
		} else if _, ok := meta["uid"]; !ok {
			if uid, ok := metaOf(cur)["uid"]; ok {
				meta["uid"] = uid
			}
		}
	default:
		return 0, 400, fmt.Errorf("unknown event type %q", typ)
	}
	s.rv++
	ev.rv = s.rv
	ev.obj = withRV(o, s.rv)
	if typ == "DELETED" {
		delete(s.objects[res], key)
	} else {
		s.objects[res][key] = ev.obj
	}
	s.history = append(s.history, ev)
	for w := range s.watchers {
		if w.res == res {
			w.send(ev)
		}
	}
	return s.rv, 200, nil
}

// stateAt returns res's objects as they were at resourceVersion rv, which
// must not be older than s.compacted, by undoing the later events.  The
// caller holds s.mu.
func (s *server) stateAt(res *resource, rv uint64) map[string]object {
	state := make(map[string]object, len(s.objects[res]))
	for k, o := range s.objects[res] {
		state[k] = o
	}
	for i := len(s.history) - 1; i >= 0 && s.history[i].rv > rv; i-- {
		ev := s.history[i]
		if ev.res != res {
			continue
		}
		if ev.prev == nil {
			delete(state, ev.key)
		} else {
			state[ev.key] = ev.prev
		}
	}
	return state
}

func sortedKeys(m map[string]object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---- watchers --------------------------------------------------------------

// How a watch stream is told to end.
const (
	endNone  = iota
	endClean // finish the response normally (after sending what is queued)
	endDrop  // close the connection without finishing the response
)

// watcher is one open watch.  The server appends encoded events to queue
// (holding s.mu, then w.mu); the handler goroutine drains and writes them.
type watcher struct {
	res       *resource
	filter    filter
	bookmarks bool

	mu     sync.Mutex
	queue  [][]byte
	end    int
	lastRV uint64 // RV of the last event queued, for expire's message
	wake   chan struct{}
}

func (w *watcher) push(line []byte, rv uint64, end int) {
	w.mu.Lock()
	if w.end == endNone {
		if line != nil {
			w.queue = append(w.queue, line)
		}
		if rv > w.lastRV {
			w.lastRV = rv
		}
		w.end = end
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// send queues ev as this watch sees it, as the real watch cache does: an
// object that starts matching the filter is ADDED, one that stops matching
// is DELETED (its previous state, with the event's RV).
func (w *watcher) send(ev event) {
	cur := ev.typ != "DELETED" && w.filter.matches(ev.obj)
	old := ev.prev != nil && w.filter.matches(ev.prev)
	var typ string
	obj := ev.obj
	switch {
	case cur && !old:
		typ = "ADDED"
	case cur && old:
		typ = "MODIFIED"
	case !cur && old:
		typ, obj = "DELETED", withRV(ev.prev, ev.rv)
	default:
		return
	}
	w.push(eventLine(typ, encodeObject(obj, w.res.kind, w.res.apiVersion())), ev.rv, endNone)
}

func bookmarkLine(res *resource, rv uint64, initialEnd bool) []byte {
	meta := map[string]any{"resourceVersion": strconv.FormatUint(rv, 10)}
	if initialEnd {
		meta["annotations"] = map[string]any{"k8s.io/initial-events-end": "true"}
	}
	return eventLine("BOOKMARK", encodeObject(object{"metadata": meta}, res.kind, res.apiVersion()))
}

// ---- HTTP: API -------------------------------------------------------------

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	}
	mux.HandleFunc("/_control/", s.control)
	mux.HandleFunc("/", s.api)
	return mux
}

// authenticated applies the configured methods (any one suffices).
func (s *server) authenticated(r *http.Request) bool {
	configured := false
	if s.token != "" || s.tokenFile != "" {
		configured = true
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		tok = strings.TrimSpace(tok)
		if strings.EqualFold(scheme, "bearer") && tok != "" {
			if tok == s.token {
				return true
			}
			if s.tokenFile != "" {
				if b, err := os.ReadFile(s.tokenFile); err == nil && tok == strings.TrimSpace(string(b)) {
					return true
				}
			}
		}
	}
	if s.basicSet {
		configured = true
		if u, p, ok := r.BasicAuth(); ok && u == s.basicUser && p == s.basicPass {
			return true
		}
	}
	if s.clientCA {
		configured = true
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			return true
		}
	}
	return !configured
}

// api serves every non-control path: record, maybe fail, authenticate,
// route.
func (s *server) api(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	isWatch, _ := strconv.ParseBool(q.Get("watch"))
	log.Printf("%s %s", r.Method, r.URL.RequestURI())

	// Route first (without answering) so that fail?only= can tell lists,
	// watches and gets apart.
	res, ns, name, routeErr := route(r.URL.Path)
	class := "list"
	if isWatch {
		class = "watch"
	} else if name != "" {
		class = "get"
	}

	s.mu.Lock()
	s.requests = append(s.requests, requestRecord{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Authorization: r.Header.Get("Authorization"), Accept: r.Header.Get("Accept"),
		Watch: isWatch, Time: time.Now().UTC().Format(time.RFC3339Nano),
	})
	failWith := 0
	if s.failCount > 0 && (s.failOnly == "" || s.failOnly == class) {
		s.failCount--
		failWith = s.failStatus
	}
	s.mu.Unlock()

	switch {
	case failWith != 0:
		writeStatus(w, newStatus(failWith, fmt.Sprintf("injected failure (HTTP %d)", failWith)))
	case !s.authenticated(r):
		writeStatus(w, newStatus(401, "Unauthorized"))
	case r.URL.Path == "/version":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"major":"1","minor":"28","gitVersion":"v1.28.0-firn-fake","platform":"linux/amd64"}` + "\n"))
	case routeErr != nil:
		writeStatus(w, newStatus(404, "the server could not find the requested resource"))
	case r.Method != http.MethodGet:
		writeStatus(w, newStatus(405, "the server does not allow this method on the requested resource"))
	case name != "" && isWatch:
		writeStatus(w, newStatus(400, "watch of a single object is not supported here; use fieldSelector=metadata.name="+name))
	case name != "":
		s.get(w, res, ns, name)
	default:
		f := filter{ns: ns}
		var err error
		if f.labels, err = parseLabelSelector(q.Get("labelSelector")); err != nil {
			writeStatus(w, newStatus(400, "unable to parse requirement: "+err.Error()))
			return
		}
		if f.fields, err = parseFieldSelector(q.Get("fieldSelector"), res); err != nil {
			writeStatus(w, newStatus(400, err.Error()))
			return
		}
		if isWatch {
			s.watch(w, r, res, f)
		} else {
			s.list(w, r, res, f)
		}
	}
}

var errNoRoute = errors.New("no route")

// route parses an API path into resource, namespace and object name:
//
//	/api/v1/{res}[/{name}]                  /apis/{group}/v1/{res}[/{name}]
//	/api/v1/namespaces/{ns}/{res}[/{name}]  /apis/{group}/v1/namespaces/{ns}/{res}[/{name}]
//
// (/api/v1/namespaces/{name} is the Namespace object itself.)
func route(path string) (res *resource, ns, name string, err error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	group := ""
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == version:
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis" && parts[2] == version:
		group, parts = parts[1], parts[3:]
	default:
		return nil, "", "", errNoRoute
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	for _, p := range parts {
		if p == "" {
			return nil, "", "", errNoRoute
		}
	}
	if len(parts) > 2 {
		return nil, "", "", errNoRoute
	}
	res = resourceByPath(group, parts[0])
	if res == nil || (ns != "" && !res.namespaced) {
		return nil, "", "", errNoRoute
	}
	if len(parts) == 2 {
		name = parts[1]
		if res.namespaced && ns == "" {
			return nil, "", "", errNoRoute
		}
	}
	return res, ns, name, nil
}

func (s *server) get(w http.ResponseWriter, res *resource, ns, name string) {
	s.mu.Lock()
	o, ok := s.objects[res][objectKey(res, ns, name)]
	s.mu.Unlock()
	if !ok {
		st := newStatus(404, fmt.Sprintf("%s %q not found", res.name, name))
		st.Details = &statusDetails{Name: name, Kind: res.name}
		writeStatus(w, st)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(encodeObject(o, res.kind, res.apiVersion()), '\n'))
}

// continueToken is the decoded form of a continue parameter, shaped like
// the real server's (base64url of {"v","rv","start"}).
type continueToken struct {
	V     string `json:"v"`
	RV    uint64 `json:"rv"`
	Start string `json:"start"`
}

func parseRV(s string) (uint64, bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func (s *server) list(w http.ResponseWriter, r *http.Request, res *resource, f filter) {
	q := r.URL.Query()
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeStatus(w, newStatus(400, fmt.Sprintf("invalid limit %q", l)))
			return
		}
		limit = n
	}
	rvParam, match, cont := q.Get("resourceVersion"), q.Get("resourceVersionMatch"), q.Get("continue")
	var rv uint64
	if rvParam != "" {
		var ok bool
		if rv, ok = parseRV(rvParam); !ok {
			writeStatus(w, newStatus(400, fmt.Sprintf("invalid resource version: %q", rvParam)))
			return
		}
	}

	s.mu.Lock()
	var listRV uint64
	start := ""
	var st *status
	switch {
	case cont != "":
		var tok continueToken
		raw, err := base64.RawURLEncoding.DecodeString(cont)
		if err == nil {
			err = json.Unmarshal(raw, &tok)
		}
		switch {
		case rvParam != "" && rvParam != "0":
			st = newStatus(400, "specifying resource version is not allowed when using continue")
		case match != "":
			st = newStatus(400, "resourceVersionMatch is forbidden when continue is provided")
		case err != nil || tok.V != "meta.k8s.io/v1" || tok.RV > s.rv:
			st = newStatus(400, "invalid continue token")
		case tok.RV < s.compacted:
			st = newStatus(410, "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
		default:
			listRV, start = tok.RV, tok.Start
		}
	case match != "" && rvParam == "":
		st = newStatus(400, "resourceVersionMatch is forbidden unless resourceVersion is provided")
	case match == "" || match == "NotOlderThan":
		listRV = s.rv
	case match == "Exact":
		switch {
		case rvParam == "0":
			st = newStatus(400, `resourceVersionMatch "Exact" is forbidden for resourceVersion "0"`)
		case rv < s.compacted:
			st = tooOld(rv, s.compacted)
		case rv > s.rv:
			st = newStatus(504, fmt.Sprintf("Too large resource version: %d, current: %d", rv, s.rv))
		default:
			listRV = rv
		}
	default:
		st = newStatus(400, fmt.Sprintf("unsupported resourceVersionMatch %q", match))
	}
	var state map[string]object
	if st == nil {
		state = s.stateAt(res, listRV)
	}
	s.mu.Unlock()
	if st != nil {
		writeStatus(w, st)
		return
	}

	// Walk the keys in order from start, as etcd would.  The continue token
	// names the key after the last returned one, so it is set whenever any
	// key remains, even if none of them matches the selectors (a client
	// can get an empty last page).
	keys := sortedKeys(state)
	items := []json.RawMessage{}
	var lastKey string
	more, remaining := false, int64(0)
	for _, k := range keys {
		o := state[k]
		if k < start || (f.ns != "" && metaString(o, "namespace") != f.ns) {
			continue
		}
		if limit > 0 && len(items) == limit {
			more = true
			remaining++
			continue
		}
		if f.matches(o) {
			items = append(items, encodeObject(o, "", ""))
			lastKey = k
		}
	}
	meta := map[string]any{"resourceVersion": strconv.FormatUint(listRV, 10)}
	if more {
		tok, _ := json.Marshal(continueToken{V: "meta.k8s.io/v1", RV: listRV, Start: lastKey + "\x00"})
		meta["continue"] = base64.RawURLEncoding.EncodeToString(tok)
		if len(f.labels) == 0 && len(f.fields) == 0 {
			meta["remainingItemCount"] = remaining
		}
	}
	body, _ := json.Marshal(struct {
		Kind       string            `json:"kind"`
		APIVersion string            `json:"apiVersion"`
		Metadata   map[string]any    `json:"metadata"`
		Items      []json.RawMessage `json:"items"`
	}{res.kind + "List", res.apiVersion(), meta, items})
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}

// watch serves a watch request, the way the real server's watch cache does:
//
//   - resourceVersion "" or "0": synthetic ADDED events for every current
//     matching object, then live events;
//   - resourceVersion N: the kept history after N, then live events; N
//     older than the last compaction is too old (410 Status or ERROR
//     event, per the compaction mode);
//   - sendInitialEvents=true (requires resourceVersionMatch=NotOlderThan
//     and allowWatchBookmarks=true): ADDED for the current state, then a
//     BOOKMARK annotated k8s.io/initial-events-end; sendInitialEvents=false
//     with "" or "0": live events only;
//   - BOOKMARKs (only with allowWatchBookmarks=true) come from
//     /_control/bookmark;
//   - timeoutSeconds > 0 ends the response cleanly after that long;
//   - events are flushed whenever no more are pending.
func (s *server) watch(rw http.ResponseWriter, r *http.Request, res *resource, f filter) {
	q := r.URL.Query()
	rvParam := q.Get("resourceVersion")
	var fromRV uint64
	if rvParam != "" {
		var ok bool
		if fromRV, ok = parseRV(rvParam); !ok {
			writeStatus(rw, newStatus(400, fmt.Sprintf("invalid resource version: %q", rvParam)))
			return
		}
	}
	bookmarks, _ := strconv.ParseBool(q.Get("allowWatchBookmarks"))
	var timeout time.Duration
	if t := q.Get("timeoutSeconds"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			writeStatus(rw, newStatus(400, fmt.Sprintf("invalid timeoutSeconds %q", t)))
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	sendInitial, sendInitialSet := false, q.Has("sendInitialEvents")
	if sendInitialSet {
		var err error
		if sendInitial, err = strconv.ParseBool(q.Get("sendInitialEvents")); err != nil {
			writeStatus(rw, newStatus(400, "invalid sendInitialEvents"))
			return
		}
	}
	match := q.Get("resourceVersionMatch")
	switch {
	case sendInitialSet && match != "NotOlderThan":
		writeStatus(rw, newStatus(400, "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan"))
		return
	case sendInitialSet && !bookmarks:
		writeStatus(rw, newStatus(400, "sendInitialEvents requires setting allowWatchBookmarks to true"))
		return
	case !sendInitialSet && match != "":
		writeStatus(rw, newStatus(400, "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
		return
	}
	flusher, _ := rw.(http.Flusher)

	w := &watcher{res: res, filter: f, bookmarks: bookmarks, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	w.lastRV = s.rv
	var expired *status
	switch {
	case sendInitial || (!sendInitialSet && (rvParam == "" || rvParam == "0")):
		objs := s.objects[res]
		for _, k := range sortedKeys(objs) {
			if f.matches(objs[k]) {
				w.queue = append(w.queue, eventLine("ADDED", encodeObject(objs[k], res.kind, res.apiVersion())))
			}
		}
		if sendInitial {
			w.queue = append(w.queue, bookmarkLine(res, s.rv, true))
		}
	case sendInitialSet && (rvParam == "" || rvParam == "0"):
		// sendInitialEvents=false: from now on.
	case fromRV < s.compacted:
		expired = tooOld(fromRV, s.compacted)
	default:
		for _, ev := range s.history {
			if ev.rv > fromRV && ev.res == res {
				w.send(ev)
			}
		}
	}
	asEvent := s.tooOldAsEvent
	if expired == nil {
		s.watchers[w] = struct{}{}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()

	if expired != nil && !asEvent {
		writeStatus(rw, expired)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-cache, private")
	rw.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	if expired != nil {
		line := eventLine("ERROR", mustJSON(expired))
		rw.Write(line)
		return
	}

	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	for {
		w.mu.Lock()
		lines, end := w.queue, w.end
		w.queue = nil
		w.mu.Unlock()
		if end == endDrop {
			abort(rw)
			return
		}
		if err := s.writeLines(rw, flusher, lines); err != nil {
			return
		}
		if end == endClean {
			return
		}
		select {
		case <-w.wake:
		case <-timer:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// writeLines writes queued events: all at once and then one flush, or,
// with /_control/chunks set, in pieces of that size, each flushed.
func (s *server) writeLines(rw http.ResponseWriter, flusher http.Flusher, lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	size := int(s.chunkSize.Load())
	buf := bytes.Join(lines, nil)
	for len(buf) > 0 {
		n := len(buf)
		if size > 0 && n > size {
			n = size
		}
		if _, err := rw.Write(buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
		if size > 0 && flusher != nil {
			flusher.Flush()
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	return nil
}

// abort ends a response without finishing it: on HTTP/1 the connection is
// hijacked and closed, so no terminating chunk is sent; on HTTP/2 (which
// cannot be hijacked) the stream is reset.
func abort(rw http.ResponseWriter) {
	if hj, ok := rw.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ---- HTTP: control ---------------------------------------------------------

// controlReply writes v as JSON without HTML escaping ("&" stays "&"), so
// shell tests can grep it.
func controlReply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func controlError(w http.ResponseWriter, code int, format string, args ...any) {
	controlReply(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// applyEvent is one event posted to /_control/apply.
type applyEvent struct {
	Type   string `json:"type"`
	Object object `json:"object"`
}

func (s *server) control(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.URL.Path, "/_control/")
	wantMethod := http.MethodPost
	if op == "watches" || op == "requests" {
		wantMethod = http.MethodGet
	}
	if r.Method != wantMethod {
		controlError(w, 405, "%s wants %s", r.URL.Path, wantMethod)
		return
	}
	q := r.URL.Query()
	switch op {
	case "apply":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			controlError(w, 400, "read body: %v", err)
			return
		}
		var events []applyEvent
		dec := json.NewDecoder(bytes.NewReader(bytes.TrimSpace(body)))
		dec.UseNumber()
		if len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '[' {
			err = dec.Decode(&events)
		} else {
			var ev applyEvent
			err = dec.Decode(&ev)
			events = []applyEvent{ev}
		}
		if err != nil {
			controlError(w, 400, "decode: %v", err)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, ev := range events {
			if _, code, err := s.apply(ev.Type, ev.Object); err != nil {
				controlError(w, code, "event %d: %v", i, err)
				return
			}
		}
		controlReply(w, 200, map[string]string{"resourceVersion": strconv.FormatUint(s.rv, 10)})
	case "bookmark":
		s.mu.Lock()
		for wt := range s.watchers {
			if wt.bookmarks {
				wt.push(bookmarkLine(wt.res, s.rv, false), s.rv, endNone)
			}
		}
		rv := s.rv
		s.mu.Unlock()
		controlReply(w, 200, map[string]string{"resourceVersion": strconv.FormatUint(rv, 10)})
	case "compact":
		mode := q.Get("mode")
		if mode != "" && mode != "status" && mode != "event" {
			controlError(w, 400, "mode must be status or event")
			return
		}
		s.mu.Lock()
		s.compacted, s.history, s.tooOldAsEvent = s.rv, nil, mode == "event"
		rv := s.rv
		s.mu.Unlock()
		controlReply(w, 200, map[string]string{"resourceVersion": strconv.FormatUint(rv, 10)})
	case "expire", "drop":
		s.mu.Lock()
		n := len(s.watchers)
		for wt := range s.watchers {
			if op == "drop" {
				wt.push(nil, 0, endDrop)
				continue
			}
			wt.mu.Lock()
			last := wt.lastRV
			wt.mu.Unlock()
			wt.push(eventLine("ERROR", mustJSON(tooOld(last, s.rv))), 0, endClean)
		}
		s.mu.Unlock()
		controlReply(w, 200, map[string]int{"watches": n})
	case "fail":
		count, err1 := strconv.Atoi(q.Get("count"))
		code := 500
		var err2 error
		if c := q.Get("status"); c != "" {
			code, err2 = strconv.Atoi(c)
		}
		only := q.Get("only")
		if err1 != nil || err2 != nil || count < 0 || code < 100 || code > 599 ||
			(only != "" && only != "list" && only != "watch" && only != "get") {
			controlError(w, 400, "want count=N [status=CODE] [only=list|watch|get]")
			return
		}
		s.mu.Lock()
		s.failCount, s.failStatus, s.failOnly = count, code, only
		s.mu.Unlock()
		controlReply(w, 200, map[string]int{"count": count, "status": code})
	case "chunks":
		n, err := strconv.Atoi(q.Get("size"))
		if err != nil || n < 0 {
			controlError(w, 400, "want size=N (N >= 0)")
			return
		}
		s.chunkSize.Store(int64(n))
		controlReply(w, 200, map[string]int{"size": n})
	case "watches":
		by := map[string]int{}
		for _, res := range resources {
			by[res.name] = 0
		}
		s.mu.Lock()
		for wt := range s.watchers {
			by[wt.res.name]++
		}
		n := len(s.watchers)
		s.mu.Unlock()
		controlReply(w, 200, map[string]any{"open": n, "by_resource": by})
	case "requests":
		s.mu.Lock()
		reqs := append([]requestRecord{}, s.requests...)
		s.mu.Unlock()
		controlReply(w, 200, reqs)
	case "requests/reset":
		s.mu.Lock()
		s.requests = nil
		s.mu.Unlock()
		controlReply(w, 200, map[string]bool{"ok": true})
	default:
		controlError(w, 404, "unknown control endpoint %s", r.URL.Path)
	}
}

// closeWatches ends every open watch cleanly (at shutdown).
func (s *server) closeWatches() {
	s.mu.Lock()
	for wt := range s.watchers {
		wt.push(nil, 0, endClean)
	}
	s.mu.Unlock()
}

// ---- main ------------------------------------------------------------------

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	addrFile := flag.String("addr-file", "", "if set, write the actual listen address to this file")
	token := flag.String("token", "", "accept this bearer token")
	tokenFile := flag.String("token-file", "", "accept the bearer token in this file (re-read on every request)")
	basicAuth := flag.String("basic-auth", "", "USER:PASSWORD: accept these basic auth credentials")
	tlsCert := flag.String("tls-cert", "", "with -tls-key: serve HTTPS with this certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "the certificate's private key (PEM)")
	clientCA := flag.String("client-ca", "", "accept client certificates signed by these CAs (PEM); needs -tls-cert")
	noHTTP2 := flag.Bool("no-http2", false, "with TLS, offer HTTP/1.1 only")
	flag.Parse()

	s := newServer()
	s.token, s.tokenFile = *token, *tokenFile
	if *basicAuth != "" {
		s.basicUser, s.basicPass, _ = strings.Cut(*basicAuth, ":")
		s.basicSet = true
	}
	srv := &http.Server{Handler: s.handler(), ErrorLog: log.Default()}
	if (*tlsCert == "") != (*tlsKey == "") || (*clientCA != "" && *tlsCert == "") {
		log.Fatal("-tls-cert and -tls-key go together; -client-ca needs them")
	}
	if *tlsCert != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if *clientCA != "" {
			pem, err := os.ReadFile(*clientCA)
			if err != nil {
				log.Fatalf("client-ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				log.Fatalf("client-ca: no certificates in %s", *clientCA)
			}
			srv.TLSConfig.ClientCAs = pool
			srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
			s.clientCA = true
		}
		if *noHTTP2 {
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
	}

	// Listen before writing the address file so that the file's existence
	// implies the port is already accepting connections.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	if *addrFile != "" {
		if err := writeFileAtomic(*addrFile, ln.Addr().String()+"\n"); err != nil {
			log.Fatalf("addr-file: %v", err)
		}
	}
	log.Printf("kubeapi listening on %s", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		s.closeWatches()
		shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutCtx)
	}()
	if *tlsCert != "" {
		err = srv.ServeTLS(ln, *tlsCert, *tlsKey)
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
}

// writeFileAtomic writes to a temp file in the same directory and renames
// it, so a reader polling for path never sees a partial write.
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
