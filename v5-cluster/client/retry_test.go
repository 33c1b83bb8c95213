package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

const ms = time.Millisecond

// TestBackoff: the delay doubles from Base and stops at Cap; zero fields
// take their defaults.
func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		p    RetryPolicy
		// want[i] is the delay before retry i+1.
		want []time.Duration
	}{
		{"defaults", RetryPolicy{}, []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second}},
		{"negative means default", RetryPolicy{Base: -1, Cap: -1}, []time.Duration{10 * ms, 20 * ms}},
		{"base and cap", RetryPolicy{Base: 100 * ms, Cap: 250 * ms}, []time.Duration{100 * ms, 200 * ms, 250 * ms, 250 * ms}},
		{"base only", RetryPolicy{Base: 300 * ms}, []time.Duration{300 * ms, 600 * ms, time.Second, time.Second}},
		{"cap only", RetryPolicy{Cap: 30 * ms}, []time.Duration{10 * ms, 20 * ms, 30 * ms}},
		{"base over cap", RetryPolicy{Base: 2 * time.Second, Cap: time.Second}, []time.Duration{time.Second, time.Second}},
		{"cap a power of two of base", RetryPolicy{Base: time.Millisecond, Cap: 8 * ms}, []time.Duration{ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.p.backoff(i + 1); got != want {
					t.Fatalf("backoff(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
	// Far-off retries neither overflow nor pass the cap.
	for _, n := range []int{64, 1000, math.MaxInt32} {
		p := RetryPolicy{Base: time.Nanosecond, Cap: time.Hour}
		if got := p.backoff(n); got != time.Hour {
			t.Fatalf("backoff(%d) = %v, want the cap", n, got)
		}
	}
}

// TestBackoffJitter: jitter spreads each delay uniformly within ±Jitter
// of it, and only that far, and Cap still bounds the result; Jitter is held
// to [0, 1].
func TestBackoffJitter(t *testing.T) {
	const samples = 4000
	tests := []struct {
		name   string
		jitter float64
		// spread is the jitter actually applied.
		spread float64
	}{
		{"none", 0, 0},
		{"negative means none", -0.5, 0},
		{"10%", 0.1, 0.1},
		{"20%", 0.2, 0.2},
		{"half", 0.5, 0.5},
		{"all", 1, 1},
		{"over 1 means 1", 3, 1},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 3, 20} {
			t.Run(fmt.Sprintf("%s/retry=%d", tt.name, n), func(t *testing.T) {
				p := RetryPolicy{Base: 100 * ms, Cap: 500 * ms, Jitter: tt.jitter}
				d := RetryPolicy{Base: p.Base, Cap: p.Cap}.backoff(n)
				lo := time.Duration(float64(d) * (1 - tt.spread))
				hi := min(time.Duration(float64(d)*(1+tt.spread)), p.Cap)
				clamped := float64(d)*(1+tt.spread/2) > float64(p.Cap)
				minSeen, maxSeen, sum := time.Duration(math.MaxInt64), time.Duration(0), 0.0
				for range samples {
					got := p.backoff(n)
					if got < lo || got > hi {
						t.Fatalf("backoff(%d) = %v, outside [%v, %v]", n, got, lo, hi)
					}
					minSeen, maxSeen = min(minSeen, got), max(maxSeen, got)
					sum += float64(got)
				}
				if tt.spread == 0 {
					if minSeen != d || maxSeen != d {
						t.Fatalf("delays from %v to %v without jitter, want %v", minSeen, maxSeen, d)
					}
					return
				}
				// Uniform over the range: the samples reach into both outer
				// quarters, and average d. (The mean's standard deviation is
				// spread*d/sqrt(3*samples), under 1% of d: 5% is far out.)
				if minSeen > d-time.Duration(float64(d)*tt.spread/2) || (!clamped && maxSeen < d+time.Duration(float64(d)*tt.spread/2)) {
					t.Fatalf("delays from %v to %v do not cover ±%v%% of %v", minSeen, maxSeen, tt.spread*100, d)
				}
				if clamped {
					if maxSeen != p.Cap {
						t.Fatalf("the largest delay is %v, want the cap %v", maxSeen, p.Cap)
					}
					return
				}
				if mean := sum / samples; math.Abs(mean-float64(d)) > 0.05*float64(d) {
					t.Fatalf("mean delay %v, want about %v", time.Duration(mean), d)
				}
			})
		}
	}
}

// TestRetryDelay checks retryDelay against the rules of RetryPolicy's doc
// comment: retry only when the request was never sent, when the server
// answered 14, or, for an idempotent call, after a code 14 or an attempt
// that timed out; never past the attempts, the call's end or its deadline.
func TestRetryDelay(t *testing.T) {
	const base = 50 * ms
	type ctxKind int
	const (
		live ctxKind = iota
		cancelled
		deadlineFar
		deadlineNear
	)
	serverSaid := func(c codes.Code) error { return status.New(c, "from the server") }
	broke := status.Errorf(codes.Unavailable, "rpc: connection broken: %w", io.EOF)
	attemptTimedOut := status.New(codes.DeadlineExceeded, "rpc: attempt 1 timed out")
	exhausted := status.New(codes.ResourceExhausted, "rpc: connections exhausted")
	tests := []struct {
		name       string
		attempts   int
		n          int
		err        error
		sent       bool
		fromServer bool
		idempotent bool
		ctx        ctxKind
		closed     bool
		want       bool
	}{
		// Never sent: always safe.
		{"not sent: dial failed", 3, 1, status.New(codes.Unavailable, "dial"), false, false, false, live, false, true},
		{"not sent: connections exhausted", 3, 1, exhausted, false, false, false, live, false, true},
		{"not sent, idempotent", 3, 2, broke, false, false, true, live, false, true},
		// The server said it did not run it.
		{"server 14", 3, 1, serverSaid(codes.Unavailable), true, true, false, live, false, true},
		{"server 14, idempotent", 3, 1, serverSaid(codes.Unavailable), true, true, true, live, false, true},
		// It may have run.
		{"connection broke after sending", 3, 1, broke, true, false, false, live, false, false},
		{"connection broke after sending, idempotent", 3, 1, broke, true, false, true, live, false, true},
		{"attempt timed out", 3, 1, attemptTimedOut, true, false, false, live, false, false},
		{"attempt timed out, idempotent", 3, 1, attemptTimedOut, true, false, true, live, false, true},
		// The server ran it, or refused it for good.
		{"server 4, idempotent", 3, 1, serverSaid(codes.DeadlineExceeded), true, true, true, live, false, false},
		{"server 5, idempotent", 3, 1, serverSaid(codes.NotFound), true, true, true, live, false, false},
		{"server 8", 3, 1, serverSaid(codes.ResourceExhausted), true, true, false, live, false, false},
		{"server 8, idempotent", 3, 1, serverSaid(codes.ResourceExhausted), true, true, true, live, false, false},
		{"server 13, idempotent", 3, 1, serverSaid(codes.Internal), true, true, true, live, false, false},
		{"server 2, idempotent", 3, 1, serverSaid(codes.Unknown), true, true, true, live, false, false},
		{"response does not decode, idempotent", 3, 1, status.New(codes.Internal, "bad meta"), true, false, true, live, false, false},
		// Bounds.
		{"last attempt", 3, 3, serverSaid(codes.Unavailable), true, true, false, live, false, false},
		{"past the last attempt", 3, 4, serverSaid(codes.Unavailable), true, true, false, live, false, false},
		{"no policy", 0, 1, serverSaid(codes.Unavailable), true, true, false, live, false, false},
		{"one attempt", 1, 1, status.New(codes.Unavailable, "dial"), false, false, true, live, false, false},
		{"second of three", 3, 2, serverSaid(codes.Unavailable), true, true, false, live, false, true},
		{"context cancelled", 3, 1, status.New(codes.Unavailable, "dial"), false, false, true, cancelled, false, false},
		{"deadline far", 3, 1, serverSaid(codes.Unavailable), true, true, false, deadlineFar, false, true},
		{"deadline closer than the delay", 3, 1, serverSaid(codes.Unavailable), true, true, false, deadlineNear, false, false},
		{"client closed", 3, 1, status.New(codes.Unavailable, "dial"), false, false, true, live, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch tt.ctx {
			case cancelled:
				cancel()
			case deadlineFar:
				ctx, cancel = context.WithTimeout(ctx, time.Minute)
				defer cancel()
			case deadlineNear:
				ctx, cancel = context.WithTimeout(ctx, base/2)
				defer cancel()
			}
			c := &Client{}
			c.closed.Store(tt.closed)
			cl := &call{c: c, ctx: ctx, opts: callOptions{retry: RetryPolicy{Attempts: tt.attempts, Base: base}, idempotent: tt.idempotent}}
			delay, ok := cl.retryDelay(tt.n, tt.err, tt.sent, tt.fromServer)
			if ok != tt.want {
				t.Fatalf("retryDelay(attempt %d, %v, sent %v, from server %v) retries: %v, want %v",
					tt.n, tt.err, tt.sent, tt.fromServer, ok, tt.want)
			}
			if ok && delay != cl.opts.retry.backoff(tt.n) {
				t.Fatalf("delay %v, want backoff(%d) = %v", delay, tt.n, cl.opts.retry.backoff(tt.n))
			}
		})
	}
}

// retryAfter is a fake server's answer: code 14 from the server for the
// first n requests, then success.
func retryAfter(n int64) func(io.Writer, received) bool {
	var seen atomic.Int64
	return func(w io.Writer, r received) bool {
		if seen.Add(1) <= n {
			w.Write(codeFrame(r.seq, codes.Unavailable, "not now: the request was not run"))
		} else {
			w.Write(okFrame(r.seq, "at last"))
		}
		return true
	}
}

// retryRecord is one call of an OnRetry hook.
type retryRecord struct {
	attempt int
	code    codes.Code
	delay   time.Duration
}

// recordRetries returns an OnRetry hook and what it saw.
func recordRetries() (func(int, error, time.Duration), func() []retryRecord) {
	var mu sync.Mutex
	var recs []retryRecord
	return func(attempt int, err error, delay time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			recs = append(recs, retryRecord{attempt, status.Code(err), delay})
		}, func() []retryRecord {
			mu.Lock()
			defer mu.Unlock()
			return append([]retryRecord(nil), recs...)
		}
}

// TestOnRetry: a call retried after code 14 from the server calls OnRetry
// with attempts 1 to n-1 and the backoff delays, and each retry waits its
// delay.
func TestOnRetry(t *testing.T) {
	const base = 20 * ms
	tests := []struct {
		name     string
		failures int64
		attempts int
		// wantCode is the call's result.
		wantCode codes.Code
		// wantRequests is how many requests the server sees.
		wantRequests int
	}{
		{"succeeds on the third attempt", 2, 4, codes.OK, 3},
		{"succeeds on the last attempt", 3, 4, codes.OK, 4},
		{"fails every attempt", 10, 4, codes.Unavailable, 4},
		{"no retries", 10, 1, codes.Unavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeServer(t, retryAfter(tt.failures))
			c := newTestClient(t, fake.addr)
			hook, seen := recordRetries()
			reply, err := hello(context.Background(), c, "x", Retry(RetryPolicy{Attempts: tt.attempts, Base: base}), OnRetry(hook))
			if tt.wantCode == codes.OK {
				if err != nil || reply.Msg != "at last" {
					t.Fatalf("call = %v, %v", reply, err)
				}
			} else {
				wantCode(t, err, tt.wantCode)
			}
			var reqs []received
			for range tt.wantRequests {
				reqs = append(reqs, fake.request(t))
			}
			fake.noMoreRequests(t)
			recs := seen()
			if len(recs) != tt.wantRequests-1 {
				t.Fatalf("OnRetry ran %d times, want %d: %+v", len(recs), tt.wantRequests-1, recs)
			}
			for i, r := range recs {
				want := retryRecord{attempt: i + 1, code: codes.Unavailable, delay: base << i}
				if r != want {
					t.Fatalf("OnRetry call %d = %+v, want %+v", i, r, want)
				}
				if gap := reqs[i+1].at.Sub(reqs[i].at); gap < r.delay {
					t.Fatalf("retry %d came %v after the attempt before it, before its delay %v", i+1, gap, r.delay)
				}
			}
		})
	}
}

