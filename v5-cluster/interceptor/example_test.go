package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/interceptor"
	"myrpc/v5-cluster/server"
)

// A server and a client that log their calls and count them for
// Prometheus, on one registry served at /metrics.
func Example() {
	reg := prometheus.NewRegistry()
	serverMetrics, err := interceptor.NewServerMetrics(reg)
	if err != nil {
		log.Fatal(err)
	}
	clientMetrics, err := interceptor.NewClientMetrics(reg)
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(server.WithInterceptors(
		interceptor.ServerLogging(nil), // slog.Default(): failures only, at Warn
		serverMetrics.Interceptor(),
	))
	helloworld.RegisterGreeterServer(srv, services.Greeter{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	ms, err := interceptor.ServeMetrics("127.0.0.1:0", reg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ms.Close()

	c := client.New(lis.Addr().String(), client.WithInterceptors(
		interceptor.ClientLogging(nil),
		clientMetrics.Interceptor(),
	))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "world"})
	if err != nil {
		fmt.Println("call failed:", err)
		return
	}
	fmt.Println(reply.GetMsg())

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	rsp, err := hc.Get("http://" + ms.Addr() + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "myrpc_server_calls_total") || strings.HasPrefix(line, "myrpc_client_calls_total") {
			fmt.Println(line)
		}
	}

	if err := srv.Shutdown(ctx); err != nil {
		fmt.Println("shutdown:", err)
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		fmt.Println("serve:", err)
	}
	// Output:
	// Hello world
	// myrpc_client_calls_total{method="/myrpc.helloworld.Greeter/Hello"} 1
	// myrpc_server_calls_total{method="/myrpc.helloworld.Greeter/Hello"} 1
}
