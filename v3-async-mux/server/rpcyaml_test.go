package server

import (
	"os"
	"slices"
	"strings"
	"testing"

	"myrpc/v3-async-mux/config"
)

// TestRPCYAMLShowsTheDefaults: the server settings the stage's rpc.yaml
// shows are the server's defaults, as the file says. (shutdown_timeout is
// cmd/server's, and checked there.)
func TestRPCYAMLShowsTheDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, d := cfg.Server, defaultOptions()
	checkShown(t, "server.", []string{"server.services", "server.shutdown_timeout"}, map[string][2]any{
		"server.max_frame_bytes": {s.MaxFrameBytes, d.maxFrameSize},
		"server.frame_timeout":   {s.FrameTimeout, d.frameTimeout},
		"server.idle_timeout":    {s.IdleTimeout, d.idleTimeout},
		"server.write_timeout":   {s.WriteTimeout, d.writeTimeout},
		"server.max_conns":       {s.MaxConns, d.maxConns},
		"server.max_timeout":     {s.MaxTimeout, d.maxTimeout},
		"server.workers":         {s.Workers, d.workers},
		"server.max_conn_calls":  {s.MaxConnCalls, d.maxConnCalls},
		"server.max_conn_bytes":  {s.MaxConnBytes, d.maxConnBytes},
	})
}

// checkShown checks that every setting rpc.yaml shows under prefix, but
// those that start with one in skip, is in want, and that the file shows want's default for it.
func checkShown(t *testing.T, prefix string, skip []string, want map[string][2]any) {
	t.Helper()
	data, err := os.ReadFile("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := config.Keys(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || slices.ContainsFunc(skip, func(p string) bool { return strings.HasPrefix(k, p) }) {
			continue
		}
		v, ok := want[k]
		if !ok {
			t.Errorf("rpc.yaml shows %s, which this test does not check: add it", k)
			continue
		}
		if v[0] != v[1] {
			t.Errorf("rpc.yaml shows %s: %v, but the default is %v", k, v[0], v[1])
		}
	}
}
