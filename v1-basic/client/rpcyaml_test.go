package client

import (
	"os"
	"slices"
	"strings"
	"testing"

	"myrpc/v1-basic/config"
)

// TestRPCYAMLShowsTheDefaults: the client settings the stage's rpc.yaml
// shows are the client's defaults, as the file says. (The target is an
// address, with no default.)
func TestRPCYAMLShowsTheDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, d := cfg.Client, defaultOptions()
	checkShown(t, "client.", []string{"client.target"}, map[string][2]any{
		"client.timeout":         {c.Timeout, d.timeout},
		"client.dial_timeout":    {c.DialTimeout, d.dialTimeout},
		"client.max_frame_bytes": {c.MaxFrameBytes, d.maxFrameSize},
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
