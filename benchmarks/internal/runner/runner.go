package runner

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"myrpc/benchmarks/internal/hist"
	"myrpc/benchmarks/internal/impls"
	"myrpc/benchmarks/internal/procstat"
	"myrpc/benchmarks/internal/results"
)

// Defaults of Config.
const (
	// DefaultCallTimeout is the deadline of each call of a case.
	DefaultCallTimeout = 5 * time.Second
	// DefaultBurstTimeout is the deadline of each call of a burst.
	DefaultBurstTimeout = 10 * time.Second
	// defaultStartTimeout bounds a server's start, to its READY line.
	defaultStartTimeout = 10 * time.Second
	// stopTimeout bounds a server's exit after SIGTERM.
	stopTimeout = 10 * time.Second
	// renewEvery is how long a caller reuses one deadline context: a call
	// has between CallTimeout and CallTimeout+renewEvery to finish.
	renewEvery = time.Second
	// maxErrorBackoff caps the pause after consecutive failed calls.
	maxErrorBackoff = 100 * time.Millisecond
	// errorSamples is how many distinct errors a row keeps.
	errorSamples = 5
)

// Config configures the runs.
type Config struct {
	// Server starts the bench server processes.
	Server Server
	// Warmup and Duration are a case's unmeasured and measured phases.
	Warmup, Duration time.Duration
	// CallTimeout is each call's deadline in a case. Default 5 s.
	CallTimeout time.Duration
	// BurstTimeout is each call's deadline in a burst. Default 10 s.
	BurstTimeout time.Duration
	// StartTimeout bounds a server's start. Default 10 s.
	StartTimeout time.Duration
	// ServerCPU, when 0 or more, runs the servers on that CPU alone with
	// GOMAXPROCS=1.
	ServerCPU int
	// Logger receives the clients' log records. Default: slog.Default().
	Logger *slog.Logger

	// Measured, if set, is called as a closed-loop case's measured window
	// opens, and the function it returns as the window closes: the
	// harness's own CPU profile covers the window and nothing else.
	Measured func() func()
}

func (c Config) callTimeout() time.Duration {
	if c.CallTimeout > 0 {
		return c.CallTimeout
	}
	return DefaultCallTimeout
}

func (c Config) burstTimeout() time.Duration {
	if c.BurstTimeout > 0 {
		return c.BurstTimeout
	}
	return DefaultBurstTimeout
}

