package mux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/codec"
)

// call is a request in flight on a group's connection.
type call struct {
	conn *Conn
	seq  uint32
	ch   chan result
}

// TestGroupOneCallerOneConn: calls one after another share one connection.
func TestGroupOneCallerOneConn(t *testing.T) {
	const n = 10
	s := newFakeServer(t)
	g := newGroup(t, s.addr, Config{})
	var first *Conn
	var p *peer
	for i := range n {
		c, seq, ch := send(t, g)
		if i == 0 {
			first, p = c, s.nextPeer(t)
		} else if c != first {
			t.Fatalf("call %d went to a second connection", i)
		}
		p.next(t)
		p.answer(t, seq, "ok")
		if r := await(t, ch); r.err != nil {
			t.Fatalf("call %d: %v", i, r.err)
		}
	}
	if got := s.accepted.Load(); got != 1 {
		t.Fatalf("the server accepted %d connections, want 1", got)
	}
	if got := g.Stats(); got != (Stats{Conns: 1}) {
		t.Fatalf("Stats() = %+v, want 1 connection, no streams", got)
	}
}

// TestGroupSpreadsCalls: a new connection opens only when every open one
// carries a call, up to MaxConns; after that calls share the least busy.
func TestGroupSpreadsCalls(t *testing.T) {
	const maxConns = 3
	s := newFakeServer(t)
	g := newGroup(t, s.addr, Config{MaxConns: maxConns})
	peers := make(map[*Conn]*peer)
	calls := make(map[*Conn][]call)
	for i := range maxConns {
		c, seq, ch := send(t, g)
		if _, ok := peers[c]; ok {
			t.Fatalf("call %d shares a connection while only %d are open", i, len(peers))
		}
		peers[c] = s.nextPeer(t)
		peers[c].next(t)
		calls[c] = append(calls[c], call{c, seq, ch})
	}
	// Every connection carries a call and no more may open: the next calls
	// go to the least busy.
	for i := range 2 * maxConns {
		c, seq, ch := send(t, g)
		p, ok := peers[c]
		if !ok {
			t.Fatalf("call %d opened connection number %d, over MaxConns", maxConns+i, len(peers)+1)
		}
		p.next(t)
		calls[c] = append(calls[c], call{c, seq, ch})
		for _, cs := range calls {
			if len(cs) < len(calls[c])-1 {
				t.Fatalf("call %d went to a connection with %d calls while another had %d", maxConns+i, len(calls[c])-1, len(cs))
			}
		}
	}
	if got := s.accepted.Load(); got != maxConns {
		t.Fatalf("the server accepted %d connections, want %d", got, maxConns)
	}
	if got := g.Stats(); got != (Stats{Conns: maxConns, Streams: 3 * maxConns}) {
		t.Fatalf("Stats() = %+v", got)
	}
	// Free one connection entirely: the next call goes to it.
	var idle *Conn
	for c := range calls {
		idle = c
		break
	}
	for _, cl := range calls[idle] {
		peers[idle].answer(t, cl.seq, "ok")
		if r := await(t, cl.ch); r.err != nil {
			t.Fatal(r.err)
		}
	}
	c, err := g.Pick(context.Background())
	if err != nil || c != idle {
		t.Fatalf("Pick = %p, %v; want the idle connection %p", c, err, idle)
	}
}

// TestGroupConcurrentCallsCapConns: many calls at once open at most
// MaxConns connections.
func TestGroupConcurrentCallsCapConns(t *testing.T) {
	const (
		maxConns = 3
		callers  = 20
	)
	s := newFakeServer(t)
	g := newGroup(t, s.addr, Config{MaxConns: maxConns})
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := g.Pick(context.Background())
			if err != nil {
				errs <- err
				return
			}
			if _, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), func(f codec.Frame, err error) {}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := g.Stats()
	if st.Conns < 1 || st.Conns > maxConns || st.Streams != callers {
		t.Fatalf("Stats() = %+v, want at most %d connections carrying %d calls", st, maxConns, callers)
	}
	if got := s.accepted.Load(); got > maxConns {
		t.Fatalf("the server accepted %d connections, want at most %d", got, maxConns)
	}
}

