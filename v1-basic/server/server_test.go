package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v1-basic/client"
	"myrpc/v1-basic/config"
)

func TestNextBackoff(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{0, 5 * time.Millisecond},
		{5 * time.Millisecond, 10 * time.Millisecond},
		{10 * time.Millisecond, 20 * time.Millisecond},
		{320 * time.Millisecond, 640 * time.Millisecond},
		{500 * time.Millisecond, time.Second},
		{640 * time.Millisecond, time.Second},
		{time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			if got := nextBackoff(tt.in); got != tt.want {
				t.Fatalf("nextBackoff(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	t.Run("sequence", func(t *testing.T) {
		want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
		var d time.Duration
		for i, w := range want {
			d = nextBackoff(d)
			if d != w*time.Millisecond {
				t.Fatalf("step %d: %v, want %v", i+1, d, w*time.Millisecond)
			}
		}
	})
}

// acceptError is the error a failed accept returns: *net.OpError around an
// *os.SyscallError.
func acceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestIsTemporary(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"EMFILE", acceptError(syscall.EMFILE), true},
		{"ENFILE", acceptError(syscall.ENFILE), true},
		{"ECONNABORTED", acceptError(syscall.ECONNABORTED), true},
		{"ENOBUFS", acceptError(syscall.ENOBUFS), true},
		{"ENOMEM", acceptError(syscall.ENOMEM), true},
		{"bare EMFILE", syscall.EMFILE, true},
		{"closed listener", &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false},
		{"EBADF", acceptError(syscall.EBADF), false},
		{"EINVAL", acceptError(syscall.EINVAL), false},
		{"io.EOF", io.EOF, false},
		{"plain error", errors.New("accept: something else"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTemporary(tt.err); got != tt.want {
				t.Fatalf("isTemporary(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// faultyListener fails Accept with err as long as it has failures left,
// then accepts on the real listener it wraps. It records when each Accept
// was called and reports each call on calls.
type faultyListener struct {
	net.Listener
	err   error
	calls chan int

	mu    sync.Mutex
	fails int
	times []time.Time
}

func newFaultyListener(t *testing.T, fails int, err error) *faultyListener {
	t.Helper()
	lis, err2 := net.Listen("tcp", "127.0.0.1:0")
	if err2 != nil {
		t.Fatal(err2)
	}
	t.Cleanup(func() { lis.Close() })
	return &faultyListener{Listener: lis, err: err, fails: fails, calls: make(chan int, 1000)}
}

func (l *faultyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.times = append(l.times, time.Now())
	n := len(l.times)
	fail := l.fails > 0
	if fail {
		l.fails--
	}
	l.mu.Unlock()
	select {
	case l.calls <- n:
	default:
	}
	if fail {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// failNext makes the next n calls of Accept fail.
func (l *faultyListener) failNext(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = n
}

// attempts returns the times Accept was called.
func (l *faultyListener) attempts() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.times...)
}

// hello calls Greeter.Hello at addr through the V1 client.
func hello(ctx context.Context, addr, msg string) (string, error) {
	c := client.New(addr, client.WithLogger(quietLogger()))
	defer c.Close()
	reply, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: msg})
	return reply.GetMsg(), err
}

// TestAcceptBackoff: accept errors such as EMFILE are waited out with a
// doubling delay, logged once per streak, and the server serves again when
// they stop.
func TestAcceptBackoff(t *testing.T) {
	const fails = 5
	lis := newFaultyListener(t, fails, acceptError(syscall.EMFILE))
	log, logs := newLogger()
	s := New(WithLogger(log))
	if err := s.Register(&helloworld.Greeter_ServiceDesc, services.Greeter{}); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	defer func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	}()

	ctx := ctxTimeout(t, 10*time.Second)
	if got, err := hello(ctx, lis.Addr().String(), "again"); err != nil || got != "Hello again" {
		t.Fatalf("call after %d accept failures: %q, %v", fails, got, err)
	}

	times := lis.attempts()
	if len(times) < fails+1 {
		t.Fatalf("%d accept attempts, want at least %d", len(times), fails+1)
	}
	// The gap after the i-th failure is at least the i-th delay. Only
	// lower bounds: a loaded machine may wait longer, never shorter.
	const slack = time.Millisecond
	want := 5 * time.Millisecond
	for i := 1; i <= fails; i++ {
		if gap := times[i].Sub(times[i-1]); gap < want-slack {
			t.Errorf("gap %d between accept attempts: %v, want at least %v", i, gap, want)
		}
		want *= 2
	}

	if n := logs.count(t, "WARN", "rpc: accept failed; backing off"); n != 1 {
		t.Errorf("%d accept-failure warnings in one streak, want 1:\n%+v", n, logs.records(t))
	}
	recovered := 0
	for _, r := range logs.records(t) {
		if r.Level == "INFO" && r.Msg == "rpc: accept recovered" {
			recovered++
			if r.Failures != fails {
				t.Errorf("recovered after %d failures, want %d", r.Failures, fails)
			}
		}
	}
	if recovered != 1 {
		t.Errorf("%d recovery records, want 1:\n%+v", recovered, logs.records(t))
	}

	// A second streak is logged again, with the delay back at 5 ms.
	lis.failNext(3)
	for i, msg := range []string{"one", "two"} {
		if got, err := hello(ctx, lis.Addr().String(), msg); err != nil || got != "Hello "+msg {
			t.Fatalf("call %d after the second streak: %q, %v", i, got, err)
		}
	}
	var warnings []logRecord
	for _, r := range logs.records(t) {
		if r.Msg == "rpc: accept failed; backing off" {
			warnings = append(warnings, r)
		}
	}
	if len(warnings) != 2 {
		t.Fatalf("%d warnings after two streaks, want 2", len(warnings))
	}
	for i, w := range warnings {
		if w.Delay != 5*time.Millisecond {
			t.Errorf("streak %d: first delay %v, want 5ms", i+1, w.Delay)
		}
	}
	if n := logs.count(t, "INFO", "rpc: accept recovered"); n != 2 {
		t.Errorf("%d recovery records after two streaks, want 2", n)
	}
}

// watchingListener hands out a real listener's connections and, at every
// Accept after the first, sends how many connections the server tracks.
type watchingListener struct {
	net.Listener
	s       *Server
	tracked chan int
	n       int
}

func (l *watchingListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.s.mu.Lock()
		n := len(l.s.conns)
		l.s.mu.Unlock()
		l.tracked <- n
	}
	l.n++
	return l.Listener.Accept()
}

// TestConnTrackedWhenAccepted: the accept loop tracks a connection before
// it starts the connection's goroutine, so that a Shutdown that begins
// before the goroutine runs waits for the connection. A connection tracked
// only once its goroutine ran could be missed by Shutdown and closed with
// its request unread, which resets it: the client gets no answer.
func TestConnTrackedWhenAccepted(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(WithLogger(quietLogger()))
	wl := &watchingListener{Listener: lis, s: s, tracked: make(chan int, 4)}
	served := make(chan error, 1)
	go func() { served <- s.Serve(wl) }()
	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	select {
	case n := <-wl.tracked:
		if n != 1 {
			t.Fatalf("the server tracked %d connections when it went back to Accept, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not go back to Accept")
	}
	nc.Close()
	if err := s.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
}

// TestAcceptBackoffShutdown: Shutdown ends a backoff wait at once.
func TestAcceptBackoffShutdown(t *testing.T) {
	lis := newFaultyListener(t, 1<<30, acceptError(syscall.EMFILE))
	s := New(WithLogger(quietLogger()))
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	// After the 9th failure the wait is 1 s.
	for n := 0; n < 9; {
		select {
		case n = <-lis.calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d accept attempts", n)
		}
	}
	start := time.Now()
	if err := s.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > 800*time.Millisecond {
		t.Fatalf("Serve returned %v after Shutdown, in the middle of a 1 s backoff", d)
	}
}

// TestAcceptFatalError: an accept error that is not temporary stops Serve,
// which returns it and closes the listener.
func TestAcceptFatalError(t *testing.T) {
	for _, fatal := range []error{
		errors.New("accept: the listener broke"),
		acceptError(syscall.EBADF),
	} {
		t.Run(fatal.Error(), func(t *testing.T) {
			lis := newFaultyListener(t, 1, fatal)
			s := New(WithLogger(quietLogger()))
			defer s.Close()
			served := make(chan error, 1)
			go func() { served <- s.Serve(lis) }()
			select {
			case err := <-served:
				if !errors.Is(err, fatal) {
					t.Fatalf("Serve returned %v, want %v", err, fatal)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve kept going after a fatal accept error")
			}
			if c, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
				c.Close()
				t.Fatal("Serve left the listener open")
			}
			s.mu.Lock()
			n := len(s.listeners)
			s.mu.Unlock()
			if n != 0 {
				t.Fatalf("the server still tracks %d listeners", n)
			}
		})
	}
}

// listenConfig returns a server configuration with Greeter on addrA and
// Echo on addrB.
func listenConfig(addrA, addrB string) config.Server {
	return config.Server{Services: []config.Service{
		{Name: "myrpc.helloworld.Greeter", Address: addrA},
		{Name: "myrpc.echo.Echo", Address: addrB},
	}}
}

// newDemoServer returns a server with Greeter and Echo registered.
func newDemoServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := New(append([]Option{WithLogger(quietLogger())}, opts...)...)
	if err := s.Register(&helloworld.Greeter_ServiceDesc, services.Greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(&echo.Echo_ServiceDesc, services.Echo{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestListenAndServeRoutes: each configured service answers on its own
// address only.
func TestListenAndServeRoutes(t *testing.T) {
	addrA, addrB := freeAddr(t), freeAddr(t)
	s := newDemoServer(t, WithConfig(listenConfig(addrA, addrB)))
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe() }()
	defer func() {
		s.Close()
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("ListenAndServe returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("ListenAndServe did not return after Close")
		}
	}()
	ctx := ctxTimeout(t, 10*time.Second)
	for _, addr := range []string{addrA, addrB} {
		if !waitFor(5*time.Second, func() bool {
			_, err := hello(ctx, addr, "")
			return status.Code(err) != codes.Unavailable
		}) {
			t.Fatalf("nothing listens on %s", addr)
		}
	}

	callEcho := func(addr string) error {
		c := client.New(addr, client.WithLogger(quietLogger()))
		defer c.Close()
		reply, err := echo.NewEchoClient(c).Echo(ctx, &echo.EchoRequest{Payload: []byte("ping")})
		if err == nil && string(reply.GetPayload()) != "ping" {
			return fmt.Errorf("echoed %q", reply.GetPayload())
		}
		return err
	}
	callHello := func(addr string) error {
		got, err := hello(ctx, addr, "A")
		if err == nil && got != "Hello A" {
			return fmt.Errorf("replied %q", got)
		}
		return err
	}
	tests := []struct {
		name    string
		call    func(string) error
		addr    string
		want    codes.Code
		service string
	}{
		{"Greeter on A", callHello, addrA, codes.OK, ""},
		{"Echo on B", callEcho, addrB, codes.OK, ""},
		{"Greeter on B", callHello, addrB, codes.Unimplemented, "myrpc.helloworld.Greeter"},
		{"Echo on A", callEcho, addrA, codes.Unimplemented, "myrpc.echo.Echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.addr)
			if code := status.Code(err); code != tt.want {
				t.Fatalf("got %v, want code %v", err, tt.want)
			}
			if se, _ := status.FromError(err); tt.service != "" && !strings.Contains(se.Message(), strconv.Quote(tt.service)) {
				t.Fatalf("message %q does not name %q", se.Message(), tt.service)
			}
		})
	}
}

func TestListenAndServeNoServices(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
	}{
		{"no config", nil},
		{"config without services", []Option{WithConfig(config.Server{MaxConns: 5})}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := New(append(tt.opts, WithLogger(quietLogger()))...)
			defer s.Close()
			done := make(chan error, 1)
			go func() { done <- s.ListenAndServe() }()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, ErrServerClosed) {
					t.Fatalf("ListenAndServe = %v, want an error about the missing addresses", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ListenAndServe without addresses blocked")
			}
		})
	}
}

// TestListenAndServeListenError: when one address cannot be listened on,
// ListenAndServe returns the error and closes the listeners it opened.
func TestListenAndServeListenError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addrA := freeAddr(t)
	s := newDemoServer(t, WithConfig(listenConfig(addrA, busy.Addr().String())))
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe() }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("ListenAndServe = %v, want EADDRINUSE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return the listen error")
	}
	// The listener on A, opened first, was closed.
	l, err := net.Listen("tcp", addrA)
	if err != nil {
		t.Fatalf("the listener on %s leaked: %v", addrA, err)
	}
	l.Close()
	s.mu.Lock()
	n := len(s.listeners)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("the server tracks %d listeners", n)
	}
}

