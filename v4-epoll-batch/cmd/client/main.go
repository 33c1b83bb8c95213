// Command client runs the V4 demo: futures and callbacks, a call that
// succeeds after retries, and many calls sharing a few connections.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v4-epoll-batch/client"
	"myrpc/v4-epoll-batch/config"
	"myrpc/v4-epoll-batch/server"
)

func main() {
	configPath := flag.String("config", "rpc.yaml", "the configuration file")
	addr := flag.String("addr", "", "the server's host:port (default: client.target from the config)")
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

	fmt.Println("3. Retries: calling a port where a server starts 300 ms late. A refused")
	fmt.Println("   connection never sent the request, so retrying it is safe:")
	failed = !retries(ctx) || failed

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
	fmt.Printf("   %d calls, %d errors, in %v, carried by %d connections (at most %d calls in flight on each)\n",
		n, len(errs), time.Since(start).Round(time.Millisecond), st.Conns, 1024)
	failed = failed || len(errs) > 0 || st.Conns > 4

	if failed {
		os.Exit(1)
	}
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
	policy := client.RetryPolicy{Attempts: 8, Base: 40 * time.Millisecond, Cap: 400 * time.Millisecond, Jitter: 0.2}
	reply, err := helloworld.NewGreeterClient(late).Hello(ctx, &helloworld.HelloRequest{Msg: "again"},
		client.Retry(policy),
		client.OnRetry(func(attempt int, err error, delay time.Duration) {
			fmt.Printf("   attempt %d: %v (%s); next in %v\n", attempt, status.Code(err), reason(err), delay.Round(time.Millisecond))
		}))
	fmt.Printf("   then: %q, %v\n", reply.GetMsg(), err)
	return err == nil
}

func reason(err error) string {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "connection refused: the request was never sent"
	}
	return err.Error()
}
