// Package conformance runs the shared conformance suite (package
// myrpc/shared/proto/rpctest) against the V2 server and client.
package conformance

import (
	"testing"

	"go.uber.org/goleak"

	"myrpc/shared/proto/rpctest"
	"myrpc/v2-pool-keepalive/client"
	"myrpc/v2-pool-keepalive/pool"
	"myrpc/v2-pool-keepalive/server"
)

// stage describes V2 to the suite.
var stage = rpctest.Stage{
	Name: "v2",
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
		opts = append(opts, client.WithPool(pool.Config{MaxActive: cfg.MaxInFlight, WaitTimeout: cfg.WaitTimeout}))
		return client.New(addr, opts...)
	},
	ErrServerClosed: server.ErrServerClosed,

	LongConnections:   true,
	ReusesConnections: true,
}

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

func TestConformance(t *testing.T) { rpctest.RunConformance(t, stage) }

func TestReliability(t *testing.T) { rpctest.RunReliability(t, stage) }
