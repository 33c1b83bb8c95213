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
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/mux"
)

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
	defer c.Close()
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

// TestGroupError: a failed Pick gets its code.
func TestGroupError(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		code codes.Code
		is   error
	}{
		{"connections exhausted", live, fmt.Errorf("%w: 4 connections", mux.ErrExhausted), codes.ResourceExhausted, mux.ErrExhausted},
		{"group closed", live, mux.ErrClosed, codes.Canceled, ErrClientClosed},
		{"dial refused", live, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, codes.Unavailable, syscall.ECONNREFUSED},
		{"wait cancelled", cancelled, context.Canceled, codes.Canceled, context.Canceled},
	}
	c := New("127.0.0.1:1", WithLogger(quietLogger()))
	defer c.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.groupError(tt.ctx, tt.err)
			wantCode(t, err, tt.code)
			if !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
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
// its code. A response with a sequence id nobody waits for is dropped, and
// the call keeps waiting for its own.
func TestBadResponses(t *testing.T) {
	goodReply := &helloworld.HelloReply{Msg: "Hello x"}
	// A length-delimited field whose length runs past the end: not valid
	// protobuf.
	truncated := []byte{0x12, 0x05, 'a'}
	tests := []struct {
		name string
		opts []Option
		// respond returns what the server writes, and whether it keeps the
		// connection open afterwards.
		respond func(r received) ([]byte, bool)
		code    codes.Code
		// msg must be in the error's message.
		msg string
		// is, if set, must be in the error's chain.
		is error
		// dropped is the count of dropped responses afterwards.
		dropped uint64
	}{
		{"good", nil, func(r received) ([]byte, bool) {
			return okFrame(r.seq, goodReply.Msg), true
		}, codes.OK, "", nil, 0},
		{"wrong sequence id, then the right one", nil, func(r received) ([]byte, bool) {
			return append(okFrame(r.seq+1, "not yours"), okFrame(r.seq, goodReply.Msg)...), true
		}, codes.OK, "", nil, 1},
		{"the response twice", nil, func(r received) ([]byte, bool) {
			return append(okFrame(r.seq, goodReply.Msg), okFrame(r.seq, "again")...), true
		}, codes.OK, "", nil, 1},
		{"only a wrong sequence id", nil, func(r received) ([]byte, bool) {
			return okFrame(r.seq+1, "not yours"), true
		}, codes.DeadlineExceeded, "", context.DeadlineExceeded, 1},
		{"wrong magic", nil, func(r received) ([]byte, bool) {
			b := okFrame(r.seq, goodReply.Msg)
			b[0], b[1] = 'H', 'T'
			return b, true
		}, codes.Internal, "", codec.ErrBadMagic, 0},
		{"wrong version", nil, func(r received) ([]byte, bool) {
			b := okFrame(r.seq, goodReply.Msg)
			b[2] = codec.Version + 1
			return b, true
		}, codes.Internal, "", codec.ErrBadVersion, 0},
		{"request type", nil, func(r received) ([]byte, bool) {
			b := okFrame(r.seq, goodReply.Msg)
			b[3] = byte(codec.TypeRequest)
			return b, true
		}, codes.Internal, "", codec.ErrBadType, 0},
		{"meta does not decode", nil, func(r received) ([]byte, bool) {
			return rawResp(r.seq, truncated, nil), true
		}, codes.Internal, "response meta", nil, 0},
		{"body does not decode", nil, func(r received) ([]byte, bool) {
			return rawResp(r.seq, nil, truncated), true
		}, codes.Internal, "response body", nil, 0},
		{"over the client's frame limit", []Option{WithMaxFrameSize(1024)}, func(r received) ([]byte, bool) {
			return okFrame(r.seq, strings.Repeat("x", 2048)), true
		}, codes.ResourceExhausted, "", codec.ErrFrameTooLarge, 0},
		{"meta over 64 KiB", nil, func(r received) ([]byte, bool) {
			b := make([]byte, codec.HeaderLen)
			codec.PutHeader(b, codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: r.seq, MetaLen: codec.MaxMetaLen + 1})
			return b, true
		}, codes.ResourceExhausted, "", codec.ErrMetaTooLarge, 0},
		{"server's code", nil, func(r received) ([]byte, bool) {
			return codeFrame(r.seq, codes.NotFound, "no such greeting"), true
		}, codes.NotFound, "no such greeting", nil, 0},
		{"code with a body", nil, func(r received) ([]byte, bool) {
			return respFrame(r.seq, &meta.ResponseMeta{Code: uint32(codes.Unavailable), Message: "busy"}, goodReply), true
		}, codes.Unavailable, "busy", nil, 0},
		{"closed without an answer", nil, func(received) ([]byte, bool) {
			return nil, false
		}, codes.Unavailable, "", io.EOF, 0},
		{"half a header", nil, func(r received) ([]byte, bool) {
			return okFrame(r.seq, goodReply.Msg)[:5], false
		}, codes.Unavailable, "", io.ErrUnexpectedEOF, 0},
		{"half a body", nil, func(r received) ([]byte, bool) {
			b := okFrame(r.seq, goodReply.Msg)
			return b[:len(b)-2], false
		}, codes.Unavailable, "", io.ErrUnexpectedEOF, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeServer(t, func(w io.Writer, r received) bool {
				b, keep := tt.respond(r)
				w.Write(b)
				return keep
			})
			c := newTestClient(t, fake.addr, tt.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			reply, err := hello(ctx, c, "x")
			if tt.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(reply, goodReply) {
					t.Fatalf("reply %v, want %v", reply, goodReply)
				}
			} else {
				se := wantCode(t, err, tt.code)
				if !strings.Contains(se.Message(), tt.msg) {
					t.Fatalf("message %q does not contain %q", se.Message(), tt.msg)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Fatalf("errors.Is(%v, %v) = false", err, tt.is)
				}
			}
			waitFor(t, fmt.Sprintf("%d dropped responses", tt.dropped), func() bool { return c.MuxStats().Dropped >= tt.dropped })
			if s := c.MuxStats(); s.Streams != 0 || s.Dropped != tt.dropped {
				t.Fatalf("MuxStats() = %+v, want no streams and %d dropped", s, tt.dropped)
			}
		})
	}
}

