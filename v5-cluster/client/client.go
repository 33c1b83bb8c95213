package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/async"
	"myrpc/v5-cluster/balancer"
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/mux"
	"myrpc/v5-cluster/resolver"
)

// ErrClientClosed is wrapped by the error of a call made after Close.
var ErrClientClosed = errors.New("rpc: client closed")

// Client calls the servers of a target. It implements rpc.Invoker and
// rpc.AsyncInvoker, so generated stubs take it:
// helloworld.NewGreeterClient(client.New(addr)) and
// helloworld.NewGreeterAsyncClient(...). It is safe for concurrent use;
// its calls to each server share a few connections, many in flight on
// each.
type Client struct {
	target string
	opts   options
	log    *slog.Logger
	dialer net.Dialer
	closed atomic.Bool
	// closeMu orders a call's start against Close: a call either sees the
	// client closed, or is counted in calls before Close waits for them.
	closeMu sync.RWMutex

	// retries holds every call waiting to be tried again.
	retries *async.Queue
	// calls counts the calls in flight, for Close.
	calls sync.WaitGroup

	// interceptor is the chain of the interceptors (WithInterceptors), nil
	// when there are none.
	interceptor rpc.UnaryClientInterceptor

	// lb holds an endpoint per server address of the target, each with
	// its multiplexed connections, and picks the endpoint of each call.
	lb *balancer.Balancer
	// resolving follows the addresses of a scheme:///name target; nil for
	// host:port.
	resolving io.Closer
	// setupErr, if set, is why the client cannot call at all: every call
	// fails with it.
	setupErr error

	// unresolved, while set, is why a scheme:///name target has no
	// servers yet: its resolver failed, and resolveAgain tries it again
	// until it answers or Close stops it (stopResolving); every call fails
	// with it meanwhile. resolveMu protects resolving while resolveAgain
	// runs; resolverDone is closed when it has returned.
	unresolved    atomic.Pointer[error]
	resolveMu     sync.Mutex
	stopResolving chan struct{}
	stopOnce      sync.Once
	resolverDone  chan struct{}
}

var (
	_ rpc.Invoker      = (*Client)(nil)
	_ rpc.AsyncInvoker = (*Client)(nil)
)

// New returns a client of the servers at target: host:port is one server;
// scheme:///name, such as etcd:///myrpc.helloworld.Greeter, is the servers
// that the resolver given with WithResolver finds for the service name,
// whatever the scheme. Calls are spread over the servers by the balancing
// policy (WithBalancer). New does not connect: the first call to a server
// dials, and later calls share the connection. A scheme:///name target
// without a resolver, or a bad option, makes every call fail with
// InvalidArgument, as does a name the resolver rejects. One that the
// resolver could not resolve (etcd unreachable, say) is tried again in the
// background, a second later, then at doubling intervals up to 30 s, until
// it resolves; calls fail with Unavailable until then.
func New(target string, opts ...Option) *Client {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	c := &Client{target: target, opts: o, log: o.logger, dialer: net.Dialer{Timeout: o.dialTimeout}}
	cfg := o.mux
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		return c.dialer.DialContext(ctx, "tcp", addr)
	}
	cfg.MaxFrameSize = o.maxFrameSize
	cfg.Logger = o.logger
	c.lb = balancer.New(balancer.Config{Policy: o.balancer, EjectBase: o.ejectBase, EjectMax: o.ejectMax, Mux: cfg})
	c.retries = async.NewQueue()
	c.interceptor = rpc.ChainUnaryClient(o.interceptors...)
	c.resolve(target)
	return c
}

// resolve gives the balancer the target's addresses: host:port at once,
// or those the resolver finds for scheme:///name, as they change.
func (c *Client) resolve(target string) {
	if err := balancer.CheckPolicy(c.opts.balancer); err != nil {
		c.setupErr = err
		return
	}
	scheme, name, ok := strings.Cut(target, ":///")
	if !ok {
		c.lb.Update([]string{target})
		return
	}
	if c.opts.resolver == nil {
		c.setupErr = fmt.Errorf("rpc: target %q: no resolver for scheme %q (WithResolver)", target, scheme)
		return
	}
	closer, err := c.opts.resolver.Resolve(name, c.lb.Update)
	if err != nil {
		if errors.Is(err, resolver.ErrNoAddrs) || errors.Is(err, resolver.ErrBadName) {
			c.setupErr = fmt.Errorf("rpc: target %q: %w", target, err)
			return
		}
		// Not the target's fault: the resolver could not reach what it
		// asks (etcd away, say). It may answer later.
		c.setUnresolved(target, err)
		c.log.Warn("rpc: target not resolved; trying again", "target", target, "in", resolveRetryBase, "err", err)
		c.stopResolving = make(chan struct{})
		c.resolverDone = make(chan struct{})
		go c.resolveAgain(target, name)
		return
	}
	c.resolving = closer
}

// setUnresolved records why target has no servers yet.
func (c *Client) setUnresolved(target string, err error) {
	e := error(status.Errorf(codes.Unavailable, "rpc: target %q not resolved yet, trying again: %v", target, err))
	c.unresolved.Store(&e)
}

