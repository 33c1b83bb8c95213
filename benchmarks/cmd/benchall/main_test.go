package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
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
				o.duration != 10*time.Second || o.warmup != 3*time.Second || o.reps != 1 || o.burst != 20000 || o.pin {
				return fmt.Errorf("defaults %+v", o)
			}
			if len(o.impls) < 5 || o.impls[0] != "v1" {
				return fmt.Errorf("default impls %v", o.impls)
			}
			return nil
		}, ""},
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