// TestMaxConns: at the cap, a new connection waits in the backlog until a
// slot frees.
func TestMaxConns(t *testing.T) {
	ts := startServer(t, WithMaxConns(1))
	idle := dial(t, ts.addr)
	waitConns(t, ts.Server, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := hello(ctx, ts.addr, "blocked")
	if code := status.Code(err); code != codes.DeadlineExceeded {
		t.Fatalf("call at the cap: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("call at the cap failed after %v, before its deadline", d)
	}

	idle.Close()
	if got, err := hello(ctxTimeout(t, 5*time.Second), ts.addr, "free"); err != nil || got != "Hello free" {
		t.Fatalf("call after a slot freed: %q, %v", got, err)
	}
}

// TestIdleTimeout: a connection that sends nothing is closed after the idle
// timeout.
func TestIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	ts := startServer(t, WithIdleTimeout(idle))
	nc := dial(t, ts.addr)
	start := time.Now()
	readClosed(t, nc, 5*time.Second)
	if d := time.Since(start); d < idle-10*time.Millisecond || d > 2*time.Second {
		t.Fatalf("closed after %v, the idle timeout is %v", d, idle)
	}
}

// TestShutdownWakesIdle: Shutdown closes a connection waiting for its
// request at once, not at the idle timeout.
func TestShutdownWakesIdle(t *testing.T) {
	ts := startServer(t, WithIdleTimeout(30*time.Second))
	nc := dial(t, ts.addr)
	waitConns(t, ts.Server, 1)
	start := time.Now()
	if err := ts.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %v with one idle connection", d)
	}
	readClosed(t, nc, 2*time.Second)
	ts.waitServed(t)
}

