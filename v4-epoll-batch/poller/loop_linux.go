package poller

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// scratchSize is each loop's read buffer, shared by its connections:
	// a connection needs a buffer of its own only while it holds part of a
	// frame, so an idle connection holds none.
	scratchSize = 64 << 10
	// readBudget bounds what a loop reads from one connection per event,
	// so that one busy connection cannot starve the others; level
	// triggering brings the loop back for the rest.
	readBudget = 256 << 10
	// minInput is the smallest buffer of a connection's own.
	minInput = 4 << 10
	// spins is how many times a loop polls without waiting before it
	// blocks in epoll_wait.
	spins = 3
	// lingerFor bounds how long a connection closing gently waits for its
	// peer to close too.
	lingerFor = 500 * time.Millisecond
)

// loop is a sub-reactor: one goroutine, one epoll set, the connections the
// acceptor gave it. The loop goroutine alone reads, writes and closes
// their sockets.
type loop struct {
	e  *Engine
	ep *epoll
	// conns maps descriptors to connections; only the loop goroutine uses
	// it.
	conns   map[int]*Conn
	scratch []byte

	// mu protects tasks and ready, the work other goroutines give the
	// loop: functions to run on it, and connections to serve (write what
	// they have queued, and look at their state again). pending counts
	// both, readable without mu. sleeping is set while the loop waits in
	// epoll_wait; the goroutine that gives it work then wakes it.
	mu       sync.Mutex
	tasks    []func()
	ready    []*Conn
	pending  atomic.Int32
	sleeping atomic.Bool
	// spare slices, traded with tasks and ready so that neither allocates
	// once grown. Loop only.
	spareTasks []func()
	spareReady []*Conn

	done     bool
	lastTick time.Time
}

func newLoop(e *Engine) (*loop, error) {
	ep, err := newEpoll()
	if err != nil {
		return nil, err
	}
	return &loop{e: e, ep: ep, conns: make(map[int]*Conn), scratch: make([]byte, scratchSize)}, nil
}

// post runs f on the loop goroutine, soon.
func (l *loop) post(f func()) {
	l.mu.Lock()
	l.tasks = append(l.tasks, f)
	l.pending.Add(1)
	l.mu.Unlock()
	l.wake()
}

// serveSoon makes the loop serve c soon: write what c has queued, and
// look at c's state again. A connection waits in the list once, however
// many frames are queued for it meanwhile.
func (l *loop) serveSoon(c *Conn) {
	if c.queued.Swap(true) {
		return
	}
	l.mu.Lock()
	l.ready = append(l.ready, c)
	l.pending.Add(1)
	l.mu.Unlock()
	l.wake()
}

// wake interrupts the loop's epoll_wait, if it is in one: a loop that is
// still polling finds the work without a system call.
func (l *loop) wake() {
	if l.sleeping.CompareAndSwap(true, false) {
		l.ep.wake()
	}
}

// runPending runs the tasks posted and serves the connections made ready.
func (l *loop) runPending() {
	if l.pending.Load() == 0 {
		return
	}
	l.mu.Lock()
	tasks, ready := l.tasks, l.ready
	l.tasks, l.ready = l.spareTasks[:0], l.spareReady[:0]
	l.pending.Store(0)
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
	for _, c := range ready {
		l.serve(c)
	}
	clear(tasks)
	clear(ready)
	l.spareTasks, l.spareReady = tasks[:0], ready[:0]
}

