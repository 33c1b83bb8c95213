package client

import (
	"testing"

	"myrpc/v2-pool-keepalive/config"
	"myrpc/v2-pool-keepalive/config/configtest"
)

// TestRPCYAMLShowsTheDefaults: the client settings the stage's rpc.yaml
// shows are the client's defaults, as the file says. (The target is an
// address, with no default; the connections' settings are checked in
// package pool.)
func TestRPCYAMLShowsTheDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, d := cfg.Client, defaultOptions()
	configtest.Shown(t, "../rpc.yaml", "client.", []string{"client.target", "client.pool."}, map[string][2]any{
		"client.timeout":         {c.Timeout, d.timeout},
		"client.dial_timeout":    {c.DialTimeout, d.dialTimeout},
		"client.max_frame_bytes": {c.MaxFrameBytes, d.maxFrameSize},
	})
}
