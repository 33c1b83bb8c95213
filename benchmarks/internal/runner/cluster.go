package runner

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"myrpc/benchmarks/internal/hist"
	"myrpc/benchmarks/internal/impls"
	"myrpc/benchmarks/internal/results"
)

// ClusterCase is the cluster scenario for one balancing policy: Servers
// servers of Impl, each in its own process, the first of them slow (it
// holds every call for SlowDelay), and one client that spreads Callers
// callers over all of them by Policy. The callers make their calls in a
// closed loop, each as soon as its last has ended, or, with Rate, in an
// open loop: Rate calls a second start on a fixed schedule, each taken
// by a caller that is free, so that every policy is measured at the same
// load. With Kill, another of the servers is killed (SIGKILL) halfway
// through the measured window, and the row's errors are the calls that
// this cost.
type ClusterCase struct {
	Impl      string
	Policy    string
	Servers   int
	SlowDelay time.Duration
	Callers   int
	Payload   int
	Kill      bool
	Rate      int
}

func (c ClusterCase) String() string {
	s := fmt.Sprintf("cluster %s policy=%s servers=%d slow=%v callers=%d", c.Impl, c.Policy, c.Servers, c.SlowDelay, c.Callers)
	if c.Rate > 0 {
		s += fmt.Sprintf(" rate=%d/s", c.Rate)
	}
	if c.Kill {
		s += " kill"
	}
	return s
}

