package server

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/codec"
)

// link is what a call needs of the connection it came in on, whichever
// way the connection is served: the server, the connection's id for the
// log, the services served on its listener, and the context that the
// calls' contexts derive from.
type link struct {
	srv  *Server
	id   uint64
	only map[string]bool
	// ctx is the parent of the contexts of the calls read from the
	// connection; cancel ends it once the connection is gone (its peer
	// closed it, or a write failed), so that the handlers of calls whose
	// caller can no longer get an answer stop.
	ctx    context.Context
	cancel context.CancelFunc
}

// newLink returns the link of a new connection to the services in only
// (nil: all of them).
func (s *Server) newLink(only map[string]bool) link {
	l := link{srv: s, id: s.connID.Add(1), only: only}
	l.ctx, l.cancel = context.WithCancel(s.baseCtx)
	return l
}

// handle decodes a request's meta, finds its method and runs it. It returns
// the response meta and, on success, the reply.
func (l *link) handle(seq uint32, metaBytes, body []byte) (*meta.ResponseMeta, proto.Message) {
	s := l.srv
	s.calls.Add(1)
	req, err := codec.DecodeRequestMeta(metaBytes)
	if err != nil {
		return errorMeta(status.Errorf(codes.InvalidArgument, "rpc: cannot decode the request meta: %v", err)), nil
	}
	svc, md, err := s.lookup(l.only, req.Service, req.Method)
	if err != nil {
		s.log.Debug("rpc: unknown method", "conn", l.id, "seq", seq, "service", req.Service, "method", req.Method)
		return errorMeta(err), nil
	}

	ctx := l.ctx
	if len(req.Metadata) > 0 {
		ctx = rpc.WithIncomingMetadata(ctx, req.Metadata)
	}
	timeout := codec.Timeout(req.TimeoutMs)
	if m := s.opts.maxTimeout; m > 0 && (timeout <= 0 || timeout > m) {
		timeout = m
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	// The metadata the handler sets for its response (rpc.SetTrailer).
	trailer := new(rpc.ServerTrailer)
	ctx = rpc.WithServerTrailer(ctx, trailer)

	reply, err := s.invoke(ctx, svc, md, body)
	trailerMD := trailer.Take()
	if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The caller has given up: whatever the handler produced after the
		// deadline is dropped, and the one response says so.
		return errorMeta(status.Errorf(codes.DeadlineExceeded, "rpc: deadline of %v passed in the handler", timeout)), nil
	}
	if err != nil {
		s.log.Debug("rpc: handler error", "conn", l.id, "seq", seq, "service", req.Service, "method", req.Method, "err", err)
		rm := errorMeta(err)
		rm.Metadata = trailerMD
		return rm, nil
	}
	return &meta.ResponseMeta{Metadata: trailerMD}, reply
}

// errorMeta turns an error into response meta: its code if it carries one,
// else Unknown.
func errorMeta(err error) *meta.ResponseMeta {
	se, _ := status.FromError(err)
	return &meta.ResponseMeta{Code: uint32(se.Code()), Message: se.Message()}
}

// encodeResponse encodes one response frame into a buffer from
// codec.GetBuffer, for the caller to give back with codec.PutBuffer once
// written. A reply too big for the frame limit is replaced by a code 8
// error. It returns nil if not even that can be encoded.
func (l *link) encodeResponse(seq uint32, rm *meta.ResponseMeta, reply proto.Message) *[]byte {
	s := l.srv
	bp := codec.GetBuffer()
	buf, err := codec.AppendFrame((*bp)[:0], codec.TypeResponse, seq, rm, reply, s.opts.maxFrameSize)
	if err != nil {
		s.log.Warn("rpc: cannot encode response", "conn", l.id, "seq", seq, "err", err)
		code := codes.Internal
		if errors.Is(err, codec.ErrFrameTooLarge) || errors.Is(err, codec.ErrMetaTooLarge) {
			code = codes.ResourceExhausted
		}
		fallback := &meta.ResponseMeta{Code: uint32(code), Message: "rpc: cannot send the response: " + err.Error()}
		if rpc.Closing(rm.Metadata) {
			// The connection still closes after this response: say so.
			fallback.Metadata = map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}
		}
		if buf, err = codec.AppendFrame(buf[:0], codec.TypeResponse, seq, fallback, nil, s.opts.maxFrameSize); err != nil {
			codec.PutBuffer(bp)
			return nil
		}
	}
	*bp = buf
	return bp
}

// closeMeta is the meta of a response after which the server closes the
// connection: it says so (rpc.ConnectionClose), so that the client sends
// nothing more on it.
func closeMeta(code codes.Code, msg string) *meta.ResponseMeta {
	return &meta.ResponseMeta{Code: uint32(code), Message: msg,
		Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}}
}

// drainMeta refuses a request that arrives while the server shuts down:
// code 14, the connection: close mark, and the not-run mark, which lets
// the client send it to another server at once.
func drainMeta() *meta.ResponseMeta {
	rm := closeMeta(codes.Unavailable, "rpc: server is shutting down; the request was not run")
	rm.Metadata[rpc.NotRunKey] = rpc.NotRunValue
	return rm
}

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
