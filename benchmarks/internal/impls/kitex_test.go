package impls

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// serveKitex starts the named kitex server on a loopback port. It returns
// the server, its address and Serve's result.
func serveKitex(t *testing.T, name string) (*kitexServer, string, <-chan error) {
	t.Helper()
	im, _ := Lookup(name)
	srv, addr, errc := startServer(t, im)
	return srv.(*kitexServer), addr, errc
}

// waitFor polls cond every millisecond until it holds, failing the test
// after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKitexStop checks that Stop, whose context ends while an echo is
// delayed, ends the echo, closes its connection and returns by the
// deadline. kitex alone would wait for the busy connection for its exit
// wait time, 5 s, and then leave it open under the delayed echo.
func TestKitexStop(t *testing.T) {
	for _, name := range []string{"kitex", "kitex-mux"} {
		t.Run(name, func(t *testing.T) {
			srv, addr, errc := serveKitex(t, name)
			im, _ := Lookup(name)
			cl, err := im.NewClient(addr, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			h, _ := cl.NewCaller()
			defer h.Close()
			callErr := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				callErr <- h.(SlowCaller).CallDelay(ctx, []byte("slow"), 20*time.Second)
			}()
			waitFor(t, "the delayed echo", func() bool { return srv.echo.delayed.Load() == 1 })

			const d = 200 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			start := time.Now()
			err = srv.Stop(ctx)
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Stop: %v, want DeadlineExceeded", err)
			}
			if took > d+3*time.Second {
				t.Errorf("Stop took %v with a %v deadline", took, d)
			}
			select {
			case err := <-callErr:
				if err == nil {
					t.Error("the delayed call succeeded")
				}
			case <-time.After(3 * time.Second):
				t.Fatal("the delayed call still waits after Stop")
			}
			if err := <-errc; err != nil {
				t.Errorf("Serve: %v", err)
			}
			if n := srv.echo.delayed.Load(); n != 0 {
				t.Errorf("%d delayed echoes still wait after Stop", n)
			}
		})
	}
}

// TestKitexMuxConns checks that a kitex-mux client opens the connections
// Options.MaxConns says, and kitex's benchmark's two without it.
func TestKitexMuxConns(t *testing.T) {
	for _, maxConns := range []int{0, 3} {
		want := maxConns
		if want == 0 {
			want = kitexMuxConns
		}
		t.Run(fmt.Sprint(maxConns), func(t *testing.T) {
			srv, addr, errc := serveKitex(t, "kitex-mux")
			im, _ := Lookup("kitex-mux")
			o := quiet
			o.MaxConns = maxConns
			cl, err := im.NewClient(addr, o)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 8 {
				h, _ := cl.NewCaller()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer h.Close()
					for range 20 {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						err := h.Call(ctx, []byte("x"))
						cancel()
						if err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			srv.conns.mu.Lock()
			got := len(srv.conns.m)
			srv.conns.mu.Unlock()
			if got != want {
				t.Errorf("the server has %d connections, want %d", got, want)
			}
			if err := cl.Close(); err != nil {
				t.Errorf("client close: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if err := <-errc; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
}