// TestRequestOnTheWire: the request carries the method, the body, the
// caller's metadata and the time the caller has left; calls on one
// connection get sequence ids 1, 2, ...
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
			fake := newFakeServer(t, func(w io.Writer, r received) bool {
				w.Write(okFrame(r.seq, "ok"))
				return true
			})
			c := newTestClient(t, fake.addr, tt.opts...)
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if tt.md != nil {
				ctx = rpc.WithOutgoingMetadata(ctx, tt.md)
			}
			for i := range 3 {
				msg := fmt.Sprint("call ", i)
				if _, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: msg}); err != nil {
					t.Fatal(err)
				}
				r := fake.request(t)
				if r.seq != uint32(i+1) || r.conn != 0 {
					t.Fatalf("call %d had id %d on connection %d, want id %d on connection 0", i, r.seq, r.conn, i+1)
				}
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
			if n := fake.accepted.Load(); n != 1 {
				t.Fatalf("the server accepted %d connections, want 1", n)
			}
		})
	}
}

// TestDefaultTimeout: WithTimeout bounds a call whose context has no
// deadline, and the call leaves nothing pending.
func TestDefaultTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	fake := newFakeServer(t, nil)
	c := newTestClient(t, fake.addr, WithTimeout(timeout))
	start := time.Now()
	_, err := hello(context.Background(), c, "anyone?")
	d := time.Since(start)
	wantCode(t, err, codes.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	if d < timeout-10*time.Millisecond || d > 2*time.Second {
		t.Fatalf("the call returned after %v; the default timeout is %v", d, timeout)
	}
	if r := fake.request(t); r.meta.TimeoutMs == 0 || r.meta.TimeoutMs > 150 {
		t.Fatalf("timeout_ms %d, want in (0, 150]", r.meta.TimeoutMs)
	}
	if s := c.MuxStats(); s.Streams != 0 {
		t.Fatalf("MuxStats() = %+v after the call timed out, want no streams", s)
	}
}

