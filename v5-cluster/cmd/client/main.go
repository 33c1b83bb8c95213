// Command client runs the V5 stage's client demo, V4's steps: idle
// connections held open to a V3 server (-compare) and then to this V5
// server, to compare what each costs, then many calls answered with few
// writev system calls by a server with a few reactors. In V5 its target
// may also be etcd:///<service>: the servers registered under the service
// in the etcd of rpc.yaml's registry section, over which the calls are
// spread.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"myrpc/shared/proto/helloworld"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/registry"
)

func main() {
	configPath := flag.String("config", "rpc.yaml", "the configuration file")
	addr := flag.String("addr", "", "the server's host:port (default: client.target from the config)")
	statsURL := flag.String("stats", "", "the URL of the server's counters (its -stats-addr, then /stats)")
	compare := flag.String("compare", "", "a V3 server's host:port, to compare with (needs -compare-stats)")
	compareStats := flag.String("compare-stats", "", "the URL of the V3 server's counters")
	idle := flag.Int("idle", 5000, "the idle connections to hold open to each server")
	flag.Parse()

	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	target := cfg.Client.Target
	if *addr != "" {
		target = *addr
	}
	failed := false

	conns := *idle
	fmt.Printf("1. Idle connections, which send nothing, held open to a V3 server, then to this\n")
	fmt.Println("   V5 one: what each server holds for them.")
	if limit := fdLimit(); limit > 0 && conns > limit-200 {
		conns = max(limit-200, 0)
		fmt.Printf("   (This machine lets a process open %d files: %d connections, not %d.)\n", limit, conns, *idle)
	}
	if strings.Contains(target, ":///") {
		fmt.Println("   (the comparison needs one server's host:port: pass -addr)")
	} else if *compare == "" || *compareStats == "" || *statsURL == "" {
		fmt.Println("   (pass -stats, -compare and -compare-stats to compare with a V3 server)")
	} else if conns == 0 {
		fmt.Println("   (too few to compare)")
	} else {
		fmt.Printf("   %-27s %10s  %s\n", fmt.Sprintf("with %d connections open:", conns), "goroutines", "memory (RSS)")
		reactors := 0.0
		for _, s := range []struct{ name, addr, stats string }{
			{"V3 server", *compare, *compareStats},
			{"V5 server", target, *statsURL},
		} {
			held, before, after, err := holdIdle(s.addr, s.stats, conns)
			if held < conns {
				fmt.Printf("   %s: %d connections held, not %d: %v\n", s.name, held, conns, err)
			}
			if held == 0 || after.RPC == nil {
				failed = true
				continue
			}
			fmt.Printf("   %-27s %10d  %s\n", s.name, after.Goroutines, memory(before, after, held))
			reactors = after.RPC["reactors"]
		}
		fmt.Println("   V3 parks a goroutine, with its stack and read buffer, on each connection.")
		fmt.Printf("   V5's %v reactors (V4's epoll loops, one per CPU it may use) watch them all, reading\n", reactors)
		fmt.Println("   into a buffer per reactor: a connection has its own only for a request half read.")
	}

	cli, closeCli, err := newClient(cfg, target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer closeCli()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 1000
	fmt.Printf("2. %d concurrent calls through one client, as in V3's demo:\n", n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := helloworld.NewGreeterClient(cli).Hello(ctx, &helloworld.HelloRequest{Msg: "batch"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	fmt.Printf("   %d calls, %d errors, in %v, carried by %d connections\n",
		n, len(errs), time.Since(start).Round(time.Millisecond), cli.MuxStats().Conns)
	failed = failed || len(errs) > 0
	if *statsURL == "" {
		fmt.Println("   (pass -stats to see the server's side)")
	} else if st, err := fetchStats(*statsURL); err != nil {
		fmt.Println("   cannot read the server's stats:", err)
		failed = true
	} else {
		fmt.Printf("   server: each writev carried %.1f responses on average: a connection's one\n", st.RPC["frames_per_write"])
		fmt.Println("   writer sends, in one system call, all that queued while its last write ran.")
		fmt.Printf("   And each read brought in %.1f requests, as the client batches its writes too.\n", st.RPC["frames_per_read"])
	}

	if failed {
		os.Exit(1)
	}
}

// newClient returns a client of target with the config's client settings;
// a target etcd:///<service> is resolved through the etcd of the config's
// registry section. closeAll closes the client, then its etcd client.
func newClient(cfg *config.Config, target string) (c *client.Client, closeAll func(), err error) {
	opts := []client.Option{client.WithConfig(cfg.Client)}
	var etcd *clientv3.Client
	if scheme, _, ok := strings.Cut(target, ":///"); ok {
		if scheme != "etcd" {
			return nil, nil, fmt.Errorf("target %s: the scheme is not etcd", target)
		}
		if len(cfg.Registry.Endpoints) == 0 {
			return nil, nil, fmt.Errorf("target %s: the config's registry section names no etcd endpoints", target)
		}
		if etcd, err = registry.NewClient(cfg.Registry.Endpoints); err != nil {
			return nil, nil, err
		}
		opts = append(opts, client.WithResolver(registry.NewResolver(etcd)))
	}
	c = client.New(target, opts...)
	return c, func() {
		c.Close()
		if etcd != nil {
			etcd.Close()
		}
	}, nil
}

// holdIdle opens up to n connections to a server, sends nothing on them,
// and waits until the server has them all open. It returns how many it
// held, with the server's stats from before and from then; err says why
// it held fewer than n (a machine's limits), or why it has no stats.
func holdIdle(addr, statsURL string, n int) (held int, before, after serverStats, err error) {
	if before, err = fetchStats(statsURL); err != nil {
		return 0, before, after, err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var dialErr error
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			dialErr = err
			break
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if after, err = fetchStats(statsURL); err != nil {
			return 0, before, serverStats{}, err
		}
		open := after.RPC["conns_open"] - before.RPC["conns_open"]
		if open >= float64(len(conns)) {
			return len(conns), before, after, dialErr
		}
		if time.Now().After(deadline) {
			return int(open), before, after, fmt.Errorf("the server had %v of them open after 10 s", open)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memory shows a server's resident memory, and what it grew by for each
// of n connections.
func memory(before, after serverStats, n int) string {
	if after.RSSBytes == 0 {
		return "(not known on this system)"
	}
	const kib = 1024
	grown := max(after.RSSBytes-before.RSSBytes, 0)
	return fmt.Sprintf("%6.1f MiB  (+%.1f KiB a connection)", float64(after.RSSBytes)/(kib*kib), float64(grown)/kib/float64(max(n, 1)))
}

// serverStats is what the demo server serves at -stats-addr: its counters
// (server.Stats), its goroutines and its resident memory.
type serverStats struct {
	RPC        map[string]float64 `json:"rpc"`
	Goroutines int                `json:"goroutines"`
	RSSBytes   int64              `json:"rss_bytes"`
}

// fetchStats reads the server's stats from url.
func fetchStats(url string) (serverStats, error) {
	var st serverStats
	resp, err := http.Get(url)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}
