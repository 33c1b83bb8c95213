//go:build unix

package server

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// peerClosed reports whether the peer's FIN has already arrived on nc,
// without waiting and without consuming data: a non-blocking peek reads
// 0 bytes.
func peerClosed(t *testing.T, nc net.Conn) bool {
	t.Helper()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), make([]byte, 1), syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n == 0 && rerr == nil
}

// TestShutdownClosesBeforeReturning: when Shutdown returns, every
// connection has been closed, not merely forgotten. A client pool relies on
// it: a server restarted on the same port must not find the old server's
// connections still open in the pool (R20).
func TestShutdownClosesBeforeReturning(t *testing.T) {
	const (
		rounds = 20
		conns  = 16
	)
	for round := range rounds {
		ts := startServer(t)
		ncs := make([]net.Conn, conns)
		for i := range ncs {
			ncs[i] = dial(t, ts.addr)
		}
		waitConns(t, ts.Server, conns)
		if err := ts.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		for i, nc := range ncs {
			if !peerClosed(t, nc) {
				t.Fatalf("round %d: connection %d was still open when Shutdown returned", round, i)
			}
		}
	}
}
