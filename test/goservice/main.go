// Command goservice is a tiny Go program used by firn's end-to-end tests.
// It serves net/http/pprof on a loopback address and keeps a few background
// goroutines busy so that every profile type it serves has samples.
//
// With -fixtures DIR it instead serves fixed profile files from DIR on the
// pprof paths, with no background work, so that a benchmark scraping it
// measures the scraper and not this program.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/* on http.DefaultServeMux
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	addrFile := flag.String("addr-file", "", "if set, write the actual listen address to this file")
	fixtures := flag.String("fixtures", "", "if set, serve the profiles in this directory instead of net/http/pprof (see fixtureMux)")
	tlsCert := flag.String("tls-cert", "", "with -tls-key: serve HTTPS with this certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "the certificate's private key (PEM)")
	basicAuth := flag.String("basic-auth", "", "USER:PASSWORD: every path but /healthz needs these credentials")
	flag.Parse()

	var handler http.Handler = http.DefaultServeMux
	if *fixtures != "" {
		mux, err := fixtureMux(*fixtures)
		if err != nil {
			log.Fatalf("fixtures: %v", err)
		}
		handler = mux
	} else {
		enableProfiling()
	}
	if *basicAuth != "" {
		handler = requireBasicAuth(handler, *basicAuth)
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if *fixtures == "" {
		startWorkers(ctx)
	}

	srv := &http.Server{Handler: handler}
	go func() {
		<-ctx.Done()
		// Give in-flight profile requests a moment, then close.
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

// requireBasicAuth answers 401 unless the request carries the credentials
// "user:password"; /healthz stays open so tests can wait for readiness.
func requireBasicAuth(next http.Handler, credentials string) http.Handler {
	user, password, _ := strings.Cut(credentials, ":")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if r.URL.Path != "/healthz" && (!ok || u != user || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="goservice"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// enableProfiling sets up the live mode: profile rates, /healthz and the
// misbehaving paths on http.DefaultServeMux (where net/http/pprof is).
func enableProfiling() {
	// Rate 1 records every blocking event and every contended mutex, so the
	// block and mutex profiles are non-empty after a short run.
	runtime.SetBlockProfileRate(1)
	runtime.SetMutexProfileFraction(1)

	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	misbehave()
	controls()
}

// The behaviours the README's example alerts look for, switched by the
// tests (live mode only):
//
//	/control/json?on=1|0   a goroutine encoding JSON all the time (CPU in encoding/json)
//	/control/mutex?on=1|0  the mutex workers contend on three locks, or idle
//	                       (at start: on one lock)
//	/control/leak?n=N      N more goroutines parked for good
//	/control/grow?mb=N     N more MiB of heap kept alive
var (
	jsonOn     atomic.Bool
	mutexOff   atomic.Bool
	mutexHeavy atomic.Bool
	leaked     []chan struct{}
	grown      [][]byte
	growMu     sync.Mutex
)

func controls() {
	flagParam := func(r *http.Request) bool { return r.URL.Query().Get("on") == "1" }
	http.HandleFunc("/control/json", func(w http.ResponseWriter, r *http.Request) {
		jsonOn.Store(flagParam(r))
	})
	http.HandleFunc("/control/mutex", func(w http.ResponseWriter, r *http.Request) {
		mutexOff.Store(!flagParam(r))
		mutexHeavy.Store(flagParam(r))
	})
	http.HandleFunc("/control/leak", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > 100000 {
			http.Error(w, "n: a count up to 100000", http.StatusBadRequest)
			return
		}
		growMu.Lock()
		defer growMu.Unlock()
		for i := 0; i < n; i++ {
			ch := make(chan struct{})
			leaked = append(leaked, ch)
			go func() { <-ch }()
		}
	})
	http.HandleFunc("/control/grow", func(w http.ResponseWriter, r *http.Request) {
		mb, err := strconv.Atoi(r.URL.Query().Get("mb"))
		if err != nil || mb < 0 || mb > 4096 {
			http.Error(w, "mb: MiB up to 4096", http.StatusBadRequest)
			return
		}
		growMu.Lock()
		defer growMu.Unlock()
		for i := 0; i < mb; i++ {
			grown = append(grown, make([]byte, 1<<20))
		}
	})
}

type jsonDoc struct {
	Name   string            `json:"name"`
	Values []float64         `json:"values"`
	Labels map[string]string `json:"labels"`
}

var jsonSink int

// fixtureFiles maps each pprof path to the file in the -fixtures directory
// served on it.  The CPU path answers at once whatever ?seconds asks for.
var fixtureFiles = []struct{ path, file string }{
	{"/debug/pprof/profile", "cpu.pb.gz"},
	{"/debug/pprof/allocs", "allocs.pb.gz"},
	{"/debug/pprof/block", "block.pb.gz"},
	{"/debug/pprof/mutex", "mutex.pb.gz"},
	{"/debug/pprof/goroutine", "goroutine.pb.gz"},
}

// fixtureMux reads every fixture file of dir once and returns a mux (not
// http.DefaultServeMux, which net/http/pprof fills) serving them from
// memory, plus /healthz.  The files are sent as they are (gzipped or not),
// as application/octet-stream, like net/http/pprof.
func fixtureMux(dir string) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	for _, f := range fixtureFiles {
		body, err := os.ReadFile(filepath.Join(dir, f.file))
		if err != nil {
			return nil, err
		}
		length := strconv.Itoa(len(body))
		mux.HandleFunc(f.path, func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", length)
			w.Write(body)
		})
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	return mux, nil
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

// burnSink keeps burnCPU's result alive so the compiler cannot drop it.
var burnSink uint64

// burnCPU spins for a few hundred microseconds (xorshift steps).
//
//go:noinline
func burnCPU(x uint64) uint64 {
	for i := 0; i < 200000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// misbehave serves the failure modes firn's scrape tests need, each under
// its own path prefix (a job's profiling_config.path_prefix):
//
//	/garbage/...  200 with a body that is not a profile
//	/slow/...     answers only when the client gives up (or after 60 s)
//	/huge/...     200 with 8 MiB of bytes
//
// Any other unknown path gets the mux's 404.
func misbehave() {
	http.HandleFunc("/garbage/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("this is not a profile\n"))
	})
	http.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(60 * time.Second):
		}
	})
	http.HandleFunc("/huge/", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = byte(i * 7)
		}
		for i := 0; i < 128; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
}

// heapKeep holds on to recent allocations so the heap profile shows live
// (inuse) memory, not only allocation totals.
var heapKeep [64][]byte

func startWorkers(ctx context.Context) {
	// CPU: spin in burnCPU, so that it is the busiest function of every
	// CPU profile. The pprof label makes CPU (and goroutine) samples carry
	// worker=hash, which the tests check for.
	go pprof.Do(ctx, pprof.Labels("worker", "hash"), func(ctx context.Context) {
		var x uint64 = 1
		for ctx.Err() == nil {
			x = burnCPU(x)
		}
		burnSink = x
	})

	// Heap: allocate steadily, keeping a rotating window alive.
	go pprof.Do(ctx, pprof.Labels("worker", "alloc"), func(ctx context.Context) {
		for i := 0; ctx.Err() == nil; i++ {
			heapKeep[i%len(heapKeep)] = make([]byte, 64<<10)
			time.Sleep(time.Millisecond)
		}
	})

	// Mutex: four goroutines fight over one lock while holding it briefly,
	// producing contention (mutex profile) and blocking on Lock (block
	// profile).  /control/mutex?on=1 adds two more locks with four each:
	// Go before 1.22 attributes a contended lock's wait to one waiter at a
	// time, at most about one second of delay per second and lock.
	var mu [3]sync.Mutex
	var shared [3]int
	for g := 0; g < 12; g++ {
		k := g / 4
		go pprof.Do(ctx, pprof.Labels("worker", "mutex"), func(ctx context.Context) {
			for ctx.Err() == nil {
				if mutexOff.Load() || (k > 0 && !mutexHeavy.Load()) {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu[k].Lock()
				shared[k]++
				time.Sleep(100 * time.Microsecond)
				mu[k].Unlock()
			}
		})
	}

	// JSON: encode while /control/json says so.
	go func() {
		doc := jsonDoc{Name: "doc", Values: make([]float64, 64),
			Labels: map[string]string{"job": "go", "worker": "json"}}
		for ctx.Err() == nil {
			if !jsonOn.Load() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			b, _ := json.Marshal(&doc)
			jsonSink += len(b)
		}
	}()

	// Channels: an unbuffered ping-pong where the receiver waits on a slow
	// sender, so channel receives show up in the block profile.
	ch := make(chan int)
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			time.Sleep(time.Millisecond)
			select {
			case ch <- i:
			case <-ctx.Done():
			}
		}
	}()
	go func() {
		for {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
}