// TestGroupWaitsForFreeStream: when every connection carries MaxStreams
// calls, Pick waits, and gets a connection as soon as a call ends.
func TestGroupWaitsForFreeStream(t *testing.T) {
	s := newFakeServer(t)
	g := newGroup(t, s.addr, Config{MaxConns: 1, MaxStreams: 2, WaitTimeout: time.Minute})
	c1, seq1, ch1 := send(t, g)
	p := s.nextPeer(t)
	p.next(t)
	send(t, g)
	p.next(t)
	picked := make(chan error, 1)
	var got *Conn
	go func() {
		var err error
		got, err = g.Pick(context.Background())
		picked <- err
	}()
	waitFor(t, "Pick to wait", func() bool { return g.numWaiters() == 1 })
	select {
	case err := <-picked:
		t.Fatalf("Pick returned while every stream was taken: %v", err)
	default:
	}
	p.answer(t, seq1, "ok")
	await(t, ch1)
	select {
	case err := <-picked:
		if err != nil || got != c1 {
			t.Fatalf("Pick = %p, %v; want %p", got, err, c1)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pick did not return after a stream was freed")
	}
	if _, _, err := got.Send(context.Background(), reqFrame(t, "Call", nil), func(codec.Frame, error) {}); err != nil {
		t.Fatalf("Send on the freed stream: %v", err)
	}
}

// TestReliability19WaitBounds: a Pick waiting for a stream ends at the
// group's wait bound with ErrExhausted, or when its context ends.
func TestReliability19WaitBounds(t *testing.T) {
	tests := []struct {
		name        string
		waitTimeout time.Duration
		// ctx returns the Pick's context; cancel, if not nil, is called once
		// the Pick waits.
		ctx  func() (context.Context, context.CancelFunc)
		want error
		// min is the least time the Pick must have waited.
		min time.Duration
	}{
		{"wait timeout", 100 * time.Millisecond, func() (context.Context, context.CancelFunc) {
			return context.Background(), nil
		}, ErrExhausted, 100 * time.Millisecond},
		{"cancelled", time.Minute, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, context.Canceled, 0},
		{"deadline", time.Minute, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			t.Cleanup(cancel)
			return ctx, nil
		}, context.DeadlineExceeded, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			g := newGroup(t, s.addr, Config{MaxConns: 1, MaxStreams: 1, WaitTimeout: tt.waitTimeout})
			send(t, g)
			ctx, cancel := tt.ctx()
			start := time.Now()
			picked := make(chan error, 1)
			go func() {
				_, err := g.Pick(ctx)
				picked <- err
			}()
			if cancel != nil {
				waitFor(t, "Pick to wait", func() bool { return g.numWaiters() == 1 })
				cancel()
			}
			var err error
			select {
			case err = <-picked:
			case <-time.After(5 * time.Second):
				t.Fatal("Pick did not end")
			}
			d := time.Since(start)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Pick = %v, want %v", err, tt.want)
			}
			if d < tt.min || d > 3*time.Second {
				t.Fatalf("Pick waited %v, want at least %v and well under 3 s", d, tt.min)
			}
			if n := g.numWaiters(); n != 0 {
				t.Fatalf("%d waiters left behind", n)
			}
		})
	}
}

// gatedDial is a Dial that tells the test when it starts and waits for the
// test to let it go on: fail makes it fail with errDial.
type gatedDial struct {
	entered chan struct{}
	proceed chan bool
	calls   atomic.Int64
}

var errDial = errors.New("dial refused by the test")

func newGatedDial() *gatedDial {
	return &gatedDial{entered: make(chan struct{}, 16), proceed: make(chan bool, 16)}
}

func (d *gatedDial) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.calls.Add(1)
	d.entered <- struct{}{}
	select {
	case ok := <-d.proceed:
		if !ok {
			return nil, errDial
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

func (d *gatedDial) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-d.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no dial started")
	}
}

// pickResult is what a Pick run in the background returned.
type pickResult struct {
	c   *Conn
	err error
}

func pickAsync(g *Group, ctx context.Context) chan pickResult {
	ch := make(chan pickResult, 1)
	go func() {
		c, err := g.Pick(ctx)
		ch <- pickResult{c, err}
	}()
	return ch
}

func awaitPick(t *testing.T, ch chan pickResult) pickResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Pick did not return")
		return pickResult{}
	}
}

