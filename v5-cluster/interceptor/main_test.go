package interceptor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/server"
)

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// quietLogger returns a logger that drops everything.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// greeter answers Hello("fail") with NotFound, Hello("plain") with an
// error without a code, and every other Hello as the demo Greeter does.
type greeter struct {
	helloworld.UnimplementedGreeterServer
}

func (greeter) Hello(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	switch req.GetMsg() {
	case "fail":
		return nil, status.New(codes.NotFound, "no such greeting")
	case "plain":
		return nil, errors.New("a plain failure")
	}
	return &helloworld.HelloReply{Msg: "Hello " + req.GetMsg()}, nil
}

// startServer serves greeter on 127.0.0.1:0 with the interceptors until
// the test ends, and returns its address.
func startServer(t *testing.T, ics ...rpc.UnaryServerInterceptor) string {
	t.Helper()
	s := server.New(server.WithLogger(quietLogger()), server.WithInterceptors(ics...))
	if err := s.Register(&helloworld.Greeter_ServiceDesc, greeter{}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return lis.Addr().String()
}

// newClient returns a client of addr with the interceptors, closed when
// the test ends.
func newClient(t *testing.T, addr string, ics ...rpc.UnaryClientInterceptor) *client.Client {
	t.Helper()
	c := client.New(addr, client.WithLogger(quietLogger()), client.WithTimeout(5*time.Second), client.WithInterceptors(ics...))
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// hello calls Greeter.Hello through c and returns the call's code.
func hello(t *testing.T, c *client.Client, msg string) codes.Code {
	t.Helper()
	err := c.Invoke(context.Background(), helloworld.Greeter_Hello_FullMethodName,
		&helloworld.HelloRequest{Msg: msg}, new(helloworld.HelloReply))
	return status.Code(err)
}

// call runs a client interceptor around an invoker that returns err.
func call(ic rpc.UnaryClientInterceptor, err error) error {
	return ic(context.Background(), "/s/M", nil, nil, nil,
		func(context.Context, string, proto.Message, proto.Message, ...rpc.CallOption) error { return err })
}
