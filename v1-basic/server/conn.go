package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
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

// conn is one accepted connection.
type conn struct {
	srv  *Server
	nc   net.Conn
	id   uint64
	only map[string]bool
	// idle is true while the connection waits for a request's first byte;
	// Shutdown wakes the connections it finds idle. dmu makes reading idle
	// and moving the read deadline one step, so that a wake-up call cannot
	// land between a request's first byte and its frame deadline.
	dmu  sync.Mutex
	idle bool
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
	rm, reply := c.handle(f.Seq, f.Meta, f.Body)
	c.writeResponse(f.Seq, rm, reply)
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
		code := codes.InvalidArgument
		switch {
		case errors.Is(err, codec.ErrFrameTooLarge), errors.Is(err, codec.ErrMetaTooLarge):
			code = codes.ResourceExhausted
		case errors.Is(err, codec.ErrBadVersion):
			code = codes.Unimplemented
		}
		s.log.Debug("rpc: refused frame", "conn", c.id, "seq", h.Seq, "err", err)
		c.writeResponse(h.Seq, &meta.ResponseMeta{Code: uint32(code), Message: err.Error()}, nil)
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

// handle decodes a request's meta, finds its method and runs it. It returns
// the response meta and, on success, the reply.
func (c *conn) handle(seq uint32, metaBytes, body []byte) (*meta.ResponseMeta, proto.Message) {
	s := c.srv
	req, err := codec.DecodeRequestMeta(metaBytes)
	if err != nil {
		return errorMeta(status.Errorf(codes.InvalidArgument, "rpc: cannot decode the request meta: %v", err)), nil
	}
	svc, md, err := s.lookup(c.only, req.Service, req.Method)
	if err != nil {
		s.log.Debug("rpc: unknown method", "conn", c.id, "seq", seq, "service", req.Service, "method", req.Method)
		return errorMeta(err), nil
	}

	ctx := s.baseCtx
	if len(req.Metadata) > 0 {
		ctx = rpc.WithIncomingMetadata(ctx, req.Metadata)
	}
	timeout := codec.Timeout(req.TimeoutMs)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	reply, err := s.invoke(ctx, svc, md, body)
	if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The caller has given up: whatever the handler produced after the
		// deadline is dropped, and the one response says so.
		return errorMeta(status.Errorf(codes.DeadlineExceeded, "rpc: deadline of %v passed in the handler", timeout)), nil
	}
	if err != nil {
		s.log.Debug("rpc: handler error", "conn", c.id, "seq", seq, "service", req.Service, "method", req.Method, "err", err)
		return errorMeta(err), nil
	}
	return &meta.ResponseMeta{}, reply
}

// errorMeta turns an error into response meta: its code if it carries one,
// else Unknown.
func errorMeta(err error) *meta.ResponseMeta {
	se, _ := status.FromError(err)
	return &meta.ResponseMeta{Code: uint32(se.Code()), Message: se.Message()}
}

// writeResponse writes one response frame, in one write. A reply too big for
// the frame limit is replaced by a code 8 error.
func (c *conn) writeResponse(seq uint32, rm *meta.ResponseMeta, reply proto.Message) {
	s := c.srv
	// Every response says that the connection closes after it (one request
	// per connection), so that a client that keeps connections, of a later
	// stage, sends nothing more on it.
	rm.Metadata = map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}
	bp := codec.GetBuffer()
	defer codec.PutBuffer(bp)
	buf, err := codec.AppendFrame((*bp)[:0], codec.TypeResponse, seq, rm, reply, s.opts.maxFrameSize)
	if err != nil {
		s.log.Warn("rpc: cannot encode response", "conn", c.id, "seq", seq, "err", err)
		code := codes.Internal
		if errors.Is(err, codec.ErrFrameTooLarge) || errors.Is(err, codec.ErrMetaTooLarge) {
			code = codes.ResourceExhausted
		}
		rm = &meta.ResponseMeta{Code: uint32(code), Message: "rpc: cannot send the response: " + err.Error(), Metadata: rm.Metadata}
		if buf, err = codec.AppendFrame(buf[:0], codec.TypeResponse, seq, rm, nil, s.opts.maxFrameSize); err != nil {
			return
		}
	}
	*bp = buf
	c.nc.SetWriteDeadline(deadline(s.opts.writeTimeout))
	if _, err := c.nc.Write(buf); err != nil {
		s.log.Debug("rpc: write failed", "conn", c.id, "seq", seq, "err", err)
	}
}

// lingerClose half-closes the connection and discards what the peer still
// sends, for a moment, before the caller closes it. Closing a socket with
// unread input makes the kernel send a reset instead of a FIN, and throw
// away whatever it has not yet sent: the responses just written can be
// lost. net/http lingers for the same reason.
func (c *conn) lingerClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c.nc, 1<<20)
}
