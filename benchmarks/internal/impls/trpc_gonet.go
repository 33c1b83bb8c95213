//go:build race

package impls

import (
	"trpc.group/trpc-go/trpc-go/client"
	"trpc.group/trpc-go/trpc-go/pool/connpool"
	"trpc.group/trpc-go/trpc-go/server"
	"trpc.group/trpc-go/trpc-go/transport"
)

// With the race detector, trpc uses trpc-go's other transport, the one on
// package net: tnet's pollers keep a pointer in the unaligned data of an
// epoll event, which the pointer checks that -race turns on stop with
// "fatal error: checkptr: misaligned pointer conversion" at the first event.
// The benchmarks, built without -race, measure tnet; the tests that run
// without -race (make gowork-off) cover it.
var (
	trpcServerOptions = []server.Option{server.WithTransport(transport.DefaultServerTransport)}
	trpcClientOptions = []client.Option{client.WithTransport(transport.DefaultClientTransport)}
)

var (
	trpcDial          connpool.DialFunc      = connpool.Dial
	trpcHealthChecker connpool.HealthChecker // nil: the pool's own check
)
