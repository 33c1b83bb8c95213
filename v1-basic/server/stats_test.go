package server

import (
	"testing"
	"time"
)

// wantStat waits up to 5 s for the server's counter key to reach want.
func wantStat(t *testing.T, s *Server, key string, want float64) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool { return s.Stats()[key] == want }) {
		t.Fatalf("Stats()[%q] = %v, want %v", key, s.Stats()[key], want)
	}
}

// TestStats: the server counts the connections it has accepted, those open
// now, and the calls it has handled.
func TestStats(t *testing.T) {
	ts := startServer(t)
	for key, want := range map[string]float64{"conns_accepted": 0, "conns_open": 0, "calls": 0} {
		if got, ok := ts.Stats()[key]; !ok || got != want {
			t.Fatalf("a new server: Stats()[%q] = %v (present: %v), want %v", key, got, ok, want)
		}
	}
	// Each call goes through a client of its own, so on a connection of
	// its own.
	for range 3 {
		if _, err := hello(ctxTimeout(t, 5*time.Second), ts.addr, "stats"); err != nil {
			t.Fatal(err)
		}
	}
	wantStat(t, ts.Server, "conns_accepted", 3)
	wantStat(t, ts.Server, "calls", 3)
	wantStat(t, ts.Server, "conns_open", 0)

	nc := dial(t, ts.addr)
	wantStat(t, ts.Server, "conns_open", 1)
	wantStat(t, ts.Server, "conns_accepted", 4)
	nc.Close()
	wantStat(t, ts.Server, "conns_open", 0)
	wantStat(t, ts.Server, "calls", 3)
}
