package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.uber.org/goleak"

	"myrpc/benchmarks/internal/results"
	"myrpc/benchmarks/internal/serverproc"
)

// serverEnv makes this test binary act as the bench server.
const serverEnv = "RUNNER_TEST_BENCHSERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		os.Exit(serverproc.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	// ants (in the V2 server) starts a default pool when it is imported:
	// its goroutines are there before any test runs.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// testConfig runs the bench servers from this test binary.
func testConfig(t *testing.T) Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Server:    Server{Path: exe, Env: []string{serverEnv + "=1"}},
		Warmup:    100 * time.Millisecond,
		Duration:  200 * time.Millisecond,
		ServerCPU: -1,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// TestRunCase runs real cases end to end: a server process per case,
// closed-loop callers, and every measure filled in.
func TestRunCase(t *testing.T) {
	cfg := testConfig(t)
	for _, impl := range []string{"raw-conn", "v1"} {
		for _, callers := range []int{1, 4} {
			c := Case{Impl: impl, Callers: callers, Payload: 64}
			t.Run(c.String(), func(t *testing.T) {
				r := RunCase(context.Background(), cfg, c)
				if r.Failed {
					t.Fatalf("failed: %s", r.FailReason)
				}
				if r.Kind != results.KindCase || r.Impl != impl || r.Callers != callers || r.PayloadBytes != 64 || r.Reps != 1 {
					t.Errorf("row names the wrong case: %+v", r)
				}
				if r.Errors != 0 {
					t.Errorf("%d errors: %v", r.Errors, r.ErrorSamples)
				}
				if r.Calls == 0 || r.QPS <= 0 {
					t.Errorf("calls %d, QPS %v", r.Calls, r.QPS)
				}
				if r.WindowS < 0.2 || r.WindowS > 1 {
					t.Errorf("window %v s, want about 0.2", r.WindowS)
				}
				if !(0 < r.P50US && r.P50US <= r.P99US && r.P99US <= r.P999US && r.P999US <= r.MaxUS) {
					t.Errorf("percentiles out of order: p50 %v p99 %v p999 %v max %v", r.P50US, r.P99US, r.P999US, r.MaxUS)
				}
				if r.ServerRSSKiB <= 0 {
					t.Errorf("server RSS %d KiB", r.ServerRSSKiB)
				}
				if r.ServerCPUUSPerCall < 0 || r.ClientCPUUSPerCall <= 0 {
					t.Errorf("CPU per call: server %v, client %v", r.ServerCPUUSPerCall, r.ClientCPUUSPerCall)
				}
				if impl == "raw-conn" && (r.FramesPerWrite <= 0 || r.ServerStats["frames"] <= 0) {
					t.Errorf("raw-conn reported no frames per write: %v", r.ServerStats)
				}
				if impl == "v1" && r.FramesPerWrite != 0 {
					t.Errorf("v1 reported frames per write %v", r.FramesPerWrite)
				}
			})
		}
	}
}

func TestRunCaseFailures(t *testing.T) {
	good := testConfig(t)
	noServer := good
	noServer.Server = Server{Path: "/nonexistent/benchserver"}
	exits := good
	exits.Server.Args = []string{"-no-such-flag"}
	tests := []struct {
		name string
		cfg  Config
		c    Case
		want string
	}{
		{"unknown implementation", good, Case{Impl: "v9", Callers: 1, Payload: 64}, "unknown implementation"},
		{"no such server binary", noServer, Case{Impl: "raw-conn", Callers: 1, Payload: 64}, "starting"},
		{"server exits at once", exits, Case{Impl: "raw-conn", Callers: 1, Payload: 64}, "exited before it was ready"},
		{"no callers", good, Case{Impl: "raw-conn", Callers: 0, Payload: 64}, "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RunCase(context.Background(), tt.cfg, tt.c)
			if !r.Failed || !strings.Contains(r.FailReason, tt.want) {
				t.Fatalf("failed %v, reason %q; want a failure mentioning %q", r.Failed, r.FailReason, tt.want)
			}
		})
	}
}

