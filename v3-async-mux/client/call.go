package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/status"
	"myrpc/v3-async-mux/async"
	"myrpc/v3-async-mux/codec"
	"myrpc/v3-async-mux/mux"
)

// call is one call from start to end: one attempt, or several when a retry
// policy allows it. It ends exactly once, through end.
type call struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	method string
	frame  []byte
	reply  proto.Message
	opts   callOptions
	future *async.Future
	// stopCtx stops the function that ends the call when ctx ends; set
	// under mu.
	stopCtx func() bool

	// mu protects the fields below.
	mu    sync.Mutex
	ended bool
	// attempts counts the attempts started; cur is the latest.
	attempts int
	cur      *attempt
	// lastErr is the error of the latest attempt that failed.
	lastErr error
	// resent counts the times the request was sent again because a
	// server closed the connection without reading it.
	resent int
}

// attempt is one sending of the request.
type attempt struct {
	n    int
	conn *mux.Conn
	seq  uint32
	// timer ends the attempt after the policy's PerAttempt.
	timer *time.Timer
	// over is set once the attempt has a result: a response, an error, or
	// its own timeout. Guarded by call.mu.
	over bool
}

func newCall(c *Client, ctx context.Context, cancel context.CancelFunc, method string, frame []byte, reply proto.Message, opts callOptions) *call {
	cl := &call{c: c, ctx: ctx, cancel: cancel, method: method, frame: frame, reply: reply, opts: opts, future: async.NewFuture()}
	// Under mu: a context that ends at once runs ctxDone on a goroutine of
	// its own, and its end must see stopCtx set.
	cl.mu.Lock()
	cl.stopCtx = context.AfterFunc(ctx, cl.ctxDone)
	cl.mu.Unlock()
	return cl
}

// maxResent bounds how often one call's request is sent again because a
// server closed the connection without reading it.
const maxResent = 3

// attempt starts an attempt: the first, or a retry the policy allows.
func (cl *call) attempt() { cl.send(true) }

// resend sends the request again, on another connection, after a server
// closed the connection without reading it (mux.ErrNotRead). The request
// never ran, so this needs no retry policy and is no new attempt: it is
// the same attempt, on a connection that will take it.
func (cl *call) resend() { cl.send(false) }

// send sends the request on a connection of the group, as a new attempt
// when counted is true. The response, or the connection's failure, comes
// back through response.
func (cl *call) send(counted bool) {
	cl.mu.Lock()
	if cl.ended {
		cl.mu.Unlock()
		return
	}
	if counted {
		cl.attempts++
	}
	att := &attempt{n: cl.attempts}
	cl.cur = att
	lastErr := cl.lastErr
	cl.mu.Unlock()
	if (att.n > 1 || !counted) && cl.c.closed.Load() {
		cl.end(lastErr) // a retry that Close cut short
		return
	}

	deadline, _ := cl.ctx.Deadline()
	frame := cl.frame
	if att.n > 1 || !counted {
		// An earlier sending may still be inside Send, which writes its
		// sequence id into bytes 4 to 8 of the frame: each sending gets
		// its own frame, copied around those bytes.
		frame = make([]byte, len(cl.frame))
		copy(frame[:4], cl.frame[:4])
		copy(frame[8:], cl.frame[8:])
	}
	for picks := 0; ; picks++ {
		conn, err := cl.c.conns.Pick(cl.ctx)
		if err != nil {
			cl.failed(att, cl.c.groupError(cl.ctx, err), false, false)
			return
		}
		seq, written, err := conn.Send(cl.ctx, frame, func(f codec.Frame, err error) { cl.response(att, conn, f, err) })
		if err != nil {
			// A connection that broke before any byte left is no risk: the
			// server never saw the request. Try another connection, a few
			// times, whatever the retry policy.
			if !written && picks < 2 && cl.ctx.Err() == nil {
				continue
			}
			if errors.Is(err, mux.ErrStreamsExhausted) {
				err = status.Errorf(codes.ResourceExhausted, "%w", err)
			}
			cl.failed(att, err, written, false)
			return
		}
		cl.mu.Lock()
		if cl.ended || att.over {
			ended := cl.ended && !att.over
			cl.mu.Unlock()
			if ended {
				conn.Cancel(seq) // the context ended while the frame was written
			}
			return
		}
		att.conn, att.seq = conn, seq
		if p := cl.opts.retry.PerAttempt; p > 0 && (deadline.IsZero() || time.Until(deadline) > p) {
			att.timer = time.AfterFunc(p, func() { cl.attemptTimedOut(att) })
		}
		cl.mu.Unlock()
		return
	}
}

