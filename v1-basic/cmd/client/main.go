// Command client runs the V1 demo: three calls, each showing one outcome,
// then a few more, to show from the server's counters (-stats) that each
// call had a connection of its own.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/v1-basic/client"
	"myrpc/v1-basic/config"
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
	cli := client.New(target, client.WithConfig(cfg.Client))
	defer cli.Close()
	ctx := context.Background()
	failed := false

	fmt.Println("1. Hello: the client dials, sends one request frame, reads one response, closes.")
	reply, err := helloworld.NewGreeterClient(cli).Hello(ctx, &helloworld.HelloRequest{Msg: "world"})
	if err != nil {
		fmt.Println("   unexpected error:", err)
		failed = true
	} else {
		fmt.Printf("   reply: %q\n", reply.GetMsg())
	}

	fmt.Println("2. A method the server lacks: it answers code 12 at once, so nobody waits.")
	err = cli.Invoke(ctx, "/myrpc.helloworld.Greeter/Goodbye", &helloworld.HelloRequest{Msg: "world"}, &helloworld.HelloReply{})
	fmt.Println("   error:", err)
	failed = failed || err == nil

	fmt.Println("3. Echo that waits 2 s, under a 200 ms deadline: timeout_ms travels in the")
	fmt.Println("   request meta, and the server cancels the handler when it passes.")
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = echo.NewEchoClient(cli).Echo(dctx, &echo.EchoRequest{Payload: []byte("late"), DelayMs: 2000})
	fmt.Printf("   error after %v: %v\n", time.Since(start).Round(10*time.Millisecond), err)
	failed = failed || err == nil

	const more = 5
	fmt.Printf("4. %d more Hellos, one after another: each dials, calls, closes, as in step 1.\n", more)
	for range more {
		if _, err := helloworld.NewGreeterClient(cli).Hello(ctx, &helloworld.HelloRequest{Msg: "again"}); err != nil {
			fmt.Println("   unexpected error:", err)
			failed = true
		}
	}
	if *statsURL == "" {
		fmt.Println("   (pass -stats to see the server's count of connections)")
	} else if st, err := fetchStats(*statsURL); err != nil {
		fmt.Println("   cannot read the server's stats:", err)
		failed = true
	} else {
		calls, conns := st.RPC["calls"], st.RPC["conns_accepted"]
		fmt.Printf("   server: %v calls in all (steps 1 to 4), %v connections accepted: one per call.\n", calls, conns)
		failed = failed || calls != 3+more || conns != calls
	}

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
