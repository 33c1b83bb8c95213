package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"myrpc/benchmarks/internal/results"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(o options) error
		wantErr string
	}{
		{"defaults", nil, func(o options) error {
			if fmt.Sprint(o.callers) != "[1 64 1000]" || fmt.Sprint(o.payloads) != "[64 1024]" ||
				o.duration != 2*time.Second || o.warmup != time.Second || o.reps != 3 || o.burst != 20000 || o.pin {
				return fmt.Errorf("defaults %+v", o)
			}
			if len(o.impls) < 5 || o.impls[0] != "v1" {
				return fmt.Errorf("default impls %v", o.impls)
			}
			if fmt.Sprint(o.scenarios) != "[matrix burst hol cluster]" || o.clusterCallers != 64 || o.clusterDelay != 5*time.Millisecond || o.clusterRate != 15000 {
				return fmt.Errorf("default scenarios %v, cluster callers %d, delay %v, rate %d", o.scenarios, o.clusterCallers, o.clusterDelay, o.clusterRate)
			}
			return nil
		}, ""},
		{"cluster", []string{"-scenario", "cluster", "-cluster-callers", "8", "-cluster-delay", "2ms"}, func(o options) error {
			if fmt.Sprint(o.scenarios) != "[cluster]" || o.clusterCallers != 8 || o.clusterDelay != 2*time.Millisecond {
				return fmt.Errorf("parsed %+v", o)
			}
			return nil
		}, ""},
		{"no cluster delay", []string{"-cluster-delay", "0s"}, nil, "-cluster-delay"},
		{"negative cluster rate", []string{"-cluster-rate", "-1"}, nil, "-cluster-rate"},
		{"cluster rate too high", []string{"-cluster-rate", "2000000"}, nil, "-cluster-rate"},
		{"lists", []string{"-impls", "raw-conn, grpc,grpc", "-callers", "4,1", "-payload", "0", "-reps", "3", "-burst", "0"}, func(o options) error {
			if fmt.Sprint(o.impls) != "[raw-conn grpc]" || fmt.Sprint(o.callers) != "[4 1]" || fmt.Sprint(o.payloads) != "[0]" || o.reps != 3 || o.burst != 0 {
				return fmt.Errorf("parsed %+v", o)
			}
			return nil
		}, ""},
		{"unknown implementation", []string{"-impls", "v1,http"}, nil, `unknown implementation "http"`},
		{"no callers", []string{"-callers", ","}, nil, "-callers: none given"},
		{"zero callers", []string{"-callers", "0"}, nil, "at least 1"},
		{"bad payload", []string{"-payload", "1k"}, nil, "-payload"},
		{"no reps", []string{"-reps", "0"}, nil, "-reps"},
		{"stray argument", []string{"now"}, nil, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.check(o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestClusterCases: the cluster scenario runs each policy in a closed loop
// and at the offered rate, and a kill, for V5, and nothing for a stage
// without a client of many servers.
func TestClusterCases(t *testing.T) {
	o, err := parseFlags([]string{"-impls", "v4,v5", "-payload", "128", "-cluster-callers", "8", "-cluster-rate", "2000"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cc := range clusterCases(o) {
		if cc.Servers != 3 || cc.Callers != 8 || cc.Payload != 128 || cc.SlowDelay != 5*time.Millisecond {
			t.Errorf("case %+v", cc)
		}
		got = append(got, cc.String())
	}
	want := []string{
		"cluster v5 policy=round_robin servers=3 slow=5ms callers=8",
		"cluster v5 policy=p2c servers=3 slow=5ms callers=8",
		"cluster v5 policy=round_robin servers=3 slow=5ms callers=8 rate=2000/s",
		"cluster v5 policy=p2c servers=3 slow=5ms callers=8 rate=2000/s",
		"cluster v5 policy=p2c servers=3 slow=5ms callers=8 kill",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cases %q, want %q", got, want)
	}
	o.clusterRate = 0
	if cs := clusterCases(o); len(cs) != 3 {
		t.Errorf("with rate 0: %d cases, want the three closed-loop ones", len(cs))
	}
	o.impls = []string{"v4"}
	if cs := clusterCases(o); len(cs) != 0 {
		t.Errorf("cases for v4 alone: %v", cs)
	}
}

func TestProgressEstimate(t *testing.T) {
	p := newProgress(4, 2, 10*time.Second)
	// Before anything ran: 4 cases of 10 s + 1 s, 2 bursts of 5 s.
	if got, want := p.left(), 54*time.Second; got != want {
		t.Fatalf("left %v, want %v", got, want)
	}
	if got := fmtLeft(4*time.Minute + 10*time.Second); got != "4m10s" {
		t.Fatalf("fmtLeft = %q", got)
	}
	if got := fmtLeft(42 * time.Second); got != "42s" {
		t.Fatalf("fmtLeft = %q", got)
	}
}

func TestRunCellRounds(t *testing.T) {
	var order []string
	qps := map[string][]float64{"a": {10, 30, 20}, "b": {5, 1, 9}}
	mk := func(name string) step {
		n := 0
		return step{label: name, run: func(context.Context) results.Row {
			order = append(order, name)
			r := results.Row{Kind: results.KindCase, Impl: name, Callers: 1, QPS: qps[name][n], Calls: 1}
			n++
			return r
		}}
	}
	prog := newProgress(6, 0, time.Millisecond)
	rows := runCell(context.Background(), []step{mk("a"), mk("b")}, 3, prog)
	// Each round runs every step once: a slow moment hits a round of the
	// cell, not all the repetitions of one implementation.
	if got := strings.Join(order, ","); got != "a,b,a,b,a,b" {
		t.Fatalf("order %s, want a,b,a,b,a,b", got)
	}
	if len(rows) != 2 || rows[0].Impl != "a" || rows[1].Impl != "b" {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].QPS != 20 || rows[0].QPSMin != 10 || rows[0].QPSMax != 30 || rows[0].Reps != 3 {
		t.Fatalf("a: median %v range %v-%v reps %d, want 20, 10-30, 3", rows[0].QPS, rows[0].QPSMin, rows[0].QPSMax, rows[0].Reps)
	}
	if rows[1].QPS != 5 {
		t.Fatalf("b: median %v, want 5", rows[1].QPS)
	}
}

func TestRunCellStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	st := step{label: "a", run: func(context.Context) results.Row {
		runs++
		cancel()
		return results.Row{Kind: results.KindCase, Impl: "a", Failed: true, FailReason: "interrupted"}
	}}
	rows := runCell(ctx, []step{st, st}, 3, newProgress(6, 0, time.Millisecond))
	if runs != 1 || len(rows) != 1 {
		t.Fatalf("%d runs, %d rows after the cancel; want 1 and 1", runs, len(rows))
	}
}
