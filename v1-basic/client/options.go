package client

import (
	"log/slog"
	"time"

	"myrpc/v1-basic/codec"
	"myrpc/v1-basic/config"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	timeout      time.Duration
	dialTimeout  time.Duration
	maxFrameSize int
	logger       *slog.Logger
}

func defaultOptions() options {
	return options{
		timeout:      30 * time.Second,
		dialTimeout:  5 * time.Second,
		maxFrameSize: codec.DefaultMaxFrameSize,
	}
}

// WithTimeout sets the deadline of a call whose context has none, so that
// no call waits forever on a server that never answers. 0 disables it.
// Default: 30 s.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithDialTimeout bounds connection set-up, within the call's deadline.
// Default: 5 s.
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) { o.dialTimeout = d }
}

// WithMaxFrameSize caps meta + body of the frames the client sends and
// accepts. Default: 4 MiB.
func WithMaxFrameSize(n int) Option {
	return func(o *options) { o.maxFrameSize = n }
}

// WithLogger sets the logger; per-call events are logged at Debug.
// Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithConfig applies the non-zero settings of rpc.yaml's client section.
// The target is not an option: pass it to New.
func WithConfig(c config.Client) Option {
	return func(o *options) {
		if c.Timeout > 0 {
			o.timeout = c.Timeout
		}
		if c.DialTimeout > 0 {
			o.dialTimeout = c.DialTimeout
		}
		if c.MaxFrameBytes > 0 {
			o.maxFrameSize = c.MaxFrameBytes
		}
	}
}
