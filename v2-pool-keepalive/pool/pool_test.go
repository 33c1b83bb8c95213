package pool

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// errBroken stands for the I/O error of a call that failed on its
// connection.
var errBroken = errors.New("broken pipe")

// fakeDialer opens in-memory connections (net.Pipe) and counts those open.
// It keeps the far end of each, the fake server's side.
type fakeDialer struct {
	// open counts the connections dialled and not yet closed; maxOpen is
	// the most ever open at once; dials counts the successful dials.
	open, maxOpen, dials atomic.Int64

	// mu protects addrs, peers and err.
	mu    sync.Mutex
	addrs []string
	peers []net.Conn
	// err, when set, fails every dial.
	err error
}

// countedConn is one end of a pipe that tells its dialer when it closes.
type countedConn struct {
	net.Conn
	d      *fakeDialer
	peer   net.Conn
	once   sync.Once
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.d.open.Add(-1)
	})
	return c.Conn.Close()
}

// newFakeDialer returns a dialer whose far ends are closed when the test
// ends.
func newFakeDialer(t *testing.T) *fakeDialer {
	d := &fakeDialer{}
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, p := range d.peers {
			p.Close()
		}
	})
	return d
}

func (d *fakeDialer) dial(_ context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	local, peer := net.Pipe()
	d.peers = append(d.peers, peer)
	d.addrs = append(d.addrs, addr)
	d.dials.Add(1)
	n := d.open.Add(1)
	for {
		m := d.maxOpen.Load()
		if n <= m || d.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	return &countedConn{Conn: local, d: d, peer: peer}, nil
}

// failDials makes the next dials fail with err, or succeed again for nil.
func (d *fakeDialer) failDials(err error) {
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
}

// newTestPool returns a pool of fake connections with cfg's limits.
func newTestPool(t *testing.T, cfg Config) (*Pool, *fakeDialer) {
	t.Helper()
	d := newFakeDialer(t)
	cfg.Dial = d.dial
	return New("fake:1", cfg), d
}

func counted(t *testing.T, c *Conn) *countedConn {
	t.Helper()
	cc, ok := c.Conn.(*countedConn)
	if !ok {
		t.Fatalf("the pool's connection wraps %T, not the dialled connection", c.Conn)
	}
	return cc
}

// wantClosed checks that c was closed: its far end reads EOF.
func wantClosed(t *testing.T, c *Conn) {
	t.Helper()
	peer := counted(t, c).peer
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := peer.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("the far end of a connection that should be closed read %d bytes, %v; want EOF", n, err)
	}
}

// wantOpen checks that c has not been closed.
func wantOpen(t *testing.T, c *Conn) {
	t.Helper()
	if counted(t, c).closed.Load() {
		t.Fatal("a connection that should be open was closed")
	}
}

