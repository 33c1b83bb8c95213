package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/codec"
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

// TestRequestStartedBeforeShutdown: a request whose first bytes the
// connection has already read when it finds the server shutting down is
// read whole, to be answered 14, not dropped with the connection.
func TestRequestStartedBeforeShutdown(t *testing.T) {
	s := New(WithLogger(quietLogger()))
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	srvSide, cliSide := net.Pipe()
	defer srvSide.Close()
	defer cliSide.Close()
	c := s.newConn(srvSide, nil)
	frame, err := codec.AppendFrame(nil, codec.TypeRequest, 7,
		&meta.RequestMeta{Service: "myrpc.echo.Echo", Method: "Echo"}, &echo.EchoRequest{Payload: []byte("started")}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	half := len(frame) / 2
	go cliSide.Write(frame[:half])
	br := bufio.NewReader(srvSide)
	if _, err := br.Peek(half); err != nil {
		t.Fatal(err)
	}
	go cliSide.Write(frame[half:])
	f, ok := c.readRequest(br)
	if !ok || f.Seq != 7 {
		t.Fatalf("readRequest = seq %d, %v; want the request, seq 7", f.Seq, ok)
	}
}