// TestGroupDial: a Pick that finds every slot taken by a dial in progress
// waits for it; a failed dial reports its error, frees its slot, and wakes
// a waiting Pick.
func TestGroupDial(t *testing.T) {
	tests := []struct {
		name string
		// first is whether the first dial succeeds.
		first bool
	}{
		{"a waiter shares the new connection", true},
		{"a failed dial wakes a waiter, which dials", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			d := newGatedDial()
			g := newGroup(t, s.addr, Config{MaxConns: 1, WaitTimeout: time.Minute, Dial: d.dial})
			a := pickAsync(g, context.Background())
			d.waitEntered(t)
			b := pickAsync(g, context.Background())
			waitFor(t, "the second Pick to wait", func() bool { return g.numWaiters() == 1 })
			d.proceed <- tt.first
			ra := awaitPick(t, a)
			if tt.first {
				rb := awaitPick(t, b)
				if ra.err != nil || rb.err != nil || ra.c != rb.c {
					t.Fatalf("Picks = %+v and %+v, want one connection for both", ra, rb)
				}
			} else {
				if !errors.Is(ra.err, errDial) || ra.c != nil {
					t.Fatalf("Pick with a failing dial = %+v, want errDial", ra)
				}
				d.waitEntered(t)
				d.proceed <- true
				if rb := awaitPick(t, b); rb.err != nil {
					t.Fatalf("the woken Pick: %v", rb.err)
				}
			}
			if got, want := d.calls.Load(), map[bool]int64{true: 1, false: 2}[tt.first]; got != want {
				t.Fatalf("%d dials, want %d", got, want)
			}
			g.mu.Lock()
			dialing := g.dialing
			g.mu.Unlock()
			if dialing != 0 {
				t.Fatalf("dialing = %d after the dials ended", dialing)
			}
			if got := g.Stats().Conns; got != 1 {
				t.Fatalf("%d connections, want 1", got)
			}
		})
	}
}

// TestGroupDialErrorFreesSlot: a dial error reaches the caller, and the
// next Pick dials again.
func TestGroupDialErrorFreesSlot(t *testing.T) {
	tests := []struct {
		name string
		// pick runs the failing Pick.
		pick func(g *Group, d *gatedDial) error
		want error
	}{
		{"dial error", func(g *Group, d *gatedDial) error {
			d.proceed <- false
			_, err := g.Pick(context.Background())
			return err
		}, errDial},
		{"context ends during the dial", func(g *Group, d *gatedDial) error {
			ctx, cancel := context.WithCancel(context.Background())
			ch := pickAsync(g, ctx)
			<-d.entered
			cancel()
			return (<-ch).err
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			d := newGatedDial()
			g := newGroup(t, s.addr, Config{MaxConns: 1, Dial: d.dial})
			if err := tt.pick(g, d); !errors.Is(err, tt.want) {
				t.Fatalf("Pick = %v, want %v", err, tt.want)
			}
			if got := g.Stats().Conns; got != 0 {
				t.Fatalf("%d connections after a failed dial", got)
			}
			d.proceed <- true
			c, err := g.Pick(context.Background())
			if err != nil || c == nil {
				t.Fatalf("Pick after the failed dial = %v, %v", c, err)
			}
		})
	}
}

// TestReliability14GroupReplacesBrokenConn: a broken connection leaves the
// group before its calls learn of it, and the next call dials a new one.
func TestReliability14GroupReplacesBrokenConn(t *testing.T) {
	s := newFakeServer(t)
	g := newGroup(t, s.addr, Config{MaxConns: 1})
	c1, _, ch := send(t, g)
	p1 := s.nextPeer(t)
	p1.next(t)
	p1.nc.Close()
	r := await(t, ch)
	wantCode(t, r.err, codes.Unavailable)
	// onBroken runs before the Dones: the group has forgotten c1 already.
	if got := g.Stats(); got.Conns != 0 || got.Streams != 0 {
		t.Fatalf("Stats() after the break = %+v, want nothing open", got)
	}
	c2, seq, ch2 := send(t, g)
	if c2 == c1 {
		t.Fatal("Pick returned the broken connection")
	}
	p2 := s.nextPeer(t)
	p2.next(t)
	p2.answer(t, seq, "ok")
	if r := await(t, ch2); r.err != nil {
		t.Fatalf("the call on the new connection: %v", r.err)
	}
	if got := s.accepted.Load(); got != 2 {
		t.Fatalf("the server accepted %d connections, want 2", got)
	}
}

