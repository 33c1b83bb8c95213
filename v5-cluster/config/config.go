package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole of rpc.yaml.
type Config struct {
	Server Server `yaml:"server"`
	Client Client `yaml:"client"`

	// Registry is where servers list themselves and clients find them.
	Registry Registry `yaml:"registry"`
}

// Registry holds the settings of the etcd registry, for servers and
// clients. Zero values mean the default, but for DeregisterWait, where 0
// is a setting of its own.
type Registry struct {
	// Endpoints are etcd's members, host:port or URLs.
	Endpoints []string `yaml:"endpoints"`
	// Service is the name a server registers its addresses under; empty
	// means a server does not register. A client names the service in its
	// target instead (etcd:///<service>).
	Service string `yaml:"service"`
	// TTL is the lease of a server's key: how long a server that died
	// stays listed.
	TTL time.Duration `yaml:"ttl"`
	// DeregisterWait is how long a server goes on serving after Shutdown
	// took its key out, for clients to stop picking it. Unlike the other
	// settings, 0 (0s) means no wait, a setting of its own: nil, the key
	// left out, means the default.
	DeregisterWait *time.Duration `yaml:"deregister_wait"`
	// Advertise is the address a server registers instead of its
	// listener's: host:port, or a host alone to keep the listener's port.
	Advertise string `yaml:"advertise"`
}

// Server holds the server's settings. Zero values mean the default.
type Server struct {
	// Services lists the services to serve and where. Services that share
	// an address share one listener.
	Services []Service `yaml:"services"`
	// MaxFrameBytes caps meta + body of a request frame.
	MaxFrameBytes int `yaml:"max_frame_bytes"`
	// FrameTimeout bounds the time from a frame's first byte to its last.
	FrameTimeout time.Duration `yaml:"frame_timeout"`
	// IdleTimeout closes a connection idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WriteTimeout bounds the time to write a response.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxConns caps the connections served at once.
	MaxConns int `yaml:"max_conns"`
	// ShutdownTimeout bounds a graceful shutdown of cmd/server.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// MaxTimeout caps the time a handler may run.
	MaxTimeout time.Duration `yaml:"max_timeout"`

	// Workers sizes the goroutine pool that runs handlers.
	Workers int `yaml:"workers"`

	// MaxConnCalls caps the calls in flight on one connection.
	MaxConnCalls int `yaml:"max_conn_calls"`
	// MaxConnBytes caps the bytes one connection's calls hold.
	MaxConnBytes int `yaml:"max_conn_bytes"`
}

// Service names one service and the address it listens on.
type Service struct {
	// Name is the full protobuf name, e.g. myrpc.helloworld.Greeter.
	Name string `yaml:"name"`
	// Address is host:port.
	Address string `yaml:"address"`
}

// Client holds the client's settings. Zero values mean the default.
type Client struct {
	// Target is the server's host:port, or scheme:///name for the servers
	// of a service that a resolver finds.
	Target string `yaml:"target"`
	// Timeout is the deadline of a call whose context has none.
	Timeout time.Duration `yaml:"timeout"`
	// DialTimeout bounds connection set-up.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxFrameBytes caps meta + body of a response frame.
	MaxFrameBytes int `yaml:"max_frame_bytes"`

	// Mux holds the settings of the client's multiplexed connections.
	Mux Mux `yaml:"mux"`
	// Retry is the retry policy of calls that set none.
	Retry Retry `yaml:"retry"`

	// Balancer is the policy that picks a server for each call: p2c or
	// round_robin.
	Balancer string `yaml:"balancer"`
}

// Mux holds the settings of the client's connections to a target.
type Mux struct {
	// MaxConns caps the connections to a target.
	MaxConns int `yaml:"max_conns"`
	// MaxStreams caps the calls in flight on one connection.
	MaxStreams int `yaml:"max_streams"`
	// IdleTimeout closes a connection that carried no call this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WaitTimeout bounds the wait for a free stream.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
}

// Retry is a retry policy; see client.RetryPolicy.
type Retry struct {
	// Attempts is the most attempts a call makes; 0 or 1 means no retries.
	Attempts int `yaml:"attempts"`
	// Base is the first delay; Cap bounds every delay.
	Base time.Duration `yaml:"base"`
	Cap  time.Duration `yaml:"cap"`
	// Jitter spreads each delay by up to this fraction.
	Jitter float64 `yaml:"jitter"`
	// PerAttempt bounds each attempt.
	PerAttempt time.Duration `yaml:"per_attempt"`
}

// Load reads and checks the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and checks rpc.yaml's content.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// Decode reads only the first document. Refuse a later one that holds
	// anything, rather than drop its settings silently.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(extra.Content) > 0 && extra.Content[0].ShortTag() != "!!null" {
			return nil, fmt.Errorf("line %d: a second YAML document; rpc.yaml holds one", extra.Line)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Keys returns the dotted names of the settings a YAML document sets, such
