package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/mux"
	"myrpc/v5-cluster/server"
)

const waitMethod = "/" + gateService + "/Wait"

// TestInvokeAsync: InvokeAsync returns at once while the handler blocks;
// Get with a short context gives up without ending the call; the call
// ends when the handler returns, and Get and OnDone see it.
func TestInvokeAsync(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv.addr)
	reply := new(echo.EchoReply)
	start := time.Now()
	f := c.InvokeAsync(context.Background(), waitMethod, &echo.EchoRequest{}, reply)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("InvokeAsync took %v", d)
	}
	srv.gate.waitStarted(t)
	select {
	case <-f.Done():
		t.Fatalf("the future ended while the handler blocks: %v", f.Get(context.Background()))
	default:
	}
	var onDoneRuns atomic.Int64
	onDone := make(chan error, 2)
	f.OnDone(func(err error) {
		onDoneRuns.Add(1)
		onDone <- err
	})

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := f.Get(short)
	wantCode(t, err, codes.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	select {
	case <-f.Done():
		t.Fatal("Get's context ended the call")
	default:
	}

	srv.gate.open()
	if err := f.Get(context.Background()); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(reply.Payload) != "released" {
		t.Fatalf("reply %q", reply.Payload)
	}
	select {
	case err := <-onDone:
		if err != nil {
			t.Fatalf("OnDone got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnDone did not run")
	}
	// A callback added now runs at once.
	late := false
	f.OnDone(func(error) { late = true })
	if !late {
		t.Fatal("OnDone after the end did not run at once")
	}
	if n := onDoneRuns.Load(); n != 1 {
		t.Fatalf("OnDone ran %d times", n)
	}
}

// TestAsyncStub: the generated asynchronous stub works through the client,
// with many calls in flight at once.
func TestAsyncStub(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv.addr)
	greeter := helloworld.NewGreeterAsyncClient(c)
	const n = 50
	calls := make([]*rpc.Async[*helloworld.HelloReply], n)
	var callbacks sync.WaitGroup
	callbacks.Add(n)
	for i := range calls {
		calls[i] = greeter.HelloAsync(context.Background(), &helloworld.HelloRequest{Msg: fmt.Sprint(i)})
		calls[i].OnDone(func(r *helloworld.HelloReply, err error) {
			defer callbacks.Done()
			if err != nil || r.GetMsg() != fmt.Sprint("Hello ", i) {
				t.Errorf("OnDone of call %d: %v, %v", i, r, err)
			}
		})
	}
	for i, a := range calls {
		r, err := a.Get(context.Background())
		if err != nil || r.GetMsg() != fmt.Sprint("Hello ", i) {
			t.Fatalf("call %d: %v, %v", i, r, err)
		}
	}
	callbacks.Wait()
	if a := srv.lis.accepted.Load(); a > 4 {
		t.Fatalf("%d connections for %d calls, want at most the default 4", a, n)
	}
}

// TestMuxReuse: calls one after another share one connection.
func TestMuxReuse(t *testing.T) {
	const n = 10
	srv := startServer(t)
	c := newTestClient(t, srv.addr)
	for i := range n {
		sayHello(t, c, fmt.Sprint(i))
	}
	if s := c.MuxStats(); s != (mux.Stats{Conns: 1}) {
		t.Fatalf("MuxStats() = %+v, want one connection", s)
	}
	if a := srv.lis.accepted.Load(); a != 1 {
		t.Fatalf("the server accepted %d connections for %d sequential calls, want 1", a, n)
	}
}

