// Package soak is the project's chaos test of a stage: 64 callers with
// deadlines call a bench server, in its own process, through a fault proxy
// (package faultproxy) that resets, half-closes, stalls and fragments
// their connections at random times, while the server is killed with
// SIGKILL or stopped with SIGTERM and restarted on the same port, and some
// calls ask the server to wait (Echo's delay_ms) or call a handler that
// panics (package faultsvc). Every reply must carry exactly the bytes its
// call sent, and every failure must carry a status code; a call not back by
// its deadline plus HangMargin is a hang. When the faults stop, calls must
// succeed again within RecoveryLimit, and the server's memory and open
// files and the client's goroutines must come back to where they were.
//
// The random schedule of faults and restarts derives from a seed, so that
// a run can be replayed; what the callers and the network do in between
// is up to the machine.
package soak

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"myrpc/benchmarks/internal/faultproxy"
	"myrpc/benchmarks/internal/faultsvc"
	"myrpc/benchmarks/internal/impls"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// DefaultCallers is the number of caller goroutines of a soak.
const DefaultCallers = 64

// What the soak allows.
const (
	// HangMargin is how long past its deadline a call may take to come
	// back before it is a hang.
	HangMargin = time.Second
	// RecoveryLimit is how soon after the faults stop every caller must
	// have had a successful call.
	RecoveryLimit = 5 * time.Second
	// RecoveryRun is how many calls in a row each caller must make with
	// success: the run must begin within RecoveryLimit, and no call of the
	// caller may fail after it.
	RecoveryRun = 5
	// settleTimeout bounds the waits for counts to come back (open files,
	// goroutines) and for the callers to stop.
	settleTimeout = 5 * time.Second
	// FDSlack is how many more open files than at the start the server may
	// hold at the end, at rest: a descriptor the runtime opened lazily.
	FDSlack = 2
	// GoroutineSlack is the same for the soak's own goroutines, after the
	// client is closed (a runtime or timer goroutine).
	GoroutineSlack = 2
	// RSSSlackKiB and RSSFactor bound the server's resident memory at the
	// end: at most RSSFactor times the fresh server's, plus RSSSlackKiB.
	// A Go heap grows to its peak and gives memory back to the system
	// slowly, and the faults (stalls that fill the buffers of 64 callers,
	// a burst of reconnections) raise the peak: the bound catches memory
	// that grows with the faults, not the heap's ordinary swing.
	RSSFactor   = 2
	RSSSlackKiB = 32 << 10
)

// The call mix and the faults.
const (
	// minDeadline and maxDeadline bound a call's deadline.
	minDeadline = 200 * time.Millisecond
	maxDeadline = 2 * time.Second
	// maxPayload bounds a payload's size; sizes are spread evenly on a
	// log scale from headerLen. A share of bigShare calls sends from
	// minBig to maxBig bytes instead, enough to fill the socket buffers
	// behind a stalled connection.
	maxPayload = 16 << 10
	bigShare   = 0.03
	minBig     = 64 << 10
	maxBig     = 1 << 20
	// proxyBuffer is the proxy's socket buffers: small, so that a stall
	// soon blocks the writers on both sides, as a peer that stops reading
	// does.
	proxyBuffer = 16 << 10
	// slowShare and panicShare are the shares of calls that ask the
	// server to wait (up to maxDelay) and that call Panic.
	slowShare  = 0.15
	panicShare = 0.10
	maxDelay   = 1500 * time.Millisecond
	// faultEvery is the mean time between two connection faults.
	faultEvery = 250 * time.Millisecond
	// restartEvery is the length of the slots of the restart schedule:
	// one restart in each, at a random time.
	restartEvery = 5 * time.Second
	// maxDown is how long the server stays down at most before a restart.
	maxDown = time.Second
	// maxStall and maxFragment bound how long a stall and fragmenting last.
	maxStall    = 3 * time.Second
	maxFragment = 3 * time.Second
	// warmup is how long the callers run before the baseline is taken.
	warmup = 2 * time.Second
	// recoveryDeadline is the deadline of the calls of the recovery phase.
	recoveryDeadline = 2 * time.Second
	// progressEvery is how often a progress line is written.
	progressEvery = 5 * time.Second
)