// wantStats checks every counter of p against want.
func wantStats(t *testing.T, p *Pool, want Stats) {
	t.Helper()
	if got := p.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

func mustGet(t *testing.T, p *Pool) *Conn {
	t.Helper()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return c
}

// waitFor polls cond until it holds or d passes: for states inside the pool
// that the test cannot be told about, such as a Get having started to wait.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// got is the outcome of a Get run in the background.
type got struct {
	id  int
	c   *Conn
	err error
}

// startWaiter runs Get in the background and waits until it is waiting: the
// pool's Waits counter has reached waits.
func startWaiter(t *testing.T, ctx context.Context, p *Pool, id int, waits uint64, out chan<- got) {
	t.Helper()
	go func() {
		c, err := p.Get(ctx)
		out <- got{id, c, err}
	}()
	if !waitFor(5*time.Second, func() bool { return p.Stats().Waits >= waits }) {
		t.Fatalf("Get %d did not start to wait: %+v", id, p.Stats())
	}
}

func receive(t *testing.T, ch <-chan got) got {
	t.Helper()
	select {
	case g := <-ch:
		return g
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Get did not return")
		return got{}
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{MaxActive: 256, MaxIdle: 64, IdleTimeout: 30 * time.Second, MaxLifetime: 10 * time.Minute, WaitTimeout: time.Second}},
		{"idle capped by active", Config{MaxActive: 3, MaxIdle: 10}, Config{MaxActive: 3, MaxIdle: 3, IdleTimeout: 30 * time.Second, MaxLifetime: 10 * time.Minute, WaitTimeout: time.Second}},
		{"set", Config{MaxActive: 5, MaxIdle: 2, IdleTimeout: time.Second, MaxLifetime: time.Minute, WaitTimeout: time.Millisecond},
			Config{MaxActive: 5, MaxIdle: 2, IdleTimeout: time.Second, MaxLifetime: time.Minute, WaitTimeout: time.Millisecond}},
		{"negative", Config{MaxActive: -1, MaxIdle: -1, IdleTimeout: -1, MaxLifetime: -1, WaitTimeout: -1},
			Config{MaxActive: 256, MaxIdle: 64, IdleTimeout: 30 * time.Second, MaxLifetime: 10 * time.Minute, WaitTimeout: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.withDefaults()
			if got.Dial == nil {
				t.Fatal("no default Dial")
			}
			if got.MaxActive != tt.want.MaxActive || got.MaxIdle != tt.want.MaxIdle ||
				got.IdleTimeout != tt.want.IdleTimeout || got.MaxLifetime != tt.want.MaxLifetime ||
				got.WaitTimeout != tt.want.WaitTimeout {
				t.Fatalf("withDefaults() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestHitsAndMisses: the first Get dials, a Put then Get reuses the
// connection, and idle connections go out last in, first out.
func TestHitsAndMisses(t *testing.T) {
	t.Run("reuse", func(t *testing.T) {
		p, d := newTestPool(t, Config{})
		c1 := mustGet(t, p)
		wantStats(t, p, Stats{Misses: 1, Open: 1})
		p.Put(c1, nil)
		wantStats(t, p, Stats{Misses: 1, Open: 1, Idle: 1})
		c2 := mustGet(t, p)
		if c2 != c1 {
			t.Fatal("Get after Put dialled instead of reusing the idle connection")
		}
		wantStats(t, p, Stats{Hits: 1, Misses: 1, Open: 1})
		wantOpen(t, c2)
		if n := d.dials.Load(); n != 1 {
			t.Fatalf("%d dials, want 1", n)
		}
		if d.addrs[0] != "fake:1" {
			t.Fatalf("dialled %q, want the pool's address", d.addrs[0])
		}
	})
	t.Run("LIFO", func(t *testing.T) {
		p, _ := newTestPool(t, Config{})
		cs := []*Conn{mustGet(t, p), mustGet(t, p), mustGet(t, p)}
		for _, c := range cs {
			p.Put(c, nil)
		}
		wantStats(t, p, Stats{Misses: 3, Open: 3, Idle: 3})
		for i := len(cs) - 1; i >= 0; i-- {
			if c := mustGet(t, p); c != cs[i] {
				t.Fatalf("Get returned the connection put back %s, want the last one put back", ordinal(c, cs))
			}
		}
		wantStats(t, p, Stats{Hits: 3, Misses: 3, Open: 3})
	})
}

func ordinal(c *Conn, cs []*Conn) string {
	for i, x := range cs {
		if x == c {
			return [...]string{"first", "second", "third"}[i]
		}
	}
	return "never"
}

// TestMaxIdle: a Put beyond MaxIdle closes the connection.
func TestMaxIdle(t *testing.T) {
	p, d := newTestPool(t, Config{MaxActive: 5, MaxIdle: 2})
	c1, c2, c3 := mustGet(t, p), mustGet(t, p), mustGet(t, p)
	p.Put(c1, nil)
	p.Put(c2, nil)
	p.Put(c3, nil)
	wantClosed(t, c3)
	wantOpen(t, c1)
	wantOpen(t, c2)
	wantStats(t, p, Stats{Misses: 3, Open: 2, Idle: 2})
	if n := d.open.Load(); n != 2 {
		t.Fatalf("%d connections open, want 2", n)
	}
}

// sleepUntil waits for the clock to pass t: the pool's timeouts are the
// state under test.
func sleepUntil(t time.Time) {
	time.Sleep(time.Until(t) + time.Millisecond)
}

// TestExpiry: idle connections past IdleTimeout or MaxLifetime are evicted
// by Get, and a connection past MaxLifetime is closed by Put.
func TestExpiry(t *testing.T) {
	const short = 100 * time.Millisecond
	t.Run("idle timeout", func(t *testing.T) {
		p, _ := newTestPool(t, Config{IdleTimeout: short})
		c1 := mustGet(t, p)
		p.Put(c1, nil)
		if c := mustGet(t, p); c != c1 {
			t.Fatal("a connection idle for less than IdleTimeout was not reused")
		}
		p.Put(c1, nil)
		sleepUntil(c1.idleSince.Add(short))
		c2 := mustGet(t, p)
		if c2 == c1 {
			t.Fatal("Get returned a connection idle for longer than IdleTimeout")
		}
		wantClosed(t, c1)
		wantOpen(t, c2)
		wantStats(t, p, Stats{Hits: 1, Misses: 2, Evicted: 1, Open: 1})
	})
	t.Run("max lifetime on Get", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxLifetime: short})
		c1 := mustGet(t, p)
		p.Put(c1, nil)
		if c := mustGet(t, p); c != c1 {
			t.Fatal("a connection younger than MaxLifetime was not reused")
		}
		p.Put(c1, nil)
		sleepUntil(c1.created.Add(short))
		c2 := mustGet(t, p)
		if c2 == c1 {
			t.Fatal("Get returned a connection older than MaxLifetime")
		}
		wantClosed(t, c1)
		wantStats(t, p, Stats{Hits: 1, Misses: 2, Evicted: 1, Open: 1})
	})
	t.Run("max lifetime on Put", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxLifetime: short})
		c1 := mustGet(t, p)
		sleepUntil(c1.created.Add(short))
		p.Put(c1, nil)
		wantClosed(t, c1)
		wantStats(t, p, Stats{Misses: 1})
		c2 := mustGet(t, p)
		wantOpen(t, c2)
		wantStats(t, p, Stats{Misses: 2, Open: 1})
	})
}

