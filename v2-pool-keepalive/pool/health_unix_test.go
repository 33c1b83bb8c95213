//go:build unix

package pool

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpServer is a listener on 127.0.0.1 that hands over the server side of
// each connection it accepts.
type tcpServer struct {
	addr  string
	conns chan net.Conn
}

// newTCPServer starts a listener; it and every accepted connection are
// closed when the test ends.
func newTCPServer(t *testing.T) *tcpServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{addr: lis.Addr().String(), conns: make(chan net.Conn, 16)}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, nc)
			mu.Unlock()
			s.conns <- nc
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, nc := range accepted {
			nc.Close()
		}
	})
	return s
}

// accepted returns the server side of the next connection.
func (s *tcpServer) accepted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case nc := <-s.conns:
		return nc
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

// tcpPair returns both ends of a TCP connection on 127.0.0.1.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	s := newTCPServer(t)
	client, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, s.accepted(t)
}

// waitUnhealthy waits until healthy reports false: whatever the peer did
// takes a moment to arrive. healthy consumes nothing, so asking again is
// harmless.
func waitUnhealthy(t *testing.T, c net.Conn) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool { return !healthy(c) }) {
		t.Fatal("healthy still reports true")
	}
}

// TestHealthy: the health check tells an idle connection from one the
// peer closed, reset, or sent unexpected data on, and eats no data.
func TestHealthy(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		c, s := tcpPair(t)
		for i := range 3 {
			if !healthy(c) {
				t.Fatalf("check %d: an idle connection is reported unhealthy", i)
			}
		}
		// The check leaves the connection usable both ways.
		if _, err := s.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("read %q, %v after the check; want ping", buf, err)
		}
		if !healthy(c) {
			t.Fatal("a connection whose data was all read is reported unhealthy")
		}
	})
	t.Run("peer closed", func(t *testing.T) {
		c, s := tcpPair(t)
		s.Close()
		waitUnhealthy(t, c)
	})
	t.Run("peer reset", func(t *testing.T) {
		c, s := tcpPair(t)
		s.(*net.TCPConn).SetLinger(0)
		s.Close()
		waitUnhealthy(t, c)
	})
	t.Run("unread data", func(t *testing.T) {
		c, s := tcpPair(t)
		want := "a response nobody waits for"
		if _, err := s.Write([]byte(want)); err != nil {
			t.Fatal(err)
		}
		waitUnhealthy(t, c)
		if healthy(c) {
			t.Fatal("a second check reports healthy: the first ate the data")
		}
		// Nothing was eaten: every byte is still there.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != want {
			t.Fatalf("read %q, %v after the check; want %q", buf, err, want)
		}
	})
	t.Run("closed locally", func(t *testing.T) {
		c, _ := tcpPair(t)
		c.Close()
		if healthy(c) {
			t.Fatal("a closed connection is reported healthy")
		}
	})
	t.Run("no socket", func(t *testing.T) {
		// A connection with no file descriptor cannot be checked: trusted.
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if !healthy(a) {
			t.Fatal("an in-memory connection is reported unhealthy")
		}
	})
}

// TestGetEvictsBroken: an idle connection that the server closed is
// evicted by Get, which dials a fresh one.
func TestGetEvictsBroken(t *testing.T) {
	srv := newTCPServer(t)
	p := New(srv.addr, Config{CheckAfter: -1})
	defer p.Close(context.Background())
	c1, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s1 := srv.accepted(t)
	p.Put(c1, nil)
	s1.Close()
	waitUnhealthy(t, c1.Conn)

	c2, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Put(c2, nil)
	if c2 == c1 {
		t.Fatal("Get returned the connection the server closed")
	}
	if got := p.Stats(); got != (Stats{Misses: 2, Evicted: 1, Open: 1}) {
		t.Fatalf("Stats() = %+v, want 2 misses, 1 eviction, 1 open", got)
	}
	if _, err := c1.Conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on the evicted connection: %v, want it closed", err)
	}
	// The fresh connection reaches the server.
	s2 := srv.accepted(t)
	if _, err := c2.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	s2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s2, make([]byte, 1)); err != nil {
		t.Fatalf("the server did not receive on the fresh connection: %v", err)
	}
}

// TestCheckAfter: a connection back from a call less than CheckAfter ago
// is handed out without a check; one idle longer is checked.
func TestCheckAfter(t *testing.T) {
	const after = 50 * time.Millisecond
	srv := newTCPServer(t)
	p := New(srv.addr, Config{CheckAfter: after})
	defer p.Close(context.Background())
	c1, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s1 := srv.accepted(t)
	p.Put(c1, nil)
	s1.Close()
	waitUnhealthy(t, c1.Conn)
	// Back a moment ago: not checked, so the closed connection goes out.
	if c, err := p.Get(context.Background()); err != nil || c != c1 {
		t.Fatalf("Get within CheckAfter = %p, %v; want the same connection, unchecked", c, err)
	}
	p.Put(c1, nil)
	time.Sleep(after) // let the connection be idle for longer than CheckAfter
	c2, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Put(c2, nil)
	if c2 == c1 {
		t.Fatal("a connection idle past CheckAfter was not checked")
	}
	if got := p.Stats().Evicted; got != 1 {
		t.Fatalf("Evicted = %d, want 1", got)
	}
}