func (l *loop) run() {
	idle := 0
	for !l.done {
		// Poll without waiting a few times, yielding in between, before
		// blocking in epoll_wait: the workers just handed requests then run
		// on this thread and queue their responses, which leave at once,
		// and a busy loop does not pay for putting its thread to sleep and
		// waking it again.
		msec := 0
		if idle >= spins {
			msec = -1
			if len(l.conns) > 0 {
				msec = int(tick / time.Millisecond)
			}
			l.sleeping.Store(true)
			if l.pending.Load() > 0 {
				// Work came after the last look: do not sleep on it.
				l.sleeping.Store(false)
				msec = 0
			}
		}
		evs, _, err := l.ep.wait(msec)
		l.sleeping.Store(false)
		if err != nil {
			l.e.log.Error("rpc: epoll_wait failed; the loop stops", "err", err)
			l.stop()
			return
		}
		if len(evs) == 0 && l.pending.Load() == 0 {
			idle++
			if msec == 0 {
				runtime.Gosched()
			}
		} else {
			idle = 0
		}
		l.runPending()
		for _, ev := range evs {
			c := l.conns[int(ev.Fd)]
			if c == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.serve(c)
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.input(c, ev.Events)
			}
		}
		// What the reads above produced on the loop (refusals), and what
		// the workers queued meanwhile, leaves now.
		l.runPending()
		if now := time.Now(); now.Sub(l.lastTick) >= tick {
			l.lastTick = now
			l.checkTimeouts(now)
		}
	}
}

// adopt takes a new connection's descriptor from the acceptor.
func (l *loop) adopt(fd int) {
	l.post(func() {
		if l.done {
			unix.Close(fd)
			l.e.connClosed()
			return
		}
		c := newConn(l, fd)
		if err := l.ep.add(fd, c.events); err != nil {
			l.e.log.Warn("rpc: cannot watch a connection", "err", err)
			unix.Close(fd)
			l.e.connClosed()
			return
		}
		l.conns[fd] = c
		l.e.h.OnOpen(c)
		if l.e.draining.Load() {
			// Accepted before Shutdown, adopted after: read what it has
			// sent, as closeIdle does, before closing it.
			l.read(c)
			l.closeIfIdle(c)
			c.setInterest()
		}
	})
}

// serve writes what c has queued, and acts on c's state: a paused
// connection below its bounds again is read again, and one that is done
// closes.
func (l *loop) serve(c *Conn) {
	c.queued.Store(false)
	if c.closed {
		return
	}
	l.flush(c)
	if c.closed {
		return
	}
	if c.paused && !c.full() {
		c.paused = false
		if len(c.in) > 0 {
			// A frame's time to arrive whole counts from when reading
			// resumes.
			c.partialSince = time.Now()
		}
		c.setInterest()
		l.read(c)
	}
	if c.closeAsked.Load() {
		c.closing = true
	}
	l.closeIfIdle(c)
	c.setInterest()
}

// flush writes what c has queued, until the socket is full. A write error
// means the peer is gone: the connection closes.
func (l *loop) flush(c *Conn) {
	n, wouldBlock, err := c.out.Flush()
	if err != nil {
		l.e.log.Debug("rpc: write failed", "remote", c.remote, "err", err)
		l.peerClosed(c)
		l.closeConn(c)
		return
	}
	switch {
	case !wouldBlock:
		c.blockedSince = time.Time{}
	case n > 0 || c.blockedSince.IsZero():
		// The socket is full: the write timeout counts from now, and
		// starts again whenever the peer takes something.
		c.blockedSince = time.Now()
	}
	c.setInterest()
}

// input acts on an input event: data or the peer's FIN for a connection
// being read, the peer's FIN for one paused at its bounds, the last bytes
// for one that lingers.
func (l *loop) input(c *Conn, events uint32) {
	switch {
	case c.closed:
	case c.lingering:
		l.drain(c)
	case c.reading():
		l.read(c)
	case events&(unix.EPOLLHUP|unix.EPOLLERR) != 0:
		// Reset, or closed both ways: nothing can reach the peer now.
		l.peerClosed(c)
		l.closeConn(c)
	case c.paused && events&unix.EPOLLRDHUP != 0:
		// The peer closed while its requests wait unread: its calls are
		// ended now, not once it is read again.
		l.peerClosed(c)
		c.setInterest()
	}
}

// peerClosed tells the handler, once, that the peer has gone.
func (l *loop) peerClosed(c *Conn) {
	if !c.peerGone {
		c.peerGone = true
		l.e.h.OnPeerClosed(c)
	}
}

