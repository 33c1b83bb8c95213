package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v2-pool-keepalive/codec"
	"myrpc/v2-pool-keepalive/config"
	"myrpc/v2-pool-keepalive/pool"
)

// wantCode fails the test unless err is a *status.Error with code.
func wantCode(t *testing.T, err error, code codes.Code) *status.Error {
	t.Helper()
	var se *status.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *status.Error", err, err)
	}
	if se.Code() != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	return se
}

func TestIOError(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()

	readErr := func(err error) error { return &net.OpError{Op: "read", Net: "tcp", Err: err} }
	passed := pastDeadline{Context: context.Background(), deadline: time.Now().Add(-time.Millisecond)}
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: ioTimeout{}}
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		code codes.Code
		// is must be in the result's chain.
		is error
	}{
		{"read deadline", live, readErr(os.ErrDeadlineExceeded), codes.DeadlineExceeded, context.DeadlineExceeded},
		{"EOF", live, io.EOF, codes.Unavailable, io.EOF},
		{"unexpected EOF", live, io.ErrUnexpectedEOF, codes.Unavailable, io.ErrUnexpectedEOF},
		{"ECONNRESET", live, readErr(os.NewSyscallError("read", syscall.ECONNRESET)), codes.Unavailable, syscall.ECONNRESET},
		{"EPIPE", live, &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, codes.Unavailable, syscall.EPIPE},
		{"frame too large", live, fmt.Errorf("%w: 5 MiB", codec.ErrFrameTooLarge), codes.ResourceExhausted, codec.ErrFrameTooLarge},
		{"meta too large", live, fmt.Errorf("%w: 65 KiB", codec.ErrMetaTooLarge), codes.ResourceExhausted, codec.ErrMetaTooLarge},
		{"bad magic", live, codec.ErrBadMagic, codes.Internal, codec.ErrBadMagic},
		{"bad version", live, fmt.Errorf("%w 2", codec.ErrBadVersion), codes.Internal, codec.ErrBadVersion},
		{"bad type", live, fmt.Errorf("%w 1", codec.ErrBadType), codes.Internal, codec.ErrBadType},
		{"dial refused", live, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, codes.Unavailable, syscall.ECONNREFUSED},
		{"dial: no such host", live, &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, codes.Unavailable, nil},
		// The context's end takes precedence over what it did to the I/O.
		{"cancelled, read cut short", cancelled, readErr(os.ErrDeadlineExceeded), codes.Canceled, context.Canceled},
		{"cancelled, EOF", cancelled, io.EOF, codes.Canceled, context.Canceled},
		{"cancelled, dial error", cancelled, &net.OpError{Op: "dial", Err: context.Canceled}, codes.Canceled, context.Canceled},
		{"expired, read cut short", expired, readErr(os.ErrDeadlineExceeded), codes.DeadlineExceeded, context.DeadlineExceeded},
		{"expired, frame too large", expired, codec.ErrFrameTooLarge, codes.DeadlineExceeded, context.DeadlineExceeded},
		// Past its deadline, before its timer fires: a dial cut short by
		// the same deadline says only "i/o timeout".
		{"passed, timer not fired, dial timed out", passed, dialTimeout, codes.DeadlineExceeded, context.DeadlineExceeded},
		{"live, dial timed out", live, dialTimeout, codes.Unavailable, nil},
	}
	c := New("127.0.0.1:1", WithLogger(quietLogger()))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.ioError(tt.ctx, "receive", tt.err)
			wantCode(t, err, tt.code)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

// pastDeadline is a context in the moment after its deadline, before
// its timer has marked it done.
type pastDeadline struct {
	context.Context
	deadline time.Time
}

func (c pastDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// ioTimeout is the error the net package gives a dial its own deadline
// cut short: a timeout, but not os.ErrDeadlineExceeded.
type ioTimeout struct{}

func (ioTimeout) Error() string   { return "i/o timeout" }
func (ioTimeout) Timeout() bool   { return true }
func (ioTimeout) Temporary() bool { return true }

func TestContextError(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
	}{
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("wrapped: %w", context.Canceled), codes.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			err := contextError(tt.err)
			wantCode(t, err, tt.code)
			if !errors.Is(err, tt.err) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.err)
			}
		})
	}
}

