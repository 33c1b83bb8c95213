package impls

import (
	"context"
	"net"
	"testing"
	"time"
)

// startServerWith starts impl's server with options o on a loopback port;
// the test's cleanup stops it.
func startServerWith(t *testing.T, im Impl, o Options) string {
	t.Helper()
	srv, err := im.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("server stop: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// TestDelay checks that Options.Delay makes a stage's server wait before
// every answer, and that a server without it does not.
func TestDelay(t *testing.T) {
	const delay = 100 * time.Millisecond
	im, _ := Lookup("v5")
	for _, d := range []time.Duration{delay, 0} {
		o := quiet
		o.Delay = d
		addr := startServerWith(t, im, o)
		cl, err := im.NewClient(addr, quiet)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := cl.NewCaller()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		err = h.Call(ctx, []byte("slow"))
		took := time.Since(start)
		cancel()
		cl.Close()
		if err != nil {
			t.Fatalf("Delay %v: %v", d, err)
		}
		// A call that waits takes the delay at least; one that does not
		// is far quicker than the delay, even on a busy machine.
		if d > 0 && took < d {
			t.Errorf("Delay %v: the call took %v", d, took)
		}
		if d == 0 && took >= delay {
			t.Errorf("no Delay: the call took %v", took)
		}
	}
}

// TestClusterClient checks that V5's cluster client spreads calls over
// every server under both policies, that its callers tell the slow
// server's answers by their mark, and that the other stages have none.
func TestClusterClient(t *testing.T) {
	im, _ := Lookup("v5")
	if im.NewClusterClient == nil {
		t.Fatal("v5 has no cluster client")
	}
	for _, name := range []string{"v1", "v2", "v3", "v4"} {
		if o, _ := Lookup(name); o.NewClusterClient != nil {
			t.Errorf("%s has a cluster client", name)
		}
	}
	for _, policy := range []string{"round_robin", "p2c"} {
		t.Run(policy, func(t *testing.T) {
			// The slow server makes every call wait, so that the calls
			// counted below are told apart by how long they took.
			fast := startServerWith(t, im, quiet)
			o := quiet
			o.Delay = 50 * time.Millisecond
			slow := startServerWith(t, im, o)
			cl, err := im.NewClusterClient([]string{fast, slow}, policy, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			h, _ := cl.NewCaller()
			mc, ok := h.(MarkedCaller)
			if !ok {
				t.Fatalf("V5's cluster caller %T cannot tell which server answered", h)
			}
			var quick, waited int
			for i := range 20 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				fromSlow, err := mc.CallMarked(ctx, []byte("x"))
				took := time.Since(start)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if took >= o.Delay {
					waited++
				} else {
					quick++
				}
				// The mark says which server answered: the slow one's
				// calls, and only they, took its delay.
				if fromSlow != (took >= o.Delay) {
					t.Errorf("call %d took %v, marked as the slow server's: %v", i, took, fromSlow)
				}
			}
			// One caller, one call at a time: both policies reach both
			// servers (p2c picks at random between two with no call in
			// flight).
			if quick == 0 || waited == 0 {
				t.Errorf("%d calls took the slow server's delay, %d did not: want some of each", waited, quick)
			}
		})
	}
}
