// Command client runs the V1 demo: three calls, each showing one outcome.
package main

import (
	"context"
	"flag"
	"fmt"
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

	if failed {
		os.Exit(1)
	}
}
