package server

import (
	"reflect"
	"testing"
	"time"

	"myrpc/v5-cluster/config"
)

// TestWithConfig: WithConfig applies the non-zero settings and keeps the
// defaults for the rest.
func TestWithConfig(t *testing.T) {
	def := defaultOptions()
	svcs := []config.Service{{Name: "myrpc.helloworld.Greeter", Address: "127.0.0.1:7001"}}
	tests := []struct {
		name string
		cfg  config.Server
		want func(o *options)
	}{
		{"zero", config.Server{}, func(*options) {}},
		{"every field", config.Server{
			Services:        svcs,
			MaxFrameBytes:   1 << 10,
			FrameTimeout:    time.Second,
			IdleTimeout:     2 * time.Second,
			WriteTimeout:    3 * time.Second,
			MaxConns:        7,
			ShutdownTimeout: time.Minute,
		}, func(o *options) {
			o.services = svcs
			o.maxFrameSize = 1 << 10
			o.frameTimeout = time.Second
			o.idleTimeout = 2 * time.Second
			o.writeTimeout = 3 * time.Second
			o.maxConns = 7
		}},
		{"idle timeout only", config.Server{IdleTimeout: 5 * time.Second}, func(o *options) {
			o.idleTimeout = 5 * time.Second
		}},
		{"max conns and frame size", config.Server{MaxConns: 3, MaxFrameBytes: 100}, func(o *options) {
			o.maxConns = 3
			o.maxFrameSize = 100
		}},
		{"negative values are ignored", config.Server{MaxConns: -1, FrameTimeout: -time.Second}, func(*options) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(WithConfig(tt.cfg))
			want := def
			tt.want(&want)
			got := s.opts
			got.logger = nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("options\n got %+v\nwant %+v", got, want)
			}
			if cap(s.slots) != want.maxConns {
				t.Fatalf("%d connection slots, want %d", cap(s.slots), want.maxConns)
			}
		})
	}
}

// TestWithConfigOrder: options apply in order, and WithConfig keeps its own
// copy of the services.
func TestWithConfigOrder(t *testing.T) {
	cfg := config.Server{
		Services: []config.Service{{Name: "a", Address: "127.0.0.1:1"}},
		MaxConns: 5,
	}
	s := New(WithMaxConns(9), WithIdleTimeout(time.Second), WithConfig(cfg), WithFrameTimeout(time.Millisecond))
	cfg.Services[0].Address = "changed"
	if s.opts.maxConns != 5 {
		t.Errorf("maxConns %d, want 5 from the later WithConfig", s.opts.maxConns)
	}
	if s.opts.idleTimeout != time.Second {
		t.Errorf("idleTimeout %v, want 1s: WithConfig's zero must not reset it", s.opts.idleTimeout)
	}
	if s.opts.frameTimeout != time.Millisecond {
		t.Errorf("frameTimeout %v, want 1ms from the later option", s.opts.frameTimeout)
	}
	if got := s.opts.services[0].Address; got != "127.0.0.1:1" {
		t.Errorf("the server's service address changed with the caller's slice: %q", got)
	}
	if s.log == nil {
		t.Error("no logger")
	}
}
