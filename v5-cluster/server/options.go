package server

import (
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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

	// The registry the server puts its addresses in (WithRegistry).
	registry        *clientv3.Client
	registryService string
	registryTTL     time.Duration
	advertiseAddr   string
	deregisterWait  time.Duration
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

		registryTTL:    DefaultRegistryTTL,
		deregisterWait: DefaultDeregisterWait,
	}
}

// The registry's defaults (WithRegistry, WithDeregisterWait).
const (
	// DefaultRegistryTTL is the lease of a registered address: a server
	// that dies without Shutdown stays listed this long at most.
	DefaultRegistryTTL = 10 * time.Second
	// DefaultDeregisterWait is how long Shutdown goes on serving after it
	// took the server's addresses out of the registry. Clients watching
	// the registry see a removal within milliseconds when etcd is near;
	// the rest is room for a busy client or a far etcd.
	DefaultDeregisterWait = time.Second
)

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

// WithRegistry lists the server in etcd, through cli, as a server of
// service, the name clients resolve (etcd:///service): when Serve starts
// on a listener it puts the listener's address (or the one of
// WithAdvertiseAddr) under /myrpc/services/<service>/<addr> in a lease of
// ttl, which it keeps alive (package registry); 0 means
// DefaultRegistryTTL. Serve fails if the address cannot be put there.
// Shutdown first takes the addresses out, then goes on serving for the
// deregister wait (WithDeregisterWait), so that clients stop picking the
// server, and only then drains it. Close does not wait for etcd: the key
// of a closed server, as of one that died, goes when its lease ends. cli
// stays the caller's to close, after Shutdown. A listener that serves
// only some services is not listed under the name of a service it leaves
// out. Default: no registry.
func WithRegistry(cli *clientv3.Client, service string, ttl time.Duration) Option {
	return func(o *options) {
		o.registry, o.registryService = cli, service
		if ttl > 0 {
			o.registryTTL = ttl
		}
	}
}

// WithAdvertiseAddr sets the address the server registers (WithRegistry)
// instead of its listener's: the one clients can dial, for a server that
// listens on 0.0.0.0 or behind NAT. A host alone keeps each listener's
// port. Default: the listener's address, which must not be 0.0.0.0 or ::
// then.
func WithAdvertiseAddr(addr string) Option {
	return func(o *options) { o.advertiseAddr = addr }
}

// WithDeregisterWait sets how long Shutdown goes on serving after it took
// the server's addresses out of the registry, before it stops accepting
// and drains: the time the clients watching the registry have to stop
// picking the server. A Shutdown whose context ends first drains at once.
// 0 means no wait. Default: DefaultDeregisterWait (1 s).
func WithDeregisterWait(d time.Duration) Option {
	return func(o *options) { o.deregisterWait = d }
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