// Config configures the soak of one stage.
type Config struct {
	// Stage is the implementation's name: v1 to v5.
	Stage string
	// Server is the bench server binary (cmd/benchserver).
	Server string
	// Duration is how long the faults go on.
	Duration time.Duration
	// Seed is the run's seed; the stage's schedule derives from it and
	// the stage's name.
	Seed uint64
	// Callers is the number of caller goroutines (default DefaultCallers).
	Callers int
	// Progress receives a progress line now and then.
	Progress io.Writer
	// Logger receives the client's own log records.
	Logger *slog.Logger
}

// stageSeed returns the seed of stage's schedule within a run.
func stageSeed(seed uint64, stage string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(stage))
	return seed ^ h.Sum64()
}

// Run soaks one stage and returns what it found. It fails the stage, rather
// than returning an error, when something goes wrong with the stage; the
// error is for the soak's own machinery (no server binary, ctx cancelled).
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Callers <= 0 {
		cfg.Callers = DefaultCallers
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	im, ok := impls.Lookup(cfg.Stage)
	if !ok {
		return Result{}, fmt.Errorf("soak: unknown stage %q", cfg.Stage)
	}
	r := &run{cfg: cfg, im: im, res: Result{Stage: cfg.Stage, Errors: map[string]int64{}}}
	// The watch's own goroutine is counted at the start and at the end.
	lag := watchLag()
	r.res.GoroutinesStart = runtime.NumGoroutine()
	err := r.run(ctx)
	r.res.MaxLagMS = lag.stop().Milliseconds()
	r.res.check()
	return r.res, err
}

// lagWatch measures how late this process's timers fire: a hang could
// otherwise be the soak's own starvation on a busy machine.
type lagWatch struct {
	done chan struct{}
	max  chan time.Duration
}

func watchLag() *lagWatch {
	w := &lagWatch{done: make(chan struct{}), max: make(chan time.Duration)}
	go func() {
		const tick = 50 * time.Millisecond
		var worst time.Duration
		t := time.NewTimer(tick)
		defer t.Stop()
		want := time.Now().Add(tick)
		for {
			select {
			case <-w.done:
				w.max <- worst
				return
			case <-t.C:
				// The time the goroutine runs, not the time the timer
				// fired: a starved process is late to both.
				now := time.Now()
				worst = max(worst, now.Sub(want))
				want = now.Add(tick)
				t.Reset(tick)
			}
		}
	}()
	return w
}

// stop ends the watch and returns the worst lateness seen.
func (w *lagWatch) stop() time.Duration {
	close(w.done)
	return <-w.max
}

// run is the soak of one stage.
type run struct {
	cfg   Config
	im    impls.Impl
	srv   *server
	proxy *faultproxy.Proxy

	// mu protects res while callers run.
	mu  sync.Mutex
	res Result
}

// fail records a reason the stage failed.
func (r *run) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Failures = append(r.res.Failures, fmt.Sprintf(format, args...))
}

// sample keeps the first few examples of a kind of finding.
func (r *run) sample(kind, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sampleLocked(kind, format, args...)
}

// maxSamples is how many examples of each kind a result keeps.
const maxSamples = 5

func (r *run) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "soak %s: "+format+"\n", append([]any{r.cfg.Stage}, args...)...)
}