// blockingService is a service whose one method reports its context on
// started, then waits for unblock, ignoring its context.
type blockingService struct {
	started chan context.Context
	release chan struct{}
	once    sync.Once
}

func newBlockingService() *blockingService {
	return &blockingService{started: make(chan context.Context, 1), release: make(chan struct{})}
}

// unblock lets the handler return.
func (b *blockingService) unblock() { b.once.Do(func() { close(b.release) }) }

func (b *blockingService) desc() *rpc.ServiceDesc {
	return &rpc.ServiceDesc{
		ServiceName: "test.Blocking",
		Methods: []rpc.MethodDesc{{
			MethodName: "Block",
			Handler: func(_ any, ctx context.Context, _ func(proto.Message) error, _ rpc.UnaryServerInterceptor) (proto.Message, error) {
				b.started <- ctx
				<-b.release
				return &echo.EchoReply{}, nil
			},
		}},
	}
}

// startBlocked starts a server with a blocking service and a call in its
// handler, sent on a raw connection without a deadline. It returns the
// handler's context and the connection.
func startBlocked(t *testing.T) (*testServer, *blockingService, context.Context, net.Conn) {
	t.Helper()
	b := newBlockingService()
	s := New(WithLogger(quietLogger()))
	if err := s.Register(b.desc(), b); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	// Released before the server's cleanup runs (cleanups run last in,
	// first out), so that the handler ends.
	t.Cleanup(b.unblock)
	nc := dial(t, ts.addr)
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(requestFrame(t, 1, "test.Blocking", "Block", &echo.EchoRequest{})); err != nil {
		t.Fatal(err)
	}
	var hctx context.Context
	select {
	case hctx = <-b.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not start")
	}
	return ts, b, hctx, nc
}