// TestIdleSweep: idle connections close when they expire even if no Get
// comes to find them, and Close stops the timer that closes them.
func TestIdleSweep(t *testing.T) {
	const short = 50 * time.Millisecond
	t.Run("idle timeout", func(t *testing.T) {
		p, d := newTestPool(t, Config{IdleTimeout: short})
		c1, c2 := mustGet(t, p), mustGet(t, p)
		p.Put(c1, nil)
		time.Sleep(short / 2)
		p.Put(c2, nil)
		wantClosed(t, c1)
		wantClosed(t, c2)
		if !waitFor(5*time.Second, func() bool { return d.open.Load() == 0 }) {
			t.Fatalf("%d connections open after IdleTimeout with no Get", d.open.Load())
		}
		wantStats(t, p, Stats{Misses: 2, Evicted: 2})
		c3 := mustGet(t, p)
		wantOpen(t, c3)
		p.Put(c3, nil)
		wantClosed(t, c3)
	})
	t.Run("max lifetime", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxLifetime: 3 * short})
		c1 := mustGet(t, p)
		p.Put(c1, nil)
		wantClosed(t, c1)
		wantStats(t, p, Stats{Misses: 1, Evicted: 1})
	})
	t.Run("Close stops it", func(t *testing.T) {
		p, _ := newTestPool(t, Config{IdleTimeout: short})
		c1 := mustGet(t, p)
		p.Put(c1, nil)
		if err := p.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		p.mu.Lock()
		armed := p.sweep != nil
		p.mu.Unlock()
		if armed {
			t.Fatal("the sweep timer is still armed after Close")
		}
		time.Sleep(2 * short)
		wantStats(t, p, Stats{Misses: 1})
	})
}

