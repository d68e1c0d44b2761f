// gospin -- a Go process for firn-agent's end-to-end test: it spends its
// CPU in main.spinGo (Go keeps frame pointers, so the agent's
// frame-pointer stacks reach it) until killed.
package main

import (
	"fmt"
	"os"
)

var sink uint64

//go:noinline
func spinGo(rounds int) uint64 {
	x := sink
	for i := 0; i < rounds; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink = x
	return x
}

func main() {
	fmt.Printf("ready %d\n", os.Getpid())
	for {
		spinGo(1000000)
	}
}
