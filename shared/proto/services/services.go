// Package services holds the two demo services every stage serves: Greeter,
// the blog's hello world, and Echo, the benchmark workload. Each stage's
// cmd/server, the benchmark server and the conformance suite register these
// same implementations.
package services

import (
	"context"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
)

// Greeter implements helloworld.GreeterServer.
type Greeter struct {
	helloworld.UnimplementedGreeterServer
}

// Hello replies "Hello " followed by the request's msg.
func (Greeter) Hello(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Msg: "Hello " + req.GetMsg()}, nil
}

// Echo implements echo.EchoServer.
type Echo struct {
	echo.UnimplementedEchoServer
}

// Echo replies with the request's payload after delay_ms milliseconds, or
// with the context's error as soon as the call's deadline passes or the call
// is cancelled.
func (Echo) Echo(ctx context.Context, req *echo.EchoRequest) (*echo.EchoReply, error) {
	if d := req.GetDelayMs(); d > 0 {
		t := time.NewTimer(time.Duration(d) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &echo.EchoReply{Payload: req.GetPayload()}, nil
}
