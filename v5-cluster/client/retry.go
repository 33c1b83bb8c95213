package client

import (
	"math/rand/v2"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// RetryPolicy says how often, and how far apart, a call is tried.
//
// A call is retried only when that cannot run it twice behind its caller's
// back: when the request was never sent, when the server answered code 14
// (a server sends 14 only for requests it did not run), or, when the caller
// marked the call Idempotent, after any code 14 or an attempt that timed
// out. Every attempt happens within the call's own deadline. Retries make a
// call at-least-once, never exactly-once: an idempotent call may run more
// than once.
type RetryPolicy struct {
	// Attempts is the most attempts a call makes, the first included; 1 or
	// less means no retries.
	Attempts int
	// Base is the delay before the first retry; each later one doubles it.
	// Default: 10 ms.
	Base time.Duration
	// Cap bounds every delay. Default: 1 s.
	Cap time.Duration
	// Jitter spreads each delay randomly by up to this fraction either
	// way, 0 to 1, so that calls that failed together do not retry together;
	// Cap still bounds the result. 0 means none.
	Jitter float64
	// PerAttempt bounds each attempt, within the call's deadline; an
	// attempt that times out may have run, so it is retried only for an
	// Idempotent call. 0 means no bound but the call's deadline.
	PerAttempt time.Duration
}

// backoff returns the delay before retry number n (1 for the first).
func (p RetryPolicy) backoff(n int) time.Duration {
	base, limit := p.Base, p.Cap
	if base <= 0 {
		base = 10 * time.Millisecond
	}
	if limit <= 0 {
		limit = time.Second
	}
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if j := min(max(p.Jitter, 0), 1); j > 0 {
		d = time.Duration(float64(d) * (1 + j*(2*rand.Float64()-1)))
	}
	return min(d, limit)
}

// retryDelay decides whether attempt n, which failed with err, may be
// tried again, and after how long.
func (cl *call) retryDelay(n int, err error, sent, fromServer bool) (time.Duration, bool) {
	p := cl.opts.retry
	if n >= p.Attempts || cl.ctx.Err() != nil || cl.c.closed.Load() {
		return 0, false
	}
	code := status.Code(err)
	safe := !sent || (fromServer && code == codes.Unavailable)
	if !safe && cl.opts.idempotent {
		safe = code == codes.Unavailable || (!fromServer && code == codes.DeadlineExceeded)
	}
	if !safe {
		return 0, false
	}
	d := p.backoff(n)
	if deadline, ok := cl.ctx.Deadline(); ok && time.Until(deadline) <= d {
		return 0, false // the retry could not finish in time
	}
	return d, true
}

// callOptions are the settings of one call.
type callOptions struct {
	retry      RetryPolicy
	idempotent bool
	onRetry    func(attempt int, err error, delay time.Duration)

	// trailer receives the response's metadata (rpc.Trailer).
	trailer *rpc.Metadata
}

// callOption is the client's rpc.CallOption.
type callOption func(*callOptions)

// IsCallOption marks callOption as an rpc.CallOption.
func (callOption) IsCallOption() {}

// Retry sets the retry policy of one call, in place of the client's
// (WithRetry).
func Retry(p RetryPolicy) rpc.CallOption {
	return callOption(func(o *callOptions) { o.retry = p })
}

// Idempotent marks a call as safe to run more than once, which allows
// retrying it after failures where it may have run.
func Idempotent() rpc.CallOption {
	return callOption(func(o *callOptions) { o.idempotent = true })
}

// OnRetry has f called before each retry of a call, with the number of
// the attempt that failed, its error, and the delay before the next.
func OnRetry(f func(attempt int, err error, delay time.Duration)) rpc.CallOption {
	return callOption(func(o *callOptions) { o.onRetry = f })
}

// callOptions applies opts over the client's defaults; options of other
// stages or packages are ignored.
func (c *Client) callOptions(opts []rpc.CallOption) callOptions {
	o := callOptions{retry: c.opts.retry}
	for _, opt := range opts {
		if f, ok := opt.(callOption); ok {
			f(&o)
		}
		if t, ok := opt.(rpc.TrailerCallOption); ok {
			o.trailer = t.TrailerAddr
		}
	}
	return o
}
