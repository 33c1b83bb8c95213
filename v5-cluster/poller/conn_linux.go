package poller

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"myrpc/v5-cluster/writev"
)

// Conn is a connection served by a loop. Only its loop touches the socket:
// it reads, writes and closes it. Other goroutines queue frames with Send
// and account for the calls with Hold and Done; the loop does the rest.
// The exported methods are safe to call from any goroutine.
type Conn struct {
	l      *loop
	fd     int
	remote string
	// out holds the frames to write: any goroutine pushes, the loop
	// writes.
	out *writev.Writer
	ctx atomic.Value

	// Owned by the loop goroutine: the unread input (part of a frame), how
	// many bytes that frame needs, when its first byte came, whether the
	// peer has stopped sending, whether the handler has stopped reading (a
	// frame it cannot frame, a request refused as the server shuts down:
	// the peer may still be sending), and whether the connection is closed.
	in           []byte
	need         int
	partialSince time.Time
	readEOF      bool
	readStopped  bool
	closed       bool
	// lingering is set once the connection has sent its FIN and only waits
	// for the peer's, until lingerUntil.
	lingering   bool
	lingerUntil time.Time
	// events is the epoll interest, kept in step with the state by
	// setInterest. paused is set while the connection is at one of its
	// bounds, and its reading stops; peerGone once the handler has been
	// told that the peer closed; closing once the connection is to close
	// as soon as nothing is owed; blockedSince is when the output first
	// found the socket full since it last made progress (zero: it did).
	events       uint32
	paused       bool
	peerGone     bool
	closing      bool
	blockedSince time.Time
	// again is set when the handler stopped at the connection's bounds
	// with whole frames left in c.in: they are offered again before the
	// socket is read.
	again bool

	// Shared with other goroutines: busy counts the calls in flight (Hold
	// to Done) and held the bytes of their requests; lastActive is the
	// Unix nanosecond of the last input or response; queued is set while
	// the connection waits in its loop's list to be served; watched is set
	// while the loop wants to hear of every Done (the connection is paused
	// or closing, or the engine drains); closeAsked is set by Close.
	busy       atomic.Int32
	held       atomic.Int64
	lastActive atomic.Int64
	queued     atomic.Bool
	watched    atomic.Bool
	closeAsked atomic.Bool
}

func newConn(l *loop, fd int) *Conn {
	c := &Conn{l: l, fd: fd, events: unix.EPOLLIN | unix.EPOLLRDHUP}
	if sa, err := unix.Getpeername(fd); err == nil {
		c.remote = sockaddrString(sa)
	}
	c.touch()
	c.out = writev.NewWriter(writev.FD(fd), writev.Options{
		Release:  l.e.cfg.Release,
		Counters: &l.e.counters,
	})
	return c
}

// Send queues a frame for the peer; the loop writes it, with whatever else
// is queued, in one writev. The frame's buffer goes to Config.Release once
// written or dropped. It fails once the connection is closed.
func (c *Conn) Send(frame []byte) error {
	if _, err := c.out.Push(frame, time.Time{}); err != nil {
		return err
	}
	c.l.serveSoon(c)
	return nil
}

// Hold records a call read from the connection, whose request is size
// bytes: a response is owed, and the connection is not idle, until Done.
// Call it on the loop (from OnRead), before the request leaves it.
func (c *Conn) Hold(size int) {
	c.busy.Add(1)
	c.held.Add(int64(size))
}

// Done records that the call Hold counted has been answered (its response
// sent), or will not be.
func (c *Conn) Done(size int) {
	c.touch()
	c.held.Add(-int64(size))
	c.busy.Add(-1)
	if c.watched.Load() {
		c.l.serveSoon(c)
	}
}

// Close closes the connection once nothing is owed or queued.
func (c *Conn) Close() {
	c.closeAsked.Store(true)
	c.watched.Store(true)
	c.l.serveSoon(c)
}

// SetContext stores v with the connection, for the handler.
func (c *Conn) SetContext(v any) { c.ctx.Store(v) }

// Context returns what SetContext stored.
func (c *Conn) Context() any { return c.ctx.Load() }

// RemoteAddr returns the peer's address as host:port.
func (c *Conn) RemoteAddr() string { return c.remote }

func (c *Conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

func (c *Conn) lastActiveTime() time.Time { return time.Unix(0, c.lastActive.Load()) }

// idle reports whether nothing is owed, queued, or half read. Loop only.
func (c *Conn) idle() bool {
	return c.busy.Load() == 0 && c.out.Idle() && len(c.in) == 0
}

// Full reports whether the connection is at one of its bounds: as many
// calls in flight, or as many bytes held, as Config allows. OnRead calls it
// after each Hold, and stops cutting frames when it reports true, leaving
// the rest of its input (need 0): the engine offers it again once the
// connection is below its bounds. Loop only.
func (c *Conn) Full() bool { return c.full() }

func (c *Conn) full() bool {
	cfg := &c.l.e.cfg
	return (cfg.MaxConnCalls > 0 && int(c.busy.Load()) >= cfg.MaxConnCalls) ||
		(cfg.MaxConnBytes > 0 && c.held.Load()+int64(c.out.Pending()) >= int64(cfg.MaxConnBytes))
}

// reading reports whether the loop reads the connection now. Loop only.
func (c *Conn) reading() bool {
	return !c.closed && !c.readEOF && !c.readStopped && !c.paused && !c.lingering
}

// setInterest brings the epoll interest in step with the connection's
// state: input while it is read (and while it lingers, to see the peer's
// FIN), the peer's FIN alone while it is paused and the handler has not
// been told, and room to write while output waits for it. Loop only.
func (c *Conn) setInterest() {
	if c.closed {
		return
	}
	var ev uint32
	switch {
	case c.reading() || c.lingering:
		ev = unix.EPOLLIN | unix.EPOLLRDHUP
	case c.paused && !c.readEOF && !c.peerGone:
		ev = unix.EPOLLRDHUP
	}
	if !c.blockedSince.IsZero() {
		ev |= unix.EPOLLOUT
	}
	if ev != c.events {
		c.events = ev
		c.l.ep.mod(c.fd, ev)
	}
	c.watched.Store(c.paused || c.closing || c.closeAsked.Load() || c.readEOF || c.l.e.draining.Load())
}

func (c *Conn) blockedFor(now time.Time) time.Duration {
	if c.blockedSince.IsZero() {
		return 0
	}
	return now.Sub(c.blockedSince)
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	return "?"
}