// TestNoTimeout: WithTimeout(0) leaves a call without a deadline; only its
// context ends it.
func TestNoTimeout(t *testing.T) {
	fake := newFakeServer(t, nil)
	c := newTestClient(t, fake.addr, WithTimeout(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := c.InvokeAsync(ctx, helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{Msg: "waiting"}, new(helloworld.HelloReply))
	if r := fake.request(t); r.meta.TimeoutMs != 0 {
		t.Fatalf("timeout_ms %d, want 0 (no deadline)", r.meta.TimeoutMs)
	}
	select {
	case <-f.Done():
		t.Fatalf("the call ended before its cancellation: %v", f.Get(ctx))
	default:
	}
	cancel()
	cancelled := time.Now()
	select {
	case <-f.Done():
		err := f.Get(context.Background())
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
	// The call's stream leaves its connection as the goroutine that sent
	// the request learns that the call has ended, which can be just after
	// the future is done.
	waitFor(t, "the cancelled call's stream to leave", func() bool { return c.MuxStats().Streams == 0 })
}

// TestCallFailsBeforeSending: calls that cannot start end with nothing
// sent: at once when the method or the context rules them out, and as soon
// as the request is encoded when it is over the limit (an async call
// encodes its request on a goroutine of its own).
func TestCallFailsBeforeSending(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		method string
		msg    string
		code   codes.Code
		is     error
		// atOnce says whether the future is done when InvokeAsync returns.
		atOnce bool
	}{
		{"malformed method", context.Background(), "Greeter.Hello", "x", codes.InvalidArgument, nil, true},
		{"cancelled context", cancelled, helloworld.Greeter_Hello_FullMethodName, "x", codes.Canceled, context.Canceled, true},
		{"request over the frame limit", context.Background(), helloworld.Greeter_Hello_FullMethodName, strings.Repeat("x", 2048), codes.ResourceExhausted, codec.ErrFrameTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeServer(t, nil)
			c := newTestClient(t, fake.addr, WithMaxFrameSize(1024))
			f := c.InvokeAsync(tt.ctx, tt.method, &helloworld.HelloRequest{Msg: tt.msg}, new(helloworld.HelloReply))
			if tt.atOnce {
				select {
				case <-f.Done():
				default:
					t.Fatal("the future of a call that cannot start is not done")
				}
			}
			if err := c.Invoke(tt.ctx, tt.method, &helloworld.HelloRequest{Msg: tt.msg}, new(helloworld.HelloReply)); status.Code(err) != tt.code {
				t.Fatalf("Invoke: %v, want code %v", err, tt.code)
			}
			err := f.Get(context.Background())
			wantCode(t, err, tt.code)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if n := fake.accepted.Load(); n != 0 {
				t.Fatalf("the client dialled %d times", n)
			}
		})
	}
}

func TestCloseRefusesCalls(t *testing.T) {
	c := New("127.0.0.1:1", WithLogger(quietLogger()))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, async := range []bool{false, true} {
		var err error
		if async {
			err = c.InvokeAsync(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{}, &helloworld.HelloReply{}).Get(context.Background())
		} else {
			err = c.Invoke(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{}, &helloworld.HelloReply{})
		}
		wantCode(t, err, codes.Canceled)
		if !errors.Is(err, ErrClientClosed) {
			t.Fatalf("errors.Is(%v, ErrClientClosed) = false", err)
		}
	}
}

// TestDialError: a server that cannot be reached gives code 14.
func TestDialError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c := newTestClient(t, addr)
	_, err = hello(context.Background(), c, "x")
	wantCode(t, err, codes.Unavailable)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("errors.Is(%v, ECONNREFUSED) = false", err)
	}
}