func (c Config) startTimeout() time.Duration {
	if c.StartTimeout > 0 {
		return c.StartTimeout
	}
	return defaultStartTimeout
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// Case is one cell of the matrix.
type Case struct {
	Impl    string
	Callers int
	Payload int
}

func (c Case) String() string {
	return fmt.Sprintf("%s callers=%d payload=%dB", c.Impl, c.Callers, c.Payload)
}

// fail marks row as failed for reason and returns it.
func fail(row results.Row, format string, args ...any) results.Row {
	row.Failed = true
	row.FailReason = fmt.Sprintf(format, args...)
	return row
}

// session is a started server with a client of it.
type session struct {
	proc   *serverProc
	client impls.Client
}

// open starts a server for impl and a client of it, limited to maxConns
// connections if it is above 0 (see impls.Options).
func open(ctx context.Context, cfg Config, impl string, maxConns int) (*session, error) {
	im, ok := impls.Lookup(impl)
	if !ok {
		return nil, fmt.Errorf("unknown implementation %q", impl)
	}
	if cfg.Server.Path == "" {
		return nil, errors.New("no bench server command configured")
	}
	p, err := startServer(ctx, cfg, impl)
	if err != nil {
		return nil, err
	}
	cl, err := im.NewClient(p.addr, impls.Options{Logger: cfg.logger(), MaxConns: maxConns})
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &session{proc: p, client: cl}, nil
}

// close closes the client, then stops the server; it returns the server's
// stats.
func (s *session) close() (map[string]float64, error) {
	cerr := s.client.Close()
	stats, err := s.proc.stop()
	if err == nil && cerr != nil {
		err = fmt.Errorf("client close: %w", cerr)
	}
	return stats, err
}

// snapshot is the CPU time of both sides, and of the whole machine, at
// one moment.
type snapshot struct {
	at     time.Time
	server time.Duration
	client time.Duration
	system time.Duration
	gcs    uint32
}

func takeSnapshot(pid int) (snapshot, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := snapshot{gcs: ms.NumGC}
	var err error
	if s.server, err = procstat.ProcessCPU(pid); err != nil {
		return s, err
	}
	if s.client, err = procstat.SelfCPU(); err != nil {
		return s, err
	}
	if s.system, err = procstat.SystemBusy(); err != nil {
		return s, err
	}
	s.at = time.Now()
	return s, nil
}

// fillCPU sets the CPU measures of row from two snapshots.
func fillCPU(row *results.Row, before, after snapshot) {
	server, client := after.server-before.server, after.client-before.client
	row.ServerCPUUSPerCall = perCallUS(server, row.Calls)
	row.ClientCPUUSPerCall = perCallUS(client, row.Calls)
	row.ClientGCs = after.gcs - before.gcs
	window := after.at.Sub(before.at)
	if window > 0 && !before.at.IsZero() {
		other := after.system - before.system - server - client
		pct := 100 * other.Seconds() / (window.Seconds() * float64(runtime.NumCPU()))
		row.OtherCPUPct = math.Round(max(pct, 0)*10) / 10
	}
}

// perCallUS divides a CPU time over calls, in microseconds.
func perCallUS(d time.Duration, calls uint64) float64 {
	if calls == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(calls)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// fillLatency copies h's percentiles into row.
func fillLatency(row *results.Row, h *hist.Histogram) {
	row.P50US = us(h.Quantile(0.50))
	row.P99US = us(h.Quantile(0.99))
	row.P999US = us(h.Quantile(0.999))
	row.MeanUS = us(h.Mean())
	row.MaxUS = us(h.Max())
}

// fillServer copies the server's stats and peak memory into row.
func fillServer(row *results.Row, stats map[string]float64) {
	if len(stats) == 0 {
		return
	}
	row.ServerStats = stats
	row.FramesPerWrite = stats[impls.StatFramesPerWrite]
}

// phases of a case.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

// callerResult is what one caller measured.
type callerResult struct {
	h      *hist.Histogram
	ok     uint64
	errors errorCounts
	nerr   uint64
}

// record counts a call of the measured window that took elapsed and
// ended with err.
func (r *callerResult) record(err error, elapsed time.Duration) {
	if err != nil {
		r.nerr++
		r.errors.add(err)
		return
	}
	r.h.Record(elapsed)
	r.ok++
}

// RunCase runs one case: a fresh server, c.Callers closed-loop callers
// through the warm-up and the measured window, then the server's stop. A
// case that cannot run, or in which no call succeeds, comes back with
// Failed set.
func RunCase(ctx context.Context, cfg Config, c Case) results.Row {
	row := results.Row{Kind: results.KindCase, Impl: c.Impl, Callers: c.Callers, PayloadBytes: c.Payload, Reps: 1}
	if c.Callers < 1 {
		return fail(row, "callers must be at least 1")
	}
	return runClosed(ctx, cfg, row, 0, 0, 0)
}

// runClosed runs row.Callers closed-loop callers against a fresh server of
// row.Impl, the first slow of them making calls the server holds for delay,
// through a client limited to maxConns connections (0: its default), and
// fills in row: its latencies, QPS and errors are the other callers'.
func runClosed(ctx context.Context, cfg Config, row results.Row, slow int, delay time.Duration, maxConns int) results.Row {
	s, err := open(ctx, cfg, row.Impl, maxConns)
	if err != nil {
		return fail(row, "%v", err)
	}
	callers := make([]impls.Caller, row.Callers)
	for i := range callers {
		if callers[i], err = s.client.NewCaller(); err != nil {
			for _, h := range callers[:i] {
				h.Close()
			}
			s.close()
			return fail(row, "caller %d: %v", i, err)
		}
	}
	if _, ok := callers[0].(impls.SlowCaller); slow > 0 && !ok {
		for _, h := range callers {
			h.Close()
		}
		s.close()
		return fail(row, "%s cannot make slow calls", row.Impl)
	}

	var (
		phase atomic.Int32
		wg    sync.WaitGroup
		res   = make([]callerResult, row.Callers)
	)
	for i, h := range callers {
		call := h.Call
		if i < slow {
			sc := h.(impls.SlowCaller)
			call = func(ctx context.Context, p []byte) error { return sc.CallDelay(ctx, p, delay) }
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = closedLoop(ctx, call, row.PayloadBytes, cfg.callTimeout(), &phase)
		}()
	}

	var before, after snapshot
	var snapErr error
	if sleepCtx(ctx, cfg.Warmup) {
		before, snapErr = takeSnapshot(s.proc.pid())
		closeWindow := func() {}
		if cfg.Measured != nil {
			closeWindow = cfg.Measured()
		}
		phase.Store(phaseMeasure)
		if sleepCtx(ctx, cfg.Duration) && snapErr == nil {
			after, snapErr = takeSnapshot(s.proc.pid())
		}
		closeWindow()
	}
	phase.Store(phaseDone)
	if after.at.IsZero() {
		// Interrupted: the window never closed.
		after.at = time.Now()
	}
	rss, rssErr := procstat.PeakRSS(s.proc.pid())
	wg.Wait()
	for _, h := range callers {
		h.Close()
	}
	stats, stopErr := s.close()

	measured := hist.New()
	errs := errorCounts{}
	for i, r := range res {
		if i < slow {
			row.SlowCalls += r.ok
			continue
		}
		measured.Merge(r.h)
		row.Calls += r.ok
		row.Errors += r.nerr
		errs.merge(r.errors)
	}
	window := after.at.Sub(before.at)
	row.WindowS = window.Seconds()
	row.ErrorSamples = errs.samples(errorSamples)
	if window > 0 {
		row.QPS = float64(row.Calls) / window.Seconds()
	}
	fillLatency(&row, measured)
	fillCPU(&row, before, after)
	row.ServerRSSKiB = rss
	fillServer(&row, stats)

	switch {
	case ctx.Err() != nil:
		return fail(row, "interrupted")
	case snapErr != nil:
		return fail(row, "reading CPU times: %v", snapErr)
	case rssErr != nil:
		return fail(row, "reading the server's memory: %v", rssErr)
	case row.Calls == 0:
		return fail(row, "no call succeeded")
	case stopErr != nil:
		return fail(row, "stopping the server: %v", stopErr)
	}
	return row
}

// closedLoop makes calls one after another until phase is done, and counts
// those that end in the measured phase. After a failed call it pauses, 1 ms
// doubling to 100 ms while failures continue, so that an implementation
// that fails at once does not turn the harness into a busy loop.
func closedLoop(ctx context.Context, call func(context.Context, []byte) error, payloadLen int, timeout time.Duration, phase *atomic.Int32) callerResult {
	r := callerResult{h: hist.New(), errors: errorCounts{}}
	payload := make([]byte, payloadLen)
	rand.Read(payload)
	var (
		dl      deadlines
		backoff time.Duration
	)
	defer dl.stop()
	for phase.Load() != phaseDone && ctx.Err() == nil {
		start := time.Now()
		cctx := dl.get(ctx, start, timeout)
		err := call(cctx, payload)
		elapsed := time.Since(start)
		if phase.Load() == phaseMeasure {
			r.record(err, elapsed)
		}
		if err == nil {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, time.Millisecond), maxErrorBackoff)
		sleepCtx(ctx, backoff)
	}
	return r
}

// deadlines hands out deadline contexts, one per second: a context made
// at t ends at t+timeout+renewEvery and serves the calls that start before
// t+renewEvery, each of which so has at least timeout. Making one context
// per call would cost more than some of the calls measured.
type deadlines struct {
	ctx     context.Context
	cancel  context.CancelFunc
	renewAt time.Time
}

func (d *deadlines) get(parent context.Context, now time.Time, timeout time.Duration) context.Context {
	if d.ctx == nil || now.After(d.renewAt) {
		d.stop()
		d.ctx, d.cancel = context.WithDeadline(parent, now.Add(timeout+renewEvery))
		d.renewAt = now.Add(renewEvery)
	}
	return d.ctx
}

func (d *deadlines) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// sleepCtx sleeps for d or until ctx ends; it reports whether it slept the
// whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RunBurst runs the burst against a fresh server: after one call that
// opens the client's shared connection if it has one, n goroutines each
// make one call with a payload of the given size, all released at once. A
// burst in which no call succeeds comes back with Failed set.
func RunBurst(ctx context.Context, cfg Config, impl string, n, payloadLen int) results.Row {
	row := results.Row{Kind: results.KindBurst, Impl: impl, Callers: n, PayloadBytes: payloadLen, Reps: 1}
	if n < 1 {
		return fail(row, "the burst needs at least 1 call")
	}
	s, err := open(ctx, cfg, impl, 0)
	if err != nil {
		return fail(row, "%v", err)
	}
	payload := make([]byte, payloadLen)
	rand.Read(payload)
	if err := warmCall(ctx, s.client, payload, cfg.burstTimeout()); err != nil {
		s.close()
		return fail(row, "the first call failed: %v", err)
	}

	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			h, err := s.client.NewCaller()
			ready.Done()
			<-gate
			if err != nil {
				errs[i] = err
				return
			}
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, cfg.burstTimeout())
			errs[i] = h.Call(cctx, payload)
			lat[i] = time.Since(start)
			cancel()
			h.Close()
		}()
	}
	ready.Wait()
	before, snapErr := takeSnapshot(s.proc.pid())
	close(gate)
	done.Wait()
	after, snapErr2 := takeSnapshot(s.proc.pid())
	rss, rssErr := procstat.PeakRSS(s.proc.pid())
	stats, stopErr := s.close()

	all := hist.New()
	ec := errorCounts{}
	for i, err := range errs {
		if err != nil {
			row.Errors++
			ec.add(err)
			continue
		}
		row.Calls++
		all.Record(lat[i])
	}
	elapsed := after.at.Sub(before.at)
	row.WindowS = elapsed.Seconds()
	if elapsed > 0 {
		row.QPS = float64(row.Calls) / elapsed.Seconds()
	}
	row.ErrorSamples = ec.samples(errorSamples)
	fillLatency(&row, all)
	fillCPU(&row, before, after)
	row.ServerRSSKiB = rss
	fillServer(&row, stats)
	switch {
	case ctx.Err() != nil:
		return fail(row, "interrupted")
	case snapErr != nil || snapErr2 != nil:
		return fail(row, "reading CPU times: %v", errors.Join(snapErr, snapErr2))
	case rssErr != nil:
		return fail(row, "reading the server's memory: %v", rssErr)
	case row.Calls == 0:
		return fail(row, "no call succeeded")
	case stopErr != nil:
		return fail(row, "stopping the server: %v", stopErr)
	}
	return row
}

