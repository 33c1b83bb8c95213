// Command interop calls every stage's server with every stage's client and
// prints the matrix: "v1 -> v4: ok" for a client of V1 calling a server of
// V4. It exits 1 if any pair fails.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"myrpc/benchmarks/internal/interop"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	results, err := interop.Run(ctx, interop.Quiet)
	failed := 0
	for _, r := range results {
		fmt.Println(r)
		if r.Err != nil {
			failed++
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	fmt.Printf("%d of %d pairs ok\n", len(results)-failed, len(results))
	if failed > 0 {
		os.Exit(1)
	}
}
