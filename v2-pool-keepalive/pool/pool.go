package pool

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrExhausted is wrapped by the error of a Get that waited the pool's wait
// bound without getting a connection.
var ErrExhausted = errors.New("rpc: connection pool exhausted")

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("rpc: connection pool closed")

// Config sets a pool's limits. A zero field means its default.
type Config struct {
	// MaxActive caps the connections open to one target, in use or idle.
	// Default: 256.
	MaxActive int
	// MaxIdle caps the idle connections kept for one target. Default: 64.
	MaxIdle int
	// IdleTimeout closes a connection that has been idle this long, whether
	// or not a Get comes: a timer sweeps the idle connections while there
	// are any. Keep it below the server's idle timeout, so the pool drops a
	// connection before the server does. Default: 30 s.
	IdleTimeout time.Duration
	// MaxLifetime closes a connection this old when it comes back, is next
	// taken, or sits idle, so that connections are renewed. Default: 10 min.
	MaxLifetime time.Duration
	// WaitTimeout bounds the wait for a connection when MaxActive are open;
	// the caller's context bounds it too. Default: 1 s.
	WaitTimeout time.Duration
	// CheckAfter is how long a connection must have been idle before Get
	// checks its health. One back from a successful call a moment ago has
	// just shown that it works, and the check costs a system call. Default:
	// 1 ms; a negative value checks every time.
	CheckAfter time.Duration
	// Dial opens a connection. Default: a net.Dialer with a 5 s timeout.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (c Config) withDefaults() Config {
	if c.MaxActive <= 0 {
		c.MaxActive = 256
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = 64
	}
	if c.MaxIdle > c.MaxActive {
		c.MaxIdle = c.MaxActive
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = 10 * time.Minute
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = time.Second
	}
	if c.CheckAfter == 0 {
		c.CheckAfter = time.Millisecond
	}
	if c.Dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return c
}

// Conn is a pooled connection. Give it back with Put.
//
// Its reads go through a buffer that lives as long as the connection, so
// that a response arrives in one read system call rather than one for its
// header and one for the rest, and so that no byte read ahead is lost
// between calls.
type Conn struct {
	net.Conn
	pool    *Pool
	created time.Time
	// idleSince is when the connection last went back to the pool.
	idleSince time.Time
	r         *bufio.Reader
}

// Read reads through the connection's buffer.
func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Stats counts what a pool did.
type Stats struct {
	// Hits counts Gets served by an idle connection or one handed over by
	// a Put; Misses counts Gets that dialled.
	Hits, Misses uint64
	// Waits counts Gets that found MaxActive connections open and waited;
	// Timeouts counts the waits that ended without a connection.
	Waits, Timeouts uint64
	// Evicted counts idle connections closed because they were too old,
	// idle too long, or found broken by the health check.
	Evicted uint64
	// Discarded counts connections closed by Put because of an error.
	Discarded uint64
	// Open and Idle are the connections open now, and idle now.
	Open, Idle int
}

// Pool holds the connections to one target.
type Pool struct {
	addr string
	cfg  Config
	// counts are the counters of Stats, atomic: a Get that finds an idle
	// connection takes mu only once.
	counts counters

	// mu protects every field below.
	mu   sync.Mutex
	idle []*Conn
	// open counts connections open or being dialled, in use or idle.
	open int
	// waiters holds the channel of each Get waiting for a connection, in
	// arrival order. A waiter receives a connection, or nil, meaning "a
	// slot is yours: dial".
	waiters list.List
	closed  bool
	// sweep, while idle connections are kept, is the timer that closes
	// them when they expire, due at sweepAt; nil when none is armed.
	sweep   *time.Timer
	sweepAt time.Time
	// drained is closed when the pool is closed and no connection is open.
	drained chan struct{}
}

// counters count what a pool did; see Stats.
type counters struct {
	hits, misses, waits, timeouts, evicted, discarded atomic.Uint64
}

