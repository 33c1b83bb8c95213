package server

import (
	"errors"
	"net"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/poller"
)

// errStop makes the engine close a connection once its responses are out.
var errStop = errors.New("rpc: closing the connection")

// serveReactor serves lis with the epoll engine: reactors read every
// connection without a goroutine each, and the worker pool runs the
// handlers, as before.
func (s *Server) serveReactor(lis net.Listener, only map[string]bool) error {
	eng, err := poller.NewEngine(poller.Config{
		MaxConns:     s.opts.maxConns,
		IdleTimeout:  s.opts.idleTimeout,
		FrameTimeout: s.opts.frameTimeout,
		WriteTimeout: s.opts.writeTimeout,
		Release:      codec.ReleaseBuffer,
		Logger:       s.log,
		MaxConnCalls: s.opts.maxConnCalls,
		MaxConnBytes: s.opts.maxConnBytes,
	}, &reactor{s: s, only: only})
	if err != nil {
		lis.Close()
		return err
	}
	s.mu.Lock()
	if s.inShutdown {
		s.mu.Unlock()
		eng.Shutdown(s.baseCtx)
		lis.Close()
		return ErrServerClosed
	}
	s.engines = append(s.engines, eng)
	s.mu.Unlock()
	if err := eng.Serve(lis); !errors.Is(err, poller.ErrClosed) {
		return err
	}
	return ErrServerClosed
}

// reactor is the server's side of the engine: it cuts the frames out of
// what a connection has received and hands each request to the workers.
// It runs on a reactor goroutine, so it never blocks.
type reactor struct {
	s    *Server
	only map[string]bool
}

// rconn is a connection served by the engine. Its calls run on the
// workers, and their responses are queued on the engine's connection,
// which its loop writes.
type rconn struct {
	link
	pc *poller.Conn
}

// respond encodes a response and queues it for the connection's loop to
// write; the buffer goes back to the pool once written.
func (c *rconn) respond(seq uint32, rm *meta.ResponseMeta, reply proto.Message) {
	bp := c.encodeResponse(seq, rm, reply)
	if bp == nil {
		return
	}
	if err := c.pc.Send(*bp); err != nil {
		c.srv.log.Debug("rpc: connection closed before the response", "conn", c.id, "seq", seq, "err", err)
	}
}

func (r *reactor) OnOpen(pc *poller.Conn) {
	c := &rconn{link: r.s.newLink(r.only), pc: pc}
	pc.SetContext(c)
	r.s.log.Debug("rpc: connection opened", "conn", c.id, "remote", pc.RemoteAddr())
}

// OnPeerClosed ends the calls still running for a peer that has gone.
func (r *reactor) OnPeerClosed(pc *poller.Conn) {
	pc.Context().(*rconn).cancel()
}

func (r *reactor) OnClose(pc *poller.Conn) {
	c := pc.Context().(*rconn)
	c.cancel()
	r.s.log.Debug("rpc: connection closed", "conn", c.id)
}

func (r *reactor) OnRead(pc *poller.Conn, in []byte) (consumed, need int, err error) {
	s := r.s
	c := pc.Context().(*rconn)
	for {
		f, n, need, err := codec.CutFrame(in[consumed:], codec.TypeRequest, s.opts.maxFrameSize)
		if err != nil {
			if !errors.Is(err, codec.ErrBadMagic) {
				// The header is sound enough to name a sequence id: say
				// why, then close, since the rest cannot be framed.
				c.respond(f.Seq, closeMeta(refusalCode(err), err.Error()), nil)
			}
			return consumed, 0, err
		}
		if n == 0 {
			return consumed, need, nil // the rest of the frame is still on its way
		}
		consumed += n
		s.framesIn.Add(1)
		if s.shuttingDown() {
			c.respond(f.Seq, drainMeta(), nil)
			return consumed, 0, errStop
		}
		// The frame points into the engine's buffer, which the next read
		// reuses: the worker gets its own copy.
		payload := make([]byte, len(f.Meta)+len(f.Body))
		copy(payload, f.Meta)
		copy(payload[len(f.Meta):], f.Body)
		seq, metaBytes, body := f.Seq, payload[:len(f.Meta)], payload[len(f.Meta):]
		if !s.takeWorkerNow() {
			// Every worker is busy, and a reactor must not wait for one:
			// the request is refused unrun, which a client may retry.
			c.respond(seq, busyMeta(), nil)
			continue
		}
		s.workerTaken()
		pc.Hold(n)
		if err := s.workers.Submit(func() {
			defer s.releaseWorker()
			rm, reply := c.handle(seq, metaBytes, body)
			c.respond(seq, rm, reply)
			pc.Done(n)
		}); err != nil {
			// The pool is released only when the server stops.
			s.releaseWorker()
			c.respond(seq, drainMeta(), nil)
			pc.Done(n)
			return consumed, 0, errStop
		}
		if pc.Full() {
			// At the connection's bounds: the engine reads no more of it
			// until calls have been answered.
			return consumed, 0, nil
		}
	}
}
