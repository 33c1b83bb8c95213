package client

import (
	"testing"

	"myrpc/v1-basic/config"
	"myrpc/v1-basic/config/configtest"
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
	configtest.Shown(t, "../rpc.yaml", "client.", []string{"client.target"}, map[string][2]any{
		"client.timeout":         {c.Timeout, d.timeout},
		"client.dial_timeout":    {c.DialTimeout, d.dialTimeout},
		"client.max_frame_bytes": {c.MaxFrameBytes, d.maxFrameSize},
	})
}
