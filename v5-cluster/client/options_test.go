package client

import (
	"reflect"
	"testing"
	"time"

	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/mux"
)

// TestWithConfig: WithConfig applies the non-zero settings and keeps the
// defaults for the rest.
func TestWithConfig(t *testing.T) {
	def := defaultOptions()
	tests := []struct {
		name string
		cfg  config.Client
		want func(o *options)
	}{
		{"zero", config.Client{}, func(*options) {}},
		{"target only", config.Client{Target: "127.0.0.1:9"}, func(*options) {}},
		{"every field", config.Client{Target: "127.0.0.1:9", Timeout: time.Second, DialTimeout: 2 * time.Second, MaxFrameBytes: 100,
			Mux:   config.Mux{MaxConns: 2, MaxStreams: 50, IdleTimeout: 20 * time.Second, WaitTimeout: 3 * time.Second},
			Retry: config.Retry{Attempts: 3, Base: 5 * time.Millisecond, Cap: 500 * time.Millisecond, Jitter: 0.3, PerAttempt: time.Second}},
			func(o *options) {
				o.timeout = time.Second
				o.dialTimeout = 2 * time.Second
				o.maxFrameSize = 100
				o.mux = mux.Config{MaxConns: 2, MaxStreams: 50, IdleTimeout: 20 * time.Second, WaitTimeout: 3 * time.Second}
				o.retry = RetryPolicy{Attempts: 3, Base: 5 * time.Millisecond, Cap: 500 * time.Millisecond, Jitter: 0.3, PerAttempt: time.Second}
			}},
		{"dial timeout only", config.Client{DialTimeout: 3 * time.Second}, func(o *options) {
			o.dialTimeout = 3 * time.Second
		}},
		{"negative values are ignored", config.Client{Timeout: -time.Second, MaxFrameBytes: -1,
			Mux: config.Mux{MaxConns: -1, WaitTimeout: -time.Second}, Retry: config.Retry{Attempts: -2}}, func(*options) {}},
		{"some mux settings", config.Client{Mux: config.Mux{MaxStreams: 8, WaitTimeout: time.Second}}, func(o *options) {
			o.mux.MaxStreams = 8
			o.mux.WaitTimeout = time.Second
		}},
		// A policy without attempts is no policy: its other fields alone
		// change nothing.
		{"retry without attempts", config.Client{Retry: config.Retry{Base: time.Second, Jitter: 0.5}}, func(*options) {}},
		{"balancer", config.Client{Balancer: "round_robin"}, func(o *options) {
			o.balancer = "round_robin"
		}},
		{"retry with attempts only", config.Client{Retry: config.Retry{Attempts: 2}}, func(o *options) {
			o.retry = RetryPolicy{Attempts: 2}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New("127.0.0.1:1", WithConfig(tt.cfg))
			defer c.Close()
			want := def
			tt.want(&want)
			got := c.opts
			got.logger = nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("options\n got %+v\nwant %+v", got, want)
			}
			if c.dialer.Timeout != want.dialTimeout {
				t.Fatalf("dialer timeout %v, want %v", c.dialer.Timeout, want.dialTimeout)
			}
			if c.target != "127.0.0.1:1" {
				t.Fatalf("target %q: WithConfig must not change it", c.target)
			}
		})
	}
	// Options apply in order: a zero in the config keeps an earlier option.
	c := New("127.0.0.1:1", WithTimeout(time.Minute), WithRetry(RetryPolicy{Attempts: 5}),
		WithConfig(config.Client{DialTimeout: time.Second}))
	defer c.Close()
	if c.opts.timeout != time.Minute || c.opts.dialTimeout != time.Second || c.opts.retry.Attempts != 5 {
		t.Fatalf("timeout %v, dial timeout %v, retry %+v; want 1m, 1s and 5 attempts", c.opts.timeout, c.opts.dialTimeout, c.opts.retry)
	}
}

// TestWithMuxAndRetry: the options are kept as given.
func TestWithMuxAndRetry(t *testing.T) {
	mc := mux.Config{MaxConns: 2, MaxStreams: 3, WaitTimeout: time.Second, IdleTimeout: time.Minute, MaxSeq: 9}
	p := RetryPolicy{Attempts: 4, Base: time.Millisecond, Cap: time.Second, Jitter: 0.1, PerAttempt: time.Second}
	c := New("127.0.0.1:1", WithMux(mc), WithRetry(p))
	defer c.Close()
	if !reflect.DeepEqual(c.opts.mux, mc) || c.opts.retry != p {
		t.Fatalf("mux %+v, retry %+v; want %+v, %+v", c.opts.mux, c.opts.retry, mc, p)
	}
}

// foreignOption is a call option of another package.
type foreignOption struct{}

func (foreignOption) IsCallOption() {}

// TestCallOptions: Retry replaces the client's policy for one call,
// Idempotent and OnRetry are per call, and options of other packages are
// ignored.
func TestCallOptions(t *testing.T) {
	def := RetryPolicy{Attempts: 3, Base: time.Millisecond}
	own := RetryPolicy{Attempts: 7, Cap: time.Minute}
	onRetry := func(int, error, time.Duration) {}
	tests := []struct {
		name string
		opts []rpc.CallOption
		want callOptions
		// hasOnRetry is whether onRetry must be set.
		hasOnRetry bool
	}{
		{"none: the client's policy", nil, callOptions{retry: def}, false},
		{"Retry", []rpc.CallOption{Retry(own)}, callOptions{retry: own}, false},
		{"Retry with no attempts turns retries off", []rpc.CallOption{Retry(RetryPolicy{})}, callOptions{}, false},
		{"the last Retry wins", []rpc.CallOption{Retry(own), Retry(RetryPolicy{Attempts: 2})}, callOptions{retry: RetryPolicy{Attempts: 2}}, false},
		{"Idempotent", []rpc.CallOption{Idempotent()}, callOptions{retry: def, idempotent: true}, false},
		{"OnRetry", []rpc.CallOption{OnRetry(onRetry)}, callOptions{retry: def}, true},
		{"all", []rpc.CallOption{Idempotent(), OnRetry(onRetry), Retry(own)}, callOptions{retry: own, idempotent: true}, true},
		{"foreign options are ignored", []rpc.CallOption{foreignOption{}, nil, Idempotent()}, callOptions{retry: def, idempotent: true}, false},
	}
	c := New("127.0.0.1:1", WithRetry(def))
	defer c.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.callOptions(tt.opts)
			if (got.onRetry != nil) != tt.hasOnRetry {
				t.Fatalf("onRetry set: %v, want %v", got.onRetry != nil, tt.hasOnRetry)
			}
			got.onRetry = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("callOptions = %+v, want %+v", got, tt.want)
			}
		})
	}
}