// TestGroupRetire: a retired connection gets no new calls, and holds no
// slot: the next call opens a fresh connection at once; the calls on it
// finish; once it carries none it is closed.
func TestGroupRetire(t *testing.T) {
	tests := []struct {
		name string
		// inFlight is whether the retired connection carries a call.
		inFlight bool
	}{
		{"idle", false},
		{"carrying a call", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			g := newGroup(t, s.addr, Config{MaxConns: 1, WaitTimeout: time.Minute})
			c1, seq, ch := send(t, g)
			p1 := s.nextPeer(t)
			p1.next(t)
			if !tt.inFlight {
				p1.answer(t, seq, "ok")
				await(t, ch)
			}
			c1.Retire()
			r := awaitPick(t, pickAsync(g, context.Background()))
			if r.err != nil {
				t.Fatalf("Pick after Retire: %v", r.err)
			}
			if r.c == c1 {
				t.Fatal("Pick returned the retired connection")
			}
			if tt.inFlight {
				// The call on the retired connection finishes beside the
				// new one, and the next Pick lets the connection go.
				p1.answer(t, seq, "ok")
				if r := await(t, ch); r.err != nil || payloadOf(t, r.f) != "ok" {
					t.Fatalf("the call on the retired connection got %+v", r)
				}
				if c, err := g.Pick(context.Background()); err != nil || c != r.c {
					t.Fatalf("Pick = %p, %v; want the new connection %p", c, err, r.c)
				}
			}
			if err := p1.waitClosed(t); err == nil {
				t.Fatal("the retired connection ended without an error")
			}
			// A call that goes on it now, having picked it before, learns
			// that the server never read it.
			<-c1.readerDone
			done, late := recorder()
			if _, written, err := c1.Send(context.Background(), reqFrame(t, "Late", nil), done); written || !errors.Is(err, ErrNotRead) {
				t.Fatalf("Send on the dropped connection: written %v, %v; want not written, ErrNotRead", written, err)
			}
			wantNoResult(t, late)
			s.nextPeer(t)
			if got := s.accepted.Load(); got != 2 {
				t.Fatalf("the server accepted %d connections, want 2", got)
			}
		})
	}
}

// TestGroupRetiredConnsDoNotCount: connections that the server retired
// while they carry slow calls do not count against MaxConns. A server
// shutting down refuses a new request on each of MaxConns connections with
// the connection: close mark, while a slow call on each is still running;
// the next call opens a fresh connection at once instead of waiting for
// them, and the slow calls still get their answers.
func TestGroupRetiredConnsDoNotCount(t *testing.T) {
	const maxConns = 4
	marked := &meta.ResponseMeta{
		Code:     uint32(codes.Unavailable),
		Message:  "server shutting down",
		Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose},
	}
	s := newFakeServer(t)
	// A Pick that waits at all waits longer than the test.
	g := newGroup(t, s.addr, Config{MaxConns: maxConns, WaitTimeout: time.Minute})
	peers := make(map[*Conn]*peer)
	var slow []call
	for range maxConns {
		c, seq, ch := send(t, g)
		peers[c] = s.nextPeer(t)
		peers[c].next(t)
		slow = append(slow, call{c, seq, ch})
	}
	if len(peers) != maxConns {
		t.Fatalf("%d calls went to %d connections, want %d", maxConns, len(peers), maxConns)
	}
	var refused []call
	for range maxConns {
		c, seq, ch := send(t, g)
		peers[c].next(t)
		refused = append(refused, call{c, seq, ch})
	}
	for _, rc := range refused {
		peers[rc.conn].write(t, respFrame(t, rc.seq, marked, nil))
		if r := await(t, rc.ch); r.err != nil {
			t.Fatalf("the refused call: %v", r.err)
		}
		if !rc.conn.retired.Load() {
			t.Fatal("the marked response did not retire its connection")
		}
	}

	r := awaitPick(t, pickAsync(g, context.Background()))
	if r.err != nil {
		t.Fatalf("Pick with every connection retired: %v", r.err)
	}
	if _, old := peers[r.c]; old {
		t.Fatal("Pick returned a retired connection")
	}
	done, ch := recorder()
	seq, _, err := r.c.Send(context.Background(), reqFrame(t, "Call", nil), done)
	if err != nil {
		t.Fatal(err)
	}
	p := s.nextPeer(t)
	p.next(t)
	p.answer(t, seq, "fresh")
	if r := await(t, ch); r.err != nil || payloadOf(t, r.f) != "fresh" {
		t.Fatalf("the call on the fresh connection got %+v", r)
	}
	if got := g.Stats(); got.Conns != maxConns+1 || got.Streams != maxConns {
		t.Fatalf("Stats() = %+v, want %d connections carrying %d calls", got, maxConns+1, maxConns)
	}

	// The slow calls finish on the retired connections, which the next
	// Pick then closes.
	for i, sc := range slow {
		peers[sc.conn].answer(t, sc.seq, fmt.Sprint("slow ", i))
		if r := await(t, sc.ch); r.err != nil || payloadOf(t, r.f) != fmt.Sprint("slow ", i) {
			t.Fatalf("slow call %d got %+v", i, r)
		}
	}
	if c, err := g.Pick(context.Background()); err != nil || c != r.c {
		t.Fatalf("Pick = %p, %v; want the fresh connection %p", c, err, r.c)
	}
	for c, p := range peers {
		p.waitClosed(t)
		<-c.readerDone
	}
	if got := g.Stats(); got.Conns != 1 || got.Streams != 0 {
		t.Fatalf("Stats() after the slow calls = %+v, want 1 connection, no calls", got)
	}
	if got := s.accepted.Load(); got != maxConns+1 {
		t.Fatalf("the server accepted %d connections, want %d", got, maxConns+1)
	}
}

