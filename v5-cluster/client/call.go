package client

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/async"
	"myrpc/v5-cluster/balancer"
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/mux"
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
	// own is set, before the first attempt, for a synchronous call
	// (Invoke): its first attempt runs on the caller's goroutine, and may
	// read its own response (mux.Conn.ReadOwn).
	own bool

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

	// trailer is the metadata of the latest attempt's response, kept for
	// the Trailer call option.
	trailer rpc.Metadata
	// notRead is the server that did not read the request, or whose
	// connection stopped writing before it, or that refused it as it
	// drained: its resending goes to another server if there is one.
	notRead *balancer.Endpoint
	// refusal is that draining server's answer (code 14, the request not
	// run), when it refused the request: with no other server to take it,
	// the refusal is the attempt's result, as it was before the
	// resending.
	refusal error
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

	// ep is the server the request went to, set with conn: the attempt
	// leaves it (Done) when its response, or its failure, has come, or it
	// was cancelled.
	ep *balancer.Endpoint
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
		cl.trailer = nil
	}
	att := &attempt{n: cl.attempts}
	cl.cur = att
	lastErr := cl.lastErr
	var avoid *balancer.Endpoint
	var refusal error
	if !counted {
		avoid, refusal = cl.notRead, cl.refusal
	}
	cl.mu.Unlock()
	if (att.n > 1 || !counted) && cl.c.closed.Load() {
		cl.end(lastErr) // a retry that Close cut short
		return
	}

	deadline, _ := cl.ctx.Deadline()
	frame := cl.frame
	if att.n > 1 || !counted {
		// An earlier sending may still be inside Send, which writes its
		// sequence id into bytes 4 to 8 of the frame, or its frame may wait
		// in a connection's queue: each sending gets its own frame, copied
		// around those bytes.
		frame = make([]byte, len(cl.frame))
		copy(frame[:4], cl.frame[:4])
		copy(frame[8:], cl.frame[8:])
	}
	// tried lists the servers whose dial failed, and dialErr is the
	// latest such error: the request goes to a server not tried yet, if
	// there is one. A request sent again avoids the server that did not
	// read it, unless no other is left.
	var tried []*balancer.Endpoint
	var dialErr error
	for picks := 0; ; {
		exclude := tried
		if avoid != nil {
			exclude = append(slices.Clip(tried), avoid)
		}
		ep, err := cl.c.lb.Pick(cl.ctx, exclude)
		if errors.Is(err, balancer.ErrAllTried) && avoid != nil {
			if refusal != nil {
				// Only the draining server is left: its refusal goes to
				// the retry policy, as any code 14.
				cl.failed(att, refusal, true, true)
				return
			}
			avoid = nil
			continue
		}
		if err != nil {
			if errors.Is(err, balancer.ErrAllTried) {
				err = dialErr
			} else {
				err = cl.c.groupError(cl.ctx, err)
			}
			cl.failed(att, err, false, false)
			return
		}
		conn, err := ep.Conns().Pick(cl.ctx)
		if err != nil {
			ep.Done()
			err = cl.c.groupError(cl.ctx, err)
			if status.Code(err) == codes.Unavailable {
				// The dial failed: the request was not sent, and another
				// server may take it.
				tried = append(tried, ep)
				dialErr = err
				continue
			}
			cl.failed(att, err, false, false)
			return
		}
		own := cl.own && counted && att.n == 1
		send := conn.Send
		if own {
			send = conn.SendOwn
		}
		seq, written, err := send(cl.ctx, frame, func(f codec.Frame, err error) { cl.response(att, ep, conn, f, err) })
		if err != nil {
			ep.Done()
			// A connection that broke before any byte left is no risk: the
			// server never saw the request. Try another connection, a few
			// times, whatever the retry policy.
			if !written && picks < 2 && cl.ctx.Err() == nil {
				picks++
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
			if ended && conn.Cancel(seq) { // the context ended while the frame was written
				ep.Done()
			}
			return
		}
		att.conn, att.seq, att.ep = conn, seq, ep
		if p := cl.opts.retry.PerAttempt; p > 0 && (deadline.IsZero() || time.Until(deadline) > p) {
			att.timer = time.AfterFunc(p, func() { cl.attemptTimedOut(att) })
		}
		cl.mu.Unlock()
		if own {
			// A synchronous call's first attempt runs on its caller's
			// goroutine, which would now only wait: alone on the
			// connection, it reads its response itself.
			conn.ReadOwn(seq)
		}
		return
	}
}