// read reads what is ready on c and hands the input to the handler. It
// never blocks: the socket is non-blocking, and a partial frame waits in the
// connection's own buffer for the rest. It stops at the connection's
// bounds; input the handler left then is offered again first, once the
// connection is below them.
func (l *loop) read(c *Conn) {
	if c.again {
		c.again = false
		if ok, _ := l.deliver(c, c.in); !ok {
			return
		}
	}
	for budget := 0; budget < readBudget && c.reading(); {
		var target []byte
		if len(c.in) == 0 {
			target = l.scratch
		} else {
			if len(c.in) == cap(c.in) {
				// Grow with the bytes that arrive, doubling up to what the
				// frame needs: a header alone reserves nothing like the
				// size it promises.
				size := 2 * cap(c.in)
				if c.need > len(c.in) {
					size = min(size, c.need)
				}
				grown := make([]byte, len(c.in), max(size, minInput))
				copy(grown, c.in)
				c.in = grown
			}
			target = c.in[len(c.in):cap(c.in)]
		}
		n, err := unix.Read(c.fd, target)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil || n == 0 {
			// The peer closed its side (n == 0) or the connection broke.
			// Responses still owed are written first, if the peer only
			// half-closed.
			c.readEOF = true
			c.closing = true
			c.in = nil
			c.partialSince = time.Time{}
			l.peerClosed(c)
			if err != nil {
				l.closeConn(c)
			} else {
				l.closeIfIdle(c)
				c.setInterest()
			}
			return
		}
		l.e.reads.Add(1)
		c.touch()
		budget += n
		var data []byte
		if len(c.in) == 0 {
			data = l.scratch[:n]
		} else {
			c.in = c.in[:len(c.in)+n]
			data = c.in
		}
		ok, took := l.deliver(c, data)
		if !ok {
			return
		}
		if took {
			// Let the workers just handed requests run.
			runtime.Gosched()
		}
	}
}

// deliver hands input to the handler and keeps what it leaves: the start
// of a frame, or, when the handler stopped at the connection's bounds,
// whole frames too. It reports whether reading may go on, and whether the
// handler took any frame.
func (l *loop) deliver(c *Conn, data []byte) (ok, took bool) {
	consumed, need, herr := l.e.h.OnRead(c, data)
	if herr != nil {
		// Nothing after a frame that cannot be framed can be read: the
		// connection closes once the answers owed are written. The peer
		// has not stopped sending, so the close lingers.
		l.e.log.Debug("rpc: reading stopped; closing", "remote", c.remote, "err", herr)
		c.readStopped = true
		c.closing = true
		c.in = nil
		c.partialSince = time.Time{}
		l.closeIfIdle(c)
		c.setInterest()
		return false, consumed > 0
	}
	rest := data[consumed:]
	switch {
	case len(rest) == 0:
		c.partialSince = time.Time{}
		if cap(c.in) > scratchSize {
			c.in = nil // a big frame's buffer goes
		} else {
			c.in = c.in[:0]
		}
	case len(c.in) == 0:
		// What is left moves from the scratch buffer to the connection's
		// own, sized for what has arrived.
		c.in = append(make([]byte, 0, max(min(need, 2*len(rest)), minInput)), rest...)
		c.partialSince = time.Now()
	default:
		n := copy(c.in, rest)
		c.in = c.in[:n]
		if consumed > 0 {
			c.partialSince = time.Now()
		}
	}
	c.need = need
	if c.full() {
		// At its bounds: the rest of its input waits, in the socket and in
		// c.in, and TCP stops its client, until calls have been answered.
		c.paused = true
		c.again = len(c.in) > 0 && need == 0
		c.setInterest()
		return false, consumed > 0
	}
	return true, consumed > 0
}

