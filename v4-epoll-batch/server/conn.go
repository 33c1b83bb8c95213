package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v4-epoll-batch/codec"
	"myrpc/v4-epoll-batch/poller"
)

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// refusalCode is the status code that answers a header that Check
// refused: 8 for a frame over the limits, 12 for a protocol version this
// server does not speak, 3 for a wrong frame type.
func refusalCode(err error) codes.Code {
	switch {
	case errors.Is(err, codec.ErrFrameTooLarge), errors.Is(err, codec.ErrMetaTooLarge):
		return codes.ResourceExhausted
	case errors.Is(err, codec.ErrBadVersion):
		return codes.Unimplemented
	}
	return codes.InvalidArgument
}

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

	// out, for a connection of the epoll engine, takes the responses in
	// place of nc.
	out *poller.Conn
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
	for {
		f, ok := c.readRequest(br)
		if !ok {
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
		c.inflight.Add(1)
		c.busy.Add(1)
		err := c.srv.workers.Submit(func() {
			defer c.inflight.Done()
			defer c.finished()
			rm, reply := c.handle(f.Seq, f.Meta, f.Body)
			c.writeResponse(f.Seq, rm, reply)
		})
		if errors.Is(err, ants.ErrPoolOverload) {
			// Every worker is busy: refused unrun, as the reactor does.
			c.busy.Add(-1)
			c.inflight.Done()
			c.writeResponse(f.Seq, &meta.ResponseMeta{
				Code:    uint32(codes.Unavailable),
				Message: "rpc: server busy; the request was not run",
			}, nil)
			continue
		}
		if err != nil {
			// The pool is released only when the server stops.
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

// finished counts a response written. During a Shutdown, the last one
// owed wakes the reader, which kept reading only to refuse new requests.
func (c *conn) finished() {
	if c.busy.Add(-1) == 0 && c.srv.shuttingDown() {
		c.wakeIfIdle()
	}
}

// refuse answers a request that will not run because the server is
// stopping: code 14, which tells the client it is safe to retry.
func (c *conn) refuse(seq uint32) {
	c.writeResponse(seq, closeMeta(codes.Unavailable, "rpc: server is shutting down; the request was not run"), nil)
}

// closeMeta is the meta of a response after which the server closes the
// connection: it says so (rpc.ConnectionClose), so that the client sends
// nothing more on it.
func closeMeta(code codes.Code, msg string) *meta.ResponseMeta {
	return &meta.ResponseMeta{Code: uint32(code), Message: msg,
		Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}}
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
	bp := codec.GetBuffer()
	buf, err := codec.AppendFrame((*bp)[:0], codec.TypeResponse, seq, rm, reply, s.opts.maxFrameSize)
	if err != nil {
		s.log.Warn("rpc: cannot encode response", "conn", c.id, "seq", seq, "err", err)
		code := codes.Internal
		if errors.Is(err, codec.ErrFrameTooLarge) || errors.Is(err, codec.ErrMetaTooLarge) {
			code = codes.ResourceExhausted
		}
		rm = &meta.ResponseMeta{Code: uint32(code), Message: "rpc: cannot send the response: " + err.Error(), Metadata: rm.Metadata}
		if buf, err = codec.AppendFrame(buf[:0], codec.TypeResponse, seq, rm, nil, s.opts.maxFrameSize); err != nil {
			codec.PutBuffer(bp)
			return
		}
	}
	if c.out != nil {
		// Queued for the connection's writev, with the other responses
		// ready for it; the buffer comes back to the pool once written.
		if err := c.out.Send(buf); err != nil {
			s.log.Debug("rpc: write failed", "conn", c.id, "seq", seq, "err", err)
		}
		return
	}
	*bp = buf
	defer codec.PutBuffer(bp)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(deadline(s.opts.writeTimeout))
	if _, err := c.nc.Write(buf); err != nil {
		s.log.Debug("rpc: write failed", "conn", c.id, "seq", seq, "err", err)
	}
	c.lastResponse.Store(time.Now().UnixNano())
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
