package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/etcdtest"
	"myrpc/v5-cluster/registry"
)

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs.
	// etcdtest's check gives the goroutines of the etcd that
	// TestRunRegisters starts time to end.
	etcdtest.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// syncBuffer is a buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeConfig writes an rpc.yaml serving Greeter and Echo on addr, with
// extra appended to the server section.
func writeConfig(t *testing.T, addr, extra string) string {
	t.Helper()
	yaml := "server:\n" +
		"  services:\n" +
		"    - name: myrpc.helloworld.Greeter\n" +
		"      address: " + addr + "\n" +
		"    - name: myrpc.echo.Echo\n" +
		"      address: " + addr + "\n" + extra
	path := filepath.Join(t.TempDir(), "rpc.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		path string
		addr string
		// stats is the -stats-addr.
		stats string
		// want is a part of the error's text.
		want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.yaml"), "", "", "nope.yaml"},
		{"invalid setting", writeConfig(t, "127.0.0.1:0", "  max_conns: -1\n"), "", "", "max_conns"},
		{"address in use", writeConfig(t, busy.Addr().String(), ""), "", "", "address already in use"},
		{"-addr in use", writeConfig(t, "127.0.0.1:0", ""), busy.Addr().String(), "", "address already in use"},
		{"-stats-addr in use", writeConfig(t, "127.0.0.1:0", ""), "", busy.Addr().String(), "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := slog.New(slog.NewTextHandler(&syncBuffer{}, nil))
			done := make(chan error, 1)
			go func() { done <- run(log, tt.path, tt.addr, tt.stats) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("run = %v, want an error containing %q", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not fail")
			}
		})
	}
}

// TestRunShutsDownOnSignal: run serves on the -addr address rather than the
// configured one, and a SIGTERM shuts it down cleanly.
func TestRunShutsDownOnSignal(t *testing.T) {
	// The configured address is taken, so the server only works if -addr
	// replaces it.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	free, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	statsAddr := free.Addr().String()
	free.Close()
	path := writeConfig(t, busy.Addr().String(), "  shutdown_timeout: 2s\n")

	// Should run's handler be gone by the time the signal arrives, this
	// one keeps the default action (exit) from ending the test binary.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	done := make(chan error, 1)
	go func() { done <- run(log, path, addr, statsAddr) }()

	c := client.New(addr, client.WithTimeout(5*time.Second))
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply, err := helloworld.NewGreeterClient(c).Hello(context.Background(), &helloworld.HelloRequest{Msg: "cmd"})
		if err == nil {
			if reply.GetMsg() != "Hello cmd" {
				t.Fatalf("reply %q", reply.GetMsg())
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned %v before it served", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never answered on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// -stats-addr serves the server's counters, which have seen the call.
	stats := getStats(t, "http://"+statsAddr+"/stats")
	if stats.RPC["calls"] < 1 || stats.RPC["conns_accepted"] < 1 || stats.Goroutines < 1 {
		t.Fatalf("stats %+v, want a call, a connection and goroutines", stats)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v after SIGTERM, want nil\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not return after SIGTERM\n%s", logs)
	}
	if !strings.Contains(logs.String(), "shut down cleanly") {
		t.Fatalf("no clean shutdown in the log:\n%s", logs)
	}
	for _, a := range []string{addr, statsAddr} {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Fatalf("the server still listens on %s after run returned", a)
		}
	}
}

// stats is the JSON that -stats-addr serves.
type stats struct {
	RPC        map[string]float64 `json:"rpc"`
	Goroutines int                `json:"goroutines"`
	RSSBytes   int64              `json:"rss_bytes"`
}

// getStats reads the stats at url.
func getStats(t *testing.T, url string) stats {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRPCYAMLShowsTheDefaultShutdownTimeout: the shutdown_timeout the
// stage's rpc.yaml shows is the default, as the file says.
func TestRPCYAMLShowsTheDefaultShutdownTimeout(t *testing.T) {
	cfg, err := config.Load("../../rpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Server.ShutdownTimeout; got != defaultShutdownTimeout {
		t.Errorf("rpc.yaml shows server.shutdown_timeout: %v, but the default is %v", got, defaultShutdownTimeout)
	}
}

// TestRunRegisters: with a service named in the registry section, run
// registers its address in etcd, answers with the trailer served-by, and
// on SIGTERM takes the key out before it shuts down, having gone on
// serving for the deregister wait: none for deregister_wait: 0s.
func TestRunRegisters(t *testing.T) {
	etcd := etcdtest.Start(t)
	for _, tt := range []struct {
		wait   string // deregister_wait in the config
		waited string // the wait the server logs; empty: none
	}{
		{wait: "100ms", waited: "100ms"},
		{wait: "0s"},
	} {
		t.Run("deregister_wait="+tt.wait, func(t *testing.T) {
			free, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := free.Addr().String()
			free.Close()
			path := writeConfig(t, addr, "registry:\n"+
				"  endpoints: ["+strings.Join(etcd.Endpoints(), ", ")+"]\n"+
				"  service: test.Demo\n"+
				"  deregister_wait: "+tt.wait+"\n")

			addrs := make(chan []string, 16)
			res, err := registry.NewResolver(etcd.Client()).Resolve("test.Demo", func(a []string) { addrs <- a })
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			waitAddrs := func(want ...string) {
				t.Helper()
				deadline := time.After(30 * time.Second)
				for {
					select {
					case got := <-addrs:
						if slices.Equal(got, want) {
							return
						}
					case <-deadline:
						t.Fatalf("the registry never listed %q", want)
					}
				}
			}

			guard := make(chan os.Signal, 1)
			signal.Notify(guard, syscall.SIGTERM)
			defer signal.Stop(guard)
			logs := &syncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			done := make(chan error, 1)
			go func() { done <- run(log, path, "", "") }()
			waitAddrs(addr)

			c := client.New(addr, client.WithTimeout(5*time.Second))
			defer c.Close()
			var md rpc.Metadata
			if _, err := helloworld.NewGreeterClient(c).Hello(context.Background(), &helloworld.HelloRequest{Msg: "cmd"}, rpc.Trailer(&md)); err != nil {
				t.Fatal(err)
			}
			if got, want := md[ServedBy], strconv.Itoa(os.Getpid()); got != want {
				t.Fatalf("trailer %s = %q, want %q (the process id)", ServedBy, got, want)
			}

			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			waitAddrs()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run = %v after SIGTERM, want nil\n%s", err, logs)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("run did not return after SIGTERM\n%s", logs)
			}
			out := logs.String()
			dereg, clean := strings.Index(out, "rpc: deregistered"), strings.Index(out, "shut down cleanly")
			if dereg < 0 || clean < dereg {
				t.Fatalf("want the key taken out, then a clean shutdown, in the log:\n%s", out)
			}
			waited := regexp.MustCompile(`msg="rpc: serving while clients see the server gone" wait=(\S+)`).FindStringSubmatch(out)
			switch {
			case tt.waited == "" && waited != nil:
				t.Fatalf("deregister_wait: %s, but the server waited %s:\n%s", tt.wait, waited[1], out)
			case tt.waited != "" && (waited == nil || waited[1] != tt.waited):
				t.Fatalf("deregister_wait: %s, want the server to wait %s:\n%s", tt.wait, tt.waited, out)
			}
		})
	}
}