// resolveRetryBase and resolveRetryMax bound the waits between two tries
// of a target that did not resolve: the first, doubled after each failure.
const (
	resolveRetryBase = time.Second
	resolveRetryMax  = 30 * time.Second
)

// resolveAgain tries to resolve name until the resolver answers, or Close.
func (c *Client) resolveAgain(target, name string) {
	defer close(c.resolverDone)
	wait := resolveRetryBase
	for {
		// Spread by up to a fifth either way, so that clients that
		// started together do not all ask together.
		t := time.NewTimer(time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64())))
		select {
		case <-c.stopResolving:
			t.Stop()
			return
		case <-t.C:
		}
		closer, err := c.opts.resolver.Resolve(name, c.lb.Update)
		if err == nil {
			c.resolveMu.Lock()
			c.resolving = closer
			c.resolveMu.Unlock()
			c.unresolved.Store(nil)
			c.log.Info("rpc: target resolved", "target", target)
			return
		}
		c.setUnresolved(target, err)
		wait = min(2*wait, resolveRetryMax)
		c.log.Warn("rpc: target not resolved; trying again", "target", target, "in", wait, "err", err)
	}
}

// Close makes later calls fail with ErrClientClosed, ends the calls waiting
// for a retry with the error of their last attempt, waits for the calls in
// flight to finish (each ends by its deadline), and closes the connections.
func (c *Client) Close() error {
	c.closeMu.Lock()
	c.closed.Store(true)
	c.closeMu.Unlock()
	if c.stopResolving != nil {
		// A resolution under way is waited for: at most the resolver's
		// own timeout.
		c.stopOnce.Do(func() { close(c.stopResolving) })
		<-c.resolverDone
	}
	c.resolveMu.Lock()
	resolving := c.resolving
	c.resolveMu.Unlock()
	if resolving != nil {
		resolving.Close()
	}
	for _, run := range c.retries.Close() {
		run() // sees the client closed, and ends its call
	}
	// Each server's connections close when its calls have ended. A call
	// that had not picked a server when Close began fails as a later one.
	c.lb.Close()
	c.calls.Wait()
	return nil
}

// MuxStats returns the counters of the client's connections, to every
// server.
func (c *Client) MuxStats() mux.Stats {
	return c.lb.MuxStats()
}

// Endpoints returns the counters of the servers the client calls.
func (c *Client) Endpoints() []balancer.Stats {
	return c.lb.Stats()
}

// Invoke calls method ("/service/method") with req and decodes the response
// into reply. The error, if any, carries a status code: the server's, or
// Unavailable when the server could not be reached or the connection broke,
// DeadlineExceeded or Canceled when ctx ended, Internal for a response that
// does not decode. opts may hold Retry, Idempotent, OnRetry and
// rpc.Trailer. The interceptors (WithInterceptors) run around the call.
func (c *Client) Invoke(ctx context.Context, method string, req, reply proto.Message, opts ...rpc.CallOption) error {
	if c.interceptor != nil {
		return c.interceptor(ctx, method, req, reply, c, c.invoke, opts...)
	}
	return c.invoke(ctx, method, req, reply, opts...)
}

// invoke makes a call without the interceptors: the last step of their
// chain.
func (c *Client) invoke(ctx context.Context, method string, req, reply proto.Message, opts ...rpc.CallOption) error {
	f := c.start(ctx, method, req, reply, opts, false)
	<-f.Done()
	return f.Err()
}

// InvokeAsync starts the same call as Invoke and returns at once, with a
// future that ends when Invoke would have returned. With interceptors, the
// call runs through them on a goroutine of its own (WithInterceptors).
func (c *Client) InvokeAsync(ctx context.Context, method string, req, reply proto.Message, opts ...rpc.CallOption) rpc.Future {
	if c.interceptor != nil {
		return c.startIntercepted(ctx, method, req, reply, opts)
	}
	return c.start(ctx, method, req, reply, opts, true)
}

// startIntercepted runs an asynchronous call through the interceptors, on
// a goroutine that Close waits for, as for a call in flight: the chain
// cannot be cut short, so the future ends when it returns.
func (c *Client) startIntercepted(ctx context.Context, method string, req, reply proto.Message, opts []rpc.CallOption) *async.Future {
	c.closeMu.RLock()
	if c.closed.Load() {
		c.closeMu.RUnlock()
		return async.Failed(status.Errorf(codes.Canceled, "%w", ErrClientClosed))
	}
	c.calls.Add(1)
	c.closeMu.RUnlock()
	f := async.NewFuture()
	go func() {
		defer c.calls.Done()
		f.Complete(c.interceptor(ctx, method, req, reply, c, c.invoke, opts...))
	}()
	return f
}

