package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
)

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// deadline returns the time d from now, or no deadline for d <= 0.
func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// conn is one accepted connection, served by a goroutine of its own.
type conn struct {
	link
	nc net.Conn
	// idle is true while the connection waits for a request's first byte;
	// Shutdown wakes the connections it finds idle. dmu makes reading idle
	// and moving the read deadline one step, so that a wake-up call cannot
	// land between a request's first byte and its frame deadline.
	dmu  sync.Mutex
	idle bool
	// lingered is set once lingerClose has run; the reader alone uses it.
	lingered bool

	// inflight counts the requests handed to the workers and not yet
	// answered; busy is the same count, readable.
	inflight sync.WaitGroup
	busy     atomic.Int32
	// wmu serialises writes, so that responses written by different
	// workers never interleave.
	wmu sync.Mutex

	// lastResponse is when the last response was written, in Unix
	// nanoseconds: the connection is idle from then on.
	lastResponse atomic.Int64

	// held is the bytes that the calls in flight hold: their requests, and
	// their responses until written. With busy, it bounds what one
	// connection may take (WithMaxConnCalls, WithMaxConnBytes). At either
	// bound the reader stops reading; waiting is set while it waits, and
	// room wakes it when a call has been answered.
	held    atomic.Int64
	waiting atomic.Bool
	room    chan struct{}
	// werr is the error of the write that failed; nothing is written
	// after it. wmu protects it.
	werr error
}

// newConn returns the connection that serves nc.
func (s *Server) newConn(nc net.Conn, only map[string]bool) *conn {
	return &conn{link: s.newLink(only), nc: nc, room: make(chan struct{}, 1)}
}

// serveConn serves a connection that the accept loop has tracked, and
// releases its slot.
func (s *Server) serveConn(c *conn) {
	defer s.releaseSlot()
	// Closed before it is untracked: once Shutdown returns, every
	// connection is closed.
	defer s.trackConn(c, false)
	defer c.nc.Close()
	s.log.Debug("rpc: connection opened", "conn", c.id, "remote", c.nc.RemoteAddr().String())
	c.serve()
	s.log.Debug("rpc: connection closed", "conn", c.id)
}

