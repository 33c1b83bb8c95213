package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v1-basic/client"
	"myrpc/v1-basic/codec"
)

// bigDesc is a service whose method Big replies with as many bytes as the
// request's delay_ms asks for.
var bigDesc = rpc.ServiceDesc{
	ServiceName: "test.Big",
	Methods: []rpc.MethodDesc{{
		MethodName: "Big",
		Handler: func(_ any, _ context.Context, dec func(proto.Message) error, _ rpc.UnaryServerInterceptor) (proto.Message, error) {
			var req echo.EchoRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			return &echo.EchoReply{Payload: make([]byte, req.DelayMs)}, nil
		},
	}},
}

// TestResponseOverLimit: a reply too big for the server's own frame limit
// is replaced by a code 8 error, which fits.
func TestResponseOverLimit(t *testing.T) {
	const limit = 256
	log, logs := newLogger()
	s := New(WithMaxFrameSize(limit), WithLogger(log))
	if err := s.Register(&bigDesc, struct{}{}); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	c := client.New(ts.addr, client.WithLogger(quietLogger()))
	defer c.Close()
	ctx := ctxTimeout(t, 5*time.Second)

	tests := []struct {
		size int
		want codes.Code
	}{
		{0, codes.OK},
		{limit / 2, codes.OK},
		{limit, codes.ResourceExhausted},
		{4 * limit, codes.ResourceExhausted},
	}
	warnings := 0
	for _, tt := range tests {
		t.Run(fmt.Sprintf("reply=%dB", tt.size), func(t *testing.T) {
			var reply echo.EchoReply
			err := c.Invoke(ctx, "/test.Big/Big", &echo.EchoRequest{DelayMs: uint32(tt.size)}, &reply)
			if code := status.Code(err); code != tt.want {
				t.Fatalf("got %v, want code %v", err, tt.want)
			}
			if tt.want == codes.OK {
				if len(reply.Payload) != tt.size {
					t.Fatalf("reply of %d bytes, want %d", len(reply.Payload), tt.size)
				}
				return
			}
			warnings++
			if se, _ := status.FromError(err); !strings.Contains(se.Message(), "cannot send the response") {
				t.Fatalf("message %q does not explain the refusal", se.Message())
			}
		})
	}
	if n := logs.count(t, "WARN", "rpc: cannot encode response"); n != warnings {
		t.Fatalf("%d warnings logged for %d replies over the limit", n, warnings)
	}
}

func TestErrorMeta(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"status", status.New(codes.NotFound, "no such thing"), codes.NotFound, "no such thing"},
		{"wrapped status", fmt.Errorf("outer: %w", status.New(codes.Internal, "inner")), codes.Internal, "inner"},
		{"plain", errors.New("a plain failure"), codes.Unknown, "a plain failure"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, context.DeadlineExceeded.Error()},
		{"canceled", context.Canceled, codes.Canceled, context.Canceled.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rm := errorMeta(tt.err)
			if codes.Code(rm.Code) != tt.code || rm.Message != tt.msg {
				t.Fatalf("errorMeta(%v) = code %d %q, want %d %q", tt.err, rm.Code, rm.Message, tt.code, tt.msg)
			}
		})
	}
}

// TestPipelinedRequestNotReset: a client that keeps its connections may
// send a second request before it reads the first response, whose
// connection: close mark says none will be read. The second request is
// never read, and the first response must still arrive whole: closing a
// socket with unread input resets it, and a reset throws away what has not
// yet left.
func TestPipelinedRequestNotReset(t *testing.T) {
	const size = 4 << 20 // more than the socket buffers hold at once
	s := New(WithLogger(quietLogger()), WithMaxFrameSize(2*size))
	if err := s.Register(&bigDesc, struct{}{}); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	nc := dial(t, ts.addr)
	first := requestFrame(t, 1, "test.Big", "Big", &echo.EchoRequest{DelayMs: size})
	second := requestFrame(t, 2, "test.Big", "Big", &echo.EchoRequest{DelayMs: 1})
	if _, err := nc.Write(first); err != nil {
		t.Fatal(err)
	}
	// The second request reaches the socket after the server has read the
	// first, and stays there unread.
	time.Sleep(100 * time.Millisecond)
	if _, err := nc.Write(second); err != nil {
		t.Fatal(err)
	}
	// Let the server write what fits and close before anything is read.
	time.Sleep(200 * time.Millisecond)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := codec.ReadFrame(nc, codec.TypeResponse, 2*size)
	if err != nil {
		t.Fatalf("reading the first response: %v", err)
	}
	rm, err := codec.DecodeResponseMeta(f.Meta)
	if err != nil || f.Seq != 1 || rm.Code != 0 {
		t.Fatalf("response seq %d, meta %v (%v), want seq 1, code 0", f.Seq, rm, err)
	}
	if !rpc.Closing(rm.Metadata) {
		t.Fatalf("response metadata %v lacks the connection: close mark", rm.Metadata)
	}
	var reply echo.EchoReply
	if err := proto.Unmarshal(f.Body, &reply); err != nil || len(reply.Payload) != size {
		t.Fatalf("reply of %d bytes (%v), want %d", len(reply.Payload), err, size)
	}
	// Then the server closes without answering the second request.
	if _, err := codec.ReadFrame(nc, codec.TypeResponse, 2*size); !errors.Is(err, io.EOF) {
		t.Fatalf("after the response: %v, want EOF", err)
	}
}

// TestResponseOverLimitMarked: the code 8 that replaces a reply over the
// limit carries the connection: close mark, as every V1 response does.
func TestResponseOverLimitMarked(t *testing.T) {
	const limit = 256
	s := New(WithMaxFrameSize(limit), WithLogger(quietLogger()))
	if err := s.Register(&bigDesc, struct{}{}); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	nc := dial(t, ts.addr)
	if _, err := nc.Write(requestFrame(t, 1, "test.Big", "Big", &echo.EchoRequest{DelayMs: 4 * limit})); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := codec.ReadFrame(nc, codec.TypeResponse, limit)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	rm, err := codec.DecodeResponseMeta(f.Meta)
	if err != nil || codes.Code(rm.Code) != codes.ResourceExhausted {
		t.Fatalf("response meta %v (%v), want code 8", rm, err)
	}
	if !rpc.Closing(rm.Metadata) {
		t.Fatalf("response metadata %v lacks the connection: close mark", rm.Metadata)
	}
}