// checkTimeouts closes connections whose frame, idleness or blocked
// output has lasted too long.
func (l *loop) checkTimeouts(now time.Time) {
	cfg := l.e.cfg
	for _, c := range l.conns {
		switch {
		case c.lingering:
			if now.After(c.lingerUntil) {
				l.closeConn(c)
			}
		case cfg.FrameTimeout > 0 && !c.paused && !c.partialSince.IsZero() && now.Sub(c.partialSince) > cfg.FrameTimeout:
			l.e.log.Debug("rpc: a frame did not arrive in time", "remote", c.remote)
			l.closeConn(c)
		case cfg.WriteTimeout > 0 && c.blockedFor(now) > cfg.WriteTimeout:
			l.e.log.Debug("rpc: the peer does not read", "remote", c.remote)
			l.peerClosed(c)
			l.closeConn(c)
		case cfg.IdleTimeout > 0 && c.idle() && now.Sub(c.lastActiveTime()) > cfg.IdleTimeout:
			// A request that arrived since the last wait is not reported
			// yet: read before calling the connection idle.
			l.readUnreported(c)
			if !c.closed && c.idle() && now.Sub(c.lastActiveTime()) > cfg.IdleTimeout {
				l.closeConn(c)
			}
		case l.e.draining.Load():
			l.closeIfIdle(c)
			c.setInterest()
		}
	}
}

// closeIdle is Shutdown's first step on the loop: read what has arrived,
// so that requests already sent are answered (with 14), then close every
// connection that is idle.
func (l *loop) closeIdle() {
	for _, c := range l.conns {
		l.readUnreported(c)
		l.closeIfIdle(c)
		c.setInterest()
	}
}

// readUnreported reads what c has received that epoll has not reported
// yet, before the loop decides that c is idle: epoll reports input at the
// next wait, and a connection adopted a moment ago, or one whose request
// arrived as its idle timeout ran out, may hold a request the loop has not
// seen. Closing it then would drop the request, or reset the connection.
func (l *loop) readUnreported(c *Conn) {
	if c.reading() {
		l.read(c)
	}
}

// closeIfIdle closes c if nothing more will happen on it: its peer is
// gone or the engine is draining or it is marked for closing, and no
// response is owed, nothing is waiting to be written, and no frame is half
// read.
func (l *loop) closeIfIdle(c *Conn) {
	if c.closed || !(c.readEOF || c.closing || l.e.draining.Load()) {
		return
	}
	if c.idle() {
		l.readUnreported(c)
		if c.closed {
			return
		}
	}
	if c.idle() || (c.closing && c.busy.Load() == 0 && c.out.Idle()) {
		l.linger(c)
	}
}

// linger closes c gently: unless the peer has finished sending, a close
// with unread input would make the kernel reset the connection and throw
// away what it has not yet sent, the last responses included. So it sends
// a FIN after them, then reads and discards until the peer closes too, or
// for lingerFor at most.
func (l *loop) linger(c *Conn) {
	if c.readEOF || c.lingering {
		if !c.lingering {
			l.closeConn(c)
		}
		return
	}
	c.lingering = true
	c.lingerUntil = time.Now().Add(lingerFor)
	c.in = nil
	c.partialSince = time.Time{}
	unix.Shutdown(c.fd, unix.SHUT_WR)
	c.setInterest()
	l.drain(c)
}

// drain reads and discards what a lingering connection receives, and
// closes it when the peer closes.
func (l *loop) drain(c *Conn) {
	for !c.closed {
		_, err := unix.Read(c.fd, l.scratch)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		l.closeConn(c) // EOF or an error: the peer is done
		return
	}
}

// closeConn closes c now, and drops what is still queued for it.
func (l *loop) closeConn(c *Conn) {
	if c.closed {
		return
	}
	c.closed = true
	delete(l.conns, c.fd)
	l.ep.del(c.fd)
	c.out.Close()
	unix.Close(c.fd)
	c.in = nil
	l.e.h.OnClose(c)
	l.e.connClosed()
}

// stop closes every connection and ends the loop.
func (l *loop) stop() {
	for _, c := range l.conns {
		l.closeConn(c)
	}
	l.done = true
}