// as "server.frame_timeout", sorted; a list, such as server.services, is one
// setting. Tests use it to find every setting a file shows.
func Keys(data []byte) ([]string, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var keys []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			keys = append(keys, path)
			return
		}
		for k, x := range m {
			if path != "" {
				k = path + "." + k
			}
			walk(k, x)
		}
	}
	walk("", doc)
	slices.Sort(keys)
	return keys, nil
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	seen := make(map[string]bool)
	for i, s := range c.Server.Services {
		if s.Name == "" {
			return fmt.Errorf("server.services[%d]: name is empty", i)
		}
		if seen[s.Name] {
			return fmt.Errorf("server.services[%d]: %s is listed twice", i, s.Name)
		}
		seen[s.Name] = true
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return fmt.Errorf("server.services[%d] (%s): address: %w", i, s.Name, err)
		}
	}
	if j := c.Client.Retry.Jitter; !(j >= 0 && j <= 1) { // NaN too
		return fmt.Errorf("client.retry.jitter is %v, want 0 to 1", j)
	}
	if err := c.Registry.validate(); err != nil {
		return err
	}
	if c.Client.Target != "" {
		if scheme, name, ok := strings.Cut(c.Client.Target, ":///"); ok {
			if scheme == "" || name == "" {
				return fmt.Errorf("client.target: %q, want host:port or scheme:///name", c.Client.Target)
			}
		} else if _, _, err := net.SplitHostPort(c.Client.Target); err != nil {
			return fmt.Errorf("client.target: %w", err)
		}
	}
	switch c.Client.Balancer {
	case "", "p2c", "round_robin":
	default:
		return fmt.Errorf("client.balancer: %q, want p2c or round_robin", c.Client.Balancer)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{
		{"server.max_frame_bytes", int64(c.Server.MaxFrameBytes)},
		{"server.frame_timeout", int64(c.Server.FrameTimeout)},
		{"server.idle_timeout", int64(c.Server.IdleTimeout)},
		{"server.write_timeout", int64(c.Server.WriteTimeout)},
		{"server.max_conns", int64(c.Server.MaxConns)},
		{"server.shutdown_timeout", int64(c.Server.ShutdownTimeout)},
		{"client.timeout", int64(c.Client.Timeout)},
		{"client.dial_timeout", int64(c.Client.DialTimeout)},
		{"client.max_frame_bytes", int64(c.Client.MaxFrameBytes)},

		{"server.max_timeout", int64(c.Server.MaxTimeout)},

		{"server.workers", int64(c.Server.Workers)},
		{"client.mux.max_conns", int64(c.Client.Mux.MaxConns)},
		{"client.mux.max_streams", int64(c.Client.Mux.MaxStreams)},
		{"client.mux.idle_timeout", int64(c.Client.Mux.IdleTimeout)},
		{"client.mux.wait_timeout", int64(c.Client.Mux.WaitTimeout)},
		{"client.retry.attempts", int64(c.Client.Retry.Attempts)},
		{"client.retry.base", int64(c.Client.Retry.Base)},
		{"client.retry.cap", int64(c.Client.Retry.Cap)},
		{"client.retry.per_attempt", int64(c.Client.Retry.PerAttempt)},

		{"server.max_conn_calls", int64(c.Server.MaxConnCalls)},
		{"server.max_conn_bytes", int64(c.Server.MaxConnBytes)},

		{"registry.ttl", int64(c.Registry.TTL)},
		{"registry.deregister_wait", int64(c.Registry.deregisterWait())},
	} {
		if v.n < 0 {
			return fmt.Errorf("%s is negative", v.name)
		}
	}
	return nil
}

// validate reports the first registry setting that cannot work.
func (r *Registry) validate() error {
	if strings.Contains(r.Service, "/") {
		return fmt.Errorf("registry.service: %q has a '/'", r.Service)
	}
	if r.Service != "" && len(r.Endpoints) == 0 {
		return fmt.Errorf("registry.service is %s, but registry.endpoints is empty", r.Service)
	}
	for i, e := range r.Endpoints {
		if strings.TrimSpace(e) == "" {
			return fmt.Errorf("registry.endpoints[%d] is empty", i)
		}
	}
	return nil
}

// deregisterWait returns DeregisterWait, or 0 when it is not set.
func (r *Registry) deregisterWait() time.Duration {
	if r.DeregisterWait == nil {
		return 0
	}
	return *r.DeregisterWait
}

// Addresses groups the configured services by address, in the order the
// addresses first appear.
func (s *Server) Addresses() (addrs []string, services map[string][]string) {
	services = make(map[string][]string)
	for _, svc := range s.Services {
		if _, ok := services[svc.Address]; !ok {
			addrs = append(addrs, svc.Address)
		}
		services[svc.Address] = append(services[svc.Address], svc.Name)
	}
	return addrs, services
}

// SetAddress points every service at addr, as cmd/server's -addr flag does.
func (s *Server) SetAddress(addr string) {
	for i := range s.Services {
		s.Services[i].Address = addr
	}
}