// respFrame encodes a response frame.
func respFrame(t *testing.T, seq uint32, rm *meta.ResponseMeta, body proto.Message) []byte {
	t.Helper()
	b, err := codec.AppendFrame(nil, codec.TypeResponse, seq, rm, body, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawResp encodes a response frame from raw meta and body bytes.
func rawResp(seq uint32, metaBytes, body []byte) []byte {
	b := make([]byte, codec.HeaderLen, codec.HeaderLen+len(metaBytes)+len(body))
	codec.PutHeader(b, codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: seq,
		MetaLen: uint32(len(metaBytes)), BodyLen: uint32(len(body))})
	b = append(b, metaBytes...)
	return append(b, body...)
}

// TestBadResponses: a fake server answers in every wrong way; each gets
// its code.
func TestBadResponses(t *testing.T) {
	goodReply := &helloworld.HelloReply{Msg: "Hello x"}
	ok := &meta.ResponseMeta{}
	// A length-delimited field whose length runs past the end: not valid
	// protobuf.
	truncated := []byte{0x12, 0x05, 'a'}
	tests := []struct {
		name    string
		opts    []Option
		respond func(t *testing.T, r received) []byte
		code    codes.Code
		// msg must be in the error's message.
		msg string
		// is, if set, must be in the error's chain.
		is error
	}{
		{"good", nil, func(t *testing.T, r received) []byte {
			return respFrame(t, r.seq, ok, goodReply)
		}, codes.OK, "", nil},
		{"wrong sequence id", nil, func(t *testing.T, r received) []byte {
			return respFrame(t, r.seq+1, ok, goodReply)
		}, codes.Internal, "sequence id", nil},
		{"wrong magic", nil, func(t *testing.T, r received) []byte {
			b := respFrame(t, r.seq, ok, goodReply)
			b[0], b[1] = 'H', 'T'
			return b
		}, codes.Internal, "", codec.ErrBadMagic},
		{"wrong version", nil, func(t *testing.T, r received) []byte {
			b := respFrame(t, r.seq, ok, goodReply)
			b[2] = codec.Version + 1
			return b
		}, codes.Internal, "", codec.ErrBadVersion},
		{"request type", nil, func(t *testing.T, r received) []byte {
			b := respFrame(t, r.seq, ok, goodReply)
			b[3] = byte(codec.TypeRequest)
			return b
		}, codes.Internal, "", codec.ErrBadType},
		{"meta does not decode", nil, func(t *testing.T, r received) []byte {
			return rawResp(r.seq, truncated, nil)
		}, codes.Internal, "response meta", nil},
		{"body does not decode", nil, func(t *testing.T, r received) []byte {
			return rawResp(r.seq, nil, truncated)
		}, codes.Internal, "response body", nil},
		{"over the client's frame limit", []Option{WithMaxFrameSize(1024)}, func(t *testing.T, r received) []byte {
			return respFrame(t, r.seq, ok, &helloworld.HelloReply{Msg: strings.Repeat("x", 2048)})
		}, codes.ResourceExhausted, "", codec.ErrFrameTooLarge},
		{"meta over 64 KiB", nil, func(t *testing.T, r received) []byte {
			b := make([]byte, codec.HeaderLen)
			codec.PutHeader(b, codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: r.seq, MetaLen: codec.MaxMetaLen + 1})
			return b
		}, codes.ResourceExhausted, "", codec.ErrMetaTooLarge},
		{"server's code", nil, func(t *testing.T, r received) []byte {
			return respFrame(t, r.seq, &meta.ResponseMeta{Code: uint32(codes.NotFound), Message: "no such greeting"}, nil)
		}, codes.NotFound, "no such greeting", nil},
		{"code with a body", nil, func(t *testing.T, r received) []byte {
			return respFrame(t, r.seq, &meta.ResponseMeta{Code: uint32(codes.Unavailable), Message: "busy"}, goodReply)
		}, codes.Unavailable, "busy", nil},
		{"closed without an answer", nil, func(*testing.T, received) []byte {
			return nil
		}, codes.Unavailable, "", io.EOF},
		{"half a header", nil, func(t *testing.T, r received) []byte {
			return respFrame(t, r.seq, ok, goodReply)[:5]
		}, codes.Unavailable, "", io.ErrUnexpectedEOF},
		{"half a body", nil, func(t *testing.T, r received) []byte {
			b := respFrame(t, r.seq, ok, goodReply)
			return b[:len(b)-2]
		}, codes.Unavailable, "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeServer(t, func(nc net.Conn, r received) {
				nc.Write(tt.respond(t, r))
			})
			c := New(fake.addr, append([]Option{WithLogger(quietLogger())}, tt.opts...)...)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var reply helloworld.HelloReply
			err := c.Invoke(ctx, helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{Msg: "x"}, &reply)
			if tt.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(&reply, goodReply) {
					t.Fatalf("reply %v, want %v", &reply, goodReply)
				}
				return
			}
			se := wantCode(t, err, tt.code)
			if !strings.Contains(se.Message(), tt.msg) {
				t.Fatalf("message %q does not contain %q", se.Message(), tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

// TestRequestOnTheWire: the request carries the method, the body, the
// caller's metadata and the time the caller has left.
func TestRequestOnTheWire(t *testing.T) {
	md := rpc.Metadata{"trace-id": "abc123", "user": "ana"}
	tests := []struct {
		name string
		opts []Option
		// deadline is the context's; 0 means none.
		deadline time.Duration
		md       rpc.Metadata
		// timeout_ms must be in (lo, hi].
		lo, hi uint32
	}{
		{"context deadline", nil, 2 * time.Second, md, 1000, 2000},
		{"context deadline shorter than the default", []Option{WithTimeout(time.Hour)}, 2 * time.Second, nil, 1000, 2000},
		{"default timeout", []Option{WithTimeout(3 * time.Second)}, 0, md, 2000, 3000},
		{"no timeout", []Option{WithTimeout(0)}, 0, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeServer(t, func(nc net.Conn, r received) {
				nc.Write(respFrame(t, r.seq, &meta.ResponseMeta{}, &helloworld.HelloReply{Msg: "ok"}))
			})
			// The fake server closes each connection after one response:
			// a lifetime of 1 ns makes the pool close it too, not reuse it.
			c := New(fake.addr, append([]Option{WithLogger(quietLogger()), WithPool(pool.Config{MaxLifetime: time.Nanosecond})}, tt.opts...)...)
			defer c.Close()
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if tt.md != nil {
				ctx = rpc.WithOutgoingMetadata(ctx, tt.md)
			}
			var seqs []uint32
			for i := range 2 {
				msg := fmt.Sprint("call ", i)
				if _, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: msg}); err != nil {
					t.Fatal(err)
				}
				r := fake.request(t)
				seqs = append(seqs, r.seq)
				if r.meta.Service != "myrpc.helloworld.Greeter" || r.meta.Method != "Hello" {
					t.Fatalf("request for %s/%s", r.meta.Service, r.meta.Method)
				}
				var req helloworld.HelloRequest
				if err := proto.Unmarshal(r.body, &req); err != nil || req.Msg != msg {
					t.Fatalf("request body %q, %v; want msg %q", r.body, err, msg)
				}
				if got := r.meta.TimeoutMs; tt.hi == 0 && got != 0 || tt.hi > 0 && (got <= tt.lo || got > tt.hi) {
					t.Fatalf("timeout_ms %d, want in (%d, %d]", got, tt.lo, tt.hi)
				}
				if len(tt.md) > 0 || len(r.meta.Metadata) > 0 {
					if !reflect.DeepEqual(map[string]string(tt.md), r.meta.Metadata) {
						t.Fatalf("metadata %v, want %v", r.meta.Metadata, tt.md)
					}
				}
			}
			if seqs[0] == seqs[1] {
				t.Fatalf("two calls had the same sequence id %d", seqs[0])
			}
		})
	}
}