// TestGroupIdleTimeout: the next Pick closes a connection that has carried
// no call for IdleTimeout, and never one that carries a call.
func TestGroupIdleTimeout(t *testing.T) {
	const idle = 100 * time.Millisecond
	s := newFakeServer(t)
	g := newGroup(t, s.addr, Config{MaxConns: 1, IdleTimeout: idle})
	c1, seq, ch := send(t, g)
	p1 := s.nextPeer(t)
	p1.next(t)
	p1.answer(t, seq, "ok")
	await(t, ch)
	waitIdle(c1, idle)
	c2, seq2, ch2 := send(t, g)
	if c2 == c1 {
		t.Fatal("Pick returned a connection idle for longer than IdleTimeout")
	}
	p1.waitClosed(t)
	<-c1.readerDone
	p2 := s.nextPeer(t)
	p2.next(t)
	// c2 carries a call for longer than IdleTimeout: it stays.
	time.Sleep(idleCheckEvery + idle)
	c3, err := g.Pick(context.Background())
	if err != nil || c3 != c2 {
		t.Fatalf("Pick = %p, %v; want the busy connection %p", c3, err, c2)
	}
	p2.answer(t, seq2, "ok")
	if r := await(t, ch2); r.err != nil {
		t.Fatalf("the call on the busy connection: %v", r.err)
	}
	if got := s.accepted.Load(); got != 2 {
		t.Fatalf("the server accepted %d connections, want 2", got)
	}
}

// TestGroupStatsKeepDropped: the count of dropped responses survives the
// connection that dropped them.
func TestGroupStatsKeepDropped(t *testing.T) {
	const idle = 100 * time.Millisecond
	tests := []struct {
		name string
		// end ends the connection.
		end func(t *testing.T, g *Group, c *Conn, p *peer)
	}{
		{"broken", func(t *testing.T, g *Group, c *Conn, p *peer) {
			p.nc.Close()
			<-c.readerDone
			waitFor(t, "the group to forget the connection", func() bool { return g.Stats().Conns == 0 })
		}},
		{"closed as idle", func(t *testing.T, g *Group, c *Conn, p *peer) {
			waitIdle(c, idle)
			if c2, err := g.Pick(context.Background()); err != nil || c2 == c {
				t.Fatalf("Pick = %p, %v; want a new connection", c2, err)
			}
			<-c.readerDone
		}},
		{"group closed", func(t *testing.T, g *Group, c *Conn, p *peer) {
			g.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			g := newGroup(t, s.addr, Config{IdleTimeout: idle})
			c, seq, ch := send(t, g)
			p := s.nextPeer(t)
			p.next(t)
			p.answer(t, 999, "stray")
			p.answer(t, seq, "ok")
			await(t, ch)
			if got := g.Stats().Dropped; got != 1 {
				t.Fatalf("Stats().Dropped = %d, want 1", got)
			}
			tt.end(t, g, c, p)
			if got := g.Stats().Dropped; got != 1 {
				t.Fatalf("Stats().Dropped after the connection ended = %d, want 1", got)
			}
		})
	}
}

