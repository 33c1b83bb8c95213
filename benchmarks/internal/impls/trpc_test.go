package impls

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	trpclog "trpc.group/trpc-go/trpc-go/log"
)

// serveTRPC starts a trpc server on a loopback port and returns it, its
// address and a function that stops it with ctx and returns what Stop and
// Serve returned.
func serveTRPC(t *testing.T) (*trpcServer, string, func(ctx context.Context) (stopErr, serveErr error)) {
	t.Helper()
	im, _ := Lookup("trpc")
	srv, addr, errc := startServer(t, im)
	return srv.(*trpcServer), addr, func(ctx context.Context) (error, error) {
		err := srv.Stop(ctx)
		return err, <-errc
	}
}

// waitActive waits until s has n calls in flight.
func waitActive(t *testing.T, s *trpcServer, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.mu.Lock()
		active := s.active
		s.mu.Unlock()
		if active == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server has %d calls in flight, want %d", active, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func newTRPCTestClient(t *testing.T, addr string, o Options) (*trpcClient, Caller) {
	t.Helper()
	cl, err := newTRPCClient(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	h, err := cl.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	return cl.(*trpcClient), h
}

// TestTRPCCallDelay checks that the server waits delay_ms before it answers.
func TestTRPCCallDelay(t *testing.T) {
	_, addr, stop := serveTRPC(t)
	cl, h := newTRPCTestClient(t, addr, quiet)
	sc, ok := h.(SlowCaller)
	if !ok {
		t.Fatal("the trpc caller is not a SlowCaller")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const delay = 200 * time.Millisecond
	start := time.Now()
	if err := sc.CallDelay(ctx, []byte("slow"), delay); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("CallDelay(%v) took %v", delay, took)
	}
	cl.Close()
	if stopErr, serveErr := stop(ctx); stopErr != nil || serveErr != nil {
		t.Fatalf("Stop: %v, Serve: %v", stopErr, serveErr)
	}
}

// TestTRPCStopWaits checks that Stop waits for a call in flight.
func TestTRPCStopWaits(t *testing.T) {
	srv, addr, stop := serveTRPC(t)
	cl, h := newTRPCTestClient(t, addr, quiet)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const delay = 300 * time.Millisecond
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The reply may be cut by the connection's close.
		h.(SlowCaller).CallDelay(ctx, []byte("slow"), delay)
	}()
	waitActive(t, srv, 1)
	if stopErr, serveErr := stop(ctx); stopErr != nil || serveErr != nil {
		t.Fatalf("Stop: %v, Serve: %v", stopErr, serveErr)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("Stop returned %v after a call of %v began", took, delay)
	}
	<-done
}

// TestTRPCStopAborts checks that Stop returns by its context's end, and
// that a call still in flight then ends.
func TestTRPCStopAborts(t *testing.T) {
	srv, addr, stop := serveTRPC(t)
	cl, h := newTRPCTestClient(t, addr, quiet)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.(SlowCaller).CallDelay(ctx, []byte("slow"), time.Minute) }()
	waitActive(t, srv, 1)
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	start := time.Now()
	stopErr, serveErr := stop(sctx)
	if !errors.Is(stopErr, context.DeadlineExceeded) || serveErr != nil {
		t.Fatalf("Stop: %v, Serve: %v; want DeadlineExceeded, nil", stopErr, serveErr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop took %v with a 100ms context", took)
	}
	if err := <-errc; err == nil {
		t.Error("a call the server gave up on succeeded")
	}
	waitActive(t, srv, 0)
}

// TestTRPCClientClose checks that Close closes every connection the client
// dialled, and that the client dials no more.
func TestTRPCClientClose(t *testing.T) {
	_, addr, stop := serveTRPC(t)
	cl, h := newTRPCTestClient(t, addr, quiet)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Call(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	var conns []net.Conn
	for c := range cl.conns {
		conns = append(conns, c)
	}
	cl.mu.Unlock()
	if len(conns) != 1 {
		t.Fatalf("the client dialled %d connections for one call", len(conns))
	}
	cl.Close()
	if _, err := conns[0].Write([]byte("x")); err == nil {
		t.Error("a connection is still open after Close")
	}
	// tnet's transport wraps the dial's error, net's keeps its text.
	if err := h.Call(ctx, []byte("x")); err == nil || !strings.Contains(err.Error(), errTRPCClientClosed.Error()) {
		t.Errorf("a call after Close: %v, want %v", err, errTRPCClientClosed)
	}
	if stopErr, serveErr := stop(ctx); stopErr != nil || serveErr != nil {
		t.Fatalf("Stop: %v, Serve: %v", stopErr, serveErr)
	}
}

// TestTRPCMaxConns checks that MaxConns limits the connections of a client
// whose calls all overlap, and that the calls beyond it wait.
func TestTRPCMaxConns(t *testing.T) {
	_, addr, stop := serveTRPC(t)
	o := quiet
	o.MaxConns = 2
	cl, _ := newTRPCTestClient(t, addr, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const calls = 8
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		h, _ := cl.NewCaller()
		wg.Go(func() { errs <- h.(SlowCaller).CallDelay(ctx, []byte("x"), 300*time.Millisecond) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	cl.mu.Lock()
	n := len(cl.conns)
	cl.mu.Unlock()
	if n < 1 || n > 2 {
		t.Errorf("%d overlapping calls dialled %d connections with MaxConns 2", calls, n)
	}
	cl.Close()
	if stopErr, serveErr := stop(ctx); stopErr != nil || serveErr != nil {
		t.Fatalf("Stop: %v, Serve: %v", stopErr, serveErr)
	}
}

// TestTRPCLogger checks that trpc-go's and tnet's records reach the
// Options logger from warning up, and no others.
func TestTRPCLogger(t *testing.T) {
	routeTRPCLogs(quiet.Logger)
	if _, ok := trpclog.GetDefaultLogger().(trpcLogger); !ok {
		t.Fatalf("trpc-go logs to %T", trpclog.GetDefaultLogger())
	}
	var buf bytes.Buffer
	l := trpcLogger{l: slog.New(slog.NewTextHandler(&buf, nil)), from: "trpc-go"}
	l.Infof("info %d", 1)
	l.Debug("debug")
	l.Trace("trace")
	if buf.Len() != 0 {
		t.Fatalf("records below warning were logged: %q", buf.String())
	}
	l.Warnf("warn %d", 2)
	l.Error("error")
	for _, want := range []string{`level=WARN msg="warn 2" from=trpc-go`, `level=ERROR msg=error from=trpc-go`} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("the log lacks %s: %q", want, buf.String())
		}
	}
}

// TestTRPCServers runs servers one after another, each answering a call
// from a new client. When Stop returned before tnet had closed the listener
// (the listener's own descriptor closed first), tnet later took the
// descriptor's number out of its epoll set after a new socket had got it,
// and about one call in twenty on a new server was never answered.
func TestTRPCServers(t *testing.T) {
	for i := range 100 {
		_, addr, stop := serveTRPC(t)
		cl, h := newTRPCTestClient(t, addr, quiet)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := h.Call(ctx, []byte("x")); err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		cl.Close()
		if stopErr, serveErr := stop(ctx); stopErr != nil || serveErr != nil {
			t.Fatalf("server %d: Stop: %v, Serve: %v", i, stopErr, serveErr)
		}
		cancel()
	}
}
