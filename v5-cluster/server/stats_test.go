package server

import (
	"net"
	"testing"
	"time"

	"myrpc/shared/proto/echo"
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

// TestStatsWorkers: the server reports the size of its worker pool, and
// the most workers that have run calls at once.
func TestStatsWorkers(t *testing.T) {
	ts := startServer(t, WithWorkers(8))
	b := newBlockingService()
	if err := ts.Register(b.desc(), b); err != nil {
		t.Fatal(err)
	}
	// Runs before the server's cleanup, so that the handlers end.
	t.Cleanup(b.unblock)
	wantStat(t, ts.Server, "workers", 8)
	wantStat(t, ts.Server, "workers_busy_peak", 0)

	conns := make([]net.Conn, 3)
	for i := range conns {
		conns[i] = dial(t, ts.addr)
		write(t, conns[i], requestFrame(t, 1, "test.Blocking", "Block", &echo.EchoRequest{}))
		select {
		case <-b.started:
		case <-time.After(5 * time.Second):
			t.Fatalf("blocking handler %d did not start", i+1)
		}
	}
	wantStat(t, ts.Server, "workers_busy_peak", 3)
	b.unblock()
	for _, nc := range conns {
		if f, rm := readResponse(t, nc, 5*time.Second); f.Seq != 1 || rm.Code != 0 {
			t.Fatalf("a blocked call: response %d, code %d %q", f.Seq, rm.Code, rm.Message)
		}
	}
	// One call at a time from here on: the peak stays.
	if _, err := hello(ctxTimeout(t, 5*time.Second), ts.addr, "stats"); err != nil {
		t.Fatal(err)
	}
	wantStat(t, ts.Server, "calls", 4)
	wantStat(t, ts.Server, "workers_busy_peak", 3)
}