// TestReliability11InterruptedCall: a call whose context ends while it
// waits for its response returns at once and leaves the pending table;
// the late response is dropped and counted, and the connection goes on
// serving calls.
func TestReliability11InterruptedCall(t *testing.T) {
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
			// The fake server answers Wait only when told, and anything
			// else at once.
			release := make(chan struct{})
			var answered sync.WaitGroup
			fake := newFakeServer(t, func(w io.Writer, r received) bool {
				if r.meta.Method != "Wait" {
					w.Write(okFrame(r.seq, "Hello next"))
					return true
				}
				answered.Add(1)
				go func() {
					defer answered.Done()
					<-release
					w.Write(okFrame(r.seq, "late"))
				}()
				return true
			})
			defer answered.Wait()
			defer close(release)
			c := newTestClient(t, fake.addr)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.deadline > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tt.deadline)
			}
			defer cancel()
			f := c.InvokeAsync(ctx, waitMethod, &echo.EchoRequest{}, new(echo.EchoReply))
			fake.request(t)
			if s := c.MuxStats(); s.Streams != 1 {
				t.Fatalf("MuxStats() = %+v while the call waits, want 1 stream", s)
			}
			start := time.Now()
			if tt.deadline == 0 {
				cancel()
			}
			select {
			case <-f.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the interrupted call did not return")
			}
			if d := time.Since(start); d > tt.deadline+time.Second {
				t.Fatalf("the call returned %v after it was interrupted", d-tt.deadline)
			}
			wantCode(t, f.Get(context.Background()), tt.want)
			// The goroutine that sent the request releases the stream as
			// it learns that the call has ended, which can be just after
			// the future is done.
			waitFor(t, "the interrupted call's stream to leave", func() bool { return c.MuxStats().Streams == 0 })
			release <- struct{}{}
			waitFor(t, "the late response to be dropped", func() bool { return c.MuxStats().Dropped == 1 })
			sayHelloTo(t, c, "next", "Hello next")
			if n := fake.accepted.Load(); n != 1 {
				t.Fatalf("the server accepted %d connections, want 1", n)
			}
		})
	}
}

// sayHelloTo calls Hello and checks the reply against want.
func sayHelloTo(t *testing.T, c *Client, msg, want string) {
	t.Helper()
	reply, err := hello(context.Background(), c, msg)
	if err != nil || reply.Msg != want {
		t.Fatalf("Hello(%q) = %v, %v; want %q", msg, reply, err, want)
	}
}

// TestErrorCodeKeepsConn: a response that carries an error code leaves the
// connection in use.
func TestErrorCodeKeepsConn(t *testing.T) {
	tests := []struct {
		name   string
		method string
		want   codes.Code
	}{
		{"unknown method", "/myrpc.echo.Echo/Nope", codes.Unimplemented},
		{"unknown service", "/no.Such/Thing", codes.Unimplemented},
		{"handler error", "/" + gateService + "/Fail", codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			c := newTestClient(t, srv.addr)
			err := c.Invoke(context.Background(), tt.method, &echo.EchoRequest{}, new(echo.EchoReply))
			wantCode(t, err, tt.want)
			sayHello(t, c, "after")
			if a := srv.lis.accepted.Load(); a != 1 {
				t.Fatalf("the server accepted %d connections, want 1", a)
			}
		})
	}
}

// TestRefusedFrame: a server refuses a frame over its limit with code 8 and
// closes the connection; the client sends nothing more on it, and the next
// call succeeds on a new connection, every time.
func TestRefusedFrame(t *testing.T) {
	const rounds = 10
	for _, maxConns := range []int{1, 4} {
		t.Run(fmt.Sprint("max_conns=", maxConns), func(t *testing.T) {
			srv := startServer(t, server.WithMaxFrameSize(1024))
			c := newTestClient(t, srv.addr, WithMux(mux.Config{MaxConns: maxConns, WaitTimeout: 2 * time.Second}))
			echoCall := func(size int) error {
				return c.Invoke(context.Background(), echo.Echo_Echo_FullMethodName, &echo.EchoRequest{Payload: make([]byte, size)}, new(echo.EchoReply))
			}
			for i := range rounds {
				if err := echoCall(2048); status.Code(err) != codes.ResourceExhausted {
					t.Fatalf("round %d: a frame over the server's limit: %v, want code 8", i, err)
				}
				if err := echoCall(16); err != nil {
					t.Fatalf("round %d: the call after a refused frame: %v", i, err)
				}
			}
			if a := srv.lis.accepted.Load(); a != rounds+1 {
				t.Fatalf("the server accepted %d connections, want %d", a, rounds+1)
			}
		})
	}
}