// response receives an attempt's response frame, or the error of the
// connection it was sent on. It runs on whoever reads the connection (its
// reader goroutine, or the call itself in ReadOwn), so it only
// decodes and hands over: callbacks and retries run elsewhere.
func (cl *call) response(att *attempt, ep *balancer.Endpoint, conn *mux.Conn, f codec.Frame, err error) {
	ep.Done()
	switch {
	case err == nil:
		ep.OK()
	case !errors.Is(err, mux.ErrNotRead) && !errors.Is(err, mux.ErrNotSent) && status.Code(err) == codes.Unavailable:
		// The connection failed. (A server that closes a connection
		// after marking it has not failed: it is draining. A request
		// never sent says nothing either: its connection broke for a
		// reason the calls written on it report, a mark or a failure. A
		// response over the limit, or a frame that does not decode,
		// breaks the connection too, but says nothing of the server's
		// health.)
		ep.Failed()
	}
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
	if errors.Is(err, mux.ErrNotRead) || errors.Is(err, mux.ErrNotSent) {
		// The server said it would read no more requests, and closed
		// the connection before it read this one, or the connection
		// stopped writing before this one: it never ran, and goes again
		// at once, whatever the retry policy.
		if cl.sendElsewhere(ep, err, false) {
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
	if cl.opts.trailer != nil {
		cl.mu.Lock()
		cl.trailer = trailerOf(rsp.Metadata)
		cl.mu.Unlock()
	}
	if rsp.Code != uint32(codes.OK) {
		err := status.New(codes.Code(rsp.Code), rsp.Message)
		if rpc.NotRun(rsp.Metadata) && cl.sendElsewhere(ep, err, true) {
			// A draining server refused the request, unrun: like a
			// request it never read, it goes to another server at once,
			// whatever the retry policy.
			return
		}
		cl.failed(att, err, true, true)
		return
	}
	if err := proto.Unmarshal(f.Body, cl.reply); err != nil {
		cl.end(status.Errorf(codes.Internal, "rpc: cannot decode the response body: %v", err))
		return
	}
	cl.end(nil)
}

// sendElsewhere sends the request again, as the same attempt, to a server
// other than ep, which did not run it: ep closed the connection without
// reading it, or refused it as it drained (refused; err is its answer).
// It reports false when the request has been sent again too often
// already, or the client is closing.
func (cl *call) sendElsewhere(ep *balancer.Endpoint, err error, refused bool) bool {
	cl.mu.Lock()
	again := cl.resent < maxResent
	cl.resent++
	cl.lastErr = err // what the call ends with if Close cuts the resending short
	cl.notRead, cl.refusal = ep, nil
	if refused {
		cl.refusal = err
	}
	cl.mu.Unlock()
	return again && cl.c.retries.Add(time.Now(), cl.resend)
}

// attemptTimedOut ends an attempt that outlived the policy's PerAttempt,
// unless its response is being delivered at this moment.
func (cl *call) attemptTimedOut(att *attempt) {
	cl.mu.Lock()
	if cl.ended || att.over {
		cl.mu.Unlock()
		return
	}
	conn, seq, ep := att.conn, att.seq, att.ep
	cl.mu.Unlock()
	if !conn.Cancel(seq) {
		return // the response won the race: response handles it
	}
	ep.Done()
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
		conn, seq, over, ep := att.conn, att.seq, att.over, att.ep
		cl.mu.Unlock()
		if conn != nil && !over && conn.Cancel(seq) {
			ep.Done()
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
	trailer := cl.trailer
	cl.mu.Unlock()
	stopCtx()
	cl.cancel()
	if p := cl.opts.trailer; p != nil {
		*p = trailer // before the caller can see the call end
	}
	cl.future.Complete(err)
	cl.c.calls.Done()
}

// trailerOf returns a response's metadata as its caller sees it: without
// the connection: close and not-run marks, which are the client's
// business (send nothing more on that connection; send the request
// elsewhere), not the caller's; nil if nothing else is left.
func trailerOf(md map[string]string) rpc.Metadata {
	_, closing := md[rpc.ConnectionKey]
	_, notRun := md[rpc.NotRunKey]
	if closing || notRun {
		rest := make(map[string]string, len(md))
		for k, v := range md {
			if k != rpc.ConnectionKey && k != rpc.NotRunKey {
				rest[k] = v
			}
		}
		md = rest
	}
	if len(md) == 0 {
		return nil
	}
	return md
}
