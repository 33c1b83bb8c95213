package mux

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"myrpc/v5-cluster/codec"
)

// ErrExhausted is wrapped by the error of a Pick that waited the group's
// wait bound while every connection carried its maximum of calls.
var ErrExhausted = errors.New("rpc: connections exhausted")

// ErrClosed is returned by Pick after Close.
var ErrClosed = errors.New("rpc: connection group closed")

// Config sets a group's limits. A zero field means its default.
type Config struct {
	// MaxConns caps the connections to the server. A new connection is
	// opened when every open one carries at least one call, so one caller
	// uses one connection and many spread over MaxConns. A retired
	// connection does not count: it takes no new call, and the calls on it
	// finish on the side while a fresh connection takes its place.
	// Default: 4.
	MaxConns int
	// MaxStreams caps the calls in flight on one connection. Default: 1024.
	MaxStreams int
	// WaitTimeout bounds a call's wait when every connection carries
	// MaxStreams calls; the call's context bounds it too. Default: 1 s.
	WaitTimeout time.Duration
	// IdleTimeout closes a connection that has carried no call this long.
	// Keep it below the server's idle timeout. Default: 30 s.
	IdleTimeout time.Duration
	// MaxFrameSize caps meta + body of a response frame. Default: 4 MiB.
	MaxFrameSize int
	// MaxSeq is the largest sequence id before the ids wrap around to 1.
	// Tests lower it to see the wraparound. Default: 2^32-1.
	MaxSeq uint32
	// Dial opens a connection. Default: a net.Dialer with a 5 s timeout.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Logger receives per-connection events at Debug. Default:
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxConns <= 0 {
		c.MaxConns = 4
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 1024
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = codec.DefaultMaxFrameSize
	}
	if c.MaxSeq == 0 {
		c.MaxSeq = maxSeqDefault
	}
	if uint64(c.MaxStreams) > uint64(c.MaxSeq) {
		c.MaxStreams = int(c.MaxSeq)
	}
	if c.Dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Group is the set of connections to one server.
type Group struct {
	addr string
	cfg  Config

	// mu protects the fields below.
	mu    sync.Mutex
	conns []*Conn
	// dialing counts connections being opened.
	dialing int
	// waiters holds a channel per Pick waiting for a free stream; a
	// released stream closes the first. nwaiters is its length, readable
	// without mu, so that a call that ends need not take mu when nobody
	// waits.
	waiters  list.List
	nwaiters atomic.Int32
	// idleCheck is when closeIdleLocked last looked for idle connections.
	idleCheck time.Time
	closed    bool
	// dropped keeps the count of connections that are gone.
	dropped uint64
}

// NewGroup returns an empty group of connections to addr.
func NewGroup(addr string, cfg Config) *Group {
	return &Group{addr: addr, cfg: cfg.withDefaults()}
}

// Pick returns a connection to send a call on: the least busy one with a
// free stream, or a new one while every open connection is busy and fewer
// than MaxConns are open, retired ones aside. When every connection carries MaxStreams calls,
// it waits for a stream to free up, within ctx and WaitTimeout. The stream
// is taken by Send, which can still fail with ErrStreamsExhausted if
// another call took it first; pick again then.
func (g *Group) Pick(ctx context.Context) (*Conn, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, ErrClosed
		}
		g.closeIdleLocked()
		best := g.leastBusyLocked()
		open := g.openLocked() + g.dialing
		if best != nil && (best.Streams() == 0 || open >= g.cfg.MaxConns) {
			g.mu.Unlock()
			return best, nil
		}
		if open < g.cfg.MaxConns {
			g.dialing++
			g.mu.Unlock()
			return g.dial(ctx)
		}
		// Every connection is full: wait for a stream to free up. Count
		// the waiter first and look once more: released reads the count
		// without mu, so a call that ended after the look above either
		// sees the count, or its freed stream is seen here.
		g.nwaiters.Add(1)
		if best := g.leastBusyLocked(); best != nil {
			g.nwaiters.Add(-1)
			g.mu.Unlock()
			return best, nil
		}
		ch := make(chan struct{})
		e := g.waiters.PushBack(ch)
		g.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(g.cfg.WaitTimeout)
		}
		select {
		case <-ch:
			continue
		case <-timer.C:
			g.forget(e)
			return nil, fmt.Errorf("%w: %d connections to %s carry %d calls each, waited %v",
				ErrExhausted, g.cfg.MaxConns, g.addr, g.cfg.MaxStreams, g.cfg.WaitTimeout)
		case <-ctx.Done():
			g.forget(e)
			return nil, ctx.Err()
		}
	}
}

