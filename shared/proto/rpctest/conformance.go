package rpctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// checkLeaks makes the test fail if goroutines it started outlive it. Call
// it first, so that its check runs after every other cleanup.
func checkLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := goleak.Find(opt); err != nil {
			t.Errorf("leaked goroutines: %v", err)
		}
	})
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code codes.Code) *status.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %s", code)
	}
	var se *status.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *status.Error", err, err)
	}
	if se.Code() != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
	return se
}

// RunConformance runs the end-to-end tests against a stage: calls through
// the generated stubs, payload sizes, deadlines, metadata, concurrency, and
// the life cycle of servers and clients.
func RunConformance(t *testing.T, stage Stage) {
	tests := []struct {
		name string
		fn   func(*testing.T, Stage)
	}{
		{"Hello", testHello},
		{"EchoPayloadSizes", testEchoPayloadSizes},
		{"FrameSizeLimits", testFrameSizeLimits},
		{"DeadlinePropagates", testDeadlinePropagates},
		{"NoDeadlineUsesClientDefault", testNoDeadline},
		{"ExpiredContextSendsNothing", testExpiredContext},
		{"Metadata", testMetadata},
		{"NilReply", testNilReply},
		{"ConcurrentCalls", testConcurrentCalls},
		{"ServerUnreachable", testServerUnreachable},
		{"ServerNeverReplies", testServerNeverReplies},
		{"MalformedMethodName", testMalformedMethodName},
		{"ClientClose", testClientClose},
		{"ServeAfterShutdown", testServeAfterShutdown},
		{"RegisterMistakesPanic", testRegisterMistakes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			tt.fn(t, stage)
		})
	}
}