// TestDefaultTimeout: WithTimeout bounds a call whose context has no
// deadline.
func TestDefaultTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	fake := newFakeServer(t, nil)
	c := New(fake.addr, WithTimeout(timeout), WithLogger(quietLogger()))
	defer c.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := helloworld.NewGreeterClient(c).Hello(context.Background(), &helloworld.HelloRequest{Msg: "anyone?"})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		// The fake server's cleanup closes the connection, which ends
		// the call.
		t.Fatal("a call without a deadline did not end at the default timeout")
	}
	d := time.Since(start)
	wantCode(t, err, codes.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	if d < timeout-10*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("the call returned after %v; the default timeout is %v", d, timeout)
	}
	if r := fake.request(t); r.meta.TimeoutMs == 0 || r.meta.TimeoutMs > 150 {
		t.Fatalf("timeout_ms %d, want in (0, 150]", r.meta.TimeoutMs)
	}
}

// TestNoTimeout: WithTimeout(0) leaves a call without a deadline; only its
// context ends it.
func TestNoTimeout(t *testing.T) {
	fake := newFakeServer(t, nil)
	c := New(fake.addr, WithTimeout(0), WithLogger(quietLogger()))
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "waiting"})
		done <- err
	}()
	if r := fake.request(t); r.meta.TimeoutMs != 0 {
		t.Fatalf("timeout_ms %d, want 0 (no deadline)", r.meta.TimeoutMs)
	}
	select {
	case err := <-done:
		t.Fatalf("the call returned before its cancellation: %v", err)
	default:
	}
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		wantCode(t, err, codes.Canceled)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("errors.Is(%v, context.Canceled) = false", err)
		}
		if d := time.Since(cancelled); d > time.Second {
			t.Fatalf("the call returned %v after its cancellation", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
}

func TestCloseRefusesCalls(t *testing.T) {
	c := New("127.0.0.1:1", WithLogger(quietLogger()))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	err := c.Invoke(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{}, &helloworld.HelloReply{})
	wantCode(t, err, codes.Canceled)
	if !errors.Is(err, ErrClientClosed) {
		t.Fatalf("errors.Is(%v, ErrClientClosed) = false", err)
	}
}

// TestWithConfig: WithConfig applies the non-zero settings and keeps the
// defaults for the rest.
func TestWithConfig(t *testing.T) {
	def := defaultOptions()
	tests := []struct {
		name string
		cfg  config.Client
		want func(o *options)
	}{
		{"zero", config.Client{}, func(*options) {}},
		{"target only", config.Client{Target: "127.0.0.1:9"}, func(*options) {}},
		{"every field", config.Client{Target: "127.0.0.1:9", Timeout: time.Second, DialTimeout: 2 * time.Second, MaxFrameBytes: 100},
			func(o *options) {
				o.timeout = time.Second
				o.dialTimeout = 2 * time.Second
				o.maxFrameSize = 100
			}},
		{"dial timeout only", config.Client{DialTimeout: 3 * time.Second}, func(o *options) {
			o.dialTimeout = 3 * time.Second
		}},
		{"negative values are ignored", config.Client{Timeout: -time.Second, MaxFrameBytes: -1}, func(*options) {}},
		{"pool settings", config.Client{Pool: config.Pool{MaxActive: 3, WaitTimeout: time.Second}}, func(o *options) {
			o.pool.MaxActive = 3
			o.pool.WaitTimeout = time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New("127.0.0.1:1", WithConfig(tt.cfg))
			want := def
			tt.want(&want)
			got := c.opts
			got.logger = nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("options\n got %+v\nwant %+v", got, want)
			}
			if c.dialer.Timeout != want.dialTimeout {
				t.Fatalf("dialer timeout %v, want %v", c.dialer.Timeout, want.dialTimeout)
			}
			if c.target != "127.0.0.1:1" {
				t.Fatalf("target %q: WithConfig must not change it", c.target)
			}
		})
	}
	// Options apply in order: a zero in the config keeps an earlier option.
	c := New("127.0.0.1:1", WithTimeout(time.Minute), WithConfig(config.Client{DialTimeout: time.Second}))
	if c.opts.timeout != time.Minute || c.opts.dialTimeout != time.Second {
		t.Fatalf("timeout %v, dial timeout %v; want 1m and 1s", c.opts.timeout, c.opts.dialTimeout)
	}
}