// TestShutdownTimeout: when calls outlast the Shutdown context, Shutdown
// returns its error, closes the connections and cancels the handlers'
// contexts.
func TestShutdownTimeout(t *testing.T) {
	ts, b, hctx, nc := startBlocked(t)
	const timeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := ts.Shutdown(ctx)
	d := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	if d < timeout-10*time.Millisecond || d > time.Second {
		t.Fatalf("Shutdown returned after %v; its context had %v", d, timeout)
	}
	select {
	case <-hctx.Done():
		if !errors.Is(hctx.Err(), context.Canceled) {
			t.Fatalf("the handler's context ended with %v, want Canceled", hctx.Err())
		}
	default:
		t.Fatal("the handler's context was not cancelled when Shutdown gave up")
	}
	readClosed(t, nc, time.Second)
	ts.waitServed(t)
	b.unblock()
	// The handler ends; the connection is then released.
	waitConns(t, ts.Server, 0)
}

// TestShutdownEndedContextIdle: a server with nothing to drain shuts down
// cleanly even when Shutdown's context has already ended.
func TestShutdownEndedContextIdle(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	for _, ctx := range []context.Context{ended, expired} {
		t.Run(fmt.Sprint(ctx.Err()), func(t *testing.T) {
			// The outcome must not depend on the order a select picks.
			for i := 0; i < 50; i++ {
				s := New(WithLogger(quietLogger()))
				if err := s.Shutdown(ctx); err != nil {
					t.Fatalf("attempt %d: Shutdown of an idle server = %v, want nil", i, err)
				}
			}
		})
	}
}

// TestClose: Close returns at once, even with a call in flight, and closes
// every connection.
func TestClose(t *testing.T) {
	ts, _, hctx, nc := startBlocked(t)
	idle := dial(t, ts.addr)
	waitConns(t, ts.Server, 2)
	start := time.Now()
	if err := ts.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	if hctx.Err() == nil {
		t.Fatal("the handler's context was not cancelled")
	}
	readClosed(t, nc, time.Second)
	readClosed(t, idle, time.Second)
	ts.waitServed(t)
	if err := ts.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
