package server

import (
	"log/slog"
	"time"

	"myrpc/v1-basic/codec"
	"myrpc/v1-basic/config"
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
}

func defaultOptions() options {
	return options{
		maxFrameSize: codec.DefaultMaxFrameSize,
		frameTimeout: 10 * time.Second,
		idleTimeout:  60 * time.Second,
		writeTimeout: 10 * time.Second,
		maxConns:     10000,
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

// WithIdleTimeout bounds the wait for a request's first byte on an accepted
// connection. 0 means no limit. Default: 60 s.
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
		o.services = append([]config.Service(nil), c.Services...)
	}
}