// wakeIfIdle makes a connection that waits for a request give up at once.
func (c *conn) wakeIfIdle() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.idle {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// serve reads requests until the connection ends, and hands each to the
// worker pool; the workers write the responses as they finish, in any order.
// This is V2's long connection. serve returns once every response owed has
// been written, and the caller closes the connection.
func (c *conn) serve() {
	br := bufio.NewReader(c.nc)
	defer c.inflight.Wait()
	// Before the wait: a reader that stops because its peer has gone
	// ends the calls still running for it.
	defer c.cancel()
	for {
		if !c.waitForRoom() {
			return
		}
		f, ok := c.readRequest(br)
		if !ok {
			if c.srv.shuttingDown() && c.answeredLately() {
				// A request sent after the last one read would make a
				// plain close reset the connection, and throw away the
				// responses still on their way: close gently.
				c.lingerClose()
			}
			return
		}
		if c.srv.shuttingDown() {
			c.refuse(f.Seq)
			// Requests sent after this one are never read: close
			// gently, once the responses owed are out, so that they are
			// not lost to the reset that unread input causes.
			c.inflight.Wait()
			c.lingerClose()
			return
		}
		size := int64(codec.HeaderLen + len(f.Meta) + len(f.Body))
		if !c.takeWorker() {
			return
		}
		c.srv.workerTaken()
		c.inflight.Add(1)
		c.busy.Add(1)
		c.held.Add(size)
		err := c.srv.workers.Submit(func() {
			defer c.inflight.Done()
			defer c.finished(size)
			rm, reply := c.handle(f.Seq, f.Meta, f.Body)
			c.writeResponse(f.Seq, rm, reply)
		})
		if err != nil {
			// The pool is released only when the server stops.
			c.srv.releaseWorker()
			c.held.Add(-size)
			c.busy.Add(-1)
			c.inflight.Done()
			c.refuse(f.Seq)
			c.inflight.Wait()
			c.lingerClose()
			return
		}
		if br.Buffered() == 0 {
			// The next read would wait for the client: let the worker
			// just handed the request run first, on this thread. Its
			// response then leaves before this goroutine reads again,
			// rather than while it does, on the same socket from another
			// thread. With more requests already buffered, the reader
			// hands them out first.
			runtime.Gosched()
		}
	}
}

// finished counts a response written, for a request of size bytes. It
// makes room for the reader if it waits for some. During a Shutdown, the
// last response owed wakes the reader, which kept reading only to refuse
// new requests.
func (c *conn) finished(size int64) {
	c.srv.releaseWorker()
	c.held.Add(-size)
	if c.busy.Add(-1) == 0 && c.srv.shuttingDown() {
		c.wakeIfIdle()
	}
	if c.waiting.Load() {
		select {
		case c.room <- struct{}{}:
		default:
		}
	}
}

// full reports whether the connection is at one of its bounds: as many
// calls in flight as it may have, or as many bytes held.
func (c *conn) full() bool {
	o := &c.srv.opts
	return (o.maxConnCalls > 0 && int(c.busy.Load()) >= o.maxConnCalls) ||
		(o.maxConnBytes > 0 && c.held.Load() >= int64(o.maxConnBytes))
}

// waitForRoom waits until the connection may take another request. Until
// then nothing is read from it: its requests wait in the socket, and TCP
// stops its client from sending more. It returns false if the connection
// is gone meanwhile.
func (c *conn) waitForRoom() bool {
	var tick *time.Ticker
	for c.full() {
		c.waiting.Store(true)
		// Checked again once waiting is set: a call that ended before
		// finished could see it has made its room known.
		if c.full() {
			if tick == nil {
				tick = time.NewTicker(peerCheck)
				defer tick.Stop()
			}
			select {
			case <-c.room:
			case <-tick.C:
				c.checkPeer()
			case <-c.ctx.Done():
				c.waiting.Store(false)
				return false
			}
		}
		c.waiting.Store(false)
	}
	return true
}

// takeWorker waits for a worker to be free for the request just read, as
// the pool would, but watching the connection meanwhile. It returns false
// if the connection is gone first.
func (c *conn) takeWorker() bool {
	free := c.srv.freeWorkers
	if free == nil {
		return true // no bound on the workers
	}
	select {
	case free <- struct{}{}:
		return true
	default:
	}
	tick := time.NewTicker(peerCheck)
	defer tick.Stop()
	for {
		select {
		case free <- struct{}{}:
			return true
		case <-tick.C:
			c.checkPeer()
		case <-c.ctx.Done():
			return false
		}
	}
}

// checkPeer ends the connection's calls if its peer has closed it. A
// reader that waits reads nothing, so it cannot see the close behind the
// requests it has not read: it asks the kernel now and then (peerGone).
func (c *conn) checkPeer() {
	if peerGone(c.nc) {
		c.srv.log.Debug("rpc: the peer closed a connection that waits", "conn", c.id)
		c.cancel()
	}
}

// peerCheck is how often a reader that waits asks whether its peer has
// closed the connection.
const peerCheck = 100 * time.Millisecond

// refuse answers a request that will not run because the server is
// stopping: code 14, which tells the client it is safe to retry.
func (c *conn) refuse(seq uint32) {
	c.writeResponse(seq, drainMeta(), nil)
}

// readRequest waits up to the idle timeout for a request's first byte, then
// reads the whole frame within the frame timeout. It answers a frame it
// refuses, when the header is sound enough to say why. ok is false when
// the connection must be closed.
func (c *conn) readRequest(br *bufio.Reader) (f codec.Frame, ok bool) {
	s := c.srv
	// A frame already whole in the buffer, sent right behind the last
	// one, is taken without waiting: no deadline to set, no system call.
	if f, ok := bufferedFrame(br, s.opts.maxFrameSize); ok {
		return f, true
	}
	c.dmu.Lock()
	c.idle = true
	c.nc.SetReadDeadline(deadline(s.opts.idleTimeout))
	c.dmu.Unlock()
	if s.shuttingDown() && c.busy.Load() == 0 && br.Buffered() == 0 && !inputWaiting(c.nc) {
		// Shutdown, or the last response owed, may have woken this
		// connection before the deadline above replaced its wake-up call.
		// (Bytes already in br are the start of a request: it is read,
		// and answered 14.)
		return f, false
	}
	for {
		_, err := br.Peek(1)
		if err == nil {
			break
		}
		if isTimeout(err) && c.keepWaiting() {
			continue
		}
		if isTimeout(err) && s.shuttingDown() && inputWaiting(c.nc) {
			// Shutdown woke the connection just as its request arrived:
			// read the request, to answer it 14 rather than drop it.
			c.nc.SetReadDeadline(deadline(s.opts.frameTimeout))
			continue
		}
		s.log.Debug("rpc: no request", "conn", c.id, "err", err)
		return f, false
	}
	// The read that brought the first byte usually brought the whole frame.
	if f, ok := bufferedFrame(br, s.opts.maxFrameSize); ok {
		return f, true
	}
	// From the first byte on, the whole frame must arrive within the frame
	// timeout, however slowly its bytes are dripped.
	c.dmu.Lock()
	c.idle = false
	c.nc.SetReadDeadline(deadline(s.opts.frameTimeout))
	c.dmu.Unlock()

	h, err := codec.ReadHeader(br)
	if err != nil {
		// A wrong magic means this is not our protocol: nothing read can be
		// trusted, so there is no answer.
		s.log.Debug("rpc: bad header", "conn", c.id, "err", err)
		return f, false
	}
	if err := h.Check(codec.TypeRequest, s.opts.maxFrameSize); err != nil {
		// The header is sound enough to name a sequence id: say why, then
		// close, since the rest of the stream cannot be framed.
		s.log.Debug("rpc: refused frame", "conn", c.id, "seq", h.Seq, "err", err)
		c.writeResponse(h.Seq, closeMeta(refusalCode(err), err.Error()), nil)
		// Half-closing ends what this side sends: the responses still
		// owed to requests read before this one go first.
		c.inflight.Wait()
		c.lingerClose()
		return f, false
	}
	metaBytes, body, err := codec.ReadPayload(br, h)
	if err != nil {
		s.log.Debug("rpc: truncated frame", "conn", c.id, "seq", h.Seq, "err", err)
		return f, false
	}
	return codec.Frame{Header: h, Meta: metaBytes, Body: body}, true
}

// bufferedFrame takes a request frame from br if br holds all of it. A
// frame that is not whole yet, or whose header is refused, is left for the
// careful path of readRequest.
func bufferedFrame(br *bufio.Reader, maxFrame int) (codec.Frame, bool) {
	b, err := br.Peek(br.Buffered())
	if err != nil || len(b) < codec.HeaderLen {
		return codec.Frame{}, false
	}
	h, err := codec.DecodeHeader(b)
	if err != nil || h.Check(codec.TypeRequest, maxFrame) != nil {
		return codec.Frame{}, false
	}
	if len(b) < codec.HeaderLen+int(h.MetaLen)+int(h.BodyLen) {
		return codec.Frame{}, false
	}
	br.Discard(codec.HeaderLen)
	metaBytes, body, err := codec.ReadPayload(br, h)
	if err != nil {
		return codec.Frame{}, false
	}
	return codec.Frame{Header: h, Meta: metaBytes, Body: body}, true
}

// keepWaiting is called when the wait for a request times out or is woken.
// It reports whether the connection is not idle after all, and if so sets
// the next deadline. A connection with a response still owed is not idle,
// also during a Shutdown, so that a request arriving meanwhile is answered
// 14 (the last response then wakes the reader). Nor is one whose last
// response went out less than the idle timeout ago.
func (c *conn) keepWaiting() bool {
	s := c.srv
	if c.busy.Load() > 0 {
		c.nc.SetReadDeadline(deadline(s.opts.idleTimeout))
		// Checked again after the deadline is set, which may have replaced
		// the wake-up call of the last response.
		return !s.shuttingDown() || c.busy.Load() > 0
	}
	if s.shuttingDown() || s.opts.idleTimeout <= 0 {
		return false
	}
	rest := s.opts.idleTimeout - time.Since(time.Unix(0, c.lastResponse.Load()))
	if rest <= 0 {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(rest))
	// Checked again after the deadline is set, which may have replaced
	// Shutdown's wake-up call.
	return !s.shuttingDown()
}

// writeResponse writes one response frame under wmu, encoded whole into
// one buffer so that it goes out in one Write (more only when the write
// timeout passes with part of it written; see write).
func (c *conn) writeResponse(seq uint32, rm *meta.ResponseMeta, reply proto.Message) {
	s := c.srv
	bp := c.encodeResponse(seq, rm, reply)
	if bp == nil {
		return
	}
	defer codec.PutBuffer(bp)
	buf := *bp
	// Held until written: a response waiting for the socket counts
	// against the connection's bytes.
	n := int64(len(buf))
	c.held.Add(n)
	defer c.held.Add(-n)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return // the connection has failed: nobody would read this
	}
	if err := c.write(buf); err != nil {
		// A peer that takes nothing for the write timeout, or a broken
		// connection: close it. The reader stops, the calls still running
		// are cancelled, and the responses waiting for wmu are dropped
		// rather than each waiting out the timeout in turn.
		c.werr = err
		s.log.Debug("rpc: write failed; closing the connection", "conn", c.id, "seq", seq, "err", err)
		c.nc.Close()
		c.cancel()
		return
	}
	c.lastResponse.Store(time.Now().UnixNano())
}

