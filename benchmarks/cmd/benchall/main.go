// Command benchall runs the benchmark matrix: every implementation, at
// every number of callers and payload size, each case against a fresh
// benchserver process on loopback; then the burst. It writes results.json,
// results.md and chart.png to -out, and with -doc the docs page and the
// benchmark regions of README.md and docs/*.md (see report.Rewrite).
//
//	benchall -out results/latest -doc ../docs/benchmarks.md
//
// Progress goes to standard error, the results table to standard output.
// The exit status is 1 if any case failed (the outputs are written anyway).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"myrpc/benchmarks/internal/impls"
	"myrpc/benchmarks/internal/pin"
	"myrpc/benchmarks/internal/report"
	"myrpc/benchmarks/internal/results"
	"myrpc/benchmarks/internal/runner"
)

type options struct {
	impls    []string
	callers  []int
	payloads []int
	duration time.Duration
	warmup   time.Duration
	reps     int
	pin      bool
	burst    int
	out      string
	server   string
	doc      string

	// scenarios are the parts of the run: matrix, burst, hol, cluster.
	scenarios  []string
	holCallers int
	holSlow    int
	holDelay   time.Duration
	holConns   int

	clusterCallers int
	clusterDelay   time.Duration
	clusterRate    int
}

// allScenarios are the parts a run can have, in the order they run.
var allScenarios = []string{"matrix", "burst", "hol", "cluster"}

// clusterServers is how many servers the cluster scenario starts.
const clusterServers = 3

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "benchall:", err)
		os.Exit(2)
	}
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchall:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("benchall", flag.ContinueOnError)
	var o options
	implList := fs.String("impls", strings.Join(impls.Names(), ","), "comma list of implementations: "+strings.Join(impls.Names(), ","))
	callers := fs.String("callers", "1,64,1000", "comma list of concurrent callers")
	payload := fs.String("payload", "64,1024", "comma list of payload sizes in bytes")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "measured time per case")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per case")
	fs.IntVar(&o.reps, "reps", 3, "repetitions per case, in rounds over the implementations of a cell; with more than one, the median and the range")
	fs.BoolVar(&o.pin, "pin", false, "run the servers on CPU 0 and the harness on CPU 1, GOMAXPROCS=1 each")
	fs.IntVar(&o.burst, "burst", 20000, "goroutines of the burst (one call each, all at once); 0: no burst")
	fs.StringVar(&o.out, "out", "results/latest", "folder for results.json, results.md and chart.png")
	fs.StringVar(&o.server, "server", "", "a benchserver binary (default: build it)")
	fs.StringVar(&o.doc, "doc", "", "also write the docs page here, e.g. ../docs/benchmarks.md, and rewrite the benchmark regions of README.md and docs/*.md beside it")
	scenarios := fs.String("scenario", strings.Join(allScenarios, ","),
		"comma list of what to run: matrix (callers × payloads), burst, hol (head-of-line: fast calls among slow ones), "+
			"cluster (one client over three servers, one slow, by each balancing policy, in a closed loop and at one offered rate; then one server killed)")
	fs.IntVar(&o.holCallers, "hol-callers", 64, "callers of the head-of-line scenario")
	fs.IntVar(&o.holSlow, "hol-slow", 4, "how many of them make slow calls")
	fs.DurationVar(&o.holDelay, "hol-delay", 20*time.Millisecond, "how long the server holds each slow call")
	fs.IntVar(&o.holConns, "hol-conns", 4, "the connections each client may open in the head-of-line scenario")
	fs.IntVar(&o.clusterCallers, "cluster-callers", 64, "callers of the cluster scenario")
	fs.DurationVar(&o.clusterDelay, "cluster-delay", 5*time.Millisecond, "how long the slow server of the cluster scenario holds each call")
	fs.IntVar(&o.clusterRate, "cluster-rate", 15000, "calls a second the cluster scenario's open-loop rows offer, the same under each policy; 0: no open-loop rows")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, name := range splitList(*implList) {
		if _, ok := impls.Lookup(name); !ok {
			return o, fmt.Errorf("-impls: unknown implementation %q (known: %s)", name, strings.Join(impls.Names(), ", "))
		}
		if !slices.Contains(o.impls, name) {
			o.impls = append(o.impls, name)
		}
	}
	var err error
	if o.callers, err = parseInts("-callers", *callers); err != nil {
		return o, err
	}
	if o.payloads, err = parseInts("-payload", *payload); err != nil {
		return o, err
	}
	switch {
	case len(o.impls) == 0:
		return o, errors.New("-impls: none given")
	case o.duration <= 0:
		return o, errors.New("-duration must be positive")
	case o.warmup < 0:
		return o, errors.New("-warmup must not be negative")
	case o.reps < 1:
		return o, errors.New("-reps must be at least 1")
	case o.burst < 0:
		return o, errors.New("-burst must not be negative")
	}
	if slices.Contains(o.callers, 0) {
		return o, errors.New("-callers: each must be at least 1")
	}
	for _, sc := range splitList(*scenarios) {
		if !slices.Contains(allScenarios, sc) {
			return o, fmt.Errorf("-scenario: unknown %q (known: %s)", sc, strings.Join(allScenarios, ", "))
		}
		if !slices.Contains(o.scenarios, sc) {
			o.scenarios = append(o.scenarios, sc)
		}
	}
	switch {
	case len(o.scenarios) == 0:
		return o, errors.New("-scenario: none given")
	case o.holSlow < 1 || o.holSlow >= o.holCallers:
		return o, errors.New("-hol-slow must be at least 1 and fewer than -hol-callers")
	case o.holDelay <= 0:
		return o, errors.New("-hol-delay must be positive")
	case o.holConns < 1:
		return o, errors.New("-hol-conns must be at least 1")
	case o.clusterCallers < 1:
		return o, errors.New("-cluster-callers must be at least 1")
	case o.clusterDelay <= 0:
		return o, errors.New("-cluster-delay must be positive")
	case o.clusterRate < 0 || o.clusterRate > 1_000_000:
		return o, errors.New("-cluster-rate must be 0 to 1,000,000")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: %q is not a count", flagName, f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: none given", flagName)
	}
	return out, nil
}