// TestHandlerResourceExhausted: a handler's own code 8 (a rate limiter's,
// say) must not leave the client without connections: the next calls
// succeed, even with one connection allowed.
func TestHandlerResourceExhausted(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv.addr, WithMux(mux.Config{MaxConns: 1, WaitTimeout: 500 * time.Millisecond}))
	for i := range 5 {
		_, err := callGate(context.Background(), c, "Quota")
		wantCode(t, err, codes.ResourceExhausted)
		sayHello(t, c, fmt.Sprint(i))
	}
	if s := c.MuxStats(); s.Conns != 1 || s.Streams != 0 {
		t.Fatalf("MuxStats() = %+v, want one connection", s)
	}
}

// TestCloseWaitsForCallsInFlight: Close lets a call in flight finish on
// its connection, then returns, and leaves no goroutines behind.
func TestCloseWaitsForCallsInFlight(t *testing.T) {
	srv := startServer(t)
	c := New(srv.addr, WithLogger(quietLogger()))
	reply := new(echo.EchoReply)
	f := c.InvokeAsync(context.Background(), waitMethod, &echo.EchoRequest{}, reply)
	srv.gate.waitStarted(t)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	waitFor(t, "Close to start", func() bool { return c.closed.Load() })
	// New calls are refused at once...
	_, err := hello(context.Background(), c, "late")
	wantCode(t, err, codes.Canceled)
	// ...but the call in flight goes on, and Close waits for it.
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a call was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	srv.gate.open()
	if err := f.Get(context.Background()); err != nil || string(reply.Payload) != "released" {
		t.Fatalf("the call in flight during Close: %q, %v", reply.Payload, err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the call ended")
	}
	waitNoClientGoroutines(t)
}

// TestCloseEndsQueuedRetries: Close ends a call waiting in the retry queue
// with its last error, without sending it again, and the queue's and the
// readers' goroutines end.
func TestCloseEndsQueuedRetries(t *testing.T) {
	before := goleak.IgnoreCurrent()
	fake := newFakeServer(t, retryAfter(100))
	c := New(fake.addr, WithLogger(quietLogger()), WithTimeout(0))
	hook, seen := recordRetries()
	retrying := make(chan struct{}, 1)
	f := c.InvokeAsync(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{Msg: "x"}, new(helloworld.HelloReply),
		Retry(RetryPolicy{Attempts: 5, Base: time.Hour, Cap: time.Hour}), OnRetry(func(n int, err error, d time.Duration) {
			hook(n, err, d)
			retrying <- struct{}{}
		}))
	fake.request(t)
	select {
	case <-retrying:
	case <-time.After(5 * time.Second):
		t.Fatal("the call was not queued for a retry")
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case <-f.Done():
	default:
		t.Fatal("Close returned before the queued call ended")
	}
	err := f.Get(context.Background())
	se := wantCode(t, err, codes.Unavailable)
	if se.Message() != "not now: the request was not run" {
		t.Fatalf("the queued call ended with %v, want its last attempt's error", err)
	}
	fake.noMoreRequests(t)
	if recs := seen(); len(recs) != 1 {
		t.Fatalf("OnRetry ran %d times, want 1", len(recs))
	}
	waitNoClientGoroutines(t)
	fake.close()
	goleak.VerifyNone(t, before)
}

// TestCloseDuringCalls: calls started while Close runs each end, with a
// reply or an error, and Close returns.
func TestCloseDuringCalls(t *testing.T) {
	for round := range 10 {
		srv := startServer(t)
		c := New(srv.addr, WithLogger(quietLogger()), WithTimeout(5*time.Second))
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var ok, refused atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := hello(context.Background(), c, "x")
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrClientClosed):
						refused.Add(1)
					default:
						t.Errorf("round %d: a call during Close: %v", round, err)
						return
					}
				}
			}()
		}
		waitFor(t, "some calls", func() bool { return ok.Load() > 10 })
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		waitFor(t, "calls to be refused", func() bool { return refused.Load() > 0 })
		close(stop)
		wg.Wait()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Close did not return", round)
		}
		waitNoClientGoroutines(t)
	}
}