func testHello(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := helloworld.NewGreeterClient(e.client(ClientConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, msg := range []string{"world", "", "мир", strings.Repeat("x", 10000)} {
		reply, err := c.Hello(ctx, &helloworld.HelloRequest{Msg: msg})
		if err != nil {
			t.Fatalf("Hello(%.20q): %v", msg, err)
		}
		if want := "Hello " + msg; reply.GetMsg() != want {
			t.Fatalf("Hello(%.20q) = %.20q, want %.20q", msg, reply.GetMsg(), want)
		}
	}
}

func testEchoPayloadSizes(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := echo.NewEchoClient(e.client(ClientConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, size := range []int{0, 1, 64, 1024, 64 << 10, 1 << 20} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			payload := bytes.Repeat([]byte{0xA5, 0x00, 0x5A}, size/3+1)[:size]
			reply, err := c.Echo(ctx, &echo.EchoRequest{Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(reply.GetPayload(), payload) {
				t.Fatalf("echoed %d bytes, want the %d sent", len(reply.GetPayload()), size)
			}
		})
	}
}

// testFrameSizeLimits: a server with a small frame limit accepts a request
// just under it and refuses one over it with code 8; a client refuses to
// send a frame over its own limit.
func testFrameSizeLimits(t *testing.T, stage Stage) {
	const limit = 64 << 10
	e := start(t, stage, ServerConfig{MaxFrameSize: limit})
	c := echo.NewEchoClient(e.client(ClientConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The meta of an Echo call is about 30 bytes, the payload's tag and
	// length 4: a payload of limit-1024 fits, one of limit does not.
	if _, err := c.Echo(ctx, &echo.EchoRequest{Payload: make([]byte, limit-1024)}); err != nil {
		t.Fatalf("payload under the limit: %v", err)
	}
	_, err := c.Echo(ctx, &echo.EchoRequest{Payload: make([]byte, limit)})
	wantCode(t, err, codes.ResourceExhausted)
	// The server keeps serving.
	if _, err := c.Echo(ctx, &echo.EchoRequest{Payload: []byte("after")}); err != nil {
		t.Fatalf("call after the refused frame: %v", err)
	}

	small := echo.NewEchoClient(e.client(ClientConfig{MaxFrameSize: 1024}))
	_, err = small.Echo(ctx, &echo.EchoRequest{Payload: make([]byte, 2048)})
	wantCode(t, err, codes.ResourceExhausted)
	if n := e.logs.count("panic"); n != 0 {
		t.Fatalf("server logged %d panics", n)
	}
}

func testDeadlinePropagates(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	reply, err := callFaults(ctx, c, "Deadline", &echo.EchoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	left, err := strconv.Atoi(string(reply.Payload))
	if err != nil {
		t.Fatalf("handler saw no deadline (%q)", reply.Payload)
	}
	if left <= 1000 || left > 3000 {
		t.Fatalf("handler had %d ms left of a 3 s deadline", left)
	}
}

// testNoDeadline: a call without a deadline still reaches the handler with
// one, the client's default, so that no call can wait forever.
func testNoDeadline(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	reply, err := callFaults(context.Background(), e.client(ClientConfig{}), "Deadline", &echo.EchoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Payload) == "none" {
		t.Fatal("a call without a deadline reached the handler without one")
	}
}

func testExpiredContext(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := callFaults(ctx, c, "Count", &echo.EchoRequest{})
	wantCode(t, err, codes.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	_, err = callFaults(cctx, c, "Count", &echo.EchoRequest{})
	wantCode(t, err, codes.Canceled)
	if n := e.faults.calls.Load(); n != 0 {
		t.Fatalf("handler ran %d times for calls whose context had ended", n)
	}
}

func testMetadata(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = rpc.WithOutgoingMetadata(ctx, rpc.Metadata{"trace-id": "abc123", "user": "ana"})
	reply, err := callFaults(ctx, c, "Metadata", &echo.EchoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(reply.Payload), "trace-id=abc123\nuser=ana"; got != want {
		t.Fatalf("handler saw metadata %q, want %q", got, want)
	}
}

func testNilReply(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := callFaults(ctx, e.client(ClientConfig{}), "NilReply", &echo.EchoRequest{Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Payload) != 0 {
		t.Fatalf("nil reply arrived as %q", reply.Payload)
	}
}

func testConcurrentCalls(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const callers, calls = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ec := echo.NewEchoClient(c)
			for i := range calls {
				want := fmt.Sprintf("caller %d call %d", g, i)
				reply, err := ec.Echo(ctx, &echo.EchoRequest{Payload: []byte(want)})
				if err != nil {
					errs <- err
					return
				}
				if string(reply.Payload) != want {
					errs <- fmt.Errorf("got reply %q, want %q", reply.Payload, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testServerUnreachable(t *testing.T, stage Stage) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c := stage.NewClient(addr, ClientConfig{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "anyone?"})
	wantCode(t, err, codes.Unavailable)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a refused connection took %v to report", d)
	}
}

// testServerNeverReplies: a peer that accepts and reads but never answers
// cannot hold a call past its deadline.
func testServerNeverReplies(t *testing.T, stage Stage) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer lis.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := nc.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	c := stage.NewClient(lis.Addr().String(), ClientConfig{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "hello?"})
	wantCode(t, err, codes.DeadlineExceeded)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("a 200 ms call returned after %v", d)
	}
}

func testMalformedMethodName(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"", "Hello", "/myrpc.helloworld.Greeter", "myrpc.helloworld.Greeter/Hello"} {
		err := c.Invoke(ctx, name, &helloworld.HelloRequest{}, &helloworld.HelloReply{})
		wantCode(t, err, codes.InvalidArgument)
	}
}

func testClientClose(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := stage.NewClient(e.addr, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g := helloworld.NewGreeterClient(c)
	if _, err := g.Hello(ctx, &helloworld.HelloRequest{Msg: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := g.Hello(ctx, &helloworld.HelloRequest{Msg: "b"})
	if err == nil {
		t.Fatal("a call after Close succeeded")
	}
	if code := status.Code(err); code != codes.Canceled && code != codes.Unavailable {
		t.Fatalf("a call after Close: %v, want Canceled or Unavailable", err)
	}
}

func testServeAfterShutdown(t *testing.T, stage Stage) {
	srv := stage.NewServer(ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown of an idle server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(lis); !errors.Is(err, stage.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v, want %v", err, stage.ErrServerClosed)
	}
	// Serve closed the listener.
	if c, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener is still open")
	}
}

func testRegisterMistakes(t *testing.T, stage Stage) {
	srv := stage.NewServer(ServerConfig{})
	defer srv.Shutdown(context.Background())
	expectPanic := func(what string, fn func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		fn()
	}
	expectPanic("registering a type that does not implement the service", func() {
		srv.RegisterService(&helloworld.Greeter_ServiceDesc, struct{}{})
	})
	helloworld.RegisterGreeterServer(srv, helloworld.UnimplementedGreeterServer{})
	expectPanic("registering a service twice", func() {
		helloworld.RegisterGreeterServer(srv, helloworld.UnimplementedGreeterServer{})
	})
}
