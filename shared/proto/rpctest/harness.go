package rpctest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
)

// env is one running server of the stage under test, with the suite's
// services registered.
type env struct {
	t      *testing.T
	stage  Stage
	srv    Server
	addr   string
	faults *faults
	logs   *logBuffer
	served chan error
	stop   sync.Once
}

// start starts a server of the stage on 127.0.0.1:0. The server is shut
// down when the test ends; the test fails if that shutdown is not clean.
func start(t *testing.T, stage Stage, cfg ServerConfig) *env {
	t.Helper()
	return startAt(t, stage, cfg, "127.0.0.1:0")
}

// startAt is start on a given address.
func startAt(t *testing.T, stage Stage, cfg ServerConfig, addr string) *env {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e := &env{t: t, stage: stage, srv: stage.NewServer(cfg), faults: newFaults(), logs: logs, served: make(chan error, 1)}
	helloworld.RegisterGreeterServer(e.srv, services.Greeter{})
	echo.RegisterEchoServer(e.srv, services.Echo{})
	e.srv.RegisterService(&faultsDesc, e.faults)

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	go func() { e.served <- e.srv.Serve(lis) }()
	t.Cleanup(func() { e.shutdown(5 * time.Second) })
	return e
}

// shutdown stops the server and checks that Serve returned ErrServerClosed.
func (e *env) shutdown(timeout time.Duration) error {
	var err error
	e.stop.Do(func() {
		e.faults.releaseAll()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err = e.srv.Shutdown(ctx)
		if err != nil {
			e.t.Errorf("Shutdown: %v", err)
		}
		select {
		case serr := <-e.served:
			if !errors.Is(serr, e.stage.ErrServerClosed) {
				e.t.Errorf("Serve returned %v, want %v", serr, e.stage.ErrServerClosed)
			}
		case <-time.After(timeout):
			e.t.Errorf("Serve did not return within %v of Shutdown", timeout)
		}
	})
	return err
}

// client returns a client of the stage, closed when the test ends.
func (e *env) client(cfg ClientConfig) Client {
	c := e.stage.NewClient(e.addr, cfg)
	e.t.Cleanup(func() { c.Close() })
	return c
}

// logBuffer collects a server's log lines for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int {
	return strings.Count(b.String(), substr)
}

// waitFor polls cond until it holds or d passes; it is for states the test
// cannot be told about, such as a goroutine count.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectGoroutines waits for the number of goroutines to fall back to at
// most n.
func expectGoroutines(t *testing.T, n int) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= n }) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf)
	}
}

// stallMeter measures how long this process held up its goroutines while
// it ran, two ways: how late its own timers fire, which is how late a
// goroutine that was woken (a call's caller, whose response or deadline
// came) may run; and how long a goroutine that yields waits for its turn
// again, which is how long one that was preempted while running (a caller
// inside InvokeAsync) may wait: it queues behind every goroutine ready
// before it, where a woken one goes ahead. A bound on a call's lateness
// must allow for the first, a bound on how long a call takes to return
// for the second. A busy machine, or the race detector, can stall a test
// for a good part of a second; many goroutines encoding big requests keep
// a preempted one waiting for a hundred milliseconds and more.
type stallMeter struct {
	stop  chan struct{}
	once  sync.Once
	done  chan struct{}
	worst atomic.Int64
	// queued is the longest wait for a turn after a yield.
	queued atomic.Int64
}

func startStallMeter() *stallMeter {
	m := &stallMeter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		const step = 2 * time.Millisecond
		t := time.NewTimer(step)
		defer t.Stop()
		for {
			start := time.Now()
			t.Reset(step)
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
			if late := time.Since(start) - step; late > time.Duration(m.worst.Load()) {
				m.worst.Store(int64(late))
			}
			yielded := time.Now()
			runtime.Gosched()
			if wait := time.Since(yielded); wait > time.Duration(m.queued.Load()) {
				m.queued.Store(int64(wait))
			}
		}
	}()
	return m
}

// Stop ends the measure and returns the worst lateness of a timer seen.
// It may be called more than once.
func (m *stallMeter) Stop() time.Duration {
	m.once.Do(func() { close(m.stop) })
	<-m.done
	return time.Duration(m.worst.Load())
}

// Queued returns the longest a yielding goroutine waited for its turn, or
// the worst timer lateness if that was longer. Call it after Stop.
func (m *stallMeter) Queued() time.Duration {
	return max(time.Duration(m.worst.Load()), time.Duration(m.queued.Load()))
}
