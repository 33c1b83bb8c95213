package poller

import (
	"runtime"
	"sync"
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
// acceptor gave it.
type loop struct {
	e  *Engine
	ep *epoll
	// conns maps descriptors to connections; only the loop goroutine uses
	// it.
	conns   map[int]*Conn
	scratch []byte

	// mu protects tasks, which other goroutines post for the loop to run.
	mu    sync.Mutex
	tasks []func()

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
	l.mu.Unlock()
	l.ep.wake()
}

func (l *loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
}

func (l *loop) run() {
	idle := 0
	for !l.done {
		// Poll without waiting a few times, yielding in between, before
		// blocking in epoll_wait: the workers just handed requests then run
		// on this thread and their responses leave at once, and a busy loop
		// does not pay for putting its thread to sleep and waking it again.
		msec := 0
		if idle >= spins {
			msec = -1
			if len(l.conns) > 0 {
				msec = int(tick / time.Millisecond)
			}
		}
		evs, woken, err := l.ep.wait(msec)
		if err != nil {
			l.e.log.Error("rpc: epoll_wait failed; the loop stops", "err", err)
			l.stop()
			return
		}
		if len(evs) == 0 && !woken {
			idle++
			if msec == 0 {
				runtime.Gosched()
			}
		} else {
			idle = 0
		}
		if woken {
			l.runTasks()
		}
		for _, ev := range evs {
			c := l.conns[int(ev.Fd)]
			if c == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				c.writable()
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.read(c)
			}
		}
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
		}
	})
}

// read reads what is ready on c and hands the input to the handler. It
// never blocks: the socket is non-blocking, and a partial frame waits in the
// connection's own buffer for the rest.
func (l *loop) read(c *Conn) {
	if c.lingering {
		l.drain(c)
		return
	}
	for budget := 0; budget < readBudget && !c.closed && !c.readEOF; {
		var target []byte
		if len(c.in) == 0 {
			target = l.scratch
		} else {
			if len(c.in) == cap(c.in) {
				grown := make([]byte, len(c.in), inputSize(len(c.in), c.need))
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
			c.endReading()
			c.closing.Store(true)
			c.in = nil
			c.partialSince = time.Time{}
			if err != nil {
				l.closeConn(c)
			} else {
				l.closeIfIdle(c)
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
		consumed, need, herr := l.e.h.OnRead(c, data)
		if herr != nil {
			l.e.log.Debug("rpc: closing after a bad frame", "remote", c.remote, "err", herr)
			c.endReading()
			c.in = nil
			c.closeAfterFlush()
			return
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
			// The partial frame moves from the scratch buffer to the
			// connection's own.
			c.in = append(make([]byte, 0, inputSize(len(rest), need)), rest...)
			c.partialSince = time.Now()
		default:
			n := copy(c.in, rest)
			c.in = c.in[:n]
			if consumed > 0 {
				c.partialSince = time.Now()
			}
		}
		c.need = need
		if consumed > 0 {
			runtime.Gosched()
		}
		if c.paused.Load() {
			return
		}
	}
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
		case cfg.FrameTimeout > 0 && !c.partialSince.IsZero() && now.Sub(c.partialSince) > cfg.FrameTimeout:
			l.e.log.Debug("rpc: a frame did not arrive in time", "remote", c.remote)
			l.closeConn(c)
		case cfg.WriteTimeout > 0 && c.blockedFor(now) > cfg.WriteTimeout:
			l.e.log.Debug("rpc: the peer does not read", "remote", c.remote)
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
		}
	}
}

// closeIdle is Shutdown's first step on the loop: read what has arrived,
// so that requests already sent are answered (with 14), then close every
// connection that is idle.
func (l *loop) closeIdle() {
	for _, c := range l.conns {
		if !c.readEOF {
			l.read(c)
		}
		l.closeIfIdle(c)
	}
}

// inputSize is the size of a connection's own buffer that holds have bytes
// of a frame of need bytes and must make room for more: twice what has
// arrived, but no more than need, and at least minInput. The buffer grows
// with the bytes that arrive, not with the length a header promised.
func inputSize(have, need int) int {
	if need <= have {
		need = 2 * have // not a frame's size: grow all the same
	}
	return max(min(2*have, need), minInput)
}

// readUnreported reads what c has received that epoll has not reported
// yet, before the loop decides that c is idle: epoll reports input at the
// next wait, and a connection adopted a moment ago, or one whose request
// arrived as its idle timeout ran out, may hold a request the loop has not
// seen. Closing it then would drop the request, or reset the connection.
func (l *loop) readUnreported(c *Conn) {
	if !c.readEOF && !c.lingering && !c.closed {
		l.read(c)
	}
}

// closeIfIdle closes c if nothing more will happen on it: its peer is
// gone or the engine is draining or it is marked for closing, and no
// response is owed, nothing is waiting to be written, and no frame is half
// read.
func (l *loop) closeIfIdle(c *Conn) {
	if c.closed || !(c.readEOF || c.closing.Load() || l.e.draining.Load()) {
		return
	}
	if c.idle() {
		l.readUnreported(c)
		if c.closed {
			return
		}
	}
	if c.idle() || (c.closing.Load() && c.busy.Load() == 0 && c.sender.Idle()) {
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
	c.setReading(true)
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

// closeConn closes c now.
func (l *loop) closeConn(c *Conn) {
	if c.closed {
		return
	}
	c.closed = true
	delete(l.conns, c.fd)
	l.ep.del(c.fd)
	c.closeFD()
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