// TestReliability14ConnectionResetFailsAll: when the server's end of the
// connection goes, every call in flight on it fails with 14 at once, and
// the next call gets a new connection.
func TestReliability14ConnectionResetFailsAll(t *testing.T) {
	const calls = 5
	var mu sync.Mutex
	var first io.Writer
	seen := make(chan struct{}, calls)
	fake := newFakeServer(t, func(w io.Writer, r received) bool {
		if r.conn == 0 {
			mu.Lock()
			first = w
			mu.Unlock()
			seen <- struct{}{}
			return true
		}
		w.Write(okFrame(r.seq, "Hello again"))
		return true
	})
	c := newTestClient(t, fake.addr, WithMux(mux.Config{MaxConns: 1}))
	futures := make([]rpc.Future, calls)
	for i := range futures {
		futures[i] = c.InvokeAsync(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{}, new(helloworld.HelloReply))
	}
	for range calls {
		<-seen
	}
	mu.Lock()
	first.(interface{ Close() error }).Close()
	mu.Unlock()
	for i, f := range futures {
		select {
		case <-f.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d did not end after the connection broke", i)
		}
		wantCode(t, f.Get(context.Background()), codes.Unavailable)
	}
	if s := c.MuxStats(); s.Streams != 0 {
		t.Fatalf("MuxStats() = %+v, want no streams", s)
	}
	sayHelloTo(t, c, "again", "Hello again")
}

// TestInvokeAsyncReturnsAtOnce: InvokeAsync returns its future at once,
// even when the call's request must wait for other calls' writes to a
// server that reads nothing; the future ends at the call's deadline.
func TestInvokeAsyncReturnsAtOnce(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			nc, err := lis.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- nc // never read
		}
	}()
	defer func() {
		lis.Close()
		for nc := range conns {
			nc.Close()
		}
	}()
	c := newTestClient(t, lis.Addr().String(), WithMux(mux.Config{MaxConns: 1}))
	// Requests of nearly 4 MiB fill the socket buffers: the later ones
	// wait to be written.
	big := &echo.EchoRequest{Payload: bytes.Repeat([]byte{1}, 4<<20-1024)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for range 3 {
		go c.Invoke(ctx, "/myrpc.echo.Echo/Echo", big, new(echo.EchoReply))
	}
	time.Sleep(200 * time.Millisecond)

	const wait = 300 * time.Millisecond
	actx, acancel := context.WithTimeout(context.Background(), wait)
	defer acancel()
	deadline, _ := actx.Deadline()
	start := time.Now()
	f := c.InvokeAsync(actx, "/myrpc.echo.Echo/Echo", &echo.EchoRequest{}, new(echo.EchoReply))
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("InvokeAsync took %v to return its future", took)
	}
	select {
	case <-f.Done():
		wantCode(t, f.Get(context.Background()), codes.DeadlineExceeded)
		if late := time.Since(deadline); late > 100*time.Millisecond {
			t.Errorf("the future ended %v after the deadline", late)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the future did not end")
	}
}

// lateCtx is a context that ended just after its caller looked: its Done
// channel is closed, and Err still says nil the first time it is asked.
type lateCtx struct {
	context.Context
	done  chan struct{}
	asked atomic.Int32
}

func newLateCtx() *lateCtx {
	c := &lateCtx{Context: context.Background(), done: make(chan struct{})}
	close(c.done)
	return c
}

func (c *lateCtx) Done() <-chan struct{} { return c.done }

// Deadline is far away: the call takes the context as it is, with no
// default timeout wrapped around it.
func (c *lateCtx) Deadline() (time.Time, bool) { return time.Now().Add(time.Hour), true }

func (c *lateCtx) Err() error {
	if c.asked.Add(1) == 1 {
		return nil
	}
	return context.Canceled
}

// TestCallEndsAsItStarts: a call whose context ends as it starts ends once,
// with Canceled; the race detector watches the call's end run on the
// context's goroutine while the call is still being set up.
func TestCallEndsAsItStarts(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	c := newTestClient(t, lis.Addr().String())
	for range 50 {
		err := c.Invoke(newLateCtx(), "/myrpc.echo.Echo/Echo", &echo.EchoRequest{}, new(echo.EchoReply))
		wantCode(t, err, codes.Canceled)
		f := c.InvokeAsync(newLateCtx(), "/myrpc.echo.Echo/Echo", &echo.EchoRequest{}, new(echo.EchoReply))
		wantCode(t, f.Get(context.Background()), codes.Canceled)
	}
}
