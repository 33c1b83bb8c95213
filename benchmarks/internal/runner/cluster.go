package runner

import (
	"context"
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
// closed-loop callers over all of them by Policy. With Kill, another of
// the servers is killed (SIGKILL) halfway through the measured window,
// and the row's errors are the calls that this cost.
type ClusterCase struct {
	Impl      string
	Policy    string
	Servers   int
	SlowDelay time.Duration
	Callers   int
	Payload   int
	Kill      bool
}

func (c ClusterCase) String() string {
	s := fmt.Sprintf("cluster %s policy=%s servers=%d slow=%v callers=%d", c.Impl, c.Policy, c.Servers, c.SlowDelay, c.Callers)
	if c.Kill {
		s += " kill"
	}
	return s
}

// RunCluster runs one case of the cluster scenario. Its row's latencies,
// QPS and errors are of every call; SlowServed counts the calls the slow
// server answered (by the mark in their response metadata), and FastP50US
// and FastP99US are the latencies of the other calls. Server CPU is not
// measured: the work is spread over several processes.
func RunCluster(ctx context.Context, cfg Config, c ClusterCase) results.Row {
	row := results.Row{Kind: results.KindCluster, Impl: c.Impl, Callers: c.Callers, PayloadBytes: c.Payload, Reps: 1,
		Policy: c.Policy, Servers: c.Servers, SlowDelayMs: float64(c.SlowDelay) / float64(time.Millisecond)}
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
	)
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
		// The caller's own goroutine runs call, and alone writes fast[i]
		// and slow[i].
		call := func(ctx context.Context, p []byte) error {
			start := time.Now()
			fromSlow, err := mc.CallMarked(ctx, p)
			if err == nil && phase.Load() == phaseMeasure {
				if fromSlow {
					slow[i]++
				} else {
					fast[i].Record(time.Since(start))
				}
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = closedLoop(ctx, call, c.Payload, cfg.callTimeout(), &phase)
		}()
	}

	var start, end time.Time
	if sleepCtx(ctx, cfg.Warmup) {
		closeWindow := func() {}
		if cfg.Measured != nil {
			closeWindow = cfg.Measured()
		}
		start = time.Now()
		phase.Store(phaseMeasure)
		rest := cfg.Duration
		if c.Kill && sleepCtx(ctx, cfg.Duration/2) {
			procs[1].kill()
			procs[1] = nil
			rest -= cfg.Duration / 2
		}
		sleepCtx(ctx, rest)
		end = time.Now()
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

	measured, fastCalls := hist.New(), hist.New()
	errs := errorCounts{}
	for i, r := range res {
		measured.Merge(r.h)
		fastCalls.Merge(fast[i])
		row.SlowServed += slow[i]
		row.Calls += r.ok
		row.Errors += r.nerr
		errs.merge(r.errors)
	}
	row.FastP50US = us(fastCalls.Quantile(0.50))
	row.FastP99US = us(fastCalls.Quantile(0.99))
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
