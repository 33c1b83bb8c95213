// Command client runs the V2 demo: calls through the connection pool, what
// the pool did with them, and what the server saw (-stats).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/status"
	"myrpc/v2-pool-keepalive/client"
	"myrpc/v2-pool-keepalive/config"
	"myrpc/v2-pool-keepalive/pool"
)

func main() {
	configPath := flag.String("config", "rpc.yaml", "the configuration file")
	addr := flag.String("addr", "", "the server's host:port (default: client.target from the config)")
	statsURL := flag.String("stats", "", "the URL of the server's counters (its -stats-addr, then /stats)")
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
	// A small pool, so that its limits show.
	const maxActive = 8
	cli := client.New(target, client.WithConfig(cfg.Client), client.WithPool(pool.Config{MaxActive: maxActive, MaxIdle: maxActive}))
	defer cli.Close()
	ctx := context.Background()
	greeter := helloworld.NewGreeterClient(cli)
	failed := false
	show := func(s pool.Stats) string {
		return fmt.Sprintf("pool: %d open, %d hits, %d misses, %d waits, %d discarded", s.Open, s.Hits, s.Misses, s.Waits, s.Discarded)
	}

	fmt.Println("1. Hello: the first call dials; its connection then goes back to the pool.")
	reply, err := greeter.Hello(ctx, &helloworld.HelloRequest{Msg: "world"})
	if err != nil {
		fmt.Println("   unexpected error:", err)
		failed = true
	} else {
		fmt.Printf("   reply: %q; %s\n", reply.GetMsg(), show(cli.PoolStats()))
	}

	const goroutines, each = 50, 20
	fmt.Printf("2. %d goroutines make %d calls each through a pool of at most %d connections:\n", goroutines, each, maxActive)
	fmt.Println("   a call takes an idle connection (hit), dials one (miss), or waits for one.")
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := 0
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := greeter.Hello(cctx, &helloworld.HelloRequest{Msg: "pool"})
				cancel()
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	s := cli.PoolStats()
	fmt.Printf("   %d calls, %d errors, in %v; %s\n", goroutines*each, errs, time.Since(start).Round(time.Millisecond), show(s))
	fmt.Printf("   %d connections carried %d calls (step 1's and these): %d is the pool's cap, set low\n", s.Misses, s.Hits+s.Misses, maxActive)
	fmt.Printf("   here (rpc.yaml's max_active is %d), and %d goroutines keep every connection busy, so\n", cfg.Client.Pool.MaxActive, goroutines)
	fmt.Println("   the pool dialed each once (a miss) and every other call reused one (a hit).")
	failed = failed || errs > 0 || s.Misses > maxActive
	if *statsURL == "" {
		fmt.Println("   (pass -stats to see the server's side)")
	} else if st, err := fetchStats(*statsURL); err != nil {
		fmt.Println("   cannot read the server's stats:", err)
		failed = true
	} else {
		fmt.Printf("   server: %v connections accepted, %v calls; at most %v of its %v workers busy at once:\n",
			st.RPC["conns_accepted"], st.RPC["calls"], st.RPC["workers_busy_peak"], st.RPC["workers"])
		fmt.Printf("   a pooled connection carries one call at a time, so %d connections keep at most %d busy.\n", maxActive, maxActive)
	}

	fmt.Println("3. Echo that outlasts its 100 ms deadline: its connection may hold a late")
	fmt.Println("   response, so it is closed, never reused (discarded).")
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = echo.NewEchoClient(cli).Echo(dctx, &echo.EchoRequest{DelayMs: 1000})
	fmt.Printf("   error: %v; %s\n", status.Code(err), show(cli.PoolStats()))
	failed = failed || status.Code(err) != codes.DeadlineExceeded

	if failed {
		os.Exit(1)
	}
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
