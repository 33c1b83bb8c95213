package soak

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/benchmarks/internal/serverproc"
)

// serverEnv makes this test binary act as the bench server.
const serverEnv = "SOAK_TEST_BENCHSERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		os.Exit(serverproc.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	// ants (in the V2 server) starts a default pool when it is imported.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

func TestRestartSchedule(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 10 * time.Second, 60 * time.Second} {
		a := restartSchedule(rand.New(rand.NewPCG(7, 2)), d)
		b := restartSchedule(rand.New(rand.NewPCG(7, 2)), d)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%v: the same seed gave two schedules", d)
		}
		want := max(1, int(d/restartEvery))
		if len(a) != want {
			t.Fatalf("%v: %d restarts, want %d", d, len(a), want)
		}
		slot := d / time.Duration(want)
		for i, ev := range a {
			lo, hi := time.Duration(i)*slot, time.Duration(i+1)*slot
			if ev.at < lo || ev.at >= hi || ev.down < 0 || ev.down > maxDown {
				t.Errorf("%v: restart %d %+v is not inside its slot [%v, %v)", d, i, ev, lo, hi)
			}
		}
		if len(a) >= 2 && a[0].kill == a[1].kill {
			t.Errorf("%v: the first two restarts are of one kind", d)
		}
	}
	if reflect.DeepEqual(restartSchedule(rand.New(rand.NewPCG(7, 2)), time.Minute), restartSchedule(rand.New(rand.NewPCG(8, 2)), time.Minute)) {
		t.Error("two seeds gave one schedule")
	}
}

func TestPayload(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	seen := map[string]bool{}
	big := 0
	for seq := range uint64(2000) {
		b := makePayload(rng, 42, seq)
		if len(b) < headerLen || len(b) > maxBig {
			t.Fatalf("payload of %d bytes", len(b))
		}
		if len(b) > maxPayload {
			big++
		}
		if binary.BigEndian.Uint32(b) != 42 || binary.BigEndian.Uint64(b[4:]) != seq {
			t.Fatalf("header %x", b[:headerLen])
		}
		if seen[string(b)] {
			t.Fatal("two calls sent the same bytes")
		}
		seen[string(b)] = true
	}
	if big == 0 || big > 200 {
		t.Errorf("%d of 2000 payloads are big", big)
	}
	if got := describePayload(makePayload(rng, 3, 9)); !strings.Contains(got, "caller 3 seq 9") {
		t.Errorf("describePayload: %q", got)
	}
}

// clean is a result that passes.
func clean() Result {
	return Result{Stage: "v2", Calls: 100, OK: 90, Errors: map[string]int64{"Unavailable": 10},
		Recovered: true, RecoveryMS: 1200, Kills: 1, Terms: 1,
		RSSStartKiB: 20000, RSSEndKiB: 21000, FDsStart: 10, FDsEnd: 10, GoroutinesStart: 5, GoroutinesEnd: 6}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Result)
		want   string
	}{
		{"clean", func(*Result) {}, ""},
		{"cross-talk", func(r *Result) { r.CrossTalk = 1 }, "cross-talk"},
		{"hang", func(r *Result) { r.Hangs = 2 }, "hangs"},
		{"no status", func(r *Result) { r.NoStatus = 1 }, "no status code"},
		{"panic succeeded", func(r *Result) { r.WrongResults = 1 }, "panicking method succeeded"},
		{"crash", func(r *Result) { r.Crashes = 1 }, "exited by itself"},
		{"no recovery", func(r *Result) { r.Recovered = false }, "no recovery"},
		{"fd leak", func(r *Result) { r.FDsEnd = r.FDsStart + FDSlack + 1 }, "open files"},
		{"fds within slack", func(r *Result) { r.FDsEnd = r.FDsStart + FDSlack }, ""},
		{"memory", func(r *Result) { r.RSSEndKiB = RSSFactor*r.RSSStartKiB + RSSSlackKiB + 1 }, "resident memory"},
		{"goroutines", func(r *Result) { r.GoroutinesEnd = r.GoroutinesStart + GoroutineSlack + 1 }, "goroutines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := clean()
			tt.change(&r)
			r.check()
			got := strings.Join(r.Failures, "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("failures %q, want %q", got, tt.want)
			}
			if r.Passed() != (tt.want == "") {
				t.Fatalf("Passed() = %v", r.Passed())
			}
		})
	}
}

func TestTableAndFile(t *testing.T) {
	bad := clean()
	bad.Stage = "v3"
	bad.Hangs = 3
	bad.Recovered = false
	bad.Samples = map[string][]string{"hang": {"caller 1 seq 2: Echo came back after 3.2s"}}
	bad.check()
	f := File{Duration: "1m0s", Seed: 5, Commit: "abc", Date: "2026-01-02 03:04 UTC", Stages: []Result{clean(), bad}}
	path := filepath.Join(t.TempDir(), "soak", "latest.json")
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	g, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("read back %+v, want %+v", g, f)
	}
	table := Table(g.Stages)
	for _, want := range []string{"| V2 | 100 | 90 | Unavailable 10 | 0 | 0 | 1.2 s | 1 / 1 |", "| V3 |", "**none**", "**fail**", "pass |"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	if Table(g.Stages) != table {
		t.Error("the table is not deterministic")
	}
	fl := Failures(g.Stages)
	if !strings.Contains(fl, "- V3:") || !strings.Contains(fl, "hang: `caller 1 seq 2") || strings.Contains(fl, "V2") {
		t.Errorf("failures:\n%s", fl)
	}
}

// TestRun soaks a stage for a moment, end to end, with this test binary as
// the bench server: the machinery works, a healthy run passes, and nothing
// it started is left behind (TestMain checks the goroutines).
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak of several seconds")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(serverEnv, "1")
	var progress strings.Builder
	res, err := Run(context.Background(), Config{
		Stage:    "v2",
		Server:   exe,
		Duration: 2 * time.Second,
		Seed:     1,
		Callers:  8,
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v\n%s", res, progress.String())
	if res.Calls == 0 || res.OK == 0 || res.Kills+res.Terms != 1 || res.FDsStart == 0 || res.RSSStartKiB == 0 {
		t.Errorf("implausible result: %+v", res)
	}
	// A healthy stage on a busy machine may still see its callers stall
	// for a moment; only the soak's own failures are checked here.
	for _, f := range res.Failures {
		if res.CrossTalk > 0 || res.NoStatus > 0 || res.WrongResults > 0 || res.Crashes > 0 {
			t.Errorf("failure: %s", f)
		}
	}
}
