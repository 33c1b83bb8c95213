// Package conformance runs the shared conformance suite (package
// myrpc/shared/proto/rpctest) against the V4 server and client.
package conformance

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/rpctest"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/mux"
	"myrpc/v5-cluster/server"
)

// stage describes V4 to the suite.
var stage = rpctest.Stage{
	Name: "v4",
	NewServer: func(cfg rpctest.ServerConfig) rpctest.Server {
		var opts []server.Option
		if cfg.MaxFrameSize > 0 {
			opts = append(opts, server.WithMaxFrameSize(cfg.MaxFrameSize))
		}
		if cfg.FrameTimeout > 0 {
			opts = append(opts, server.WithFrameTimeout(cfg.FrameTimeout))
		}
		if cfg.IdleTimeout > 0 {
			opts = append(opts, server.WithIdleTimeout(cfg.IdleTimeout))
		}
		if cfg.MaxConns > 0 {
			opts = append(opts, server.WithMaxConns(cfg.MaxConns))
		}
		if cfg.Logger != nil {
			opts = append(opts, server.WithLogger(cfg.Logger))
		}
		if cfg.WriteTimeout > 0 {
			opts = append(opts, server.WithWriteTimeout(cfg.WriteTimeout))
		}
		if cfg.Workers > 0 {
			opts = append(opts, server.WithWorkers(cfg.Workers))
		}
		return server.New(opts...)
	},
	NewClient: func(addr string, cfg rpctest.ClientConfig) rpctest.Client {
		var opts []client.Option
		if cfg.MaxFrameSize > 0 {
			opts = append(opts, client.WithMaxFrameSize(cfg.MaxFrameSize))
		}
		if cfg.Logger != nil {
			opts = append(opts, client.WithLogger(cfg.Logger))
		}
		// The cap on calls in flight is one connection carrying that many.
		mc := mux.Config{WaitTimeout: cfg.WaitTimeout, MaxSeq: cfg.MaxSequenceID}
		if cfg.MaxInFlight > 0 {
			mc.MaxConns, mc.MaxStreams = 1, cfg.MaxInFlight
		}
		opts = append(opts, client.WithMux(mc))
		return client.New(addr, opts...)
	},
	ErrServerClosed: server.ErrServerClosed,

	LongConnections:   true,
	ReusesConnections: true,

	Reactor: true,

	Multiplexed: true,
	Pending:     func(c rpctest.Client) int { return c.(*client.Client).MuxStats().Streams },
	Dropped:     func(c rpctest.Client) uint64 { return c.(*client.Client).MuxStats().Dropped },
	RetryOptions: func(attempts int, idempotent bool, perAttempt time.Duration) []rpc.CallOption {
		opts := []rpc.CallOption{client.Retry(client.RetryPolicy{
			Attempts: attempts, Base: 5 * time.Millisecond, Cap: 50 * time.Millisecond, Jitter: 0.2, PerAttempt: perAttempt,
		})}
		if idempotent {
			opts = append(opts, client.Idempotent())
		}
		return opts
	},
}

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

func TestConformance(t *testing.T) { rpctest.RunConformance(t, stage) }

func TestReliability(t *testing.T) { rpctest.RunReliability(t, stage) }