// TestRetryPolicyOfClientAndCall: WithRetry is every call's policy unless
// the call sets its own.
func TestRetryPolicyOfClientAndCall(t *testing.T) {
	tests := []struct {
		name         string
		client       RetryPolicy
		call         *RetryPolicy
		wantRequests int
	}{
		{"client default", RetryPolicy{Attempts: 3, Base: ms}, nil, 3},
		{"call overrides", RetryPolicy{Attempts: 3, Base: ms}, &RetryPolicy{Attempts: 2, Base: ms}, 2},
		{"call turns retries off", RetryPolicy{Attempts: 3, Base: ms}, &RetryPolicy{}, 1},
		{"call turns retries on", RetryPolicy{}, &RetryPolicy{Attempts: 2, Base: ms}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeServer(t, retryAfter(100))
			c := newTestClient(t, fake.addr, WithRetry(tt.client))
			var opts []rpc.CallOption
			if tt.call != nil {
				opts = append(opts, Retry(*tt.call))
			}
			_, err := hello(context.Background(), c, "x", opts...)
			wantCode(t, err, codes.Unavailable)
			for range tt.wantRequests {
				fake.request(t)
			}
			fake.noMoreRequests(t)
		})
	}
}

// TestReliability21RetryOfCallThatMayHaveRun: a server that runs the
// request and then drops the connection: the call is tried again only if
// it is idempotent, and then on a new connection.
func TestReliability21RetryOfCallThatMayHaveRun(t *testing.T) {
	tests := []struct {
		name       string
		idempotent bool
		wantRuns   int64
	}{
		{"not idempotent: runs once", false, 1},
		{"idempotent: runs again", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			// The first connection runs the request and breaks; later ones
			// answer.
			fake := newFakeServer(t, func(w io.Writer, r received) bool {
				runs.Add(1)
				if r.conn == 0 {
					return false
				}
				w.Write(okFrame(r.seq, "ran"))
				return true
			})
			c := newTestClient(t, fake.addr)
			opts := []rpc.CallOption{Retry(RetryPolicy{Attempts: 3, Base: ms})}
			if tt.idempotent {
				opts = append(opts, Idempotent())
			}
			reply, err := hello(context.Background(), c, "x", opts...)
			if tt.idempotent {
				if err != nil || reply.Msg != "ran" {
					t.Fatalf("idempotent call = %v, %v", reply, err)
				}
				first, second := fake.request(t), fake.request(t)
				if first.conn != 0 || second.conn != 1 {
					t.Fatalf("attempts on connections %d and %d, want 0 then a new one", first.conn, second.conn)
				}
			} else {
				wantCode(t, err, codes.Unavailable)
				fake.request(t)
			}
			fake.noMoreRequests(t)
			if got := runs.Load(); got != tt.wantRuns {
				t.Fatalf("the server ran the request %d times, want %d", got, tt.wantRuns)
			}
		})
	}
}

