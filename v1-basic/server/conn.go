package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v1-basic/codec"
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
}

// newConn returns the connection that serves nc.
func (s *Server) newConn(nc net.Conn, only map[string]bool) *conn {
	return &conn{link: s.newLink(only), nc: nc}
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

// serve answers one request and returns; the caller closes the
// connection. This is V1's short connection.
func (c *conn) serve() {
	f, ok := c.readRequest(bufio.NewReader(c.nc))
	if !ok {
		return
	}
	// A client that keeps its connections (a later stage's) may have sent
	// more requests behind this one before it read the response's
	// connection: close mark. They are never read; the lingering close
	// keeps them from turning the close into a reset that would destroy
	// the response on its way.
	defer c.lingerClose()
	if c.srv.shuttingDown() {
		c.writeResponse(f.Seq, &meta.ResponseMeta{
			Code:    uint32(codes.Unavailable),
			Message: "rpc: server is shutting down; the request was not run",
		}, nil)
		return
	}
	stop := c.watchPeer()
	rm, reply := c.handle(f.Seq, f.Meta, f.Body)
	stop()
	c.writeResponse(f.Seq, rm, reply)
}

// watchPeer reads the connection while its call runs, so that a peer that
// closes it (the end of the stream, or a reset) cancels the call's context
// and its handler stops: nobody is left to read the answer. A client of a
// later stage may have sent more requests behind the first; they are read
// and dropped, as lingerClose drops them. stop ends the watch and waits for
// it.
func (c *conn) watchPeer() (stop func()) {
	done := make(chan struct{})
	c.nc.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		if _, err := io.Copy(io.Discard, c.nc); !isTimeout(err) {
			c.srv.log.Debug("rpc: the peer closed the connection during its call", "conn", c.id, "err", err)
			c.cancel()
		}
	}()
	return func() {
		c.nc.SetReadDeadline(aLongTimeAgo)
		<-done
	}
}

// readRequest waits up to the idle timeout for a request's first byte, then
// reads the whole frame within the frame timeout. It answers a frame it
// refuses, when the header is sound enough to say why. ok is false when
// the connection must be closed.
func (c *conn) readRequest(br *bufio.Reader) (f codec.Frame, ok bool) {
	s := c.srv
	c.dmu.Lock()
	c.idle = true
	c.nc.SetReadDeadline(deadline(s.opts.idleTimeout))
	c.dmu.Unlock()
	if s.shuttingDown() && !inputWaiting(c.nc) {
		// Shutdown may have woken this connection before the deadline
		// above replaced its wake-up call.
		return f, false
	}
	for {
		_, err := br.Peek(1)
		if err == nil {
			break
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
		c.writeResponse(h.Seq, &meta.ResponseMeta{Code: uint32(refusalCode(err)), Message: err.Error()}, nil)
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

// writeResponse writes one response frame, encoded whole into one buffer
// so that it goes out in one Write (more only when the write timeout
// passes with part of it written; see write).
func (c *conn) writeResponse(seq uint32, rm *meta.ResponseMeta, reply proto.Message) {
	// Every response says that the connection closes after it (one request
	// per connection), so that a client that keeps connections, of a later
	// stage, sends nothing more on it.
	rm.Metadata = map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}
	bp := c.encodeResponse(seq, rm, reply)
	if bp == nil {
		return
	}
	defer codec.PutBuffer(bp)
	if err := c.write(*bp); err != nil {
		c.srv.log.Debug("rpc: write failed", "conn", c.id, "seq", seq, "err", err)
	}
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

// lingerFor bounds how long a connection closing gently reads what its
// peer still sends.
const lingerFor = 500 * time.Millisecond

// lingerClose half-closes the connection and discards what the peer still
// sends, for a moment, before the caller closes it. Closing a socket with
// unread input makes the kernel send a reset instead of a FIN, and throw
// away whatever it has not yet sent: the responses just written can be
// lost. net/http lingers for the same reason.
func (c *conn) lingerClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerFor))
	io.CopyN(io.Discard, c.nc, 1<<20)
}
