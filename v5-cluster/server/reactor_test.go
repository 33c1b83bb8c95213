//go:build linux

package server

import (
	"runtime"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
)

// TestReactor runs the tests of a connection's bounds, and of its calls'
// end with it, against the epoll engine: the engine stops reading a
// connection at its bounds (whole frames already read wait in its input),
// watches for the peer's FIN while it does, and writes through the loop.
// TestMain turned the engine off for the unit tests of the goroutine path.
func TestReactor(t *testing.T) {
	reactorByDefault = true
	defer func() { reactorByDefault = false }()
	for _, tt := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"ConnCallsBound", TestConnCallsBound},
		{"ConnCallsHalfTheWorkers", TestConnCallsHalfTheWorkers},
		{"ConnBytesBound", TestConnBytesBound},
		{"ClientNeverReads", TestClientNeverReads},
		{"SlowReaderServed", TestSlowReaderServed},
		{"CallsEndWithTheirConnection", TestCallsEndWithTheirConnection},
		{"MaxTimeout", TestMaxTimeout},
		{"Stats", TestStats},
		{"StatsWorkers", TestStatsWorkers},
	} {
		t.Run(tt.name, tt.fn)
	}
}

// TestReactorWorkersFull: when every worker is busy, the reactor refuses
// the next request at once with code 14 (not run, safe to retry), since it
// must never wait for a worker; the goroutine path waits for one, as V3
// does (TestWorkersFull).
func TestReactorWorkersFull(t *testing.T) {
	for _, tt := range []struct {
		name    string
		workers int
		// refused is true when the Hello finds no worker free.
		refused bool
	}{
		{"one worker, busy", 1, true},
		{"a worker free", 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := New(WithLogger(quietLogger()), WithWorkers(tt.workers))
			s.useReactor = true
			helloworld.RegisterGreeterServer(s, services.Greeter{})
			ts := serveOn(t, s)
			b := newBlockingService()
			if err := ts.Register(b.desc(), b); err != nil {
				t.Fatal(err)
			}
			// Runs before the server's cleanup, so that the handler ends.
			t.Cleanup(b.unblock)
			blocked := dial(t, ts.addr)
			write(t, blocked, requestFrame(t, 1, "test.Blocking", "Block", &echo.EchoRequest{}))
			select {
			case <-b.started:
			case <-time.After(5 * time.Second):
				t.Fatal("the blocking handler did not start")
			}

			nc := dial(t, ts.addr)
			write(t, nc, helloFrame(t, 7, "there"))
			f, rm := readResponse(t, nc, 5*time.Second)
			if tt.refused {
				if f.Seq != 7 || codes.Code(rm.Code) != codes.Unavailable {
					t.Fatalf("response %d, code %d %q; want 7, code 14", f.Seq, rm.Code, rm.Message)
				}
			} else {
				var reply helloworld.HelloReply
				wantReply(t, f, rm, &reply)
				if f.Seq != 7 || reply.Msg != "Hello there" {
					t.Fatalf("response %d %q, want 7 %q", f.Seq, reply.Msg, "Hello there")
				}
			}
			b.unblock()
			if f, rm := readResponse(t, blocked, 5*time.Second); f.Seq != 1 || rm.Code != 0 {
				t.Fatalf("the blocked call: response %d, code %d %q", f.Seq, rm.Code, rm.Message)
			}
		})
	}
}

// TestReactorStats: a server on the epoll engine reports its reactors (one
// loop per GOMAXPROCS by default) and how many frames each read and each
// writev carried.
func TestReactorStats(t *testing.T) {
	s := New(WithLogger(quietLogger()))
	s.useReactor = true
	helloworld.RegisterGreeterServer(s, services.Greeter{})
	ts := serveOn(t, s)
	wantStat(t, s, "reactors", float64(runtime.GOMAXPROCS(0)))
	if _, ok := s.Stats()["frames_per_write"]; ok {
		t.Fatal("frames_per_write before any write")
	}
	// Three requests in one write: one read brings them all in.
	nc := dial(t, ts.addr)
	var reqs []byte
	for seq := range uint32(3) {
		reqs = append(reqs, helloFrame(t, seq+1, "stats")...)
	}
	write(t, nc, reqs)
	for range 3 {
		var reply helloworld.HelloReply
		f, rm := readResponse(t, nc, 5*time.Second)
		wantReply(t, f, rm, &reply)
	}
	// The loop counts a writev after it returns, which may be after the
	// client has read what it wrote.
	waitFor(5*time.Second, func() bool {
		_, ok := s.Stats()["frames_per_write"]
		return ok
	})
	st := s.Stats()
	if st["frames_per_write"] < 1 || st["frames_per_write"] > 3 {
		t.Errorf("frames_per_write = %v, want 1 to 3", st["frames_per_write"])
	}
	if st["frames_per_read"] < 1 || st["frames_per_read"] > 3 {
		t.Errorf("frames_per_read = %v, want 1 to 3", st["frames_per_read"])
	}
	wantStat(t, s, "calls", 3)
	wantStat(t, s, "conns_open", 1)
}
