package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v4-epoll-batch/codec"
	"myrpc/v4-epoll-batch/server"
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

// newTestClient returns a client of addr that logs nothing and gives
// calls without a deadline 5 s; it is closed when the test ends.
func newTestClient(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	c := New(addr, append([]Option{WithLogger(quietLogger()), WithTimeout(5 * time.Second)}, opts...)...)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// clientGoroutines returns the stacks of goroutines running code of the
// client's packages: connection readers, the retry queue, calls.
func clientGoroutines() []string {
	var out []string
	for _, g := range strings.Split(allStacks(), "\n\n") {
		for _, fn := range []string{"v4-epoll-batch/mux.", "v4-epoll-batch/async.", "v4-epoll-batch/client.(*call).", "v4-epoll-batch/client.(*Client)."} {
			// Frames only: a goroutine that a client function started but
			// that runs other code is not the client's.
			if strings.Contains(g, "\n"+"myrpc/"+fn) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// allStacks returns the stacks of every goroutine.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitNoClientGoroutines waits until no goroutine runs the client's code.
func waitNoClientGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := clientGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the client are still running:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

// waitFor polls cond until it holds or 5 s pass: for states nothing
// signals, such as a counter.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// received is a request as a fake server read it.
type received struct {
	// conn numbers the connection it came on, from 0 in accept order.
	conn int
	at   time.Time
	seq  uint32
	meta *meta.RequestMeta
	body []byte
}

// fakeServer is a listener that reads request frames, reports each on
// reqs, and lets respond answer it however it likes, the wrong ways
// included. respond runs on the connection's reader; when it returns false
// the connection is closed.
type fakeServer struct {
	addr     string
	lis      net.Listener
	reqs     chan received
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// newFakeServer starts a fake server; it is stopped when the test ends.
// respond may be nil, for a server that reads requests and never answers.
func newFakeServer(t *testing.T, respond func(w io.Writer, r received) bool) *fakeServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: lis.Addr().String(), lis: lis, reqs: make(chan received, 256), conns: make(map[net.Conn]bool)}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			n := int(f.accepted.Add(1)) - 1
			f.mu.Lock()
			f.conns[nc] = true
			f.mu.Unlock()
			f.wg.Add(1)
			go f.serve(nc, n, respond)
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) serve(nc net.Conn, n int, respond func(io.Writer, received) bool) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, nc)
		f.mu.Unlock()
		nc.Close()
	}()
	br := bufio.NewReader(nc)
	for {
		fr, err := codec.ReadFrame(br, codec.TypeRequest, 64<<20)
		if err != nil {
			return
		}
		rm, err := codec.DecodeRequestMeta(fr.Meta)
		if err != nil {
			return
		}
		r := received{conn: n, at: time.Now(), seq: fr.Seq, meta: rm, body: fr.Body}
		select {
		case f.reqs <- r:
		default:
		}
		if respond != nil && !respond(nc, r) {
			return
		}
	}
}

