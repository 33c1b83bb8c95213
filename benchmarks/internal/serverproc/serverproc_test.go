package serverproc

import (
	"bytes"
	"strings"
	"testing"
)

// The serving path runs in the runner's end-to-end tests, which use their
// own test binary as the bench server; these cover the refusals.
func TestMainRefuses(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown implementation", []string{"-impl", "v9"}, 2, "unknown -impl"},
		{"no implementation", nil, 2, "unknown -impl"},
		{"unknown flag", []string{"-bogus"}, 2, "flag provided but not defined"},
		{"address in use or invalid", []string{"-impl", "raw-conn", "-addr", "256.0.0.1:0"}, 1, "benchserver failed"},
		{"profile it cannot write", []string{"-impl", "raw-conn", "-cpuprofile", "/nonexistent/dir/cpu.pprof"}, 1, "cpu profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q on stdout", stdout.String())
			}
		})
	}
}
