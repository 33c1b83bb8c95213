// Command soak is the project's chaos test: it soaks every stage in turn
// (package soak says how) and prints a table of what it found, a row per
// stage. It exits 1 if a stage had cross-talk, a hang, no recovery, a leak,
// or any other failure.
//
//	soak [-duration 60s] [-stages v1,v2,v3,v4,v5] [-seed N] [-out FILE]
//
// The environment variables SOAK_DURATION, SOAK_STAGES and SOAK_SEED set
// the defaults of the flags. The seed is printed at the start: the same
// seed replays the same schedule of faults and restarts. With -out the
// results are written as JSON, which `make ladder` renders into
// docs/reliability.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"myrpc/benchmarks/internal/runner"
	"myrpc/benchmarks/internal/soak"
)

type options struct {
	duration time.Duration
	stages   []string
	seed     uint64
	out      string
	server   string
	callers  int
	verbose  bool
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var o options
	defDuration := 60 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("SOAK_DURATION: %w", err)
		}
		defDuration = d
	}
	defStages := "v1,v2,v3,v4,v5"
	if v := os.Getenv("SOAK_STAGES"); v != "" {
		defStages = v
	}
	var defSeed uint64
	if v := os.Getenv("SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return o, fmt.Errorf("SOAK_SEED: %w", err)
		}
		defSeed = s
	}
	var stages string
	fs.DurationVar(&o.duration, "duration", defDuration, "how long the faults go on in each stage (env SOAK_DURATION)")
	fs.StringVar(&stages, "stages", defStages, "the stages to soak, comma-separated (env SOAK_STAGES)")
	fs.Uint64Var(&o.seed, "seed", defSeed, "the seed of the schedule of faults and restarts; 0: a new one (env SOAK_SEED)")
	fs.StringVar(&o.out, "out", "", "write the results as JSON to this file")
	fs.StringVar(&o.server, "server", "", "a benchserver binary (default: build it)")
	fs.IntVar(&o.callers, "callers", soak.DefaultCallers, "caller goroutines")
	fs.BoolVar(&o.verbose, "v", false, "log the clients' warnings to standard error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, s := range strings.Split(stages, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		switch s {
		case "":
			continue
		case "v1", "v2", "v3", "v4", "v5":
			o.stages = append(o.stages, s)
		default:
			return o, fmt.Errorf("unknown stage %q (want v1, v2, v3, v4 or v5)", s)
		}
	}
	if len(o.stages) == 0 {
		return o, errors.New("no stage to soak")
	}
	if o.duration <= 0 {
		return o, errors.New("the duration must be positive")
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return o, nil
}

func run(o options) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("soak: seed %d (replay: SOAK_SEED=%d), %v of faults per stage, stages %s, %d callers\n",
		o.seed, o.seed, o.duration, strings.Join(o.stages, ","), o.callers)

	serverPath := o.server
	if serverPath == "" {
		tmp, err := os.MkdirTemp("", "soak")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(tmp)
		serverPath = filepath.Join(tmp, "benchserver")
		build := exec.CommandContext(ctx, "go", "build", "-o", serverPath, "myrpc/benchmarks/cmd/benchserver")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return 1, fmt.Errorf("building benchserver (or pass -server): %w", err)
		}
	}
	logOut := io.Discard
	if o.verbose {
		logOut = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn}))

	m := runner.DescribeMachine(".")
	f := soak.File{
		Duration:  o.duration.String(),
		Seed:      o.seed,
		Commit:    m.GitCommit,
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		GoVersion: runtime.Version(),
		Cores:     runtime.NumCPU(),
		Callers:   o.callers,
	}
	failed := 0
	for _, st := range o.stages {
		fmt.Printf("soak %s: start\n", st)
		res, err := soak.Run(ctx, soak.Config{
			Stage:    st,
			Server:   serverPath,
			Duration: o.duration,
			Seed:     o.seed,
			Callers:  o.callers,
			Progress: os.Stdout,
			Logger:   logger,
		})
		if err != nil {
			return 1, err
		}
		f.Stages = append(f.Stages, res)
		verdict := "pass"
		if !res.Passed() {
			verdict = "FAIL: " + strings.Join(res.Failures, "; ")
			failed++
		}
		fmt.Printf("soak %s: %s\n", st, verdict)
	}

	fmt.Printf("\nsoak: seed %d, %v of faults per stage\n\n", o.seed, o.duration)
	fmt.Print(soak.Table(f.Stages))
	if fl := soak.Failures(f.Stages); fl != "" {
		fmt.Print("\nFailures (replay with SOAK_SEED=" + strconv.FormatUint(o.seed, 10) + "):\n\n" + fl)
	}
	if o.out != "" {
		if err := f.Write(o.out); err != nil {
			return 1, err
		}
		fmt.Println("\nwrote", o.out)
	}
	if failed > 0 {
		return 1, fmt.Errorf("%d of %d stages failed", failed, len(o.stages))
	}
	return 0, nil
}