func run(o options) (int, error) {
	serverCPU := -1
	if o.pin {
		pinned, err := pin.PinnedTo(1)
		if err != nil {
			return 1, err
		}
		if !pinned {
			for _, cpu := range []int{0, 1} {
				if ok, err := pin.Allowed(cpu); err != nil || !ok {
					return 1, fmt.Errorf("-pin needs CPUs 0 and 1 (CPU %d: allowed %v, %v)", cpu, ok, err)
				}
			}
			// Run again on CPU 1, so that every thread of the harness is
			// there from the start.
			return pin.Reexec(1)
		}
		serverCPU = 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	started := time.Now()

	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return 1, err
	}
	serverPath := o.server
	if serverPath == "" {
		tmp, err := os.MkdirTemp("", "benchall-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(tmp)
		serverPath = filepath.Join(tmp, "benchserver")
		fmt.Fprintln(os.Stderr, "building benchserver ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", serverPath, "myrpc/benchmarks/cmd/benchserver")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return 1, fmt.Errorf("building benchserver (or pass -server): %w", err)
		}
	}

	machine := runner.DescribeMachine(".")
	flags := results.Flags{
		Impls: o.impls, Callers: o.callers, Payloads: o.payloads,
		Duration: o.duration.String(), Warmup: o.warmup.String(),
		Reps: o.reps, Pin: o.pin, Burst: o.burst, Scenarios: o.scenarios,
	}
	if slices.Contains(o.scenarios, "hol") {
		flags.HOLCallers, flags.HOLSlow, flags.HOLDelay, flags.HOLConns = o.holCallers, o.holSlow, o.holDelay.String(), o.holConns
	}
	if slices.Contains(o.scenarios, "cluster") {
		flags.ClusterCallers, flags.ClusterDelay, flags.ClusterRate = o.clusterCallers, o.clusterDelay.String(), o.clusterRate
	}
	cfg := runner.Config{
		Server:    runner.Server{Path: serverPath},
		Warmup:    o.warmup,
		Duration:  o.duration,
		ServerCPU: serverCPU,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}

	// Cell by cell: every implementation at one payload and caller count,
	// one after another, so that the ratios between them compare cases
	// run a minute or two apart, not ten, on a machine whose speed
	// drifts. With several repetitions, each round of a cell runs every
	// implementation once before the next round starts: a slow minute
	// then costs every implementation one repetition, and the medians
	// leave it out.
	var cells [][]step
	if slices.Contains(o.scenarios, "matrix") {
		for _, p := range o.payloads {
			for _, c := range o.callers {
				var cell []step
				for _, impl := range o.impls {
					cs := runner.Case{Impl: impl, Callers: c, Payload: p}
					cell = append(cell, step{label: cs.String(), run: func(ctx context.Context) results.Row { return runner.RunCase(ctx, cfg, cs) }})
				}
				cells = append(cells, cell)
			}
		}
	}
	if slices.Contains(o.scenarios, "hol") {
		var cell []step
		for _, impl := range o.impls {
			if im, _ := impls.Lookup(impl); im.Kind == impls.KindLimit {
				continue // raw TCP does not decode requests: it cannot be asked to wait
			}
			hc := runner.HOLCase{Impl: impl, Callers: o.holCallers, Slow: o.holSlow, Delay: o.holDelay,
				Payload: o.payloads[0], MaxConns: o.holConns}
			cell = append(cell, step{label: hc.String(), run: func(ctx context.Context) results.Row { return runner.RunHOL(ctx, cfg, hc) }})
		}
		cells = append(cells, cell)
	}
	if slices.Contains(o.scenarios, "cluster") {
		var cell []step
		for _, cc := range clusterCases(o) {
			cell = append(cell, step{label: cc.String(), run: func(ctx context.Context) results.Row { return runner.RunCluster(ctx, cfg, cc) }})
		}
		if len(cell) == 0 {
			fmt.Fprintln(os.Stderr, "cluster: none of -impls has a client of many servers (v5 has); skipped")
		} else {
			cells = append(cells, cell)
		}
	}
	nBursts := 0
	if o.burst > 0 && slices.Contains(o.scenarios, "burst") {
		nBursts = len(o.impls)
	}
	nSteps := 0
	for _, cell := range cells {
		nSteps += len(cell)
	}
	prog := newProgress(nSteps*o.reps, nBursts, o.warmup+o.duration)

	var rows []results.Row
	stamp := func(r results.Row) results.Row {
		r.Machine, r.StartedAt, r.Flags = machine, started, flags
		return r
	}
	for _, cell := range cells {
		for _, r := range runCell(ctx, cell, o.reps, prog) {
			rows = append(rows, stamp(r))
		}
		if ctx.Err() != nil {
			break
		}
	}
	if nBursts > 0 && ctx.Err() == nil {
		for _, impl := range o.impls {
			prog.begin(fmt.Sprintf("burst %s goroutines=%d payload=%dB", impl, o.burst, o.payloads[0]))
			r := runner.RunBurst(ctx, cfg, impl, o.burst, o.payloads[0])
			prog.end(r)
			rows = append(rows, stamp(r))
			if ctx.Err() != nil {
				break
			}
		}
	}

	wall := time.Since(started)
	for i := range rows {
		rows[i].RunWallS = wall.Seconds()
	}
	if err := writeOutputs(o, rows); err != nil {
		return 1, err
	}
	fmt.Print(report.Markdown(rows))
	fmt.Fprintf(os.Stderr, "done in %s; wrote %s\n", wall.Round(time.Second), o.out)

	failed := 0
	for _, r := range rows {
		if r.Failed {
			failed++
		}
	}
	switch {
	case ctx.Err() != nil:
		return 1, errors.New("interrupted; the results so far are written")
	case failed > 0:
		return 1, fmt.Errorf("%d of %d cases failed", failed, len(rows))
	}
	return 0, nil
}