// write writes buf whole. The write timeout bounds each wait for the peer
// to take bytes, not the whole write: a peer that reads, however slowly,
// gets its response, and one that takes nothing for the write timeout is
// cut off.
func (c *conn) write(buf []byte) error {
	for {
		c.nc.SetWriteDeadline(deadline(c.srv.opts.writeTimeout))
		n, err := c.nc.Write(buf)
		if err == nil || n == 0 || !isTimeout(err) {
			return err
		}
		buf = buf[n:]
	}
}

// answeredLately reports whether the connection wrote a response less
// than lingerFor ago: one that may still be on its way to the client.
func (c *conn) answeredLately() bool {
	return time.Since(time.Unix(0, c.lastResponse.Load())) < lingerFor
}

// lingerFor bounds how long a connection closing gently reads what its
// peer still sends.
const lingerFor = 500 * time.Millisecond

// lingerClose half-closes the connection and discards what the peer still
// sends, for a moment, before the caller closes it. Closing a socket with
// unread input makes the kernel send a reset instead of a FIN, and throw
// away whatever it has not yet sent: the responses just written can be
// lost. net/http lingers for the same reason.
func (c *conn) lingerClose() {
	if c.lingered {
		return
	}
	c.lingered = true
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerFor))
	io.CopyN(io.Discard, c.nc, 1<<20)
}