// close stops the fake server and waits for its goroutines.
func (f *fakeServer) close() {
	f.lis.Close()
	f.mu.Lock()
	for nc := range f.conns {
		nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// request waits for the next request the fake server reads.
func (f *fakeServer) request(t *testing.T) received {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the fake server received no request")
		return received{}
	}
}

// noMoreRequests fails if the fake server has a request not yet taken.
func (f *fakeServer) noMoreRequests(t *testing.T) {
	t.Helper()
	select {
	case r := <-f.reqs:
		t.Fatalf("the fake server received an extra request: seq %d on connection %d", r.seq, r.conn)
	default:
	}
}

// respFrame encodes a response frame.
func respFrame(seq uint32, rm *meta.ResponseMeta, body proto.Message) []byte {
	b, err := codec.AppendFrame(nil, codec.TypeResponse, seq, rm, body, 64<<20)
	if err != nil {
		panic(err)
	}
	return b
}

// okFrame is a successful Greeter response.
func okFrame(seq uint32, msg string) []byte {
	return respFrame(seq, &meta.ResponseMeta{}, &helloworld.HelloReply{Msg: msg})
}

// codeFrame is an error response.
func codeFrame(seq uint32, code codes.Code, msg string) []byte {
	return respFrame(seq, &meta.ResponseMeta{Code: uint32(code), Message: msg}, nil)
}

// hello calls Greeter.Hello through c.
func hello(ctx context.Context, c *Client, msg string, opts ...rpc.CallOption) (*helloworld.HelloReply, error) {
	reply := new(helloworld.HelloReply)
	if err := c.Invoke(ctx, helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{Msg: msg}, reply, opts...); err != nil {
		return nil, err
	}
	return reply, nil
}

// sayHello calls Greeter.Hello and checks the reply.
func sayHello(t *testing.T, c *Client, msg string) {
	t.Helper()
	reply, err := hello(context.Background(), c, msg)
	if err != nil {
		t.Fatalf("Hello: %v", err)
	}
	if reply.Msg != "Hello "+msg {
		t.Fatalf("Hello: reply %q", reply.Msg)
	}
}

// gate is a service whose methods block, fail and count on the test's
// command, described by hand the way generated code would describe it.
type gate struct {
	// started receives a value when Wait begins.
	started chan struct{}
	release chan struct{}
	once    sync.Once
	// counted counts the executions of Count.
	counted atomic.Int64
}

const gateService = "test.Gate"

func newGate() *gate {
	return &gate{started: make(chan struct{}, 64), release: make(chan struct{})}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// waitStarted waits for a Wait call to reach its handler.
func (g *gate) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not reach its handler")
	}
}

func (g *gate) desc() *rpc.ServiceDesc {
	method := func(name string, fn func(ctx context.Context) (proto.Message, error)) rpc.MethodDesc {
		return rpc.MethodDesc{
			MethodName: name,
			Handler: func(_ any, ctx context.Context, dec func(proto.Message) error, _ rpc.UnaryServerInterceptor) (proto.Message, error) {
				if err := dec(new(echo.EchoRequest)); err != nil {
					return nil, err
				}
				return fn(ctx)
			},
		}
	}
	return &rpc.ServiceDesc{
		ServiceName: gateService,
		Methods: []rpc.MethodDesc{
			// Wait blocks until the gate opens or its context ends.
			method("Wait", func(ctx context.Context) (proto.Message, error) {
				g.started <- struct{}{}
				select {
				case <-g.release:
					return &echo.EchoReply{Payload: []byte("released")}, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}),
			// Fail returns NotFound.
			method("Fail", func(context.Context) (proto.Message, error) {
				return nil, status.New(codes.NotFound, "no such widget")
			}),
			// Quota returns ResourceExhausted, as a rate limiter would.
			method("Quota", func(context.Context) (proto.Message, error) {
				return nil, status.New(codes.ResourceExhausted, "quota exceeded")
			}),
			// Count counts its executions.
			method("Count", func(context.Context) (proto.Message, error) {
				g.counted.Add(1)
				return &echo.EchoReply{}, nil
			}),
		},
	}
}

// callGate calls a method of the gate.
func callGate(ctx context.Context, c *Client, method string, opts ...rpc.CallOption) (*echo.EchoReply, error) {
	reply := new(echo.EchoReply)
	err := c.Invoke(ctx, "/"+gateService+"/"+method, &echo.EchoRequest{}, reply, opts...)
	return reply, err
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

// testServer is a real V3 server on 127.0.0.1:0.
type testServer struct {
	addr string
	lis  *countingListener
	gate *gate
	srv  *server.Server
}

// startServer starts a V3 server with the demo services and a gate; it is
// shut down when the test ends.
func startServer(t *testing.T, opts ...server.Option) *testServer {
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
	return &testServer{addr: lis.Addr().String(), lis: lis, gate: g, srv: s}
}