// RunCluster runs one case of the cluster scenario. Its row's latencies,
// QPS and errors are of every call; SlowServed counts the calls the slow
// server answered (by the mark in their response metadata), and SlowP99US
// their p99; FastP50US and FastP99US are the latencies of the other calls. An open-loop row's
// latencies count from each call's scheduled start, so that the time a
// call waited for a free caller counts too, and its errors include the
// calls that could not start at all. Server CPU is not measured: the work
// is spread over several processes.
func RunCluster(ctx context.Context, cfg Config, c ClusterCase) results.Row {
	row := results.Row{Kind: results.KindCluster, Impl: c.Impl, Callers: c.Callers, PayloadBytes: c.Payload, Reps: 1,
		Policy: c.Policy, Servers: c.Servers, SlowDelayMs: float64(c.SlowDelay) / float64(time.Millisecond),
		OfferedQPS: float64(c.Rate)}
	if c.Kill {
		row.Killed = 1
	}
	im, ok := impls.Lookup(c.Impl)
	switch {
	case !ok:
		return fail(row, "unknown implementation %q", c.Impl)
	case im.NewClusterClient == nil:
		return fail(row, "%s has no client of many servers", c.Impl)
	case c.Servers < 2 || (c.Kill && c.Servers < 3):
		return fail(row, "%d servers: want 2 at least, 3 with a kill", c.Servers)
	case c.Callers < 1:
		return fail(row, "callers must be at least 1")
	case c.Rate < 0 || c.Rate > maxRate:
		return fail(row, "rate %d: want 0 (closed loop) to %d calls a second", c.Rate, maxRate)
	case cfg.Server.Path == "":
		return fail(row, "no bench server command configured")
	}

	var procs []*serverProc
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.kill()
			}
		}
	}()
	var addrs []string
	for i := range c.Servers {
		scfg := cfg
		if i == 0 {
			scfg.Server.Args = append(slices.Clone(cfg.Server.Args), "-delay", c.SlowDelay.String())
		}
		p, err := startServer(ctx, scfg, c.Impl)
		if err != nil {
			return fail(row, "server %d: %v", i, err)
		}
		procs = append(procs, p)
		addrs = append(addrs, p.addr)
	}
	cl, err := im.NewClusterClient(addrs, c.Policy, impls.Options{Logger: cfg.logger()})
	if err != nil {
		return fail(row, "client: %v", err)
	}
	callers := make([]impls.Caller, c.Callers)
	for i := range callers {
		if callers[i], err = cl.NewCaller(); err != nil {
			for _, h := range callers[:i] {
				h.Close()
			}
			cl.Close()
			return fail(row, "caller %d: %v", i, err)
		}
	}

	var (
		phase atomic.Int32
		wg    sync.WaitGroup
		res   = make([]callerResult, c.Callers)
		fast  = make([]*hist.Histogram, c.Callers)
		slow  = make([]uint64, c.Callers)
		slowH = make([]*hist.Histogram, c.Callers)
		// The open loop's schedule: each call's start, for the first
		// caller free to make it; missed counts the calls of the window
		// that found no caller free, with tickets full. win is the
		// measured window, by when the calls were due.
		tickets chan time.Time
		missed  atomic.Uint64
		win     window
	)
	if c.Rate > 0 {
		tickets = make(chan time.Time, openLoopBacklog)
	}
	for i, h := range callers {
		mc, ok := h.(impls.MarkedCaller)
		if !ok {
			for _, h := range callers {
				h.Close()
			}
			cl.Close()
			return fail(row, "%s's callers cannot tell which server answered", c.Impl)
		}
		fast[i] = hist.New()
		slowH[i] = hist.New()
		// The caller's own goroutine runs call, and alone writes fast[i],
		// slow[i] and slowH[i]; start is when the call was due, and
		// measured says, once it has ended, whether it counts.
		call := func(ctx context.Context, p []byte, start time.Time, measured func() bool) error {
			fromSlow, err := mc.CallMarked(ctx, p)
			if err == nil && measured() {
				if fromSlow {
					slow[i]++
					slowH[i].Record(time.Since(start))
				} else {
					fast[i].Record(time.Since(start))
				}
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tickets != nil {
				res[i] = openLoop(ctx, tickets, call, c.Payload, cfg.callTimeout(), &win)
				return
			}
			inPhase := func() bool { return phase.Load() == phaseMeasure }
			now := func(ctx context.Context, p []byte) error { return call(ctx, p, time.Now(), inPhase) }
			res[i] = closedLoop(ctx, now, c.Payload, cfg.callTimeout(), &phase)
		}()
	}
	if tickets != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace(ctx, c.Rate, tickets, &phase, &win, &missed)
		}()
	}

	var start, end time.Time
	if sleepCtx(ctx, cfg.Warmup) {
		closeWindow := func() {}
		if cfg.Measured != nil {
			closeWindow = cfg.Measured()
		}
		start = time.Now()
		win.start.Store(start.UnixNano())
		phase.Store(phaseMeasure)
		rest := cfg.Duration
		if c.Kill && sleepCtx(ctx, cfg.Duration/2) {
			procs[1].kill()
			procs[1] = nil
			rest -= cfg.Duration / 2
		}
		sleepCtx(ctx, rest)
		end = time.Now()
		win.end.Store(end.UnixNano())
		win.drainUntil.Store(end.Add(cfg.Duration).UnixNano())
		closeWindow()
	}
	phase.Store(phaseDone)
	wg.Wait()
	for _, h := range callers {
		h.Close()
	}
	cerr := cl.Close()
	var stopErr error
	for i, p := range procs {
		if p == nil {
			continue
		}
		if _, err := p.stop(); err != nil && stopErr == nil {
			stopErr = fmt.Errorf("server %d: %w", i, err)
		}
		procs[i] = nil
	}
	if stopErr == nil && cerr != nil {
		stopErr = fmt.Errorf("client close: %w", cerr)
	}

	measured, fastCalls, slowCalls := hist.New(), hist.New(), hist.New()
	errs := errorCounts{}
	for i, r := range res {
		measured.Merge(r.h)
		fastCalls.Merge(fast[i])
		slowCalls.Merge(slowH[i])
		row.SlowServed += slow[i]
		row.Calls += r.ok
		row.Errors += r.nerr
		errs.merge(r.errors)
	}
	if n := missed.Load(); n > 0 {
		row.Errors += n
		errs[fmt.Sprintf("open loop: no caller free, and %d calls waiting already: not started", openLoopBacklog)] += n
	}
	row.FastP50US = us(fastCalls.Quantile(0.50))
	row.FastP99US = us(fastCalls.Quantile(0.99))
	row.SlowP99US = us(slowCalls.Quantile(0.99))
	row.ErrorSamples = errs.samples(errorSamples)
	if !start.IsZero() && end.After(start) {
		row.WindowS = end.Sub(start).Seconds()
		row.QPS = float64(row.Calls) / row.WindowS
	}
	fillLatency(&row, measured)

	switch {
	case ctx.Err() != nil:
		return fail(row, "interrupted")
	case row.Calls == 0:
		return fail(row, "no call succeeded")
	case stopErr != nil:
		return fail(row, "stopping: %v", stopErr)
	}
	return row
}

