// Command client runs the V3 demo: futures and callbacks, which calls are
// retried and which are not, and many calls sharing a few connections.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v3-async-mux/client"
	"myrpc/v3-async-mux/config"
	"myrpc/v3-async-mux/server"
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := false

	fmt.Println("1. Three async calls: each returns a future at once; the replies come later.")
	greeter := helloworld.NewGreeterAsyncClient(cli)
	var calls []*rpc.Async[*helloworld.HelloReply]
	for _, name := range []string{"Ada", "Grace", "Linus"} {
		calls = append(calls, greeter.HelloAsync(ctx, &helloworld.HelloRequest{Msg: name}))
	}
	fmt.Println("   all three sent; now waiting on the futures:")
	for _, call := range calls {
		reply, err := call.Get(ctx)
		fmt.Printf("   Get: %q, %v\n", reply.GetMsg(), err)
		failed = failed || err != nil
	}

	fmt.Println("2. A callback instead of a wait: it runs once, on its own goroutine.")
	done := make(chan struct{})
	echo.NewEchoAsyncClient(cli).EchoAsync(ctx, &echo.EchoRequest{Payload: []byte("called back"), DelayMs: 50}).
		OnDone(func(r *echo.EchoReply, err error) {
			fmt.Printf("   callback: %q, %v\n", r.GetPayload(), err)
			failed = failed || err != nil
			close(done)
		})
	<-done

	fmt.Printf("3. Retries, up to %d attempts: a call is retried only if that cannot run it twice\n", policy.Attempts)
	fmt.Println("   behind its caller's back.")
	fmt.Println("   a. Never sent: Hello, not marked idempotent, to a port where a server starts")
	fmt.Println("      300 ms late. A refused connection never carried the request: it is retried.")
	failed = !retries(ctx) || failed
	fmt.Println("   b. Sent, then lost: a server cuts its first connection once a request is on it,")
	fmt.Println("      so the client cannot know whether the call ran.")
	failed = !lostCall(ctx, false) || failed
	failed = !lostCall(ctx, true) || failed

	const n = 1000
	fmt.Printf("4. %d concurrent calls through one client:\n", n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := helloworld.NewGreeterClient(cli).Hello(ctx, &helloworld.HelloRequest{Msg: "mux"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	st := cli.MuxStats()
	mc := cfg.Client.Mux // rpc.yaml's client.mux; 0 means the default
	fmt.Printf("   %d calls, %d errors, in %v, carried by %d connections: rpc.yaml's client.mux\n",
		n, len(errs), time.Since(start).Round(time.Millisecond), st.Conns)
	fmt.Printf("   allows max_conns: %d, with max_streams: %d calls in flight on each.\n", mc.MaxConns, mc.MaxStreams)
	failed = failed || len(errs) > 0 || (mc.MaxConns > 0 && st.Conns > mc.MaxConns)
	if *statsURL != "" {
		if sst, err := fetchStats(*statsURL); err != nil {
			fmt.Println("   cannot read the server's stats:", err)
			failed = true
		} else {
			fmt.Printf("   server: %v connections open; up to %v calls ran at once on its workers, many\n",
				sst.RPC["conns_open"], sst.RPC["workers_busy_peak"])
			fmt.Println("   on each connection, where V2 ran at most one per connection.")
		}
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

// policy is the retry policy of step 3's calls.
var policy = client.RetryPolicy{Attempts: 8, Base: 40 * time.Millisecond, Cap: 400 * time.Millisecond, Jitter: 0.2}

// printRetry shows an attempt that failed and is retried.
func printRetry(attempt int, err error, delay time.Duration) {
	fmt.Printf("      attempt %d: %v (%s); next in %v\n", attempt, status.Code(err), reason(err), delay.Round(time.Millisecond))
}

// retries calls a server that is not there yet, with a retry policy, and
// starts the server while the call backs off.
func retries(ctx context.Context) bool {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return false
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens now: connections are refused
	srv := server.New()
	helloworld.RegisterGreeterServer(srv, services.Greeter{})
	defer srv.Close()
	time.AfterFunc(300*time.Millisecond, func() {
		if l, err := net.Listen("tcp", addr); err == nil {
			go srv.Serve(l)
		}
	})
	late := client.New(addr)
	defer late.Close()
	reply, err := helloworld.NewGreeterClient(late).Hello(ctx, &helloworld.HelloRequest{Msg: "again"},
		client.Retry(policy), client.OnRetry(printRetry))
	fmt.Printf("      then: %q, %v\n", reply.GetMsg(), err)
	return err == nil
}

// lostCall calls a server that cuts its first connection once the request
// is on it, as if it crashed mid-call, and serves the connections after.
// Only a call marked idempotent is retried: the first attempt may have run.
func lostCall(ctx context.Context, idempotent bool) bool {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return false
	}
	srv := server.New()
	helloworld.RegisterGreeterServer(srv, services.Greeter{})
	defer srv.Close()
	defer lis.Close()
	go func() {
		if nc, err := lis.Accept(); err == nil {
			nc.Read(make([]byte, 1)) // the request has arrived...
			nc.Close()               // ...and the connection dies under it
		}
		srv.Serve(lis)
	}()
	c := client.New(lis.Addr().String())
	defer c.Close()
	retried := 0
	opts := []rpc.CallOption{client.Retry(policy), client.OnRetry(func(attempt int, err error, delay time.Duration) {
		retried++
		printRetry(attempt, err, delay)
	})}
	if idempotent {
		fmt.Println("      Hello marked client.Idempotent(): running it twice does no harm, so it is retried:")
		opts = append(opts, client.Idempotent())
	} else {
		fmt.Println("      Hello, not marked idempotent:")
	}
	reply, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "again"}, opts...)
	if idempotent {
		fmt.Printf("      then: %q, %v\n", reply.GetMsg(), err)
		return err == nil && retried > 0
	}
	fmt.Printf("      attempt %d: %v (%s); the call\n", retried+1, status.Code(err), reason(err))
	fmt.Println("      fails at once: it may have run, and running it again may not be safe.")
	return err != nil && retried == 0
}

func reason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: the request was never sent"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF):
		return "connection broken after the request was sent"
	}
	return err.Error()
}
