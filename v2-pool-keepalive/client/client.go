package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v2-pool-keepalive/codec"
	"myrpc/v2-pool-keepalive/pool"
)

// ErrClientClosed is wrapped by the error of a call made after Close.
var ErrClientClosed = errors.New("rpc: client closed")

// aLongTimeAgo is a deadline in the past: setting it makes blocked I/O
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// Client calls one server. It implements rpc.Invoker, so generated stubs
// take it: helloworld.NewGreeterClient(client.New(addr)). It is safe for
// concurrent use; each call borrows a connection from the pool and gives it
// back.
type Client struct {
	target string
	opts   options
	log    *slog.Logger
	dialer net.Dialer
	seq    atomic.Uint32
	closed atomic.Bool

	// pools holds the connections between calls.
	pools *pool.Manager
}

var _ rpc.Invoker = (*Client)(nil)

// New returns a client of the server at target (host:port). It does not
// connect: the first call dials, and later calls reuse the connection.
func New(target string, opts ...Option) *Client {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	c := &Client{target: target, opts: o, log: o.logger, dialer: net.Dialer{Timeout: o.dialTimeout}}
	cfg := o.pool
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		return c.dialer.DialContext(ctx, "tcp", addr)
	}
	c.pools = pool.NewManager(cfg)
	return c
}

// Close makes later calls fail with ErrClientClosed, waits for the calls in
// flight to finish (each ends by its deadline), and closes the pooled
// connections.
func (c *Client) Close() error {
	c.closed.Store(true)
	return c.pools.Close(context.Background())
}

// PoolStats returns the connection pool's counters for the client's target.
func (c *Client) PoolStats() pool.Stats {
	return c.pools.Stats()[c.target]
}

// Invoke calls method ("/service/method") with req and decodes the response
// into reply. The error, if any, carries a status code: the server's, or
// Unavailable when the server could not be reached or the connection broke,
// DeadlineExceeded or Canceled when ctx ended, Internal for a response that
// does not decode.
func (c *Client) Invoke(ctx context.Context, method string, req, reply proto.Message, _ ...rpc.CallOption) error {
	if c.closed.Load() {
		return status.Errorf(codes.Canceled, "%w", ErrClientClosed)
	}
	service, name, ok := rpc.SplitMethod(method)
	if !ok {
		return status.Errorf(codes.InvalidArgument, "rpc: malformed method name %q, want /service/method", method)
	}
	if _, has := ctx.Deadline(); !has && c.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}

	// Build the whole request frame first: one buffer, one write.
	rm := &meta.RequestMeta{Service: service, Method: name, Metadata: rpc.OutgoingMetadata(ctx)}
	if deadline, ok := ctx.Deadline(); ok {
		rm.TimeoutMs = codec.TimeoutMs(time.Until(deadline))
	}
	seq := c.seq.Add(1)
	bp := codec.GetBuffer()
	defer codec.PutBuffer(bp)
	frame, err := codec.AppendFrame((*bp)[:0], codec.TypeRequest, seq, rm, req, c.opts.maxFrameSize)
	*bp = frame
	if err != nil {
		if errors.Is(err, codec.ErrFrameTooLarge) || errors.Is(err, codec.ErrMetaTooLarge) {
			return status.Errorf(codes.ResourceExhausted, "%w", err)
		}
		return status.Errorf(codes.Internal, "%w", err)
	}

	nc, err := c.pools.Get(ctx, c.target)
	if err != nil {
		return c.poolError(ctx, err)
	}
	f, err := c.roundTrip(ctx, nc, frame, seq)
	if err != nil {
		// A connection that saw an I/O or protocol error goes, never back
		// to the pool.
		c.pools.Put(nc, err)
		return err
	}
	closing, err := decodeResponse(f, reply)
	if closing {
		// The server closes the connection after this response (a V1
		// server after every one): it goes too.
		c.pools.Put(nc, errServerCloses)
	} else {
		// A response, error or not, leaves the stream in step.
		c.pools.Put(nc, nil)
	}
	return err
}

// errServerCloses discards a connection that the server closes.
var errServerCloses = errors.New("rpc: the server closes this connection")

// roundTrip writes a request frame on nc and reads the response frame,
// which must answer request seq. The context's deadline bounds every read
// and write, and cancelling the context interrupts them at once.
func (c *Client) roundTrip(ctx context.Context, nc net.Conn, frame []byte, seq uint32) (codec.Frame, error) {
	// Without a deadline in ctx this sets none, clearing any left behind.
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })

	if _, err := nc.Write(frame); err != nil {
		stop()
		return codec.Frame{}, c.ioError(ctx, "send", err)
	}
	f, err := codec.ReadFrame(nc, codec.TypeResponse, c.opts.maxFrameSize)
	if err != nil {
		stop()
		return codec.Frame{}, c.ioError(ctx, "receive", err)
	}
	if f.Seq != seq {
		stop()
		return codec.Frame{}, status.Errorf(codes.Internal, "rpc: response has sequence id %d, want %d", f.Seq, seq)
	}
	// The connection goes back to the pool, unless the context ended
	// meanwhile and its deadline is being set to the past, in which case
	// the connection cannot be trusted.
	if !stop() {
		return codec.Frame{}, contextError(ctx.Err())
	}
	return f, nil
}

// poolError gives a failed Get its status code: the context's end, a pool
// that waited its bound (ResourceExhausted), a closed client, or a failed
// dial (Unavailable).
func (c *Client) poolError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, pool.ErrExhausted):
		return status.Errorf(codes.ResourceExhausted, "%w", err)
	case errors.Is(err, pool.ErrClosed):
		return status.Errorf(codes.Canceled, "%w", ErrClientClosed)
	}
	return c.ioError(ctx, "dial "+c.target, err)
}

// decodeResponse decodes a response frame: into reply on success, into a
// status error otherwise. closing reports that the server closes the
// connection after this response (rpc.ConnectionClose).
func decodeResponse(f codec.Frame, reply proto.Message) (closing bool, err error) {
	rsp, err := codec.DecodeResponseMeta(f.Meta)
	if err != nil {
		return true, status.Errorf(codes.Internal, "rpc: cannot decode the response meta: %v", err)
	}
	closing = rpc.Closing(rsp.Metadata)
	if rsp.Code != uint32(codes.OK) {
		return closing, status.New(codes.Code(rsp.Code), rsp.Message)
	}
	if err := proto.Unmarshal(f.Body, reply); err != nil {
		return closing, status.Errorf(codes.Internal, "rpc: cannot decode the response body: %v", err)
	}
	return closing, nil
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
