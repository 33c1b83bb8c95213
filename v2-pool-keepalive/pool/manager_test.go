package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func mustGetAddr(t *testing.T, m *Manager, addr string) *Conn {
	t.Helper()
	c, err := m.Get(context.Background(), addr)
	if err != nil {
		t.Fatalf("Get(%s): %v", addr, err)
	}
	return c
}

// TestManager: one pool per address, stats by address, and Close closes
// them all.
func TestManager(t *testing.T) {
	d := newFakeDialer(t)
	m := NewManager(Config{Dial: d.dial})
	a1 := mustGetAddr(t, m, "a:1")
	b1 := mustGetAddr(t, m, "b:1")
	m.Put(a1, nil)
	m.Put(b1, nil)
	a2 := mustGetAddr(t, m, "a:1")
	if a2 != a1 {
		t.Fatal("a second Get for the same address did not reuse its idle connection")
	}
	d.mu.Lock()
	addrs := append([]string(nil), d.addrs...)
	d.mu.Unlock()
	if len(addrs) != 2 || addrs[0] != "a:1" || addrs[1] != "b:1" {
		t.Fatalf("dialled %q, want [a:1 b:1]", addrs)
	}
	want := map[string]Stats{
		"a:1": {Hits: 1, Misses: 1, Open: 1},
		"b:1": {Misses: 1, Open: 1, Idle: 1},
	}
	got := m.Stats()
	if len(got) != len(want) {
		t.Fatalf("Stats() has %d pools, want %d: %+v", len(got), len(want), got)
	}
	for addr, w := range want {
		if got[addr] != w {
			t.Fatalf("Stats()[%s] = %+v, want %+v", addr, got[addr], w)
		}
	}

	// Close waits within its context for a:1's connection in use.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a connection in use = %v, want DeadlineExceeded", err)
	}
	wantClosed(t, b1)
	wantOpen(t, a2)
	for _, addr := range []string{"a:1", "b:1", "new:1"} {
		if _, err := m.Get(context.Background(), addr); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get(%s) after Close = %v, want ErrClosed", addr, err)
		}
	}
	m.Put(a2, nil)
	wantClosed(t, a2)
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("Close once every connection is back: %v", err)
	}
	if n := d.open.Load(); n != 0 {
		t.Fatalf("%d connections open after Close", n)
	}
	if _, ok := m.Stats()["new:1"]; ok {
		t.Fatal("a Get after Close created a pool")
	}
}

// TestManagerOnePoolPerAddress: concurrent first Gets for one address share
// one pool.
func TestManagerOnePoolPerAddress(t *testing.T) {
	const n = 16
	d := newFakeDialer(t)
	m := NewManager(Config{Dial: d.dial, MaxActive: n})
	conns := make(chan *Conn, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := m.Get(context.Background(), "x:1")
			if err != nil {
				t.Error(err)
				return
			}
			conns <- c
		}()
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		m.Put(c, nil)
	}
	if got := m.Stats(); len(got) != 1 || got["x:1"].Misses != n || got["x:1"].Open != n {
		t.Fatalf("Stats() = %+v, want one pool with %d misses", got, n)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
