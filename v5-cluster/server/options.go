package server

import (
	"log/slog"
	"time"

	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/config"
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

	// maxTimeout bounds one call.
	maxTimeout time.Duration

	workers int

	// The bounds of one connection.
	maxConnCalls int
	maxConnBytes int

	// interceptors run around every method, the first outermost.
	interceptors []rpc.UnaryServerInterceptor
}

func defaultOptions() options {
	return options{
		maxFrameSize: codec.DefaultMaxFrameSize,
		frameTimeout: 10 * time.Second,
		idleTimeout:  60 * time.Second,
		writeTimeout: 10 * time.Second,
		maxConns:     10000,

		workers: 10000,

		maxConnCalls: 1024,
		maxConnBytes: 4 << 20,
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

// WithMaxTimeout caps the time a handler may run: a request whose
// timeout_ms is 0 (no deadline) or longer runs with this deadline instead.
// 0 means no cap: a request without a deadline runs until its handler
// returns, or until its connection goes. Default: 0.
func WithMaxTimeout(d time.Duration) Option {
	return func(o *options) { o.maxTimeout = d }
}

// WithWorkers sets the size of the goroutine pool that runs handlers, which
// caps the handlers running at once. When every worker is busy, a
// connection's reader waits for one before it reads that connection's next
// request: the pool pushes back on the clients through TCP instead of
// queueing without bound or refusing work. Default: 10000.
func WithWorkers(n int) Option {
	return func(o *options) { o.workers = n }
}

// WithMaxConnCalls caps the calls in flight on one connection, as HTTP/2's
// max concurrent streams does. A connection at the cap is not read until
// one of its calls has been answered: TCP pushes back on its client, and
// the other connections' calls go on. The cap is at most half the workers
// (WithWorkers), so that no connection can hold every worker; 0 asks for
// no cap of its own, which leaves that one (none if the workers are not
// limited). Default: 1024.
func WithMaxConnCalls(n int) Option {
	return func(o *options) { o.maxConnCalls = n }
}

// WithMaxConnBytes caps the bytes one connection's calls hold at once: the
// requests being handled, and the responses not yet written. A connection
// at the cap is not read until a response has been written, so that a
// client that sends requests and never reads the replies costs the server
// this much memory and no more. A request is always read when the
// connection holds nothing, however big. 0 means no cap. Default: 4 MiB.
func WithMaxConnBytes(n int) Option {
	return func(o *options) { o.maxConnBytes = n }
}

// WithInterceptors adds interceptors that run around every method the
// server serves, with the decoded request: the first given outermost, and
// those of an earlier WithInterceptors outside those of a later one. A
// handler's panic reaches them as the code 13 error its caller gets.
// Default: none.
func WithInterceptors(interceptors ...rpc.UnaryServerInterceptor) Option {
	return func(o *options) { o.interceptors = append(o.interceptors, interceptors...) }
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

		if c.MaxTimeout > 0 {
			o.maxTimeout = c.MaxTimeout
		}
		if c.Workers > 0 {
			o.workers = c.Workers
		}

		if c.MaxConnCalls > 0 {
			o.maxConnCalls = c.MaxConnCalls
		}
		if c.MaxConnBytes > 0 {
			o.maxConnBytes = c.MaxConnBytes
		}
		o.services = append([]config.Service(nil), c.Services...)
	}
}