// TestPutError: a connection put back with an error is closed and counted,
// and its slot goes to a waiting Get, which dials.
func TestPutError(t *testing.T) {
	p, d := newTestPool(t, Config{MaxActive: 1, WaitTimeout: 10 * time.Second})
	c1 := mustGet(t, p)
	res := make(chan got, 1)
	startWaiter(t, context.Background(), p, 1, 1, res)
	p.Put(c1, errBroken)
	wantClosed(t, c1)
	g := receive(t, res)
	if g.err != nil {
		t.Fatalf("the waiting Get: %v", g.err)
	}
	if g.c == c1 {
		t.Fatal("the waiting Get received the broken connection")
	}
	wantOpen(t, g.c)
	wantStats(t, p, Stats{Misses: 2, Waits: 1, Discarded: 1, Open: 1})
	if n := d.dials.Load(); n != 2 {
		t.Fatalf("%d dials, want 2", n)
	}
	p.Put(g.c, nil)
	wantStats(t, p, Stats{Misses: 2, Waits: 1, Discarded: 1, Open: 1, Idle: 1})
}

// TestDialError: a failed dial gives its slot back, to a later Get or to a
// waiting one.
func TestDialError(t *testing.T) {
	errDial := errors.New("connection refused")
	t.Run("later Get", func(t *testing.T) {
		p, d := newTestPool(t, Config{MaxActive: 1, WaitTimeout: time.Millisecond})
		d.failDials(errDial)
		if _, err := p.Get(context.Background()); !errors.Is(err, errDial) {
			t.Fatalf("Get = %v, want the dial's error", err)
		}
		wantStats(t, p, Stats{Misses: 1})
		d.failDials(nil)
		c := mustGet(t, p)
		wantOpen(t, c)
		wantStats(t, p, Stats{Misses: 2, Open: 1})
	})
	t.Run("waiter", func(t *testing.T) {
		p, d := newTestPool(t, Config{MaxActive: 1, WaitTimeout: 10 * time.Second})
		c1 := mustGet(t, p)
		res := make(chan got, 1)
		startWaiter(t, context.Background(), p, 1, 1, res)
		d.failDials(errDial)
		// The waiter is handed the slot and fails to dial into it.
		p.Put(c1, errBroken)
		if g := receive(t, res); !errors.Is(g.err, errDial) {
			t.Fatalf("the waiting Get = %v, want the dial's error", g.err)
		}
		wantStats(t, p, Stats{Misses: 2, Waits: 1, Discarded: 1})
		d.failDials(nil)
		c := mustGet(t, p)
		wantOpen(t, c)
		wantStats(t, p, Stats{Misses: 3, Waits: 1, Discarded: 1, Open: 1})
	})
}

