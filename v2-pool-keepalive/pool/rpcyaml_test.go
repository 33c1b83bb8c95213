package pool

import (
	"os"
	"slices"
	"strings"
	"testing"

	"myrpc/v2-pool-keepalive/config"
)

// TestRPCYAMLShowsTheDefaults: the settings of the connection pool that the
// stage's rpc.yaml shows are Config's defaults, as the file says.
func TestRPCYAMLShowsTheDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, d := cfg.Client.Pool, Config{}.withDefaults()
	checkShown(t, "client.pool.", nil, map[string][2]any{
		"client.pool.max_active":   {c.MaxActive, d.MaxActive},
		"client.pool.max_idle":     {c.MaxIdle, d.MaxIdle},
		"client.pool.idle_timeout": {c.IdleTimeout, d.IdleTimeout},
		"client.pool.max_lifetime": {c.MaxLifetime, d.MaxLifetime},
		"client.pool.wait_timeout": {c.WaitTimeout, d.WaitTimeout},
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