// TestPerAttemptTimeout: an attempt that outlives PerAttempt ends; it may
// have run, so only an idempotent call tries again. Every attempt leaves
// the pending table.
func TestPerAttemptTimeout(t *testing.T) {
	const perAttempt = 100 * ms
	tests := []struct {
		name         string
		idempotent   bool
		wantRequests int
	}{
		{"not idempotent", false, 1},
		{"idempotent", true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeServer(t, nil) // never answers
			c := newTestClient(t, fake.addr)
			opts := []rpc.CallOption{Retry(RetryPolicy{Attempts: 3, Base: ms, PerAttempt: perAttempt})}
			if tt.idempotent {
				opts = append(opts, Idempotent())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := hello(ctx, c, "x", opts...)
			d := time.Since(start)
			wantCode(t, err, codes.DeadlineExceeded)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the call ended with its context (%v), not with its attempt's timeout", err)
			}
			if min := time.Duration(tt.wantRequests) * perAttempt; d < min || d > min+2*time.Second {
				t.Fatalf("the call took %v, want about %v", d, min)
			}
			for range tt.wantRequests {
				fake.request(t)
			}
			fake.noMoreRequests(t)
			if s := c.MuxStats(); s.Streams != 0 {
				t.Fatalf("MuxStats() = %+v after the call, want no streams", s)
			}
		})
	}
}

// TestRetryWithinDeadline: no retry starts that could not finish within
// the call's deadline; the call ends with its last attempt's error.
func TestRetryWithinDeadline(t *testing.T) {
	fake := newFakeServer(t, retryAfter(100))
	c := newTestClient(t, fake.addr)
	hook, seen := recordRetries()
	ctx, cancel := context.WithTimeout(context.Background(), 250*ms)
	defer cancel()
	start := time.Now()
	// Delays of 100 ms, then 200 ms: the second would end past the
	// deadline.
	_, err := hello(ctx, c, "x", Retry(RetryPolicy{Attempts: 10, Base: 100 * ms}), OnRetry(hook))
	d := time.Since(start)
	se := wantCode(t, err, codes.Unavailable)
	if se.Message() != "not now: the request was not run" {
		t.Fatalf("error %v, want the server's", err)
	}
	if d >= 250*ms {
		t.Fatalf("the call took %v, up to its deadline; it should end when no retry fits", d)
	}
	if recs := seen(); len(recs) != 1 {
		t.Fatalf("OnRetry ran %d times, want 1: %+v", len(recs), recs)
	}
	fake.request(t)
	fake.request(t)
	fake.noMoreRequests(t)
}