// start builds the request frame and makes the first attempt, on the
// caller's goroutine. An async call does both on a goroutine of its own,
// since encoding a big request, dialing, or waiting for other calls' writes
// takes time its caller does not wait for. The call ends with its response,
// its error, or its context, whichever comes first.
func (c *Client) start(ctx context.Context, method string, req, reply proto.Message, opts []rpc.CallOption, detach bool) *async.Future {
	if c.closed.Load() {
		return async.Failed(status.Errorf(codes.Canceled, "%w", ErrClientClosed))
	}
	if c.setupErr != nil {
		if status.Code(c.setupErr) == codes.Unknown {
			return async.Failed(status.Errorf(codes.InvalidArgument, "%w", c.setupErr))
		}
		return async.Failed(c.setupErr)
	}
	if err := c.unresolved.Load(); err != nil {
		return async.Failed(*err)
	}
	service, name, ok := rpc.SplitMethod(method)
	if !ok {
		return async.Failed(status.Errorf(codes.InvalidArgument, "rpc: malformed method name %q, want /service/method", method))
	}
	cancel := func() {}
	if _, has := ctx.Deadline(); !has && c.opts.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout)
	}
	if err := ctx.Err(); err != nil {
		cancel()
		return async.Failed(contextError(err))
	}
	var frame []byte
	if !detach {
		var err error
		if frame, err = c.encodeRequest(ctx, service, name, req); err != nil {
			cancel()
			return async.Failed(err)
		}
	}
	c.closeMu.RLock()
	if c.closed.Load() {
		c.closeMu.RUnlock()
		cancel()
		return async.Failed(status.Errorf(codes.Canceled, "%w", ErrClientClosed))
	}
	c.calls.Add(1) // Done in call.end
	c.closeMu.RUnlock()
	cl := newCall(c, ctx, cancel, method, frame, reply, c.callOptions(opts))
	if !detach {
		cl.own = true
		cl.attempt()
		return cl.future
	}
	go func() {
		frame, err := c.encodeRequest(ctx, service, name, req)
		if err != nil {
			cl.end(err)
			return
		}
		cl.frame = frame
		cl.attempt()
	}()
	return cl.future
}

// encodeRequest builds the whole request frame: one buffer, one write. Its
// sequence id is set by the connection that sends it, for each attempt.
func (c *Client) encodeRequest(ctx context.Context, service, name string, req proto.Message) ([]byte, error) {
	rm := &meta.RequestMeta{Service: service, Method: name, Metadata: rpc.OutgoingMetadata(ctx)}
	if deadline, ok := ctx.Deadline(); ok {
		rm.TimeoutMs = codec.TimeoutMs(time.Until(deadline))
	}
	frame, err := codec.AppendFrame(nil, codec.TypeRequest, 0, rm, req, c.opts.maxFrameSize)
	if err != nil {
		if errors.Is(err, codec.ErrFrameTooLarge) || errors.Is(err, codec.ErrMetaTooLarge) {
			return nil, status.Errorf(codes.ResourceExhausted, "%w", err)
		}
		return nil, status.Errorf(codes.Internal, "%w", err)
	}
	return frame, nil
}

// groupError gives a failed Pick its status code: the context's end, every
// connection full for the wait bound (ResourceExhausted), a closed client,
// no server address, or a failed dial (Unavailable).
func (c *Client) groupError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, mux.ErrExhausted):
		return status.Errorf(codes.ResourceExhausted, "%w", err)
	case errors.Is(err, mux.ErrClosed), errors.Is(err, balancer.ErrClosed):
		return status.Errorf(codes.Canceled, "%w", ErrClientClosed)
	case errors.Is(err, balancer.ErrNoEndpoints):
		return status.Errorf(codes.Unavailable, "rpc: %s: %w", c.target, err)
	}
	return c.ioError(ctx, "dial "+c.target, err)
}

// ioError gives a failed dial, read or write its status code. The context's
// end takes precedence: a read cut short by the deadline is
// DeadlineExceeded, not a broken connection.
func (c *Client) ioError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return contextError(ctxErr)
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		// The deadline has passed and ctx's timer has not fired yet: a
		// dial that ran on the same deadline can end first, with
		// "i/o timeout".
		return contextError(context.DeadlineExceeded)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return status.Errorf(codes.DeadlineExceeded, "rpc: %s: %w", op, context.DeadlineExceeded)
	}
	switch {
	case errors.Is(err, codec.ErrFrameTooLarge), errors.Is(err, codec.ErrMetaTooLarge):
		return status.Errorf(codes.ResourceExhausted, "rpc: %s: %w", op, err)
	case errors.Is(err, codec.ErrBadMagic), errors.Is(err, codec.ErrBadVersion), errors.Is(err, codec.ErrBadType):
		return status.Errorf(codes.Internal, "rpc: %s: %w", op, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return status.Errorf(codes.Unavailable, "rpc: %s: connection closed before the response: %w", op, err)
	}
	c.log.Debug("rpc: call failed", "target", c.target, "op", op, "err", err)
	return status.Errorf(codes.Unavailable, "rpc: %s: %w", op, err)
}

// contextError turns a context's error into Canceled or DeadlineExceeded,
// keeping the context error in the chain for errors.Is.
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Errorf(codes.DeadlineExceeded, "rpc: %w", err)
	}
	return status.Errorf(codes.Canceled, "rpc: %w", err)
}
