package mux

import (
	"testing"

	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/config/configtest"
)

// TestRPCYAMLShowsTheDefaults: the settings of the multiplexed connections that the
// stage's rpc.yaml shows are Config's defaults, as the file says.
func TestRPCYAMLShowsTheDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, d := cfg.Client.Mux, Config{}.withDefaults()
	configtest.Shown(t, "../rpc.yaml", "client.mux.", nil, map[string][2]any{
		"client.mux.max_conns":    {c.MaxConns, d.MaxConns},
		"client.mux.max_streams":  {c.MaxStreams, d.MaxStreams},
		"client.mux.idle_timeout": {c.IdleTimeout, d.IdleTimeout},
		"client.mux.wait_timeout": {c.WaitTimeout, d.WaitTimeout},
	})
}
