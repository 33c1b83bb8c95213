package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"myrpc/v5-cluster/config"
)

// full sets every key, each to a value no other key has, so a key read into
// the wrong field shows.
const full = `
server:
  services:
    - name: myrpc.helloworld.Greeter
      address: 127.0.0.1:8001
    - name: myrpc.echo.Echo
      address: "[::1]:8002"
  max_frame_bytes: 1048576
  frame_timeout: 10s
  idle_timeout: 1m30s
  write_timeout: 250ms
  max_conns: 500
  shutdown_timeout: 5s
  workers: 321
client:
  target: localhost:8001
  timeout: 30s
  dial_timeout: 2s
  max_frame_bytes: 2097152
  mux:
    max_conns: 3
    max_streams: 77
    idle_timeout: 45s
    wait_timeout: 1500ms
  retry:
    attempts: 4
    base: 15ms
    cap: 2s
    jitter: 0.25
    per_attempt: 700ms
registry:
  endpoints: [127.0.0.1:2379, "http://10.0.0.2:2379"]
  service: myrpc.demo
  ttl: 7s
  deregister_wait: 1500ms
  advertise: 10.0.0.9
`

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want config.Config
	}{
		{
			name: "every field",
			in:   full,
			want: config.Config{
				Server: config.Server{
					Services: []config.Service{
						{Name: "myrpc.helloworld.Greeter", Address: "127.0.0.1:8001"},
						{Name: "myrpc.echo.Echo", Address: "[::1]:8002"},
					},
					MaxFrameBytes:   1 << 20,
					FrameTimeout:    10 * time.Second,
					IdleTimeout:     90 * time.Second,
					WriteTimeout:    250 * time.Millisecond,
					MaxConns:        500,
					ShutdownTimeout: 5 * time.Second,
					Workers:         321,
				},
				Client: config.Client{
					Target:        "localhost:8001",
					Timeout:       30 * time.Second,
					DialTimeout:   2 * time.Second,
					MaxFrameBytes: 2 << 20,
					Mux: config.Mux{
						MaxConns:    3,
						MaxStreams:  77,
						IdleTimeout: 45 * time.Second,
						WaitTimeout: 1500 * time.Millisecond,
					},
					Retry: config.Retry{
						Attempts:   4,
						Base:       15 * time.Millisecond,
						Cap:        2 * time.Second,
						Jitter:     0.25,
						PerAttempt: 700 * time.Millisecond,
					},
				},
				Registry: config.Registry{
					Endpoints:      []string{"127.0.0.1:2379", "http://10.0.0.2:2379"},
					Service:        "myrpc.demo",
					TTL:            7 * time.Second,
					DeregisterWait: ptr(1500 * time.Millisecond),
					Advertise:      "10.0.0.9",
				},
			},
		},
		{
			name: "a client's registry: endpoints only",
			in:   "registry:\n  endpoints: [127.0.0.1:2379]\n",
			want: config.Config{Registry: config.Registry{Endpoints: []string{"127.0.0.1:2379"}}},
		},
		{
			name: "no deregister wait",
			in:   "registry:\n  deregister_wait: 0s\n",
			want: config.Config{Registry: config.Registry{DeregisterWait: ptr(time.Duration(0))}},
		},
		{name: "empty document", in: ""},
		{name: "only a comment", in: "# nothing set\n"},
		{name: "only a document marker", in: "---\n"},
		{name: "null", in: "~\n"},
		{name: "empty sections", in: "server:\nclient:\n"},
		{name: "empty service list", in: "server:\n  services: []\n", want: config.Config{Server: config.Server{Services: []config.Service{}}}},
		{name: "zeros mean default", in: "server:\n  max_conns: 0\n  frame_timeout: 0s\nclient:\n  timeout: 0s\n"},
		{
			name: "port only",
			in:   "server:\n  services:\n    - {name: a.B, address: \":9000\"}\n",
			want: config.Config{Server: config.Server{Services: []config.Service{{Name: "a.B", Address: ":9000"}}}},
		},
		{
			name: "jitter at its bounds",
			in:   "client:\n  retry:\n    jitter: 1\n",
			want: config.Config{Client: config.Client{Retry: config.Retry{Jitter: 1}}},
		},
		{name: "no jitter", in: "client:\n  retry:\n    attempts: 3\n    jitter: 0\n", want: config.Config{Client: config.Client{Retry: config.Retry{Attempts: 3}}}},
		{name: "empty mux and retry sections", in: "client:\n  mux:\n  retry:\n"},
		{
			name: "a service's servers, round-robin",
			in:   "client:\n  target: etcd:///myrpc.helloworld.Greeter\n  balancer: round_robin\n",
			want: config.Config{Client: config.Client{Target: "etcd:///myrpc.helloworld.Greeter", Balancer: "round_robin"}},
		},
		{
			name: "empty trailing documents",
			in:   "client:\n  timeout: 1s\n---\n---\n# end\n",
			want: config.Config{Client: config.Client{Timeout: time.Second}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*c, tt.want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", *c, tt.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	svc := func(lines ...string) string {
		return "server:\n  services:\n" + strings.Join(lines, "\n") + "\n"
	}
	tests := []struct {
		name string
		in   string
		want []string // substrings the error must hold
	}{
		{"unknown top-level key", "servr:\n  max_conns: 1\n", []string{"servr"}},
		{"unknown server key", "server:\n  max_frame: 1\n", []string{"max_frame"}},
		{"unknown client key", "client:\n  retries: 3\n", []string{"retries"}},
		{"unknown mux key", "client:\n  mux:\n    max_active: 3\n", []string{"max_active"}},
		{"V2 pool section", "client:\n  pool:\n    max_idle: 3\n", []string{"pool"}},
		{"unknown retry key", "client:\n  retry:\n    backoff: 1s\n", []string{"backoff"}},
		{"jitter over 1", "client:\n  retry:\n    jitter: 1.5\n", []string{"client.retry.jitter", "1.5"}},
		{"negative jitter", "client:\n  retry:\n    jitter: -0.1\n", []string{"client.retry.jitter", "-0.1"}},
		{"jitter as a percentage", "client:\n  retry:\n    jitter: 20\n", []string{"client.retry.jitter"}},
		{"jitter not a number", "client:\n  retry:\n    jitter: some\n", []string{"some"}},
		{"attempts not a number", "client:\n  retry:\n    attempts: many\n", []string{"many"}},
		{"unknown service key", svc("    - name: a.B", "      adress: 127.0.0.1:1"), []string{"adress"}},
		{"empty name", svc("    - name: \"\"", "      address: 127.0.0.1:1"), []string{"server.services[0]", "name is empty"}},
		{"missing name", svc("    - address: 127.0.0.1:1"), []string{"server.services[0]", "name is empty"}},
		{"duplicate name", svc(
			"    - {name: a.B, address: 127.0.0.1:1}",
			"    - {name: c.D, address: 127.0.0.1:2}",
			"    - {name: a.B, address: 127.0.0.1:3}"), []string{"server.services[2]", "a.B", "listed twice"}},
		{"address without port", svc("    - {name: a.B, address: 127.0.0.1}"), []string{"server.services[0]", "a.B", "address"}},
		{"missing address", svc("    - {name: a.B}"), []string{"server.services[0]", "a.B", "address"}},
		{"address with two colons", svc("    - {name: a.B, address: \"::1:80\"}"), []string{"server.services[0]", "address"}},
		{"second service bad", svc(
			"    - {name: a.B, address: 127.0.0.1:1}",
			"    - {name: c.D, address: nowhere}"), []string{"server.services[1]", "c.D", "address"}},
		{"bad client target", "client:\n  target: localhost\n", []string{"client.target"}},
		{"target without a scheme", "client:\n  target: :///svc\n", []string{"client.target", "scheme:///name"}},
		{"target without a name", "client:\n  target: etcd:///\n", []string{"client.target", "scheme:///name"}},
		{"unknown balancer", "client:\n  balancer: random\n", []string{"client.balancer", "random"}},
		{"unknown registry key", "registry:\n  lease: 3s\n", []string{"lease"}},
		{"registry service without endpoints", "registry:\n  service: myrpc.demo\n", []string{"registry.endpoints", "empty"}},
		{"registry service with a slash", "registry:\n  endpoints: [127.0.0.1:2379]\n  service: a/b\n", []string{"registry.service", "a/b"}},
		{"empty registry endpoint", "registry:\n  endpoints: [127.0.0.1:2379, \"\"]\n", []string{"registry.endpoints[1]", "empty"}},
		{"duration without unit", "server:\n  frame_timeout: 10\n", []string{"10"}},
		{"duration with bad unit", "client:\n  timeout: 1d\n", []string{"1d"}},
		{"number as words", "server:\n  max_conns: lots\n", []string{"lots"}},
		{"sequence for a config", "- a\n- b\n", []string{"config.Config"}},
		{"second document", "server:\n  max_conns: 1\n---\nclient:\n  timeout: -1s\n", []string{"line 3", "second YAML document"}},
		{"not yaml", "server: [\n", []string{"yaml"}},
	}
	for _, field := range []string{
		"server.max_frame_bytes: -1",
		"server.frame_timeout: -1s",
		"server.idle_timeout: -1ns",
		"server.write_timeout: -10s",
		"server.max_conns: -5",
		"server.shutdown_timeout: -1m",
		"client.timeout: -30s",
		"client.dial_timeout: -1ms",
		"client.max_frame_bytes: -4194304",
		"server.workers: -1",
		"client.mux.max_conns: -1",
		"client.mux.max_streams: -2",
		"client.mux.idle_timeout: -30s",
		"client.mux.wait_timeout: -1s",
		"client.retry.attempts: -3",
		"client.retry.base: -10ms",
		"client.retry.cap: -1s",
		"client.retry.per_attempt: -1ms",
		"registry.ttl: -10s",
		"registry.deregister_wait: -1s",
	} {
		// "a.b.c: v" becomes a nested YAML document.
		path, value, _ := strings.Cut(field, ":")
		keys := strings.Split(path, ".")
		var doc strings.Builder
		for i, k := range keys {
			doc.WriteString(strings.Repeat("  ", i) + k + ":")
			if i < len(keys)-1 {
				doc.WriteString("\n")
			}
		}
		doc.WriteString(value + "\n")
		tests = append(tests, struct {
			name string
			in   string
			want []string
		}{"negative " + path, doc.String(), []string{path, "negative"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, c)
			}
			if c != nil {
				t.Fatalf("Parse(%q) returned %+v with error %v, want nil", tt.in, c, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("Parse(%q) error %q does not mention %q", tt.in, err, w)
				}
			}
		})
	}
}