// New returns an empty pool of connections to addr.
func New(addr string, cfg Config) *Pool {
	return &Pool{addr: addr, cfg: cfg.withDefaults(), drained: make(chan struct{})}
}

// Get returns a connection to the pool's target: an idle one that passes
// the checks, a new one while fewer than MaxActive are open, or one that
// another caller gives back while this one waits. It fails with the dial's
// error, with ErrExhausted after the wait bound, with ctx's error, or with
// ErrClosed.
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if len(p.idle) == 0 {
			break
		}
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now := time.Now(); !p.expired(c, now) {
			// The health check is a system call: make it outside the lock.
			// Bytes left in the buffer mean the stream is out of step.
			p.mu.Unlock()
			check := now.Sub(c.idleSince) >= p.cfg.CheckAfter
			if c.r.Buffered() == 0 && (!check || healthy(c.Conn)) {
				p.counts.hits.Add(1)
				return c, nil
			}
			p.mu.Lock()
		}
		p.counts.evicted.Add(1)
		p.closeLocked(c)
	}
	if p.open < p.cfg.MaxActive {
		p.open++
		p.counts.misses.Add(1)
		p.mu.Unlock()
		return p.dial(ctx)
	}

	// Exhausted: wait for a Put.
	p.counts.waits.Add(1)
	ch := make(chan *Conn, 1)
	elem := p.waiters.PushBack(ch)
	p.mu.Unlock()

	timer := time.NewTimer(p.cfg.WaitTimeout)
	defer timer.Stop()
	var waitErr error
	select {
	case c, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return p.handedOver(ctx, c)
	case <-timer.C:
		waitErr = fmt.Errorf("%w: %d connections to %s in use, waited %v", ErrExhausted, p.cfg.MaxActive, p.addr, p.cfg.WaitTimeout)
	case <-ctx.Done():
		waitErr = ctx.Err()
	}
	p.counts.timeouts.Add(1)
	p.mu.Lock()
	if p.removeWaiter(elem) {
		p.mu.Unlock()
		return nil, waitErr
	}
	p.mu.Unlock()
	// A Put chose this waiter just as it gave up: pass on what it sent, so
	// that neither a connection nor a slot is lost.
	if c, ok := <-ch; ok {
		if c != nil {
			p.Put(c, nil)
		} else {
			p.releaseSlot()
		}
	}
	return nil, waitErr
}

// handedOver finishes a Get that a Put woke: with a connection, or with a
// slot to dial into.
func (p *Pool) handedOver(ctx context.Context, c *Conn) (*Conn, error) {
	if c == nil {
		p.counts.misses.Add(1)
		return p.dial(ctx)
	}
	p.counts.hits.Add(1)
	return c, nil
}

// dial opens a connection into a slot already counted in p.open.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	nc, err := p.cfg.Dial(ctx, p.addr)
	if err != nil {
		p.releaseSlot()
		return nil, err
	}
	return &Conn{Conn: nc, pool: p, created: time.Now(), r: bufio.NewReader(nc)}, nil
}

// Put gives a connection back. With a non-nil err, or when the connection
// is too old or the pool is closed, the connection is closed instead. A
// waiting Get gets the connection, or its slot, first.
func (p *Pool) Put(c *Conn, err error) {
	p.mu.Lock()
	now := time.Now()
	if err != nil || p.closed || now.Sub(c.created) >= p.cfg.MaxLifetime {
		if err != nil {
			p.counts.discarded.Add(1)
		}
		p.closeLocked(c)
		p.mu.Unlock()
		return
	}
	if ch := p.popWaiter(); ch != nil {
		p.mu.Unlock()
		ch <- c
		return
	}
	if len(p.idle) >= p.cfg.MaxIdle {
		p.closeLocked(c)
		p.mu.Unlock()
		return
	}
	c.idleSince = now
	p.idle = append(p.idle, c)
	if at := p.expiry(c); p.sweep == nil || at.Before(p.sweepAt) {
		p.armSweepLocked(at, now)
	}
	p.mu.Unlock()
}

