package pool

import (
	"testing"

	"myrpc/v2-pool-keepalive/config"
	"myrpc/v2-pool-keepalive/config/configtest"
)

// TestRPCYAMLShowsTheDefaults: the settings of the connection pool that the
// stage's rpc.yaml shows are Config's defaults, as the file says.
func TestRPCYAMLShowsTheDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, d := cfg.Client.Pool, Config{}.withDefaults()
	configtest.Shown(t, "../rpc.yaml", "client.pool.", nil, map[string][2]any{
		"client.pool.max_active":   {c.MaxActive, d.MaxActive},
		"client.pool.max_idle":     {c.MaxIdle, d.MaxIdle},
		"client.pool.idle_timeout": {c.IdleTimeout, d.IdleTimeout},
		"client.pool.max_lifetime": {c.MaxLifetime, d.MaxLifetime},
		"client.pool.wait_timeout": {c.WaitTimeout, d.WaitTimeout},
	})
}