func (r *run) run(ctx context.Context) (err error) {
	r.srv = &server{path: r.cfg.Server, stage: r.cfg.Stage}
	if err := r.srv.start(ctx); err != nil {
		return fmt.Errorf("soak: %s: %w", r.cfg.Stage, err)
	}
	// Whatever happens, no server process outlives the stage.
	defer func() {
		if err := r.srv.term(); err != nil {
			r.fail("final stop: %v", err)
		}
		r.res.GoroutinesEnd = settle(func() int { return runtime.NumGoroutine() }, r.res.GoroutinesStart+GoroutineSlack)
	}()
	fresh, err := r.srv.current().measure()
	if err != nil {
		return fmt.Errorf("soak: measuring the server: %w", err)
	}
	r.proxy, err = faultproxy.Listen(r.srv.addr, faultproxy.Options{Logger: r.cfg.Logger, SocketBuffer: proxyBuffer})
	if err != nil {
		return err
	}
	proxyOpen := true
	defer func() {
		if proxyOpen {
			r.proxy.Close()
		}
	}()

	// Warm up with a client of its own, then take the baseline at rest.
	if err := r.phase(ctx, "warm-up", func(cl *clients) error {
		time.Sleep(warmup)
		return nil
	}); err != nil {
		return err
	}
	base, ok := r.atRest("start", fresh.fds+FDSlack)
	if !ok {
		return nil
	}
	r.res.RSSStartKiB, r.res.FDsStart = base.rssKiB, base.fds

	// The faults, then the recovery, with one client.
	err = r.phase(ctx, "chaos", func(cl *clients) error {
		if err := r.chaos(ctx, cl); err != nil {
			return err
		}
		r.recover(ctx, cl)
		return ctx.Err()
	})
	if err := cmp.Or(err, ctx.Err()); err != nil {
		return err
	}
	st := r.proxy.Stats()
	// The client is closed: what the proxy still holds, it holds for
	// nothing. Closing it leaves only what the server itself keeps.
	r.proxy.Close()
	proxyOpen = false
	r.res.Proxy = st
	end, ok := r.atRest("end", base.fds+FDSlack)
	if ok {
		r.res.RSSEndKiB, r.res.FDsEnd = end.rssKiB, end.fds
	}
	return nil
}

