// Command goservice is a tiny Go program used by firn's end-to-end tests.
// It serves net/http/pprof on a loopback address and keeps a few background
// goroutines busy so that every profile type it serves has samples.
package main

import (
	"context"
	"crypto/sha256"
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
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	addrFile := flag.String("addr-file", "", "if set, write the actual listen address to this file")
	flag.Parse()

	// Rate 1 records every blocking event and every contended mutex, so the
	// block and mutex profiles are non-empty after a short run.
	runtime.SetBlockProfileRate(1)
	runtime.SetMutexProfileFraction(1)

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

	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	startWorkers(ctx)

	srv := &http.Server{Handler: http.DefaultServeMux}
	go func() {
		<-ctx.Done()
		// Give in-flight profile requests a moment, then close.
		shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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

// heapKeep holds on to recent allocations so the heap profile shows live
// (inuse) memory, not only allocation totals.
var heapKeep [64][]byte

func startWorkers(ctx context.Context) {
	// CPU: hash in a loop. The pprof label makes CPU (and goroutine)
	// samples carry worker=hash, which the test checks for.
	go pprof.Do(ctx, pprof.Labels("worker", "hash"), func(ctx context.Context) {
		buf := make([]byte, 4096)
		for ctx.Err() == nil {
			for i := 0; i < 1000; i++ {
				sum := sha256.Sum256(buf)
				copy(buf, sum[:])
			}
		}
	})

	// Heap: allocate steadily, keeping a rotating window alive.
	go pprof.Do(ctx, pprof.Labels("worker", "alloc"), func(ctx context.Context) {
		for i := 0; ctx.Err() == nil; i++ {
			heapKeep[i%len(heapKeep)] = make([]byte, 64<<10)
			time.Sleep(time.Millisecond)
		}
	})

	// Mutex: several goroutines fight over one lock while holding it
	// briefly, producing contention (mutex profile) and blocking on
	// Lock (block profile).
	var mu sync.Mutex
	var shared int
	for g := 0; g < 4; g++ {
		go pprof.Do(ctx, pprof.Labels("worker", "mutex"), func(ctx context.Context) {
			for ctx.Err() == nil {
				mu.Lock()
				shared++
				time.Sleep(100 * time.Microsecond)
				mu.Unlock()
			}
		})
	}

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