// TestValidateNamesTheFirstProblem checks that Validate, called directly on
// a Config built in code, reports the first bad setting.
func TestValidateNamesTheFirstProblem(t *testing.T) {
	c := config.Config{
		Server: config.Server{MaxConns: -1},
		Client: config.Client{DialTimeout: -time.Second},
	}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "server.max_conns") {
		t.Fatalf("Validate() = %v, want an error naming server.max_conns", err)
	}
	c.Server.MaxConns = 0
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "client.dial_timeout") {
		t.Fatalf("Validate() = %v, want an error naming client.dial_timeout", err)
	}
	c.Client.DialTimeout = 0
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() of the zero config = %v", err)
	}
}

func TestAddresses(t *testing.T) {
	tests := []struct {
		name     string
		services []config.Service
		addrs    []string
		groups   map[string][]string
	}{
		{name: "none", groups: map[string][]string{}},
		{
			name:     "one",
			services: []config.Service{{Name: "a.A", Address: ":1"}},
			addrs:    []string{":1"},
			groups:   map[string][]string{":1": {"a.A"}},
		},
		{
			name: "shared and interleaved",
			services: []config.Service{
				{Name: "a.A", Address: "127.0.0.1:2"},
				{Name: "b.B", Address: "127.0.0.1:1"},
				{Name: "c.C", Address: "127.0.0.1:2"},
				{Name: "d.D", Address: "127.0.0.1:3"},
				{Name: "e.E", Address: "127.0.0.1:1"},
				{Name: "f.F", Address: "127.0.0.1:2"},
			},
			addrs: []string{"127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:3"},
			groups: map[string][]string{
				"127.0.0.1:2": {"a.A", "c.C", "f.F"},
				"127.0.0.1:1": {"b.B", "e.E"},
				"127.0.0.1:3": {"d.D"},
			},
		},
		{
			name:     "all on one address",
			services: []config.Service{{Name: "x.X", Address: ":8"}, {Name: "y.Y", Address: ":8"}},
			addrs:    []string{":8"},
			groups:   map[string][]string{":8": {"x.X", "y.Y"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := config.Server{Services: tt.services}
			addrs, groups := s.Addresses()
			if !reflect.DeepEqual(addrs, tt.addrs) {
				t.Errorf("addresses = %q, want %q", addrs, tt.addrs)
			}
			if !reflect.DeepEqual(groups, tt.groups) {
				t.Errorf("services by address = %q, want %q", groups, tt.groups)
			}
		})
	}
}

func TestSetAddress(t *testing.T) {
	tests := []struct {
		name     string
		services []config.Service
	}{
		{"none", nil},
		{"one", []config.Service{{Name: "a.A", Address: "127.0.0.1:1"}}},
		{"several addresses", []config.Service{
			{Name: "a.A", Address: "127.0.0.1:1"},
			{Name: "b.B", Address: "127.0.0.1:2"},
			{Name: "c.C", Address: "127.0.0.1:1"},
		}},
	}
	const addr = "127.0.0.1:0"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := config.Server{Services: append([]config.Service(nil), tt.services...)}
			s.SetAddress(addr)
			if len(s.Services) != len(tt.services) {
				t.Fatalf("SetAddress changed the service count to %d, want %d", len(s.Services), len(tt.services))
			}
			for i, svc := range s.Services {
				if svc.Name != tt.services[i].Name || svc.Address != addr {
					t.Errorf("services[%d] = %+v, want {Name:%s Address:%s}", i, svc, tt.services[i].Name, addr)
				}
			}
			addrs, groups := s.Addresses()
			if len(tt.services) > 0 && (len(addrs) != 1 || len(groups[addr]) != len(tt.services)) {
				t.Errorf("after SetAddress, Addresses() = %q, %q; want every service on %s", addrs, groups, addr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", full)
	bad := write("bad.yaml", "server:\n  max_conns: -1\n")

	tests := []struct {
		name     string
		path     string
		wantErr  []string // nil: Load succeeds
		notExist bool
	}{
		{name: "the V3 demo's rpc.yaml", path: "../rpc.yaml"},
		{name: "a full file", path: good},
		{name: "missing file", path: filepath.Join(dir, "missing.yaml"), wantErr: []string{"config: ", "missing.yaml"}, notExist: true},
		{name: "a directory", path: dir, wantErr: []string{"config: "}},
		{name: "invalid file", path: bad, wantErr: []string{"config: ", bad, "server.max_conns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(tt.path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Load(%s): %v", tt.path, err)
				}
				if c == nil || len(c.Server.Services) == 0 {
					t.Fatalf("Load(%s) = %+v, want services", tt.path, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", tt.path, c)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("Load(%s) error %q does not mention %q", tt.path, err, w)
				}
			}
			if tt.notExist && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Load(%s) error %v does not wrap fs.ErrNotExist", tt.path, err)
			}
		})
	}
}

