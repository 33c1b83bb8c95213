package server_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/server"
)

func ExampleServer() {
	srv := server.New()
	helloworld.RegisterGreeterServer(srv, services.Greeter{})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	c := client.New(lis.Addr().String())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "world"})
	if err != nil {
		fmt.Println("call failed:", err)
	} else {
		fmt.Println(reply.GetMsg())
	}

	// Shutdown stops accepting, lets calls in flight finish, and makes
	// Serve return ErrServerClosed.
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Println("shutdown:", err)
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		fmt.Println("serve:", err)
	}
	// Output: Hello world
}