// leastBusyLocked returns the open connection with the fewest calls and a
// free stream, or nil.
func (g *Group) leastBusyLocked() *Conn {
	var best *Conn
	for _, c := range g.conns {
		if c.retired.Load() {
			continue
		}
		if n := c.Streams(); n < g.cfg.MaxStreams && (best == nil || n < best.Streams()) {
			best = c
		}
	}
	return best
}

// openLocked returns the number of connections that take new calls: the
// connections of the group that are not retired. Only these count against
// MaxConns.
func (g *Group) openLocked() int {
	n := 0
	for _, c := range g.conns {
		if !c.retired.Load() {
			n++
		}
	}
	return n
}

// closeIdleLocked closes connections that have carried no call for
// IdleTimeout, so that the client drops a connection before the server
// does, and retired connections that carry no call any more, which would
// otherwise stay open until then. It is checked when calls come, not by
// a timer: an idle client has nothing to race with.
func (g *Group) closeIdleLocked() {
	now := time.Now()
	// Once a second is often enough for the idle timeout, and keeps the
	// connections' locks off the hot path.
	checkIdle := now.Sub(g.idleCheck) >= time.Second
	if checkIdle {
		g.idleCheck = now
	}
	for i := 0; i < len(g.conns); i++ {
		c := g.conns[i]
		retired := c.retired.Load()
		if !checkIdle && !retired {
			continue
		}
		if since := c.idleSince(); !since.IsZero() && (retired || now.Sub(since) >= g.cfg.IdleTimeout) {
			g.conns = append(g.conns[:i], g.conns[i+1:]...)
			g.dropped += c.Dropped()
			i--
			if retired {
				go c.closeRetired()
			} else {
				go c.Close()
			}
		}
	}
}

func (g *Group) dial(ctx context.Context) (*Conn, error) {
	nc, err := g.cfg.Dial(ctx, g.addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dialing--
	if err != nil {
		g.wakeLocked() // a slot to dial into is free again
		return nil, err
	}
	if g.closed {
		nc.Close()
		return nil, ErrClosed
	}
	c := newConn(nc, g.cfg, g.released, g.remove)
	g.conns = append(g.conns, c)
	g.cfg.Logger.Debug("rpc: connection opened", "remote", g.addr, "conns", len(g.conns))
	// The new connection has free streams for those waiting.
	for g.waiters.Len() > 0 {
		g.wakeLocked()
	}
	return c, nil
}

// released is called when a call leaves c: a waiting Pick may go.
func (g *Group) released(*Conn) {
	if g.nwaiters.Load() == 0 {
		return
	}
	g.mu.Lock()
	g.wakeLocked()
	g.mu.Unlock()
}

func (g *Group) wakeLocked() {
	if e := g.waiters.Front(); e != nil {
		close(g.waiters.Remove(e).(chan struct{}))
		g.nwaiters.Add(-1)
	}
}

// remove takes a broken connection out of the group; the next call that
// needs one dials a new connection.
func (g *Group) remove(c *Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.conns {
		if x == c {
			g.conns = append(g.conns[:i], g.conns[i+1:]...)
			g.dropped += c.Dropped()
			break
		}
	}
	g.wakeLocked()
}

func (g *Group) forget(e *list.Element) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for x := g.waiters.Front(); x != nil; x = x.Next() {
		if x == e {
			g.waiters.Remove(e)
			g.nwaiters.Add(-1)
			return
		}
	}
	// Woken as it gave up: pass the wake-up on.
	g.wakeLocked()
}

// Stats describes a group.
type Stats struct {
	// Conns is the number of open connections, Streams the calls in
	// flight on them. Retired connections still carrying calls count, so
	// Conns can exceed MaxConns while they finish.
	Conns, Streams int
	// Dropped counts responses that no call was waiting for.
	Dropped uint64
}

// Stats returns the group's counters.
func (g *Group) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := Stats{Conns: len(g.conns), Dropped: g.dropped}
	for _, c := range g.conns {
		s.Streams += c.Streams()
		s.Dropped += c.Dropped()
	}
	return s
}

// Close closes every connection, failing the calls in flight on them, and
// makes later Picks fail with ErrClosed.
func (g *Group) Close() error {
	g.mu.Lock()
	g.closed = true
	conns := g.conns
	g.conns = nil
	for _, c := range conns {
		g.dropped += c.Dropped()
	}
	for g.waiters.Len() > 0 {
		g.wakeLocked()
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}