// TestLoadRepoConfig checks the V3 demo's rpc.yaml in detail: both services
// share one listener, and the values it shows are the documented defaults.
func TestLoadRepoConfig(t *testing.T) {
	c, err := config.Load("../rpc.yaml")
	if err != nil {
		t.Fatalf("Load(../rpc.yaml): %v", err)
	}
	addrs, groups := c.Server.Addresses()
	if want := []string{"127.0.0.1:8001"}; !reflect.DeepEqual(addrs, want) {
		t.Fatalf("addresses = %q, want %q", addrs, want)
	}
	if want := []string{"myrpc.helloworld.Greeter", "myrpc.echo.Echo"}; !reflect.DeepEqual(groups[addrs[0]], want) {
		t.Fatalf("services = %q, want %q", groups[addrs[0]], want)
	}
	want := config.Config{
		Server: c.Server,
		Client: config.Client{Target: "127.0.0.1:8001", Timeout: 30 * time.Second, DialTimeout: 5 * time.Second, MaxFrameBytes: 4 << 20,
			Mux:   config.Mux{MaxConns: 4, MaxStreams: 1024, IdleTimeout: 30 * time.Second, WaitTimeout: time.Second},
			Retry: config.Retry{Attempts: 1, Base: 10 * time.Millisecond, Cap: time.Second}, Balancer: "p2c"},
		Registry: config.Registry{Endpoints: []string{"127.0.0.1:2379"}, TTL: 10 * time.Second, DeregisterWait: ptr(time.Second)},
	}
	want.Server.MaxFrameBytes = 4 << 20
	want.Server.FrameTimeout = 10 * time.Second
	want.Server.IdleTimeout = 60 * time.Second
	want.Server.WriteTimeout = 10 * time.Second
	want.Server.MaxConns = 10000
	want.Server.ShutdownTimeout = 5 * time.Second
	want.Server.Workers = 10000
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("Load(../rpc.yaml) =\n%+v\nwant\n%+v", *c, want)
	}
}

