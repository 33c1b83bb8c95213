// Command profile runs one case of one stage with both sides' CPU
// profiled, and writes what the chapters show of the profiles:
//
//	profile -stage v3 -out results/profile
//
// The case is benchall's (a fresh benchserver, the callers in this
// process), 64 callers and a 64-byte payload by default. The server
// profiles itself from the moment it listens until it is told to stop
// (benchserver -cpuprofile); this process profiles the measured window
// only. Into OUT/STAGE/ it writes:
//
//	server.pprof, client.pprof   the raw profiles (go tool pprof reads them)
//	server.json, client.json     the top functions and the categories (cpuprof.Summary)
//	server.svg, client.svg       pprof's call graph (go tool pprof -svg; needs dot)
//	server-flame.svg, client-flame.svg   a flame graph (cpuprof.WriteFlame)
//	meta.json                    the commit, the machine and the case's calls and QPS
//
// make profile STAGE=vN runs it, and then make bench-docs.
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

	"myrpc/benchmarks/internal/cpuprof"
	"myrpc/benchmarks/internal/impls"
	"myrpc/benchmarks/internal/results"
	"myrpc/benchmarks/internal/runner"
)

// stages are the implementations profile takes.
var stages = []string{"v1", "v2", "v3", "v4"}

type options struct {
	stages   []string
	callers  int
	payload  int
	warmup   time.Duration
	duration time.Duration
	top      int
	out      string
	server   string
	svg      bool
	hz       int
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	var o options
	stage := fs.String("stage", "", "comma list of the stages to profile: "+strings.Join(stages, ", ")+", or all")
	fs.IntVar(&o.callers, "callers", 64, "concurrent callers")
	fs.IntVar(&o.payload, "payload", 64, "payload size in bytes")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time, over which the client is profiled")
	fs.IntVar(&o.top, "top", 15, "how many functions the top tables keep")
	fs.StringVar(&o.out, "out", "results/profile", "folder for a folder per stage")
	fs.StringVar(&o.server, "server", "", "a benchserver binary (default: build it)")
	fs.IntVar(&o.hz, "hz", 500, "samples per second of both profiles (runtime/pprof's own is 100, too few for a 5-second case)")
	fs.BoolVar(&o.svg, "svg", true, "also write pprof's call graphs (go tool pprof -svg, which needs Graphviz's dot)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, s := range strings.Split(*stage, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			o.stages = stages
		case slices.Contains(stages, s):
			if !slices.Contains(o.stages, s) {
				o.stages = append(o.stages, s)
			}
		case s != "":
			return o, fmt.Errorf("-stage: unknown %q (known: %s, all)", s, strings.Join(stages, ", "))
		}
	}
	switch {
	case len(o.stages) == 0:
		return o, errors.New("-stage: none given")
	case o.callers < 1:
		return o, errors.New("-callers must be at least 1")
	case o.payload < 0:
		return o, errors.New("-payload must not be negative")
	case o.duration <= 0:
		return o, errors.New("-duration must be positive")
	case o.warmup < 0:
		return o, errors.New("-warmup must not be negative")
	case o.hz < 1:
		return o, errors.New("-hz must be at least 1")
	case o.top < 1:
		return o, errors.New("-top must be at least 1")
	}
	return o, nil
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	serverPath := o.server
	if serverPath == "" {
		tmp, err := os.MkdirTemp("", "profile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		serverPath = filepath.Join(tmp, "benchserver")
		fmt.Fprintln(os.Stderr, "building benchserver ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", serverPath, "myrpc/benchmarks/cmd/benchserver")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building benchserver (or pass -server): %w", err)
		}
	}
	// The commit is read once, before any stage writes its folder: the
	// stages profiled after the first would otherwise find the tree
	// changed by the first's results, and call their commit dirty.
	m := runner.DescribeMachine(".")
	for _, stage := range o.stages {
		if err := profileStage(ctx, o, serverPath, stage, m); err != nil {
			return fmt.Errorf("%s: %w", stage, err)
		}
	}
	return nil
}