// HOLCase is the head-of-line scenario for one implementation: Callers
// closed-loop callers, Slow of them making calls that the server holds for
// Delay each. The fast calls' latency shows whether a slow call holds up
// the calls behind it.
type HOLCase struct {
	Impl    string
	Callers int
	Slow    int
	Delay   time.Duration
	Payload int
	// MaxConns limits every client to this many connections, so that the
	// implementations share one budget (see impls.Options).
	MaxConns int
}

func (c HOLCase) String() string {
	return fmt.Sprintf("head-of-line %s callers=%d slow=%d delay=%v conns=%d", c.Impl, c.Callers, c.Slow, c.Delay, c.MaxConns)
}

// RunHOL runs the head-of-line scenario: like RunCase, but the first c.Slow
// callers make slow calls, and the row's latencies, QPS and errors are the
// fast calls'. An implementation whose calls cannot be slowed down comes
// back failed.
func RunHOL(ctx context.Context, cfg Config, c HOLCase) results.Row {
	row := results.Row{Kind: results.KindHOL, Impl: c.Impl, Callers: c.Callers, PayloadBytes: c.Payload, Reps: 1,
		SlowCallers: c.Slow, SlowDelayMs: float64(c.Delay) / float64(time.Millisecond), MaxConns: c.MaxConns}
	if c.Slow >= c.Callers || c.Slow < 1 {
		return fail(row, "the slow callers must be at least 1 and fewer than all callers")
	}
	return runClosed(ctx, cfg, row, c.Slow, c.Delay, c.MaxConns)
}

// warmCall makes one call through a handle of its own.
func warmCall(ctx context.Context, cl impls.Client, payload []byte, timeout time.Duration) error {
	h, err := cl.NewCaller()
	if err != nil {
		return err
	}
	defer h.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return h.Call(cctx, payload)
}