// clusterCases are the cases of the cluster scenario: for each of the
// implementations with a client of many servers (V5), each balancing
// policy in a closed loop, each at the offered rate (unless it is 0),
// then a server killed under the default policy, in a closed loop.
func clusterCases(o options) []runner.ClusterCase {
	var out []runner.ClusterCase
	for _, impl := range o.impls {
		if im, _ := impls.Lookup(impl); im.NewClusterClient == nil {
			continue
		}
		cases := []runner.ClusterCase{{Policy: "round_robin"}, {Policy: "p2c"}}
		if o.clusterRate > 0 {
			cases = append(cases, runner.ClusterCase{Policy: "round_robin", Rate: o.clusterRate}, runner.ClusterCase{Policy: "p2c", Rate: o.clusterRate})
		}
		cases = append(cases, runner.ClusterCase{Policy: "p2c", Kill: true})
		for _, cc := range cases {
			cc.Impl, cc.Servers, cc.SlowDelay, cc.Callers, cc.Payload = impl, clusterServers, o.clusterDelay, o.clusterCallers, o.payloads[0]
			out = append(out, cc)
		}
	}
	return out
}

// step is one case of a cell: what the progress line calls it, and how to
// run it once.
type step struct {
	label string
	run   func(context.Context) results.Row
}

// runCell runs the steps of a cell reps times, in rounds: each round runs
// every step once, in order. It returns one row per step, in the steps'
// order: the single run, or with reps above 1 the medians and ranges of
// the repetitions (results.Aggregate).
func runCell(ctx context.Context, cell []step, reps int, prog *progress) []results.Row {
	runs := make([][]results.Row, len(cell))
	for rep := 0; rep < reps && ctx.Err() == nil; rep++ {
		for i, st := range cell {
			if ctx.Err() != nil {
				break
			}
			label := st.label
			if reps > 1 {
				label += fmt.Sprintf(" rep %d/%d", rep+1, reps)
			}
			prog.begin(label)
			r := st.run(ctx)
			prog.end(r)
			runs[i] = append(runs[i], r)
		}
	}
	var out []results.Row
	for _, rs := range runs {
		if len(rs) > 0 {
			out = append(out, results.Aggregate(rs))
		}
	}
	return out
}

// writeOutputs writes results.json, results.md, chart.png and the page.
func writeOutputs(o options, rows []results.Row) error {
	jsonPath := filepath.Join(o.out, "results.json")
	if err := results.Save(jsonPath, rows); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(report.Markdown(rows)), 0o644); err != nil {
		return err
	}
	chartPath := filepath.Join(o.out, "chart.png")
	if slices.ContainsFunc(rows, func(r results.Row) bool { return r.Kind == results.KindCase }) {
		if err := report.WriteChart(rows, chartPath); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
	}
	if o.doc == "" {
		return nil
	}
	return report.WriteDocs(rows, o.doc, chartPath, jsonPath)
}
