package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/benchmarks/internal/cpuprof"
	"myrpc/benchmarks/internal/runner"
	"myrpc/benchmarks/internal/serverproc"
)

// serverEnv makes this test binary act as the bench server.
const serverEnv = "PROFILE_TEST_BENCHSERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		os.Exit(serverproc.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	// ants (in the V2 server) starts a default pool when it is imported:
	// its goroutines are there before any test runs.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantErr string
	}{
		{[]string{"-stage", "v3"}, "[v3] 64 64 1s 5s 500", ""},
		{[]string{"-stage", "v4, v1,v4", "-callers", "8", "-hz", "100"}, "[v4 v1] 8 64 1s 5s 100", ""},
		{[]string{"-stage", "all"}, "[v1 v2 v3 v4] 64 64 1s 5s 500", ""},
		{nil, "", "-stage: none given"},
		{[]string{"-stage", "grpc"}, "", `unknown "grpc"`},
		{[]string{"-stage", "v1", "-callers", "0"}, "", "-callers"},
		{[]string{"-stage", "v1", "-duration", "0s"}, "", "-duration"},
		{[]string{"-stage", "v1", "-hz", "0"}, "", "-hz"},
		{[]string{"-stage", "v1", "now"}, "", "unexpected arguments"},
	}
	for _, tt := range tests {
		o, err := parseFlags(tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want one mentioning %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if got := fmt.Sprint(o.stages, o.callers, o.payload, o.warmup, o.duration, o.hz); got != tt.want {
			t.Errorf("%q: parsed %s, want %s", tt.args, got, tt.want)
		}
	}
}

// TestProfileStage profiles a short case of V3 end to end, with this test
// binary as the bench server, and checks the files the docs read.
func TestProfileStage(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(serverEnv, "1")
	out := t.TempDir()
	_, dotErr := exec.LookPath("dot")
	o := options{stages: []string{"v3"}, callers: 4, payload: 64, warmup: 100 * time.Millisecond,
		duration: 500 * time.Millisecond, top: 5, out: out, hz: 500, svg: dotErr == nil}
	if err := profileStage(context.Background(), o, exe, "v3", runner.DescribeMachine(".")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, "v3")
	var meta cpuprof.Meta
	readJSON(t, filepath.Join(dir, "meta.json"), &meta)
	if meta.Stage != "v3" || meta.Callers != 4 || meta.Calls == 0 || meta.QPS <= 0 || meta.Cores < 1 || meta.Commit == "" || meta.Date == "" {
		t.Errorf("meta %+v", meta)
	}
	for _, side := range []string{"server", "client"} {
		var s cpuprof.Summary
		readJSON(t, filepath.Join(dir, side+".json"), &s)
		if s.Samples == 0 || len(s.Top) == 0 || len(s.Top) > 5 || len(s.Categories) == 0 {
			t.Errorf("%s: summary %+v", side, s)
		}
		p, err := cpuprof.ReadFile(filepath.Join(dir, side+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		// The client's profile is of the measured window alone.
		if d := time.Duration(p.DurationNanos); side == "client" && (d < o.duration || d > o.duration+time.Second) {
			t.Errorf("the client's profile lasts %v, want the window of %v", d, o.duration)
		}
		if p.Period != 1e9/500 {
			t.Errorf("%s: sampled every %v ns, want %v", side, p.Period, 1e9/500)
		}
		files := []string{side + "-flame.svg"}
		if o.svg {
			files = append(files, side+".svg")
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || !strings.Contains(string(b), "<svg") {
				t.Errorf("%s: %v, %.40q", f, err, b)
			}
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