// openLoopBacklog bounds the open loop's calls that are due and wait for a
// free caller; a call due beyond it is not started, and counts as failed.
const openLoopBacklog = 4096

// maxRate bounds an open loop's rate: one call a microsecond.
const maxRate = 1_000_000

// errNotMade counts, among the failed calls, those due in the window that
// no caller had made when the window's grace ran out.
var errNotMade = errors.New("open loop: due in the window, not made by the end of its grace: every caller busy")

// window is the open loop's measured window, by when the calls were due:
// from start until end (0 while it lasts; start 0 before it begins). The
// calls due in it that are still waiting when it ends are made until
// drainUntil, and counted as not made after that.
type window struct {
	start, end, drainUntil atomic.Int64
}

// holds reports whether a call due at t is in the window.
func (w *window) holds(t time.Time) bool {
	s, e, n := w.start.Load(), w.end.Load(), t.UnixNano()
	return s != 0 && n >= s && (e == 0 || n < e)
}

// over reports whether the window has ended, and its grace with it.
func (w *window) over(now time.Time) bool {
	d := w.drainUntil.Load()
	return d != 0 && now.UnixNano() >= d
}

// pace sends the open loop's schedule: rate starts a second, evenly
// spaced, each the time the call is due. A sleep that overshoots is made
// up at once, with the calls it let fall due. It stops, and closes
// tickets, when the phase is done.
func pace(ctx context.Context, rate int, tickets chan<- time.Time, phase *atomic.Int32, win *window, missed *atomic.Uint64) {
	defer close(tickets)
	interval := time.Second / time.Duration(rate)
	next := time.Now()
	for phase.Load() != phaseDone && ctx.Err() == nil {
		now := time.Now()
		for !next.After(now) {
			select {
			case tickets <- next:
			default:
				if win.holds(next) {
					missed.Add(1)
				}
			}
			next = next.Add(interval)
		}
		time.Sleep(next.Sub(now))
	}
}

// openLoop is one caller of the open loop: it makes the calls of the
// schedule that it takes, each timed from when it was due, until the
// schedule ends. A call counts if it was due in the window, however late
// it ends; one due in the window but still waiting when the window's
// grace runs out is not made, and counts as failed.
func openLoop(ctx context.Context, tickets <-chan time.Time, call func(context.Context, []byte, time.Time, func() bool) error, payloadLen int, timeout time.Duration, win *window) callerResult {
	r := callerResult{h: hist.New(), errors: errorCounts{}}
	payload := make([]byte, payloadLen)
	rand.Read(payload)
	var dl deadlines
	defer dl.stop()
	for due := range tickets {
		in := win.holds(due)
		if ctx.Err() != nil || win.end.Load() != 0 && (!in || win.over(time.Now())) {
			if in {
				r.nerr++
				r.errors.add(errNotMade)
			}
			continue
		}
		err := call(dl.get(ctx, time.Now(), timeout), payload, due, func() bool { return in })
		elapsed := time.Since(due)
		if in {
			r.record(err, elapsed)
		}
	}
	return r
}
