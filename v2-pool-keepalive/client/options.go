package client

import (
	"log/slog"
	"time"

	"myrpc/v2-pool-keepalive/codec"
	"myrpc/v2-pool-keepalive/config"
	"myrpc/v2-pool-keepalive/pool"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	timeout      time.Duration
	dialTimeout  time.Duration
	maxFrameSize int
	logger       *slog.Logger

	pool pool.Config
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

// WithPool sets the connection pool's limits; see pool.Config for each
// field and its default. Its Dial is replaced by the client's dialer.
// Default: pool.Config{}, every field at its default.
func WithPool(cfg pool.Config) Option {
	return func(o *options) { o.pool = cfg }
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
		if c.Pool.MaxActive > 0 {
			o.pool.MaxActive = c.Pool.MaxActive
		}
		if c.Pool.MaxIdle > 0 {
			o.pool.MaxIdle = c.Pool.MaxIdle
		}
		if c.Pool.IdleTimeout > 0 {
			o.pool.IdleTimeout = c.Pool.IdleTimeout
		}
		if c.Pool.MaxLifetime > 0 {
			o.pool.MaxLifetime = c.Pool.MaxLifetime
		}
		if c.Pool.WaitTimeout > 0 {
			o.pool.WaitTimeout = c.Pool.WaitTimeout
		}
	}
}
