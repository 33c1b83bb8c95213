package client

import (
	"log/slog"
	"time"

	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/balancer"
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/mux"
	"myrpc/v5-cluster/resolver"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	timeout      time.Duration
	dialTimeout  time.Duration
	maxFrameSize int
	logger       *slog.Logger

	mux   mux.Config
	retry RetryPolicy

	// interceptors run around every call, the first outermost.
	interceptors []rpc.UnaryClientInterceptor

	balancer            string
	ejectBase, ejectMax time.Duration
	resolver            resolver.Resolver
}

func defaultOptions() options {
	return options{
		timeout:      30 * time.Second,
		dialTimeout:  5 * time.Second,
		maxFrameSize: codec.DefaultMaxFrameSize,

		balancer:  balancer.P2C,
		ejectBase: time.Second,
		ejectMax:  30 * time.Second,
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

// WithMux sets the limits of the client's connections; see mux.Config for
// each field and its default. Its Dial, MaxFrameSize and Logger are
// replaced by the client's. Default: mux.Config{}, every field at its
// default.
func WithMux(cfg mux.Config) Option {
	return func(o *options) { o.mux = cfg }
}

// WithRetry sets the retry policy of every call that does not set its own
// (Retry). Default: no retries.
func WithRetry(p RetryPolicy) Option {
	return func(o *options) { o.retry = p }
}

// WithInterceptors adds interceptors that run around every call, Invoke's
// and InvokeAsync's: the first given outermost, and those of an earlier
// WithInterceptors outside those of a later one. Each sees the whole call,
// its retries included, and gets the client as its cc. An asynchronous
// call runs its interceptors, and then the call, on a goroutine of its own,
// and its future ends when the outermost returns; Close waits for it as
// for any call. Default: none.
func WithInterceptors(interceptors ...rpc.UnaryClientInterceptor) Option {
	return func(o *options) { o.interceptors = append(o.interceptors, interceptors...) }
}

// WithBalancer sets the policy that picks the server of each call:
// "p2c" (balancer.P2C) takes two servers at random and sends the call to
// the one with fewer calls in flight; "round_robin" (balancer.RoundRobin)
// takes them in turn. Another name makes every call fail with
// InvalidArgument. Default: "p2c".
func WithBalancer(policy string) Option {
	return func(o *options) { o.balancer = policy }
}

// WithEjection sets how long a server whose connections fail is left out:
// base the first time, doubled for each failure in a row up to limit, each
// spread at random by up to a fifth either way and never over limit.
// Default: 1 s and 30 s.
func WithEjection(base, limit time.Duration) Option {
	return func(o *options) { o.ejectBase, o.ejectMax = base, limit }
}

// WithResolver sets the resolver of a scheme:///name target: it finds the
// addresses of the service name, and follows them as servers come and go.
// A host:port target needs none.
func WithResolver(r resolver.Resolver) Option {
	return func(o *options) { o.resolver = r }
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
		if c.Mux.MaxConns > 0 {
			o.mux.MaxConns = c.Mux.MaxConns
		}
		if c.Mux.MaxStreams > 0 {
			o.mux.MaxStreams = c.Mux.MaxStreams
		}
		if c.Mux.IdleTimeout > 0 {
			o.mux.IdleTimeout = c.Mux.IdleTimeout
		}
		if c.Mux.WaitTimeout > 0 {
			o.mux.WaitTimeout = c.Mux.WaitTimeout
		}
		if c.Balancer != "" {
			o.balancer = c.Balancer
		}
		if c.Retry.Attempts > 0 {
			o.retry = RetryPolicy{Attempts: c.Retry.Attempts, Base: c.Retry.Base, Cap: c.Retry.Cap,
				Jitter: c.Retry.Jitter, PerAttempt: c.Retry.PerAttempt}
		}
	}
}