// profileStage runs the case of one stage and writes its folder.
func profileStage(ctx context.Context, o options, serverPath, stage string, m results.Machine) error {
	if _, ok := impls.Lookup(stage); !ok {
		return fmt.Errorf("no implementation %q", stage)
	}
	dir := filepath.Join(o.out, stage)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	serverProf, clientProf := filepath.Join(dir, "server.pprof"), filepath.Join(dir, "client.pprof")
	var (
		profErr     error
		stopProfile = func() error { return nil }
	)
	defer func() { stopProfile() }()
	cfg := runner.Config{
		Server:    runner.Server{Path: serverPath, Args: []string{"-cpuprofile", serverProf, "-cpuprofile-hz", strconv.Itoa(o.hz)}},
		Warmup:    o.warmup,
		Duration:  o.duration,
		ServerCPU: -1,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Measured: func() func() {
			if stopProfile, profErr = cpuprof.StartProfile(clientProf, o.hz); profErr != nil {
				stopProfile = func() error { return nil }
			}
			return func() {
				if err := stopProfile(); profErr == nil {
					profErr = err
				}
			}
		},
	}
	meta := cpuprof.Meta{Stage: stage, Callers: o.callers, PayloadBytes: o.payload,
		Warmup: o.warmup.String(), Duration: o.duration.String()}
	meta.LoadBefore = cpuprof.LoadAverage()
	meta.Commit, meta.Cores, meta.GOMAXPROCS, meta.GoVersion, meta.CPUModel = m.GitCommit, m.Cores, m.GOMAXPROCS, m.GoVersion, m.CPUModel
	meta.Date = time.Now().UTC().Format(time.RFC3339)

	c := runner.Case{Impl: stage, Callers: o.callers, Payload: o.payload}
	fmt.Fprintf(os.Stderr, "profiling %s, %d samples a second ...\n", c, o.hz)
	if o.hz != 100 {
		fmt.Fprintln(os.Stderr, "(the runtime then says it cannot set the profile rate: it has, see cpuprof.StartProfile)")
	}
	row := runner.RunCase(ctx, cfg, c)
	if profErr != nil {
		return fmt.Errorf("the client's profile: %w", profErr)
	}
	if row.Failed {
		return fmt.Errorf("the case failed: %s", row.FailReason)
	}
	meta.LoadAfter = cpuprof.LoadAverage()
	meta.Calls, meta.Errors, meta.QPS, meta.WindowS = row.Calls, row.Errors, row.QPS, row.WindowS
	meta.ServerCPUUSPerCall, meta.ClientCPUUSPerCall = row.ServerCPUUSPerCall, row.ClientCPUUSPerCall

	for _, side := range []string{"server", "client"} {
		raw := filepath.Join(dir, side+".pprof")
		p, err := cpuprof.ReadFile(raw)
		if err != nil {
			return err
		}
		sum, err := cpuprof.Summarize(p, o.top)
		if err != nil {
			return fmt.Errorf("%s: %w", raw, err)
		}
		if err := cpuprof.WriteJSON(filepath.Join(dir, side+".json"), sum); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(dir, side+"-flame.svg"))
		if err != nil {
			return err
		}
		title := fmt.Sprintf("%s %s, %d callers, %d B: CPU of the %s", stage, side, o.callers, o.payload, side)
		werr := cpuprof.WriteFlame(f, p, title)
		if err := errors.Join(werr, f.Close()); err != nil {
			return err
		}
		if o.svg {
			out := filepath.Join(dir, side+".svg")
			cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-svg", "-output", out, raw)
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go tool pprof -svg %s: %v: %s", raw, err, b)
			}
		}
		fmt.Printf("%s %s: %.1f s of CPU in %d samples\n%s\n", stage, side, sum.CPUSeconds, sum.Samples, cpuprof.TopText(sum))
	}
	fmt.Printf("%s: %d calls, %.0f calls/s\n\n", stage, row.Calls, row.QPS)
	return cpuprof.WriteJSON(filepath.Join(dir, "meta.json"), meta)
}
