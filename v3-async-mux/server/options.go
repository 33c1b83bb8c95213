package server

import (
	"log/slog"
	"time"

	"myrpc/v3-async-mux/codec"
	"myrpc/v3-async-mux/config"
)

// Option configures a Server.
type Option func(*options)

type options struct {
	maxFrameSize int
	frameTimeout time.Duration
	idleTimeout  time.Duration
	writeTimeout time.Duration
	maxConns     int
	logger       *slog.Logger
	// services holds the addresses ListenAndServe listens on.
	services []config.Service

	workers int
}

func defaultOptions() options {
	return options{
		maxFrameSize: codec.DefaultMaxFrameSize,
		frameTimeout: 10 * time.Second,
		idleTimeout:  60 * time.Second,
		writeTimeout: 10 * time.Second,
		maxConns:     10000,

		workers: 10000,
	}
}

// WithMaxFrameSize caps meta + body of a request frame; a bigger frame is
// answered with code 8 and its connection closed. Responses over the cap are
// replaced by a code 8 error. Default: 4 MiB.
func WithMaxFrameSize(n int) Option {
	return func(o *options) { o.maxFrameSize = n }
}

// WithFrameTimeout bounds the time from a frame's first byte to its last: a
// client that drips a frame byte by byte (slowloris) is cut off when it
// passes. 0 means no limit. Default: 10 s.
func WithFrameTimeout(d time.Duration) Option {
	return func(o *options) { o.frameTimeout = d }
}

// WithIdleTimeout closes a connection that has been idle this long: no
// request arriving and no response owed. 0 means no limit. Default: 60 s.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) { o.idleTimeout = d }
}

// WithWriteTimeout bounds the time to write one response, so a client that
// stops reading cannot hold a connection forever. 0 means no limit.
// Default: 10 s.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) { o.writeTimeout = d }
}

// WithMaxConns caps the connections served at once. Further connections
// wait in the listen backlog until a slot frees. 0 means no cap.
// Default: 10000.
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = n }
}

// WithLogger sets the logger. Per-connection and per-call events are logged
// at Debug. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithWorkers sets the size of the goroutine pool that runs handlers, which
// caps the handlers running at once. When every worker is busy, a
// connection's reader waits for one before it reads that connection's next
// request: the pool pushes back on the clients through TCP instead of
// queueing without bound or refusing work. Default: 10000.
func WithWorkers(n int) Option {
	return func(o *options) { o.workers = n }
}

// WithConfig applies the settings of rpc.yaml's server section: every
// non-zero setting, and the services' addresses for ListenAndServe.
func WithConfig(c config.Server) Option {
	return func(o *options) {
		if c.MaxFrameBytes > 0 {
			o.maxFrameSize = c.MaxFrameBytes
		}
		if c.FrameTimeout > 0 {
			o.frameTimeout = c.FrameTimeout
		}
		if c.IdleTimeout > 0 {
			o.idleTimeout = c.IdleTimeout
		}
		if c.WriteTimeout > 0 {
			o.writeTimeout = c.WriteTimeout
		}
		if c.MaxConns > 0 {
			o.maxConns = c.MaxConns
		}
		if c.Workers > 0 {
			o.workers = c.Workers
		}
		o.services = append([]config.Service(nil), c.Services...)
	}
}