// response receives an attempt's response frame, or the error of the
// connection it was sent on. It runs on the connection's reader, so it only
// decodes and hands over: callbacks and retries run elsewhere.
func (cl *call) response(att *attempt, conn *mux.Conn, f codec.Frame, err error) {
	cl.mu.Lock()
	if cl.ended || att.over {
		cl.mu.Unlock()
		return
	}
	att.over = true
	if att.timer != nil {
		att.timer.Stop()
	}
	cl.mu.Unlock()
	if errors.Is(err, mux.ErrNotRead) {
		// The server said it would read no more requests, and closed
		// the connection before it read this one: it never ran, and goes
		// again at once, whatever the retry policy.
		cl.mu.Lock()
		again := cl.resent < maxResent
		cl.resent++
		cl.lastErr = err // what the call ends with if Close cuts the resending short
		cl.mu.Unlock()
		if again && cl.c.retries.Add(time.Now(), cl.resend) {
			return
		}
		cl.failed(att, err, false, false)
		return
	}
	if err != nil {
		// The connection broke after the request was sent: it may have run.
		cl.failed(att, err, true, false)
		return
	}
	rsp, err := codec.DecodeResponseMeta(f.Meta)
	if err != nil {
		cl.end(status.Errorf(codes.Internal, "rpc: cannot decode the response meta: %v", err))
		return
	}
	if rsp.Code != uint32(codes.OK) {
		cl.failed(att, status.New(codes.Code(rsp.Code), rsp.Message), true, true)
		return
	}
	if err := proto.Unmarshal(f.Body, cl.reply); err != nil {
		cl.end(status.Errorf(codes.Internal, "rpc: cannot decode the response body: %v", err))
		return
	}
	cl.end(nil)
}

// attemptTimedOut ends an attempt that outlived the policy's PerAttempt,
// unless its response is being delivered at this moment.
func (cl *call) attemptTimedOut(att *attempt) {
	cl.mu.Lock()
	if cl.ended || att.over {
		cl.mu.Unlock()
		return
	}
	conn, seq := att.conn, att.seq
	cl.mu.Unlock()
	if !conn.Cancel(seq) {
		return // the response won the race: response handles it
	}
	cl.mu.Lock()
	att.over = true
	cl.mu.Unlock()
	cl.failed(att, status.Errorf(codes.DeadlineExceeded, "rpc: attempt %d timed out after %v", att.n, cl.opts.retry.PerAttempt), true, false)
}

// failed ends an attempt with err: it schedules the next attempt if the
// retry policy allows it, and ends the call otherwise. sent tells whether
// the request may have reached the server; fromServer, whether err is the
// server's answer.
func (cl *call) failed(att *attempt, err error, sent, fromServer bool) {
	cl.mu.Lock()
	cl.lastErr = err
	cl.mu.Unlock()
	delay, ok := cl.retryDelay(att.n, err, sent, fromServer)
	if !ok {
		cl.end(err)
		return
	}
	if f := cl.opts.onRetry; f != nil {
		f(att.n, err, delay)
	}
	cl.c.log.Debug("rpc: retrying", "method", cl.method, "attempt", att.n, "delay", delay, "err", err)
	if !cl.c.retries.Add(time.Now().Add(delay), cl.attempt) {
		cl.end(err) // the client is closing
	}
}

// ctxDone ends the call when its context ends, and takes its request out of
// the connection's pending table: a response that still comes is dropped.
func (cl *call) ctxDone() {
	cl.mu.Lock()
	att := cl.cur
	cl.mu.Unlock()
	if att != nil {
		cl.mu.Lock()
		conn, seq, over := att.conn, att.seq, att.over
		cl.mu.Unlock()
		if conn != nil && !over {
			conn.Cancel(seq)
		}
	}
	cl.end(contextError(cl.ctx.Err()))
}

// end ends the call, once.
func (cl *call) end(err error) {
	cl.mu.Lock()
	if cl.ended {
		cl.mu.Unlock()
		return
	}
	cl.ended = true
	if att := cl.cur; att != nil && att.timer != nil {
		att.timer.Stop()
	}
	stopCtx := cl.stopCtx
	cl.mu.Unlock()
	stopCtx()
	cl.cancel()
	cl.future.Complete(err)
	cl.c.calls.Done()
}
