package client

import (
	"testing"

	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/config/configtest"
)

// TestRPCYAMLShowsTheDefaults: the client settings the stage's rpc.yaml
// shows are the client's defaults, as the file says. (The target is an
// address, with no default; the connections' settings are checked in
// package mux.)
func TestRPCYAMLShowsTheDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, d := cfg.Client, defaultOptions()
	configtest.Shown(t, "../rpc.yaml", "client.", []string{"client.target", "client.mux."}, map[string][2]any{
		"client.timeout":         {c.Timeout, d.timeout},
		"client.dial_timeout":    {c.DialTimeout, d.dialTimeout},
		"client.max_frame_bytes": {c.MaxFrameBytes, d.maxFrameSize},
		// 0 and 1 attempts both mean one: no retries.
		"client.retry.attempts": {max(c.Retry.Attempts, 1), max(d.retry.Attempts, 1)},
		// The default policy's first delay is its base; a late one, its cap.
		"client.retry.base":        {c.Retry.Base, RetryPolicy{}.backoff(1)},
		"client.retry.cap":         {c.Retry.Cap, RetryPolicy{}.backoff(64)},
		"client.retry.jitter":      {c.Retry.Jitter, d.retry.Jitter},
		"client.retry.per_attempt": {c.Retry.PerAttempt, d.retry.PerAttempt},
		"client.balancer":          {c.Balancer, d.balancer},
	})
}