// TestKeys: Keys names every setting a document sets, nested ones by their
// dotted path and a list as one setting.
func TestKeys(t *testing.T) {
	got, err := config.Keys([]byte("server:\n  services:\n    - name: a\n  max_conns: 3\nclient:\n  timeout: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"client.timeout", "server.max_conns", "server.services"}
	if !slices.Equal(got, want) {
		t.Fatalf("Keys = %q, want %q", got, want)
	}
	if _, err := config.Keys([]byte("server: [")); err == nil {
		t.Fatal("Keys of a broken document succeeded")
	}
}

// TestDeregisterWaitZero: registry.deregister_wait set to 0s is a setting
// of its own, no wait, which a Registry tells from the key left out (the
// default).
func TestDeregisterWaitZero(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want *time.Duration
	}{
		{"registry:\n  deregister_wait: 0s\n", ptr(time.Duration(0))},
		{"registry:\n  deregister_wait: 0ms\n", ptr(time.Duration(0))},
		{"registry:\n  deregister_wait: 250ms\n", ptr(250 * time.Millisecond)},
		{"registry:\n  ttl: 3s\n", nil},
		{"registry:\n", nil},
		{"", nil},
	} {
		c, err := config.Parse([]byte(tt.in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		got := c.Registry.DeregisterWait
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("Parse(%q): DeregisterWait = %s, want %s", tt.in, show(got), show(tt.want))
		}
	}
}

// show prints a duration that may be unset.
func show(d *time.Duration) string {
	if d == nil {
		return "unset"
	}
	return d.String()
}
