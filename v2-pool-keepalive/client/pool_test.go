package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v2-pool-keepalive/pool"
	"myrpc/v2-pool-keepalive/server"
)

// gate is a service whose Wait method blocks until the test releases it,
// and whose Fail method returns NotFound.
type gate struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) desc() *rpc.ServiceDesc {
	return &rpc.ServiceDesc{
		ServiceName: "test.Gate",
		Methods: []rpc.MethodDesc{
			{
				MethodName: "Wait",
				Handler: func(any, context.Context, func(proto.Message) error, rpc.UnaryServerInterceptor) (proto.Message, error) {
					g.started <- struct{}{}
					<-g.release
					return &echo.EchoReply{}, nil
				},
			},
			{
				MethodName: "Fail",
				Handler: func(any, context.Context, func(proto.Message) error, rpc.UnaryServerInterceptor) (proto.Message, error) {
					return nil, status.New(codes.NotFound, "no such widget")
				},
			},
		},
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return nc, err
}

// v2Server is a real V2 server on 127.0.0.1:0.
type v2Server struct {
	addr string
	lis  *countingListener
	gate *gate
}

// startV2 starts a V2 server with the demo services and a gate; it is shut
// down when the test ends.
func startV2(t *testing.T, opts ...server.Option) *v2Server {
	t.Helper()
	s := server.New(append([]server.Option{server.WithLogger(quietLogger())}, opts...)...)
	g := newGate()
	for _, r := range []struct {
		desc *rpc.ServiceDesc
		impl any
	}{
		{&helloworld.Greeter_ServiceDesc, services.Greeter{}},
		{&echo.Echo_ServiceDesc, services.Echo{}},
		{g.desc(), g},
	} {
		if err := s.Register(r.desc, r.impl); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := &countingListener{Listener: l}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	t.Cleanup(func() {
		g.open()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return &v2Server{addr: lis.Addr().String(), lis: lis, gate: g}
}

// newPooledClient returns a client of addr, closed when the test ends.
func newPooledClient(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	c := New(addr, append([]Option{WithLogger(quietLogger()), WithTimeout(5 * time.Second)}, opts...)...)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func sayHello(t *testing.T, c *Client, msg string) {
	t.Helper()
	reply := new(helloworld.HelloReply)
	if err := c.Invoke(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{Msg: msg}, reply); err != nil {
		t.Fatalf("Hello: %v", err)
	}
	if reply.Msg != "Hello "+msg {
		t.Fatalf("Hello: reply %q", reply.Msg)
	}
}

func wantPoolStats(t *testing.T, c *Client, want pool.Stats) {
	t.Helper()
	if got := c.PoolStats(); got != want {
		t.Fatalf("PoolStats() = %+v, want %+v", got, want)
	}
}

// TestPoolReuse: sequential calls share one connection.
func TestPoolReuse(t *testing.T) {
	const n = 10
	srv := startV2(t)
	c := newPooledClient(t, srv.addr)
	for i := range n {
		sayHello(t, c, string(rune('a'+i)))
	}
	wantPoolStats(t, c, pool.Stats{Hits: n - 1, Misses: 1, Open: 1, Idle: 1})
	if a := srv.lis.accepted.Load(); a != 1 {
		t.Fatalf("the server accepted %d connections for %d sequential calls, want 1", a, n)
	}
}

// TestPoolDropsInterruptedCall: a call whose context ends while it waits
// for the response does not give its connection back: the response may
// still come, and would be read by the next call.
func TestPoolDropsInterruptedCall(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration
		want     codes.Code
	}{
		{"cancelled", 0, codes.Canceled},
		{"deadline", 100 * time.Millisecond, codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startV2(t)
			c := newPooledClient(t, srv.addr)
			sayHello(t, c, "warm")
			ctx, cancel := context.WithCancel(context.Background())
			if tt.deadline > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tt.deadline)
			}
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Invoke(ctx, "/test.Gate/Wait", &echo.EchoRequest{}, new(echo.EchoReply)) }()
			select {
			case <-srv.gate.started:
			case <-time.After(5 * time.Second):
				t.Fatal("the call did not reach its handler")
			}
			if tt.deadline == 0 {
				cancel()
			}
			select {
			case err := <-done:
				if code := status.Code(err); code != tt.want {
					t.Fatalf("the interrupted call: %v, want code %v", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the interrupted call did not return")
			}
			wantPoolStats(t, c, pool.Stats{Hits: 1, Misses: 1, Discarded: 1})
			// The handler finishes and its late response goes to the
			// closed connection, not to the next call.
			srv.gate.open()
			sayHello(t, c, "next")
			wantPoolStats(t, c, pool.Stats{Hits: 1, Misses: 2, Discarded: 1, Open: 1, Idle: 1})
		})
	}
}

// TestPoolKeepsOnErrorCode: a response that carries an error code leaves
// the stream in step, so its connection is reused.
func TestPoolKeepsOnErrorCode(t *testing.T) {
	tests := []struct {
		name   string
		method string
		want   codes.Code
	}{
		{"unknown method", "/myrpc.echo.Echo/Nope", codes.Unimplemented},
		{"unknown service", "/no.Such/Thing", codes.Unimplemented},
		{"handler error", "/test.Gate/Fail", codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startV2(t)
			c := newPooledClient(t, srv.addr)
			err := c.Invoke(context.Background(), tt.method, &echo.EchoRequest{}, new(echo.EchoReply))
			if code := status.Code(err); code != tt.want {
				t.Fatalf("call: %v, want code %v", err, tt.want)
			}
			wantPoolStats(t, c, pool.Stats{Misses: 1, Open: 1, Idle: 1})
			sayHello(t, c, "after")
			wantPoolStats(t, c, pool.Stats{Hits: 1, Misses: 1, Open: 1, Idle: 1})
			if a := srv.lis.accepted.Load(); a != 1 {
				t.Fatalf("the server accepted %d connections, want 1", a)
			}
		})
	}
}

// TestPoolDropsRefusedFrame: a server refuses a frame over its limit with
// code 8 and then closes the connection, so the client does not reuse it;
// the next call gets a fresh connection and succeeds, every time.
func TestPoolDropsRefusedFrame(t *testing.T) {
	const rounds = 20
	srv := startV2(t, server.WithMaxFrameSize(1024))
	c := newPooledClient(t, srv.addr)
	echoCall := func(size int) error {
		return c.Invoke(context.Background(), echo.Echo_Echo_FullMethodName, &echo.EchoRequest{Payload: make([]byte, size)}, new(echo.EchoReply))
	}
	for i := range rounds {
		if err := echoCall(2048); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("round %d: a frame over the server's limit: %v, want code 8", i, err)
		}
		if s := c.PoolStats(); s.Discarded != uint64(i+1) || s.Idle != 0 {
			t.Fatalf("round %d: the refused frame's connection went back to the pool: %+v", i, s)
		}
		if err := echoCall(16); err != nil {
			t.Fatalf("round %d: the call after a refused frame: %v", i, err)
		}
	}
}