// TestExhausted: with MaxActive connections out, Get waits for a Put, for
// the wait bound, or for its context, and waiters are served in order.
func TestExhausted(t *testing.T) {
	t.Run("Put hands over", func(t *testing.T) {
		p, d := newTestPool(t, Config{MaxActive: 2, WaitTimeout: 10 * time.Second})
		c1, c2 := mustGet(t, p), mustGet(t, p)
		res := make(chan got, 1)
		startWaiter(t, context.Background(), p, 1, 1, res)
		p.Put(c1, nil)
		g := receive(t, res)
		if g.err != nil || g.c != c1 {
			t.Fatalf("the waiting Get = %p, %v; want the connection put back", g.c, g.err)
		}
		wantStats(t, p, Stats{Hits: 1, Misses: 2, Waits: 1, Open: 2})
		if n := d.dials.Load(); n != 2 {
			t.Fatalf("%d dials, want 2", n)
		}
		p.Put(c2, nil)
		p.Put(g.c, nil)
	})
	t.Run("wait bound", func(t *testing.T) {
		const wait = 100 * time.Millisecond
		p, _ := newTestPool(t, Config{MaxActive: 2, WaitTimeout: wait})
		mustGet(t, p)
		mustGet(t, p)
		start := time.Now()
		_, err := p.Get(context.Background())
		if d := time.Since(start); d < wait {
			t.Fatalf("Get gave up after %v, before the wait bound of %v", d, wait)
		}
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("Get = %v, want ErrExhausted", err)
		}
		wantStats(t, p, Stats{Misses: 2, Waits: 1, Timeouts: 1, Open: 2})
		if n := p.waiters.Len(); n != 0 {
			t.Fatalf("%d waiters left behind", n)
		}
	})
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		want    error
	}{
		{"ctx cancelled", 0, context.Canceled},
		{"ctx deadline", 50 * time.Millisecond, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPool(t, Config{MaxActive: 2, WaitTimeout: 10 * time.Second})
			c1 := mustGet(t, p)
			mustGet(t, p)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.timeout > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tt.timeout)
			}
			defer cancel()
			res := make(chan got, 1)
			startWaiter(t, ctx, p, 1, 1, res)
			if tt.timeout == 0 {
				cancel()
			}
			if g := receive(t, res); !errors.Is(g.err, tt.want) || g.c != nil {
				t.Fatalf("Get = %p, %v; want %v", g.c, g.err, tt.want)
			}
			wantStats(t, p, Stats{Misses: 2, Waits: 1, Timeouts: 1, Open: 2})
			// Nobody waits now: the connection goes idle.
			p.Put(c1, nil)
			wantStats(t, p, Stats{Misses: 2, Waits: 1, Timeouts: 1, Open: 2, Idle: 1})
		})
	}
	t.Run("FIFO", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxActive: 2, WaitTimeout: 10 * time.Second})
		c1, c2 := mustGet(t, p), mustGet(t, p)
		res := make(chan got, 3)
		for i := 1; i <= 3; i++ {
			startWaiter(t, context.Background(), p, i, uint64(i), res)
		}
		for i, c := range []*Conn{c2, c1, c2} {
			p.Put(c, nil)
			g := receive(t, res)
			if g.id != i+1 || g.c != c || g.err != nil {
				t.Fatalf("Put number %d went to waiter %d (%p, %v), want waiter %d (%p)", i+1, g.id, g.c, g.err, i+1, c)
			}
		}
		wantStats(t, p, Stats{Hits: 3, Misses: 2, Waits: 3, Open: 2})
	})
}

// TestGiveUpRace: Gets that give up just as a Put hands them a connection
// or a slot pass it on. Many Gets with a tiny wait bound race many Puts;
// afterwards the pool's count matches the connections really open, no
// connection went to two callers, and every slot can be taken without
// waiting.
func TestGiveUpRace(t *testing.T) {
	const (
		maxActive = 4
		callers   = 32
	)
	run := 300 * time.Millisecond
	if testing.Short() {
		run = 50 * time.Millisecond
	}
	p, d := newTestPool(t, Config{MaxActive: maxActive, MaxIdle: 2, WaitTimeout: time.Millisecond})
	var (
		inUse    sync.Map // *Conn → caller
		failures = make(chan string, callers)
		wg       sync.WaitGroup
		stop     = time.Now().Add(run)
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(stop) {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if r.IntN(3) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(100))*time.Microsecond)
				}
				c, err := p.Get(ctx)
				cancel()
				if err != nil {
					if !errors.Is(err, ErrExhausted) && !errors.Is(err, context.DeadlineExceeded) {
						failures <- "Get: " + err.Error()
						return
					}
					continue
				}
				if _, dup := inUse.LoadOrStore(c, i); dup {
					failures <- "a connection was handed to two callers at once"
					return
				}
				if c.Conn.(*countedConn).closed.Load() {
					failures <- "Get returned a closed connection"
					return
				}
				// Mostly a short hold; now and then one longer than the
				// wait bound, so that waiters give up.
				if r.IntN(16) == 0 {
					time.Sleep(time.Duration(r.IntN(500)) * time.Microsecond)
				} else {
					runtime.Gosched()
				}
				var perr error
				if r.IntN(8) == 0 {
					perr = errBroken
				}
				inUse.Delete(c)
				p.Put(c, perr)
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	s := p.Stats()
	t.Logf("after %v: %+v, %d dials", run, s, d.dials.Load())
	if s.Hits == 0 || s.Timeouts == 0 {
		t.Fatalf("no Get was served by a Put, or none gave up: the race was not exercised: %+v", s)
	}
	if int64(s.Open) != d.open.Load() {
		t.Fatalf("the pool counts %d connections open, %d are", s.Open, d.open.Load())
	}
	if m := d.maxOpen.Load(); m > maxActive {
		t.Fatalf("%d connections were open at once, MaxActive is %d", m, maxActive)
	}
	if s.Idle > 2 || s.Idle > s.Open {
		t.Fatalf("%d idle of %d open, MaxIdle is 2", s.Idle, s.Open)
	}
	// Every slot is free: MaxActive Gets succeed without waiting.
	var cs []*Conn
	for range maxActive {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatalf("Get %d of %d after the race: %v; a slot was lost (%+v)", len(cs)+1, maxActive, err, p.Stats())
		}
		cs = append(cs, c)
	}
	if after := p.Stats(); after.Waits != s.Waits {
		t.Fatalf("taking %d connections after the race waited: %+v", maxActive, after)
	}
	for _, c := range cs {
		p.Put(c, nil)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := d.open.Load(); n != 0 {
		t.Fatalf("%d connections open after Close", n)
	}
}

