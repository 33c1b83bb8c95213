// Package serverproc is the bench server: the server side of one
// implementation, run as its own process so that its CPU time and memory
// can be read from /proc. cmd/benchserver is a thin wrapper around Main;
// the harness's tests run their own binary through it.
//
// The protocol with the harness is two lines on standard output:
//
//	READY 127.0.0.1:40321
//	STATS {"frames_per_write":1.8, ...}
//
// READY once the listener is open; STATS after SIGTERM or SIGINT has stopped
// the server, and only for implementations that count their work. The
// process then exits with status 0.
//
// With -faults a myrpc stage's server also serves the service of package
// faultsvc, whose handler panics, for the soak test.
package serverproc

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"myrpc/benchmarks/internal/cpuprof"
	"myrpc/benchmarks/internal/impls"
	"myrpc/benchmarks/internal/pin"
)

// stopTimeout bounds the graceful stop after a signal.
const stopTimeout = 5 * time.Second

// Main runs the bench server with the command-line arguments args (without
// the program name) and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	impl := fs.String("impl", "", "the implementation to serve: "+strings.Join(impls.Names(), ", "))
	addr := fs.String("addr", "127.0.0.1:0", "listen on host:port")
	cpu := fs.Int("cpu", -1, "run on this CPU alone, with GOMAXPROCS=1 (-1: anywhere)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file: from the READY line to SIGTERM or SIGINT")
	cpuProfileHz := fs.Int("cpuprofile-hz", 0, "with -cpuprofile, samples per second (0: runtime/pprof's 100)")
	faults := fs.Bool("faults", false, "serve the faultsvc service too (a myrpc stage's server only), as the soak test does")
	delay := fs.Duration("delay", 0, "make every Echo call wait this long first (a myrpc stage's server only), as the slow server of the cluster scenario does")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *cpu >= 0 {
		pinned, err := pin.PinnedTo(*cpu)
		if err != nil {
			log.Error("benchserver: cannot read the CPU affinity", "err", err)
			return 1
		}
		if !pinned {
			code, err := pin.Reexec(*cpu)
			if err != nil {
				log.Error("benchserver: cannot run pinned", "cpu", *cpu, "err", err)
				return 1
			}
			return code
		}
		runtime.GOMAXPROCS(1)
	}
	im, ok := impls.Lookup(*impl)
	if !ok {
		log.Error("benchserver: unknown -impl", "impl", *impl, "known", impls.Names())
		return 2
	}
	if err := run(im, impls.Options{Logger: log, Faults: *faults, Delay: *delay}, *addr, *cpuProfile, *cpuProfileHz, stdout, log); err != nil {
		log.Error("benchserver failed", "impl", im.Name, "err", err)
		return 1
	}
	return 0
}

func run(im impls.Impl, o impls.Options, addr, cpuProfile string, cpuProfileHz int, stdout io.Writer, log *slog.Logger) error {
	srv, err := im.NewServer(o)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	stopProfile, err := cpuprof.StartProfile(cpuProfile, cpuProfileHz)
	if err != nil {
		lis.Close()
		return err
	}
	defer stopProfile()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	if _, err := io.WriteString(stdout, "READY "+lis.Addr().String()+"\n"); err != nil {
		srv.Stop(context.Background())
		return err
	}

	select {
	case err := <-errc:
		if err == nil {
			err = errors.New("the server stopped by itself")
		}
		return err
	case <-ctx.Done():
	}
	// The profile is of the serving, not of the stop.
	if err := stopProfile(); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		log.Warn("benchserver: stop", "err", err)
	}
	if err := <-errc; err != nil {
		log.Warn("benchserver: serve", "err", err)
	}
	if c, ok := srv.(impls.Counter); ok {
		b, err := json.Marshal(c.Stats())
		if err != nil {
			return err
		}
		if _, err := io.WriteString(stdout, "STATS "+string(b)+"\n"); err != nil {
			return fmt.Errorf("writing the stats: %w", err)
		}
	}
	return nil
}
