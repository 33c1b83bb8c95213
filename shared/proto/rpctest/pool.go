package rpctest

import (
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
)

// testR13IdleConnections: many idle connections are bounded by the cap on
// connections and closed by the idle timeout, and what they hold is given
// back.
func testR13IdleConnections(t *testing.T, stage Stage) {
	const (
		maxConns = 200
		opened   = 1000
		idle     = 300 * time.Millisecond
	)
	e := start(t, stage, ServerConfig{MaxConns: maxConns, IdleTimeout: idle})
	afterBadFrame(t, e, dialRaw(t, e.addr)) // warm up
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()

	conns := make([]net.Conn, 0, opened)
	for range opened {
		c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// The server holds at most maxConns of them; the rest wait in the
	// backlog. Measure while it holds the first batch.
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	if g := runtime.NumGoroutine() - baseline; g > maxConns+20 {
		t.Fatalf("%d goroutines for %d idle connections with a cap of %d", g, opened, maxConns)
	}
	held := int64(during.HeapInuse+during.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("heap and stacks grew %d KiB holding up to %d idle connections", held/1024, maxConns)
	if held > maxConns*64<<10 {
		t.Fatalf("%d KiB for %d idle connections", held/1024, maxConns)
	}

	// Every connection is closed in turn by the idle timeout: the first
	// batch, then those admitted from the backlog as slots free.
	var wg sync.WaitGroup
	failures := make(chan string, opened)
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, err := c.Read(make([]byte, 1))
			if n > 0 || err == nil {
				failures <- "data on an idle connection"
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				failures <- "an idle connection stayed open"
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Fatal(f)
	}
	t.Logf("all %d idle connections were closed in %v", opened, time.Since(start).Round(time.Millisecond))
	expectGoroutines(t, baseline)

	// The server still serves.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := helloworld.NewGreeterClient(e.client(ClientConfig{})).Hello(ctx, &helloworld.HelloRequest{Msg: "after"})
	if err != nil || reply.Msg != "Hello after" {
		t.Fatalf("call after the idle connections: %v, %v", reply, err)
	}
}

// testR19PoolExhausted: with every connection busy, a call waits within its
// context or the pool's wait bound, then fails with a clear error.
func testR19PoolExhausted(t *testing.T, stage Stage) {
	const wait = 150 * time.Millisecond
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{MaxInFlight: 2, WaitTimeout: wait})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	blocked := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := callFaults(ctx, c, "Block", &echo.EchoRequest{})
			blocked <- err
		}()
	}
	if !waitFor(5*time.Second, func() bool { return e.faults.blocked.Load() == 2 }) {
		t.Fatal("the two blocking calls did not reach the handler")
	}

	// The pool's bound ends the wait: ResourceExhausted, saying why.
	start := time.Now()
	_, err := callFaults(ctx, c, "Count", &echo.EchoRequest{})
	se := wantCode(t, err, codes.ResourceExhausted)
	if d := time.Since(start); d < wait-20*time.Millisecond || d > wait+2*time.Second {
		t.Fatalf("the call gave up after %v; the wait bound is %v", d, wait)
	}
	if !strings.Contains(se.Message(), "exhausted") {
		t.Fatalf("message %q does not say the pool is exhausted", se.Message())
	}
	// A shorter context ends the wait first: DeadlineExceeded.
	short, cancelShort := context.WithTimeout(ctx, wait/3)
	defer cancelShort()
	_, err = callFaults(short, c, "Count", &echo.EchoRequest{})
	wantCode(t, err, codes.DeadlineExceeded)
	if n := e.faults.calls.Load(); n != 0 {
		t.Fatalf("%d calls ran without a connection", n)
	}

	// Free the connections: calls go through again.
	e.faults.releaseAll()
	for range 2 {
		if err := <-blocked; err != nil {
			t.Fatalf("a blocked call: %v", err)
		}
	}
	if _, err := callFaults(ctx, c, "Count", &echo.EchoRequest{}); err != nil {
		t.Fatalf("call after the pool freed up: %v", err)
	}
}

// testR20ServerRestarted: connections held by the client across a server
// restart are found dead before use, and the first call after the restart
// succeeds.
func testR20ServerRestarted(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Several calls at once leave several idle connections behind.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := callFaults(ctx, c, "Slow", &echo.EchoRequest{DelayMs: 50}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	addr := e.addr
	if err := e.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Shutdown closed the connections the client holds. A new server
	// takes over the port, after the pause a restart takes (a pool may
	// trust a connection that came back a moment ago without checking it).
	if !waitFor(2*time.Second, func() bool { return !canDial(addr) }) {
		t.Fatal("the old server still accepts connections")
	}
	time.Sleep(50 * time.Millisecond)
	startAt(t, stage, ServerConfig{}, addr)
	for i := range 8 {
		reply, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "back"})
		if err != nil || reply.Msg != "Hello back" {
			t.Fatalf("call %d after the restart: %v, %v", i+1, reply, err)
		}
	}
}