// TestClose: Close closes the idle connections, fails the waiting Gets,
// and waits within its context for the connections in use.
func TestClose(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		p, d := newTestPool(t, Config{})
		c1, c2 := mustGet(t, p), mustGet(t, p)
		p.Put(c1, nil)
		p.Put(c2, nil)
		if err := p.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		wantClosed(t, c1)
		wantClosed(t, c2)
		if n := d.open.Load(); n != 0 {
			t.Fatalf("%d connections open after Close", n)
		}
		wantStats(t, p, Stats{Misses: 2})
		if _, err := p.Get(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get after Close = %v, want ErrClosed", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
	t.Run("waiters and conns in use", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxActive: 1, WaitTimeout: 10 * time.Second})
		c1 := mustGet(t, p)
		res := make(chan got, 2)
		startWaiter(t, context.Background(), p, 1, 1, res)
		startWaiter(t, context.Background(), p, 2, 2, res)
		closed := make(chan error, 1)
		go func() { closed <- p.Close(context.Background()) }()
		for range 2 {
			if g := receive(t, res); !errors.Is(g.err, ErrClosed) || g.c != nil {
				t.Fatalf("waiter %d = %p, %v; want ErrClosed", g.id, g.c, g.err)
			}
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v with a connection still in use", err)
		default:
		}
		p.Put(c1, nil)
		wantClosed(t, c1)
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not return when the last connection came back")
		}
		if s := p.Stats(); s.Misses != 1 || s.Waits != 2 || s.Open != 0 || s.Idle != 0 {
			t.Fatalf("Stats() = %+v, want 1 miss, 2 waits, none open", s)
		}
	})
	t.Run("ctx ends first", func(t *testing.T) {
		p, d := newTestPool(t, Config{})
		c1 := mustGet(t, p)
		idle := mustGet(t, p)
		p.Put(idle, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close with a connection out = %v, want DeadlineExceeded", err)
		}
		wantClosed(t, idle)
		wantOpen(t, c1)
		if _, err := p.Get(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get after Close = %v, want ErrClosed", err)
		}
		p.Put(c1, nil)
		wantClosed(t, c1)
		if n := d.open.Load(); n != 0 {
			t.Fatalf("%d connections open", n)
		}
		wantStats(t, p, Stats{Misses: 2})
		// Everything is back: a second Close returns at once.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		if err := p.Close(ctx2); err != nil {
			t.Fatalf("Close once drained: %v", err)
		}
	})
	t.Run("Put error after Close", func(t *testing.T) {
		p, _ := newTestPool(t, Config{})
		c1 := mustGet(t, p)
		done := make(chan error, 1)
		go func() { done <- p.Close(context.Background()) }()
		if !waitFor(5*time.Second, func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.closed
		}) {
			t.Fatal("Close did not start")
		}
		p.Put(c1, errBroken)
		wantClosed(t, c1)
		if err := <-done; err != nil {
			t.Fatalf("Close: %v", err)
		}
		wantStats(t, p, Stats{Misses: 1, Discarded: 1})
	})
}