// expiry is when idle connection c must be closed.
func (p *Pool) expiry(c *Conn) time.Time {
	idle, old := c.idleSince.Add(p.cfg.IdleTimeout), c.created.Add(p.cfg.MaxLifetime)
	if old.Before(idle) {
		return old
	}
	return idle
}

// armSweepLocked sets the sweep timer to fire at at.
func (p *Pool) armSweepLocked(at, now time.Time) {
	p.sweepAt = at
	if p.sweep == nil {
		p.sweep = time.AfterFunc(at.Sub(now), p.sweepIdle)
		return
	}
	p.sweep.Reset(at.Sub(now))
}

// sweepIdle runs on the sweep timer: it closes the idle connections that
// have expired and arms the timer for the next one to expire, if any stay
// idle. So idle connections close on time even when no Get comes to find
// them, as database/sql's do.
func (p *Pool) sweepIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	now := time.Now()
	var next time.Time
	keep := p.idle[:0]
	for _, c := range p.idle {
		if at := p.expiry(c); at.After(now) {
			keep = append(keep, c)
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		p.counts.evicted.Add(1)
		p.closeLocked(c)
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	if next.IsZero() {
		p.sweep = nil
		return
	}
	p.armSweepLocked(next, now)
}

// closeLocked closes a connection and frees its slot for a waiter.
func (p *Pool) closeLocked(c *Conn) {
	c.Conn.Close()
	p.freeSlotLocked()
}

// releaseSlot frees a slot that holds no connection (a failed dial).
func (p *Pool) releaseSlot() {
	p.mu.Lock()
	p.freeSlotLocked()
	p.mu.Unlock()
}

// freeSlotLocked gives a freed slot to the first waiter, who will dial, or
// else forgets it.
func (p *Pool) freeSlotLocked() {
	if !p.closed {
		if ch := p.popWaiter(); ch != nil {
			ch <- nil // the slot moves to the waiter; p.open is unchanged
			return
		}
	}
	p.open--
	if p.closed && p.open == 0 {
		close(p.drained)
	}
}

func (p *Pool) popWaiter() chan *Conn {
	e := p.waiters.Front()
	if e == nil {
		return nil
	}
	return p.waiters.Remove(e).(chan *Conn)
}

// removeWaiter removes a waiter that gave up; false means a Put has already
// taken it off the list.
func (p *Pool) removeWaiter(e *list.Element) bool {
	for x := p.waiters.Front(); x != nil; x = x.Next() {
		if x == e {
			p.waiters.Remove(e)
			return true
		}
	}
	return false
}

func (p *Pool) expired(c *Conn, now time.Time) bool {
	return now.Sub(c.idleSince) >= p.cfg.IdleTimeout || now.Sub(c.created) >= p.cfg.MaxLifetime
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{
		Hits: p.counts.hits.Load(), Misses: p.counts.misses.Load(),
		Waits: p.counts.waits.Load(), Timeouts: p.counts.timeouts.Load(),
		Evicted: p.counts.evicted.Load(), Discarded: p.counts.discarded.Load(),
	}
	s.Open, s.Idle = p.open, len(p.idle)
	return s
}

// Close closes the idle connections, fails the waiting Gets, and waits,
// within ctx, for the connections in use to come back, closing each as it
// does. It returns ctx's error if they did not all come back in time.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		for _, c := range p.idle {
			c.Conn.Close()
			p.open--
		}
		p.idle = nil
		if p.sweep != nil {
			p.sweep.Stop()
			p.sweep = nil
		}
		for ch := p.popWaiter(); ch != nil; ch = p.popWaiter() {
			close(ch) // the waiter returns ErrClosed
		}
		if p.open == 0 {
			close(p.drained)
		}
	}
	p.mu.Unlock()
	select {
	case <-p.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
