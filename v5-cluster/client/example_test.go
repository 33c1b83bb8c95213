package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/server"
)

func ExampleClient() {
	// A server to call.
	srv := server.New()
	helloworld.RegisterGreeterServer(srv, services.Greeter{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Close()

	// The client is an rpc.Invoker: the generated stub takes it.
	c := client.New(lis.Addr().String(), client.WithTimeout(5*time.Second))
	defer c.Close()
	greeter := helloworld.NewGreeterClient(c)
	reply, err := greeter.Hello(context.Background(), &helloworld.HelloRequest{Msg: "world"})
	if err != nil {
		fmt.Println("call failed:", status.Code(err), err)
		return
	}
	fmt.Println(reply.GetMsg())
	// Output: Hello world
}

func ExampleClient_Invoke() {
	srv := server.New()
	helloworld.RegisterGreeterServer(srv, services.Greeter{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Close()

	c := client.New(lis.Addr().String())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Invoke takes the full method name; the server has no Goodbye.
	var reply helloworld.HelloReply
	err = c.Invoke(ctx, "/myrpc.helloworld.Greeter/Goodbye", &helloworld.HelloRequest{Msg: "bye"}, &reply)
	fmt.Println(status.Code(err))
	// Output: Unimplemented
}
