// Package conformance runs the shared conformance suite (package
// myrpc/shared/proto/rpctest) against the V1 server and client.
package conformance

import (
	"testing"

	"go.uber.org/goleak"

	"myrpc/shared/proto/rpctest"
	"myrpc/v1-basic/client"
	"myrpc/v1-basic/server"
)

// stage describes V1 to the suite.
var stage = rpctest.Stage{
	Name: "v1",
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
		return client.New(addr, opts...)
	},
	ErrServerClosed: server.ErrServerClosed,
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) { rpctest.RunConformance(t, stage) }

func TestReliability(t *testing.T) { rpctest.RunReliability(t, stage) }
