package server

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestZeroMeansNoLimit: a zero cap or timeout switches the limit off, as
// in net/http, instead of refusing every connection.
func TestZeroMeansNoLimit(t *testing.T) {
	ts := startServer(t, WithMaxConns(0), WithIdleTimeout(0), WithWriteTimeout(0), WithFrameTimeout(0))
	if ts.slots != nil {
		t.Fatal("WithMaxConns(0) left a cap in place")
	}
	// Several idle connections do not block a call.
	for range 3 {
		dial(t, ts.addr)
	}
	waitConns(t, ts.Server, 3)
	if got, err := hello(ctxTimeout(t, 5*time.Second), ts.addr, "zero"); err != nil || got != "Hello zero" {
		t.Fatalf("call: %q, %v", got, err)
	}
	// With no idle timeout an idle connection stays open.
	nc := dial(t, ts.addr)
	nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if _, err := nc.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("an idle connection was closed with no idle timeout set: %v", err)
	}
}

// TestListenAndServeStopsOnListenerFailure: when one listener stops with an
// error, ListenAndServe closes the others and returns that error.
func TestListenAndServeStopsOnListenerFailure(t *testing.T) {
	addrA, addrB := freeAddr(t), freeAddr(t)
	s := newDemoServer(t, WithConfig(listenConfig(addrA, addrB)))
	defer s.Close()
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe() }()
	if !waitFor(5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.listeners) == 2
	}) {
		t.Fatal("ListenAndServe did not start both listeners")
	}
	// Break one listener behind the server's back.
	s.mu.Lock()
	for l := range s.listeners {
		if l.Addr().String() == addrA {
			l.Close()
		}
	}
	s.mu.Unlock()
	select {
	case err := <-served:
		if err == nil || errors.Is(err, ErrServerClosed) {
			t.Fatalf("ListenAndServe returned %v, want the listener's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe kept serving on one of two addresses")
	}
	if c, err := net.DialTimeout("tcp", addrB, time.Second); err == nil {
		c.Close()
		t.Fatal("the other listener is still open")
	}
}