func TestRunBurst(t *testing.T) {
	cfg := testConfig(t)
	for _, impl := range []string{"raw-pipe", "v1"} {
		t.Run(impl, func(t *testing.T) {
			r := RunBurst(context.Background(), cfg, impl, 200, 64)
			if r.Failed {
				t.Fatalf("failed: %s", r.FailReason)
			}
			if r.Kind != results.KindBurst || r.Callers != 200 {
				t.Errorf("row names the wrong burst: %+v", r)
			}
			if r.Calls+r.Errors != 200 || r.Errors != 0 {
				t.Errorf("ok %d + errors %d, want 200 + 0: %v", r.Calls, r.Errors, r.ErrorSamples)
			}
			if r.WindowS <= 0 || r.P99US <= 0 || r.P99US < r.P50US {
				t.Errorf("elapsed %v s, p50 %v, p99 %v", r.WindowS, r.P50US, r.P99US)
			}
		})
	}
}

func TestErrorCounts(t *testing.T) {
	e := errorCounts{}
	for i := range 5 {
		e.add(fmt.Errorf("read tcp 127.0.0.1:%d->127.0.0.1:4000: i/o timeout", 50000+i))
	}
	e.add(errors.New("boom"))
	for i := range 20 {
		e.add(fmt.Errorf("distinct %d", i))
	}
	got := e.samples(3)
	want := []string{"14× (other errors)", "5× read tcp 127.0.0.1:*->127.0.0.1:4000: i/o timeout", "1× boom"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("samples = %q, want %q", got, want)
	}
	if len(e) > maxDistinctErrors+1 {
		t.Fatalf("kept %d distinct messages", len(e))
	}
	m := errorCounts{"boom": 2}
	m.merge(e)
	if m["boom"] != 3 {
		t.Fatalf("merge: boom counted %d times, want 3", m["boom"])
	}
}

func TestDeadlines(t *testing.T) {
	var d deadlines
	defer d.stop()
	t0 := time.Now()
	a := d.get(context.Background(), t0, 5*time.Second)
	if b := d.get(context.Background(), t0.Add(500*time.Millisecond), 5*time.Second); b != a {
		t.Fatal("a context was not reused within the second")
	}
	c := d.get(context.Background(), t0.Add(1500*time.Millisecond), 5*time.Second)
	if c == a {
		t.Fatal("the context was not renewed after a second")
	}
	if a.Err() == nil {
		t.Fatal("the old context was not cancelled")
	}
	dl, _ := c.Deadline()
	if got := dl.Sub(t0.Add(1500 * time.Millisecond)); got != 5*time.Second+renewEvery {
		t.Fatalf("deadline %v after the call start, want %v", got, 5*time.Second+renewEvery)
	}
}

// TestRunCaseProfiled: a server started with -cpuprofile writes a profile
// that pprof reads once it has stopped, and Measured frames the measured
// window, once.
func TestRunCaseProfiled(t *testing.T) {
	cfg := testConfig(t)
	path := filepath.Join(t.TempDir(), "server.pprof")
	cfg.Server.Args = []string{"-cpuprofile", path}
	var opened, closed int
	var openedAt, closedAt time.Time
	cfg.Measured = func() func() {
		opened++
		openedAt = time.Now()
		return func() { closed++; closedAt = time.Now() }
	}
	r := RunCase(context.Background(), cfg, Case{Impl: "v1", Callers: 2, Payload: 64})
	if r.Failed {
		t.Fatalf("failed: %s", r.FailReason)
	}
	if opened != 1 || closed != 1 {
		t.Fatalf("the window opened %d and closed %d times, want 1 and 1", opened, closed)
	}
	if d := closedAt.Sub(openedAt); d < cfg.Duration {
		t.Errorf("the window lasted %v, want at least %v", d, cfg.Duration)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("the server's profile: %v", err)
	}
	if len(p.SampleType) < 2 || p.SampleType[1].Type != "cpu" {
		t.Fatalf("sample types %v, want a CPU profile", p.SampleType)
	}
}