// TestGroupClose: Close fails the calls in flight, ends waiting Picks, and
// makes later Picks fail with ErrClosed; a dial that completes after Close
// closes its connection.
func TestGroupClose(t *testing.T) {
	s := newFakeServer(t)
	d := newGatedDial()
	g := newGroup(t, s.addr, Config{MaxConns: 2, MaxStreams: 1, WaitTimeout: time.Minute, Dial: d.dial})
	d.proceed <- true
	_, _, ch := send(t, g)
	<-d.entered
	p1 := s.nextPeer(t)
	p1.next(t)
	// The second slot: a dial that the test holds until after Close.
	dialing := pickAsync(g, context.Background())
	d.waitEntered(t)
	// Both slots taken: a third Pick waits.
	waiting := pickAsync(g, context.Background())
	waitFor(t, "Pick to wait", func() bool { return g.numWaiters() == 1 })

	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, await(t, ch).err, codes.Unavailable)
	p1.waitClosed(t)
	if r := awaitPick(t, waiting); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("the waiting Pick = %+v, want ErrClosed", r)
	}
	d.proceed <- true
	if r := awaitPick(t, dialing); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("the Pick whose dial ended after Close = %+v, want ErrClosed", r)
	}
	// Its connection was closed at once.
	p2 := s.nextPeer(t)
	p2.waitClosed(t)
	if _, err := g.Pick(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pick after Close = %v, want ErrClosed", err)
	}
	if got := g.Stats(); got.Conns != 0 || got.Streams != 0 {
		t.Fatalf("Stats() after Close = %+v", got)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestGroupNoLostWakeup: a call that ends while a Pick decides to wait
// still wakes it. The stream is freed at varying moments around the Pick,
// many times over.
func TestGroupNoLostWakeup(t *testing.T) {
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	g := newGroup(t, "discard", Config{MaxConns: 1, MaxStreams: 1, WaitTimeout: time.Minute, Dial: discardDial})
	c, seq, _ := send(t, g)
	frame := reqFrame(t, "Call", nil)
	spin := 0
	for i := range rounds {
		picked := make(chan pickResult, 1)
		started := make(chan struct{})
		go func() {
			close(started)
			c, err := g.Pick(context.Background())
			picked <- pickResult{c, err}
		}()
		<-started
		for range i % 2000 {
			spin++
		}
		c.Cancel(seq)
		select {
		case r := <-picked:
			if r.err != nil || r.c != c {
				t.Fatalf("round %d: Pick = %+v", i, r)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Pick slept through the stream being freed", i)
		}
		var err error
		if seq, _, err = c.Send(context.Background(), frame, func(codec.Frame, error) {}); err != nil {
			t.Fatal(err)
		}
	}
	_ = spin
}

// TestConfigDefaults: zero fields get their documented defaults, and
// MaxStreams never exceeds the ids available.
func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want func(c Config) bool
	}{
		{"zero", Config{}, func(c Config) bool {
			return c.MaxConns == 4 && c.MaxStreams == 1024 && c.WaitTimeout == time.Second &&
				c.IdleTimeout == 30*time.Second && c.MaxFrameSize == 4<<20 && c.MaxSeq == 1<<32-1 &&
				c.Dial != nil && c.Logger != nil
		}},
		{"negative", Config{MaxConns: -1, MaxStreams: -1, WaitTimeout: -1, IdleTimeout: -1, MaxFrameSize: -1}, func(c Config) bool {
			return c.MaxConns == 4 && c.MaxStreams == 1024 && c.WaitTimeout == time.Second &&
				c.IdleTimeout == 30*time.Second && c.MaxFrameSize == 4<<20
		}},
		{"kept", Config{MaxConns: 2, MaxStreams: 3, WaitTimeout: 5, IdleTimeout: 6, MaxFrameSize: 7, MaxSeq: 8}, func(c Config) bool {
			return c.MaxConns == 2 && c.MaxStreams == 3 && c.WaitTimeout == 5 && c.IdleTimeout == 6 && c.MaxFrameSize == 7 && c.MaxSeq == 8
		}},
		{"MaxStreams capped by MaxSeq", Config{MaxSeq: 3}, func(c Config) bool { return c.MaxStreams == 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.withDefaults(); !tt.want(got) {
				t.Fatalf("withDefaults() = %+v", got)
			}
		})
	}
}

// TestGroupClosesRetiredConnAsNotRead: a call that picked a connection
// before it was retired, and was sent on it after the group let it go, was
// never read by the server (which reads nothing after its mark): it fails
// with ErrNotRead, which the client answers by sending it again.
func TestGroupClosesRetiredConnAsNotRead(t *testing.T) {
	c, p, _ := pipe(t, Config{}, nil)
	c.Retire()
	done, ch := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Late", nil), done); err != nil {
		t.Fatal(err)
	}
	p.next(t)
	c.closeRetired()
	r := await(t, ch)
	wantCode(t, r.err, codes.Unavailable)
	if !errors.Is(r.err, ErrNotRead) {
		t.Fatalf("errors.Is(%v, ErrNotRead) = false", r.err)
	}
}
