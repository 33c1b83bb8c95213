package poller

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"myrpc/v4-epoll-batch/writev"
)

// Conn is a connection served by a loop. Its exported methods are safe to
// call from any goroutine.
type Conn struct {
	l      *loop
	fd     int
	remote string
	sender *writev.Sender
	ctx    atomic.Value

	// Owned by the loop goroutine: the unread input (part of a frame),
	// how many bytes that frame needs, when its first byte came, whether
	// the peer has stopped sending (written under emu, see endReading),
	// and whether the connection is closed.
	in           []byte
	need         int
	partialSince time.Time
	readEOF      bool
	closed       bool
	// lingering is set once the connection has sent its FIN and only waits
	// for the peer's, until lingerUntil.
	lingering   bool
	lingerUntil time.Time

	// busy counts responses owed (Hold, Done); lastActive is the Unix
	// nanosecond of the last input or response; blockedSince, of the first
	// time the output found the socket full since it last drained (0:
	// none).
	busy         atomic.Int32
	lastActive   atomic.Int64
	blockedSince atomic.Int64
	// paused is set while the output queue is too long: the loop stops
	// reading the connection. closing asks for the connection to close
	// once nothing is owed.
	paused  atomic.Bool
	closing atomic.Bool

	// emu protects events (the epoll interest) and fdClosed; writers hold
	// it shared while they use fd, so that fd is never closed (and its
	// number reused) under a write.
	emu      sync.RWMutex
	events   uint32
	fdClosed bool
}

func newConn(l *loop, fd int) *Conn {
	c := &Conn{l: l, fd: fd, events: unix.EPOLLIN | unix.EPOLLRDHUP}
	if sa, err := unix.Getpeername(fd); err == nil {
		c.remote = sockaddrString(sa)
	}
	c.touch()
	write := writev.FD(fd)
	c.sender = writev.NewSender(func(bufs [][]byte) (int, bool, error) {
		c.emu.RLock()
		defer c.emu.RUnlock()
		if c.fdClosed {
			return 0, false, net.ErrClosed
		}
		return write(bufs)
	}, writev.Options{
		Release:  l.e.cfg.Release,
		Blocked:  c.blocked,
		Drained:  c.drained,
		Counters: &l.e.counters,
	})
	return c
}

// Send queues a frame for the peer and writes it, with whatever else is
// queued, unless another goroutine is writing; the frame's buffer goes to
// Config.Release once written. A queue above Config.MaxQueued pauses the
// reading of the connection until it drains.
func (c *Conn) Send(frame []byte) error {
	queued, err := c.sender.Send(frame)
	if err != nil {
		// The peer is gone: the connection cannot be used any more.
		c.l.post(func() { c.l.closeConn(c) })
		return err
	}
	if queued > c.l.e.cfg.MaxQueued && !c.paused.Swap(true) {
		c.setReading(false)
		// The queue may have drained between Send and Swap.
		if c.sender.Pending() < c.l.e.cfg.MaxQueued/2 {
			c.drained()
		}
	}
	return nil
}

// Hold records that a response is owed: the connection is not idle until
// Done. Call it before the request leaves the loop.
func (c *Conn) Hold() { c.busy.Add(1) }

// Done records that a response owed has been sent (or will not be).
func (c *Conn) Done() {
	c.touch()
	if c.busy.Add(-1) == 0 && (c.closing.Load() || c.l.e.draining.Load()) {
		c.l.post(func() { c.l.closeIfIdle(c) })
	}
}

// Close closes the connection once nothing is owed or queued.
func (c *Conn) Close() {
	c.closeAfterFlush()
}

// SetContext stores v with the connection, for the handler.
func (c *Conn) SetContext(v any) { c.ctx.Store(v) }

// Context returns what SetContext stored.
func (c *Conn) Context() any { return c.ctx.Load() }

// RemoteAddr returns the peer's address as host:port.
func (c *Conn) RemoteAddr() string { return c.remote }

func (c *Conn) closeAfterFlush() {
	c.closing.Store(true)
	c.l.post(func() { c.l.closeIfIdle(c) })
}

func (c *Conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

func (c *Conn) lastActiveTime() time.Time { return time.Unix(0, c.lastActive.Load()) }

// idle reports whether nothing is owed, queued, or half read. Loop only.
func (c *Conn) idle() bool {
	return c.busy.Load() == 0 && c.sender.Idle() && len(c.in) == 0
}

// blocked is the Sender's call when the socket is full: wait for EPOLLOUT.
func (c *Conn) blocked() {
	c.emu.Lock()
	defer c.emu.Unlock()
	c.blockedSince.CompareAndSwap(0, time.Now().UnixNano())
	if !c.fdClosed && c.events&unix.EPOLLOUT == 0 {
		c.events |= unix.EPOLLOUT
		c.l.ep.mod(c.fd, c.events)
	}
}

// writable is the loop's call on EPOLLOUT: resume the parked flush.
func (c *Conn) writable() {
	if err := c.sender.Flush(); err != nil {
		c.l.closeConn(c)
	}
}

// drained is the Sender's call when everything queued has been written:
// after every flush, so its common case takes no lock.
func (c *Conn) drained() {
	if c.blockedSince.Load() != 0 {
		// The flush had parked: stop watching for EPOLLOUT, which level
		// triggering would otherwise report again and again; unless a new
		// flush has parked since (blocked runs under emu too, after the
		// Sender parks), which needs it.
		c.emu.Lock()
		if !c.sender.Parked() {
			c.blockedSince.Store(0)
			if !c.fdClosed && c.events&unix.EPOLLOUT != 0 {
				c.events &^= unix.EPOLLOUT
				c.l.ep.mod(c.fd, c.events)
			}
		}
		c.emu.Unlock()
	}
	if c.paused.Load() && c.sender.Pending() < c.l.e.cfg.MaxQueued/2 && c.paused.Swap(false) {
		c.setReading(true)
	}
	if c.closing.Load() || c.l.e.draining.Load() {
		c.l.post(func() { c.l.closeIfIdle(c) })
	}
}

func (c *Conn) blockedFor(now time.Time) time.Duration {
	since := c.blockedSince.Load()
	if since == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, since))
}

// setReading adds EPOLLIN to the connection's interest, or takes it out.
func (c *Conn) setReading(on bool) {
	c.emu.Lock()
	defer c.emu.Unlock()
	ev := c.events &^ (unix.EPOLLIN | unix.EPOLLRDHUP)
	if on && !c.readEOF {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if ev != c.events && !c.fdClosed {
		c.events = ev
		c.l.ep.mod(c.fd, c.events)
	}
}

// endReading stops reading the connection for good: the peer has finished
// sending, or sent what cannot be framed. readEOF is set under emu, which
// setReading holds when it reads it: a worker resuming the reading of a
// paused connection must not put EPOLLIN back after this, or a level-
// triggered EOF would wake the loop again and again for a connection it
// no longer reads.
func (c *Conn) endReading() {
	c.emu.Lock()
	defer c.emu.Unlock()
	c.readEOF = true
	ev := c.events &^ (unix.EPOLLIN | unix.EPOLLRDHUP)
	if ev != c.events && !c.fdClosed {
		c.events = ev
		c.l.ep.mod(c.fd, c.events)
	}
}

// closeFD closes the socket once no writer uses it, and drops what is
// still queued.
func (c *Conn) closeFD() {
	c.sender.Close()
	c.emu.Lock()
	c.fdClosed = true
	unix.Close(c.fd)
	c.emu.Unlock()
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
