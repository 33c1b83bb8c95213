package server

import (
	"testing"

	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/config/configtest"
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
	configtest.Shown(t, "../rpc.yaml", "server.", []string{"server.services", "server.shutdown_timeout"}, map[string][2]any{
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

// TestRPCYAMLShowsTheRegistryDefaults: so are the registry's lease and
// deregister wait, which cmd/server passes to WithRegistry and
// WithDeregisterWait.
func TestRPCYAMLShowsTheRegistryDefaults(t *testing.T) {
	cfg, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, d := cfg.Registry, defaultOptions()
	if r.DeregisterWait == nil {
		t.Fatal("../rpc.yaml does not show registry.deregister_wait")
	}
	configtest.Shown(t, "../rpc.yaml", "registry.", []string{"registry.endpoints", "registry.service"}, map[string][2]any{
		"registry.ttl":             {r.TTL, d.registryTTL},
		"registry.deregister_wait": {*r.DeregisterWait, d.deregisterWait},
	})
}
