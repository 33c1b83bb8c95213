package balancer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/v5-cluster/mux"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// refuse is a dial that always fails, as to an address nobody listens on.
func refuse(context.Context, string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// newTest returns a balancer over addrs, closed when the test ends.
func newTest(t *testing.T, cfg Config, addrs ...string) *Balancer {
	t.Helper()
	if cfg.Mux.Dial == nil {
		cfg.Mux.Dial = refuse
	}
	if cfg.Mux.Logger == nil {
		cfg.Mux.Logger = slog.New(slog.DiscardHandler)
	}
	b := New(cfg)
	if addrs != nil {
		b.Update(addrs)
	}
	t.Cleanup(func() {
		closed := make(chan struct{})
		go func() {
			b.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Error("Close waited 5 s: the test left a call in flight")
		}
	})
	return b
}

// pick picks with no endpoint tried yet, and fails the test on an error.
func pick(t *testing.T, b *Balancer) *Endpoint {
	t.Helper()
	e, err := b.Pick(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// release returns a function that ends e's call, once; it runs when the
// test ends too, so that a test that fails leaves no call for Close to
// wait for.
func release(t *testing.T, e *Endpoint) func() {
	var once sync.Once
	done := func() { once.Do(e.Done) }
	t.Cleanup(done)
	return done
}

// stats returns the counters of the endpoint at addr.
func stats(t *testing.T, b *Balancer, addr string) Stats {
	t.Helper()
	for _, s := range b.Stats() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("no endpoint %s in %+v", addr, b.Stats())
	return Stats{}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRoundRobin: calls go to the endpoints in turn.
func TestRoundRobin(t *testing.T) {
	b := newTest(t, Config{Policy: RoundRobin}, "a:1", "b:1", "c:1")
	var got []string
	for range 6 {
		e := pick(t, b)
		got = append(got, e.Addr())
		e.Done()
	}
	if want := []string{"a:1", "b:1", "c:1", "a:1", "b:1", "c:1"}; !slices.Equal(got, want) {
		t.Fatalf("picks %q, want %q", got, want)
	}
}

// TestP2CTakesTheLessBusy: of two endpoints, power of two choices always
// takes the one with fewer calls in flight, and spreads calls when they are
// even.
func TestP2CTakesTheLessBusy(t *testing.T) {
	b := newTest(t, Config{}, "a:1", "b:1")
	busy := pick(t, b) // in flight until the end
	busyDone := release(t, busy)
	for range 100 {
		e := pick(t, b)
		if e == busy {
			e.Done()
			t.Fatalf("picked %s, which has a call in flight, over an idle endpoint", e.Addr())
		}
		e.Done()
	}
	busyDone()
	// Even: both get calls.
	n := map[string]int{}
	for range 200 {
		e := pick(t, b)
		n[e.Addr()]++
		e.Done()
	}
	if n["a:1"] < 40 || n["b:1"] < 40 {
		t.Fatalf("200 picks of two idle endpoints went %v, want both well used", n)
	}
}

// TestP2CSpreadsOverMany: with more endpoints than two, every endpoint
// gets calls, the busy ones fewer.
func TestP2CSpreadsOverMany(t *testing.T) {
	addrs := []string{"a:1", "b:1", "c:1", "d:1"}
	b := newTest(t, Config{}, addrs...)
	for range 5 {
		e := pick(t, b)
		if e.Addr() != "a:1" {
			e.Done()
			continue
		}
		release(t, e)
	}
	n := map[string]int{}
	for range 400 {
		e := pick(t, b)
		n[e.Addr()]++
		release(t, e) // a call that stays in flight
	}
	for _, a := range addrs {
		if n[a] < 50 {
			t.Fatalf("400 picks went %v: %s got fewer than 50", n, a)
		}
	}
}

// TestPickWaitsForTheFirstUpdate: before the resolver has said anything,
// Pick waits, within its context; an update with no address fails it.
func TestPickWaitsForTheFirstUpdate(t *testing.T) {
	b := newTest(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.Pick(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pick before any update: %v, want the context's end", err)
	}
	got := make(chan *Endpoint, 1)
	go func() {
		e, _ := b.Pick(context.Background(), nil)
		got <- e
	}()
	b.Update([]string{"a:1"})
	if e := <-got; e == nil || e.Addr() != "a:1" {
		t.Fatalf("the waiting Pick got %v, want a:1", e)
	} else {
		e.Done()
	}
	b.Update(nil)
	if _, err := b.Pick(context.Background(), nil); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("Pick with no address: %v, want ErrNoEndpoints", err)
	}
}

// TestUpdateRemoves: a removed endpoint takes no new call; its
// connections close once its last call has left, not before; an endpoint
// kept by an update stays the same.
func TestUpdateRemoves(t *testing.T) {
	b := newTest(t, Config{Policy: RoundRobin}, "a:1", "b:1")
	a := pick(t, b)
	aDone := release(t, a)
	bb := pick(t, b)
	bb.Done()
	if a.Addr() != "a:1" {
		t.Fatalf("first pick %s, want a:1", a.Addr())
	}
	b.Update([]string{"b:1", "c:1"})
	for range 10 {
		e := pick(t, b)
		if e == a {
			t.Fatal("a removed endpoint was picked")
		}
		if e.Addr() == "b:1" && e != bb {
			t.Fatal("an endpoint kept by the update was replaced")
		}
		e.Done()
	}
	if s := stats(t, b, "a:1"); !s.Removed || s.InFlight != 1 {
		t.Fatalf("the removed endpoint: %+v, want removed with its call in flight", s)
	}
	// Its connections stay while the call is in flight. (They close on a
	// goroutine of their own: watch them a while.)
	for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := a.Conns().Pick(ctx)
		cancel()
		if errors.Is(err, mux.ErrClosed) {
			t.Fatal("the removed endpoint's connections closed while a call was in flight")
		}
	}
	aDone()
	waitFor(t, "the removed endpoint's connections to close", func() bool {
		_, err := a.Conns().Pick(context.Background())
		return errors.Is(err, mux.ErrClosed)
	})
	waitFor(t, "the removed endpoint to leave the stats", func() bool { return len(b.Stats()) == 2 })
	// An idle endpoint closes at once; an address twice is one endpoint.
	c := pick(t, b)
	for c.Addr() != "c:1" {
		c.Done()
		c = pick(t, b)
	}
	c.Done()
	b.Update([]string{"b:1", "b:1"})
	if s := b.Stats(); len(s) > 2 || s[0].Addr != "b:1" {
		t.Fatalf("after an update to b:1 twice: %+v", s)
	}
	waitFor(t, "the idle removed endpoint to close", func() bool {
		_, err := c.Conns().Pick(context.Background())
		return errors.Is(err, mux.ErrClosed) && len(b.Stats()) == 1
	})
}

// TestEjection: an endpoint whose dial fails is ejected: picks avoid it
// until its back-off ends, and take it again after.
func TestEjection(t *testing.T) {
	const base = 200 * time.Millisecond
	b := newTest(t, Config{Policy: RoundRobin, EjectBase: base, EjectMax: 10 * base}, "dead:1", "live:1")
	dead := pick(t, b)
	if dead.Addr() != "dead:1" {
		t.Fatalf("first pick %s, want dead:1", dead.Addr())
	}
	start := time.Now()
	if _, err := dead.Conns().Pick(context.Background()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v, want refused", err)
	}
	dead.Done()
	s := stats(t, b, "dead:1")
	if s.Ejections != 1 || s.EjectedFor <= 0 || s.EjectedFor > base*6/5 {
		t.Fatalf("after a refused dial: %+v, want ejected for at most %v", s, base*6/5)
	}
	for range 10 {
		e := pick(t, b)
		if e.Addr() != "live:1" && time.Since(start) < base*4/5 {
			t.Fatalf("picked %s while it was ejected", e.Addr())
		}
		e.Done()
	}
	waitFor(t, "the ejection to end", func() bool { return stats(t, b, "dead:1").EjectedFor == 0 })
	if time.Since(start) < base*4/5 {
		t.Fatalf("the ejection ended after %v, below its lower bound %v", time.Since(start), base*4/5)
	}
	var again bool
	for range 2 {
		e := pick(t, b)
		again = again || e == dead
		e.Done()
	}
	if !again {
		t.Fatal("the endpoint was not picked again after its back-off")
	}
	// A connection that breaks ejects it too; a response in between
	// makes the next back-off start afresh.
	dead.Failed()
	if s := stats(t, b, "dead:1"); s.Ejections != 2 || s.EjectedFor <= base*6/5 {
		t.Fatalf("after a second failure in a row: %+v, want a back-off over %v", s, base*6/5)
	}
}

// TestBackoff: each ejection in a row doubles, within a fifth either way,
// up to the maximum, which it never passes.
func TestBackoff(t *testing.T) {
	c := Config{EjectBase: 100 * time.Millisecond, EjectMax: time.Second}.withDefaults()
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		var lo, hi time.Duration = time.Hour, 0
		for range 200 {
			d := c.backoff(n + 1)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < want*4/5 || hi > min(want*6/5, c.EjectMax) || lo == hi {
			t.Fatalf("ejection %d: %v to %v, want %v spread by a fifth, at most %v", n+1, lo, hi, want, c.EjectMax)
		}
	}
	if d := (Config{}).withDefaults(); d.EjectBase != time.Second || d.EjectMax != 30*time.Second || d.Policy != P2C {
		t.Fatalf("defaults %+v", d)
	}
}

// TestFailuresWhileEjectedCountOnce: the calls of one broken connection
// each report it; the endpoint is ejected once, not once per call.
func TestFailuresWhileEjectedCountOnce(t *testing.T) {
	b := newTest(t, Config{EjectBase: time.Minute, EjectMax: time.Hour}, "a:1")
	e := pick(t, b)
	for range 10 {
		e.Failed()
	}
	e.Done()
	if s := stats(t, b, "a:1"); s.Ejections != 1 || s.EjectedFor > time.Minute*6/5 {
		t.Fatalf("%+v, want one ejection of about a minute", s)
	}
	e.OK()
	if e.failures.Load() != 0 {
		t.Fatal("a response did not reset the failures in a row")
	}
}

// TestAllEjected: with every endpoint ejected, Pick takes the one whose
// back-off ends first rather than fail.
func TestAllEjected(t *testing.T) {
	b := newTest(t, Config{EjectBase: time.Minute, EjectMax: time.Hour}, "a:1", "b:1", "c:1")
	eps := map[string]*Endpoint{}
	for len(eps) < 3 {
		e := pick(t, b)
		eps[e.Addr()] = e
		e.Done()
	}
	// b fails twice in a row: its back-off is about twice the others'.
	eps["b:1"].Failed()
	eps["b:1"].ejectedUntil.Store(0)
	eps["b:1"].Failed()
	eps["a:1"].Failed()
	eps["c:1"].Failed()
	first := eps["a:1"]
	if eps["c:1"].ejectedUntil.Load() < first.ejectedUntil.Load() {
		first = eps["c:1"]
	}
	for range 10 {
		e := pick(t, b)
		if e != first {
			t.Fatalf("picked %s, want %s, whose back-off ends first", e.Addr(), first.Addr())
		}
		e.Done()
	}
}

// TestTried: Pick avoids the endpoints a call has tried, ejected or not,
// and says so when there is no other.
func TestTried(t *testing.T) {
	b := newTest(t, Config{}, "a:1", "b:1")
	a := pick(t, b)
	a.Done()
	for range 20 {
		e, err := b.Pick(context.Background(), []*Endpoint{a})
		if err != nil || e == a {
			t.Fatalf("Pick avoiding %s: %v, %v", a.Addr(), e, err)
		}
		e.Done()
	}
	e, _ := b.Pick(context.Background(), []*Endpoint{a})
	e.Done()
	if _, err := b.Pick(context.Background(), []*Endpoint{a, e}); !errors.Is(err, ErrAllTried) {
		t.Fatalf("Pick with both tried: %v, want ErrAllTried", err)
	}
}

// TestClose: Close ends a Pick that waits for the first update, later
// Picks fail, and Close waits for the calls in flight before it closes
// their connections.
func TestClose(t *testing.T) {
	waiting := New(Config{Mux: mux.Config{Dial: refuse}})
	got := make(chan error, 1)
	go func() {
		_, err := waiting.Pick(context.Background(), nil)
		got <- err
	}()
	waiting.Close()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("a Pick waiting for the first update: %v, want ErrClosed", err)
	}

	b := New(Config{Mux: mux.Config{Dial: refuse}})
	b.Update([]string{"a:1"})
	e := pick(t, b)
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	waitFor(t, "Close to start", func() bool { return e.removed.Load() })
	if _, err := b.Pick(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pick after Close: %v, want ErrClosed", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a call was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	e.Done()
	<-closed
	if _, err := e.Conns().Pick(context.Background()); !errors.Is(err, mux.ErrClosed) {
		t.Fatalf("the connections after Close: %v, want closed", err)
	}
	b.Update([]string{"b:1"}) // ignored
	if _, err := b.Pick(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pick after an update after Close: %v, want ErrClosed", err)
	}
}

// TestCheckPolicy names the policies.
func TestCheckPolicy(t *testing.T) {
	for _, p := range []string{"", P2C, RoundRobin} {
		if err := CheckPolicy(p); err != nil {
			t.Fatalf("CheckPolicy(%q): %v", p, err)
		}
	}
	if err := CheckPolicy("random"); err == nil {
		t.Fatal("CheckPolicy(random) succeeded")
	}
}