// atRest measures the server once the client has gone: its open files
// are polled until they are at most want, or settleTimeout passes.
func (r *run) atRest(when string, want int) (usage, bool) {
	p := r.srv.current()
	if p == nil {
		r.fail("no server to measure at the %s", when)
		return usage{}, false
	}
	deadline := time.Now().Add(settleTimeout)
	for {
		u, err := p.measure()
		if err != nil {
			r.fail("measuring the server at the %s: %v", when, err)
			return usage{}, false
		}
		if u.fds <= want || time.Now().After(deadline) {
			return u, true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle polls count until it is at most want or settleTimeout passes, and
// returns its last value.
func settle(count func() int, want int) int {
	deadline := time.Now().Add(settleTimeout)
	for {
		n := count()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// phase runs the callers, through a client of their own, while body runs;
// then stops them and closes the client.
func (r *run) phase(ctx context.Context, name string, body func(*clients) error) error {
	cl, err := r.newClients()
	if err != nil {
		return err
	}
	cl.start(r)
	err = body(cl)
	cl.stop(r, name)
	if cerr := cl.client.Close(); cerr != nil {
		r.sample("client close", "%s: %v", name, cerr)
	}
	// A caller stuck in a call may come back once the client is closed.
	cl.waitClosed(r, name)
	return err
}

// chaos puts faults into the connections and restarts the server for the
// configured duration.
func (r *run) chaos(ctx context.Context, cl *clients) error {
	seed := stageSeed(r.cfg.Seed, r.cfg.Stage)
	rng := rand.New(rand.NewPCG(seed, 1))
	sched := restartSchedule(rand.New(rand.NewPCG(seed, 2)), r.cfg.Duration)
	start := time.Now()
	end := start.Add(r.cfg.Duration)
	cl.setMode(modeChaos)
	nextFault := start.Add(expDuration(rng, faultEvery))
	nextProgress := start.Add(progressEvery)
	for {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p := r.srv.crashed(); p != nil {
			r.mu.Lock()
			r.res.Crashes++
			r.mu.Unlock()
			r.sample("server crash", "exited by itself (%v): %s", p.waitErr, p.stderr.String())
			if err := r.srv.restart(ctx); err != nil {
				r.fail("restart after a crash: %v", err)
				return nil
			}
		}
		if len(sched) > 0 && !now.Before(start.Add(sched[0].at)) {
			ev := sched[0]
			sched = sched[1:]
			if !r.restart(ctx, ev) {
				return nil
			}
			continue
		}
		if !now.Before(nextFault) {
			r.fault(rng)
			nextFault = nextFault.Add(expDuration(rng, faultEvery))
		}
		if !now.Before(nextProgress) {
			r.progress("chaos %v/%v: %s", now.Sub(start).Round(time.Second), r.cfg.Duration, cl.summary(r))
			nextProgress = nextProgress.Add(progressEvery)
		}
		wake := minTime(end, nextFault, nextProgress)
		if len(sched) > 0 {
			wake = minTime(wake, start.Add(sched[0].at))
		}
		select {
		case <-time.After(min(time.Until(wake), 50*time.Millisecond)):
		case <-ctx.Done():
		}
	}
	return nil
}

func minTime(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// expDuration draws an exponentially distributed duration of the mean.
func expDuration(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

// restartEvent is one restart of the schedule: at at after the faults
// begin, the server is killed (or stopped with SIGTERM) and is down for
// down.
type restartEvent struct {
	at   time.Duration
	kill bool
	down time.Duration
}

// restartSchedule returns one restart in each slot of restartEvery (at
// least one), at a random time in the middle of the slot; the first two
// are one of each kind.
func restartSchedule(rng *rand.Rand, d time.Duration) []restartEvent {
	n := max(1, int(d/restartEvery))
	slot := d / time.Duration(n)
	var out []restartEvent
	first := rng.IntN(2) == 0
	for i := range n {
		kill := rng.IntN(2) == 0
		switch i {
		case 0:
			kill = first
		case 1:
			kill = !first
		}
		at := time.Duration(i)*slot + time.Duration((0.2+0.6*rng.Float64())*float64(slot))
		out = append(out, restartEvent{at: at, kill: kill, down: time.Duration(rng.Float64() * float64(maxDown))})
	}
	return out
}

// restart carries out a restart event; false means the server could not
// be started again (the stage has failed).
func (r *run) restart(ctx context.Context, ev restartEvent) bool {
	if ev.kill {
		r.srv.kill()
		r.mu.Lock()
		r.res.Kills++
		r.mu.Unlock()
	} else {
		if err := r.srv.term(); err != nil {
			r.fail("stop with SIGTERM: %v", err)
		}
		r.mu.Lock()
		r.res.Terms++
		r.mu.Unlock()
	}
	select {
	case <-time.After(ev.down):
	case <-ctx.Done():
		return false
	}
	if err := r.srv.restart(ctx); err != nil {
		r.fail("restart: %v", err)
		return false
	}
	return true
}

// fault puts one random fault into one random open connection.
func (r *run) fault(rng *rand.Rand) {
	kind := rng.Float64()
	pick := rng.Uint64()
	d := time.Duration(0.1*float64(time.Second) + rng.Float64()*float64(maxStall-100*time.Millisecond))
	chunk := 1 + rng.IntN(64)
	delay := time.Duration(rng.IntN(3000)) * time.Microsecond
	dir := faultproxy.Direction(rng.IntN(2))
	conns := r.proxy.Conns()
	if len(conns) == 0 {
		return
	}
	c := conns[pick%uint64(len(conns))]
	switch {
	case kind < 0.30:
		c.Reset()
	case kind < 0.50:
		c.HalfClose(dir)
	case kind < 0.75:
		c.Stall(d)
	default:
		c.Fragment(chunk, delay, min(d, maxFragment))
	}
}

// recover stops the faults, makes sure a server runs, and waits for every
// caller to succeed again.
func (r *run) recover(ctx context.Context, cl *clients) {
	if r.srv.current() == nil || r.srv.crashed() != nil {
		if err := r.srv.restart(ctx); err != nil {
			r.fail("restart for the recovery: %v", err)
			return
		}
	}
	r.proxy.Calm()
	t0 := time.Now()
	cl.recoverFrom(t0)
	r.progress("faults stopped: %s", cl.summary(r))
	deadline := t0.Add(RecoveryLimit + RecoveryRun*recoveryDeadline)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if cl.recovered() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	last, all, broken := cl.recovery(t0)
	r.mu.Lock()
	r.res.RecoveryMS = last.Milliseconds()
	r.res.Recovered = all && last <= RecoveryLimit && broken == ""
	r.mu.Unlock()
	switch {
	case !all:
		r.fail("no recovery: %s", cl.notRecovered())
	case last > RecoveryLimit:
		r.fail("no recovery within %v: the last caller's run of successes began after %v", RecoveryLimit, last.Round(time.Millisecond))
	case broken != "":
		r.fail("no recovery: %s", broken)
	default:
		r.progress("recovered in %v", last.Round(time.Millisecond))
	}
}

// Caller modes.
const (
	modeWarm int32 = iota
	modeChaos
	modeRecovery
	modeStop
)

var modeNames = []string{"warm-up", "chaos", "recovery", "stop"}

// clients is one client of the stage and its caller goroutines.
type clients struct {
	client impls.Client
	inv    rpc.Invoker
	mode   atomic.Int32
	wg     sync.WaitGroup
	// t0 is when the recovery began, in Unix nanoseconds.
	t0      atomic.Int64
	callers []*caller
}

// caller is one caller goroutine's state, read by the supervisor.
type caller struct {
	id  int
	rng *rand.Rand
	// cur is the call in flight, or nil.
	cur atomic.Pointer[callRec]

	// mu protects the recovery record below.
	mu sync.Mutex
	// runStart is when the current run of successes in the recovery
	// began, and runOK its length; a failure ends the run. recoveredAt is
	// the runStart of the first run RecoveryRun long (zero: none yet);
	// broken is the first failure after it.
	runStart    time.Time
	runOK       int
	recoveredAt time.Time
	broken      string
}

// callRec is a call in flight.
type callRec struct {
	start    time.Time
	deadline time.Duration
	what     string
	// counted is set once the call has been counted as a hang.
	counted atomic.Bool
}

func (r *run) newClients() (*clients, error) {
	c, err := r.im.NewClient(r.proxy.Addr(), impls.Options{Logger: r.cfg.Logger})
	if err != nil {
		return nil, err
	}
	ic, ok := c.(impls.InvokerClient)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("soak: the %s client cannot call any method", r.cfg.Stage)
	}
	cl := &clients{client: c, inv: ic.Invoker()}
	base := stageSeed(r.cfg.Seed, r.cfg.Stage)
	for i := range r.cfg.Callers {
		cl.callers = append(cl.callers, &caller{id: i, rng: rand.New(rand.NewPCG(base, uint64(100+i)))})
	}
	return cl, nil
}

func (cl *clients) setMode(m int32) { cl.mode.Store(m) }

func (cl *clients) start(r *run) {
	for _, c := range cl.callers {
		cl.wg.Add(1)
		go func() {
			defer cl.wg.Done()
			cl.loop(r, c)
		}()
	}
}

// recoverFrom switches the callers to the recovery's calls.
func (cl *clients) recoverFrom(t0 time.Time) {
	cl.t0.Store(t0.UnixNano())
	cl.mode.Store(modeRecovery)
}

// loop makes calls until the mode says stop.
func (cl *clients) loop(r *run, c *caller) {
	var seq uint64
	for {
		mode := cl.mode.Load()
		if mode == modeStop {
			return
		}
		seq++
		cl.call(r, c, seq, mode)
	}
}

// call makes one call and records its outcome.
func (cl *clients) call(r *run, c *caller, seq uint64, mode int32) {
	rng := c.rng
	payload := makePayload(rng, c.id, seq)
	deadline := minDeadline + time.Duration(rng.Int64N(int64(maxDeadline-minDeadline)))
	var delay time.Duration
	panicCall := false
	if mode == modeRecovery {
		deadline = recoveryDeadline
	} else {
		switch x := rng.Float64(); {
		case x < panicShare:
			panicCall = true
		case x < panicShare+slowShare:
			delay = time.Duration(rng.Int64N(int64(maxDelay)))
		}
	}
	what := fmt.Sprintf("%s, caller %d seq %d: %s", modeNames[mode], c.id, seq, describe(panicCall, delay, deadline, len(payload)))
	start := time.Now()
	rec := &callRec{start: start, deadline: deadline, what: what}
	c.cur.Store(rec)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	var err error
	var got []byte
	if panicCall {
		err = faultsvc.Panic(ctx, cl.inv, payload)
	} else {
		reply := new(echo.EchoReply)
		err = cl.inv.Invoke(ctx, echo.Echo_Echo_FullMethodName, &echo.EchoRequest{Payload: payload, DelayMs: uint32(delay.Milliseconds())}, reply)
		got = reply.GetPayload()
	}
	elapsed := time.Since(start)
	cancel()
	c.cur.Store(nil)

	r.mu.Lock()
	defer r.mu.Unlock()
	res := &r.res
	res.Calls++
	late := elapsed > deadline+HangMargin
	if late && rec.counted.CompareAndSwap(false, true) {
		res.Hangs++
		r.sampleLocked("hang", "%s came back after %v: %v", what, elapsed.Round(time.Millisecond), err)
	}
	ok := false
	switch {
	case err == nil && panicCall:
		res.WrongResults++
		r.sampleLocked("wrong result", "%s: the panicking method succeeded", what)
	case err == nil && !bytes.Equal(got, payload):
		res.CrossTalk++
		r.sampleLocked("cross-talk", "%s: got %s", what, describePayload(got))
	case err == nil:
		res.OK++
		ok = true
	default:
		se, isStatus := status.FromError(err)
		if !isStatus {
			res.NoStatus++
			r.sampleLocked("no status", "%s: %v (%T)", what, err, err)
		}
		// A Panic call may fail with another code than Internal when the
		// connection failed first.
		res.Errors[se.Code().String()]++
	}
	if mode == modeRecovery && start.UnixNano() >= cl.t0.Load() {
		c.mu.Lock()
		switch {
		case ok:
			if c.runOK == 0 {
				c.runStart = time.Now()
			}
			c.runOK++
			if c.runOK == RecoveryRun && c.recoveredAt.IsZero() {
				c.recoveredAt = c.runStart
			}
		case !c.recoveredAt.IsZero() && c.broken == "":
			c.broken = fmt.Sprintf("%s failed after the caller had recovered: %v", what, err)
		default:
			// A fault from before the recovery can still end a call or
			// two (a connection reset by the proxy's Calm, say): the
			// caller starts a new run.
			c.runOK = 0
			r.sampleLocked("recovery", "%s failed before the caller's run of successes: %v", what, err)
		}
		c.mu.Unlock()
	}
}

// sampleLocked is sample with r.mu held.
func (r *run) sampleLocked(kind, format string, args ...any) {
	if r.res.Samples == nil {
		r.res.Samples = map[string][]string{}
	}
	if len(r.res.Samples[kind]) < maxSamples {
		r.res.Samples[kind] = append(r.res.Samples[kind], fmt.Sprintf(format, args...))
	}
}

func describe(panicCall bool, delay, deadline time.Duration, n int) string {
	switch {
	case panicCall:
		return fmt.Sprintf("Panic (%d bytes, deadline %v)", n, deadline)
	case delay > 0:
		return fmt.Sprintf("Echo (%d bytes, delay %v, deadline %v)", n, delay, deadline)
	}
	return fmt.Sprintf("Echo (%d bytes, deadline %v)", n, deadline)
}

// recovered reports whether every caller has made RecoveryRun successful
// calls in a row in the recovery.
func (cl *clients) recovered() bool {
	for _, c := range cl.callers {
		c.mu.Lock()
		ok := !c.recoveredAt.IsZero()
		c.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// recovery returns when, after t0, the last caller began its first run of
// RecoveryRun successes, whether every caller had one, and the first
// failure after such a run, if any.
func (cl *clients) recovery(t0 time.Time) (last time.Duration, all bool, broken string) {
	all = true
	for _, c := range cl.callers {
		c.mu.Lock()
		if c.recoveredAt.IsZero() {
			all = false
		} else if d := c.recoveredAt.Sub(t0); d > last {
			last = d
		}
		if broken == "" {
			broken = c.broken
		}
		c.mu.Unlock()
	}
	return last, all, broken
}

// notRecovered says which callers have not recovered, and what they do.
func (cl *clients) notRecovered() string {
	var ids []int
	var example string
	for _, c := range cl.callers {
		c.mu.Lock()
		if c.recoveredAt.IsZero() {
			ids = append(ids, c.id)
			if example == "" {
				if rec := c.cur.Load(); rec != nil {
					example = fmt.Sprintf("; %s in flight for %v", rec.what, time.Since(rec.start).Round(time.Millisecond))
				}
			}
		}
		c.mu.Unlock()
	}
	return fmt.Sprintf("%d of %d callers had no run of %d successes within %v%s", len(ids), len(cl.callers), RecoveryRun, RecoveryLimit+RecoveryRun*recoveryDeadline, example)
}

// summary is the progress line's counts.
func (cl *clients) summary(r *run) string {
	r.mu.Lock()
	res := r.res
	var errs []string
	for k, v := range res.Errors {
		errs = append(errs, fmt.Sprintf("%s %d", k, v))
	}
	r.mu.Unlock()
	sort.Strings(errs)
	inflight, oldest := 0, time.Duration(0)
	for _, c := range cl.callers {
		if rec := c.cur.Load(); rec != nil {
			inflight++
			oldest = max(oldest, time.Since(rec.start))
		}
	}
	st := r.proxy.Stats()
	return fmt.Sprintf("calls %d ok %d errors [%s] cross-talk %d hangs %d; server kills %d terms %d; proxy conns %d resets %d half-closes %d stalls %d fragments %d; oldest call in flight %v",
		res.Calls, res.OK, joinComma(errs), res.CrossTalk, res.Hangs, res.Kills, res.Terms,
		len(r.proxy.Conns()), st.Resets, st.HalfCloses, st.Stalls, st.Fragments, oldest.Round(time.Millisecond))
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// stop tells the callers to stop and waits for them: each has at most its
// call in flight to finish, which must come back by its deadline plus
// HangMargin.
func (cl *clients) stop(r *run, phase string) {
	cl.mode.Store(modeStop)
	waited := make(chan struct{})
	go func() {
		cl.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		return
	case <-time.After(maxDeadline + HangMargin + settleTimeout):
	}
	// Whoever is still in a call now is past any deadline plus margin.
	for _, c := range cl.callers {
		if rec := c.cur.Load(); rec != nil && rec.counted.CompareAndSwap(false, true) {
			r.mu.Lock()
			r.res.Hangs++
			r.sampleLocked("hang", "%s still in flight after %v (%s)", rec.what, time.Since(rec.start).Round(time.Millisecond), phase)
			r.mu.Unlock()
		}
	}
}

// waitClosed waits, after the client is closed, for callers still stuck in
// a call; those that never come back are reported, and left behind.
func (cl *clients) waitClosed(r *run, phase string) {
	waited := make(chan struct{})
	go func() {
		cl.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(settleTimeout):
		stuck := 0
		for _, c := range cl.callers {
			if c.cur.Load() != nil {
				stuck++
			}
		}
		r.fail("%d callers still stuck in a call %v after the client was closed (%s)", stuck, settleTimeout, phase)
	}
}

// Payloads: every call sends bytes no other call sends: the caller's id and
// the call's sequence number, then random bytes.
const headerLen = 12

func makePayload(rng *rand.Rand, id int, seq uint64) []byte {
	lo, hi := headerLen, maxPayload
	if rng.Float64() < bigShare {
		lo, hi = minBig, maxBig
	}
	n := int(math.Exp(rng.Float64()*math.Log(float64(hi)/float64(lo))) * float64(lo))
	n = min(max(n, lo), hi)
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b[0:4], uint32(id))
	binary.BigEndian.PutUint64(b[4:12], seq)
	for i := headerLen; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// describePayload says whose payload b looks like.
func describePayload(b []byte) string {
	if len(b) < headerLen {
		return fmt.Sprintf("%d bytes %x", len(b), b)
	}
	return fmt.Sprintf("%d bytes that begin like caller %d seq %d's", len(b), binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint64(b[4:12]))
}
