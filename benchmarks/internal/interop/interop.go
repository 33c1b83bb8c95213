// Package interop checks that every stage's client can call every stage's
// server: all five speak one wire protocol, so the twenty-five pairs must
// all work, including a V1 server, which closes every connection after one
// response, under the pooled and multiplexed clients of V2 to V5, and a V5
// server and client, which old clients and servers know only by address.
package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"

	c1 "myrpc/v1-basic/client"
	s1 "myrpc/v1-basic/server"
	c2 "myrpc/v2-pool-keepalive/client"
	s2 "myrpc/v2-pool-keepalive/server"
	c3 "myrpc/v3-async-mux/client"
	s3 "myrpc/v3-async-mux/server"
	c4 "myrpc/v4-epoll-batch/client"
	s4 "myrpc/v4-epoll-batch/server"
	c5 "myrpc/v5-cluster/client"
	s5 "myrpc/v5-cluster/server"
)

// maxFrame is the servers' frame limit here: small, so that a request over
// it is cheap to send.
const maxFrame = 64 << 10

// Server is a server of some stage.
type Server interface {
	rpc.ServiceRegistrar
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// Client is a client of some stage.
type Client interface {
	rpc.Invoker
	Close() error
}

// Stage is one stage's server and client.
type Stage struct {
	Name string
	// LongConnections is true for the servers that serve several calls on
	// one connection, which get the concurrent check.
	LongConnections bool
	NewServer       func(*slog.Logger) Server
	NewClient       func(addr string, log *slog.Logger) Client
}

// Stages are the five stages, in order.
var Stages = []Stage{
	{"v1", false,
		func(l *slog.Logger) Server { return s1.New(s1.WithLogger(l), s1.WithMaxFrameSize(maxFrame)) },
		func(a string, l *slog.Logger) Client { return c1.New(a, c1.WithLogger(l)) }},
	{"v2", true,
		func(l *slog.Logger) Server { return s2.New(s2.WithLogger(l), s2.WithMaxFrameSize(maxFrame)) },
		func(a string, l *slog.Logger) Client { return c2.New(a, c2.WithLogger(l)) }},
	{"v3", true,
		func(l *slog.Logger) Server { return s3.New(s3.WithLogger(l), s3.WithMaxFrameSize(maxFrame)) },
		func(a string, l *slog.Logger) Client { return c3.New(a, c3.WithLogger(l)) }},
	{"v4", true,
		func(l *slog.Logger) Server { return s4.New(s4.WithLogger(l), s4.WithMaxFrameSize(maxFrame)) },
		func(a string, l *slog.Logger) Client { return c4.New(a, c4.WithLogger(l)) }},
	{"v5", true,
		func(l *slog.Logger) Server { return s5.New(s5.WithLogger(l), s5.WithMaxFrameSize(maxFrame)) },
		func(a string, l *slog.Logger) Client { return c5.New(a, c5.WithLogger(l)) }},
}

// Result is the outcome of one pair.
type Result struct {
	Client, Server string
	Err            error
}

func (r Result) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s -> %s: FAIL: %v", r.Client, r.Server, r.Err)
	}
	return fmt.Sprintf("%s -> %s: ok", r.Client, r.Server)
}

// Run checks every client stage against every server stage and returns
// the twenty-five results, server by server.
func Run(ctx context.Context, log *slog.Logger) ([]Result, error) {
	var results []Result
	for _, ss := range Stages {
		srv := ss.NewServer(log)
		helloworld.RegisterGreeterServer(srv, services.Greeter{})
		echo.RegisterEchoServer(srv, services.Echo{})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(lis) }()
		for _, cs := range Stages {
			cl := cs.NewClient(lis.Addr().String(), log)
			err := Check(ctx, cl, ss.LongConnections)
			if cerr := cl.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("closing the client: %w", cerr)
			}
			results = append(results, Result{Client: cs.Name, Server: ss.Name, Err: err})
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
		<-served
		if err != nil {
			return results, fmt.Errorf("shutting down the %s server: %w", ss.Name, err)
		}
	}
	return results, nil
}

// Check makes the calls of one pair: good and bad ones one after another,
// and, for a server with long connections, 64 at once.
func Check(ctx context.Context, c Client, concurrent bool) error {
	greeter := helloworld.NewGreeterClient(c)
	ec := echo.NewEchoClient(c)
	call := func(what string, f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := f(cctx); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	wantCode := func(err error, code codes.Code) error {
		if got := status.Code(err); got != code {
			return fmt.Errorf("got %v, want code %s", err, code)
		}
		return nil
	}
	steps := []struct {
		what string
		f    func(context.Context) error
	}{
		{"Hello", func(ctx context.Context) error {
			r, err := greeter.Hello(ctx, &helloworld.HelloRequest{Msg: "interop"})
			if err == nil && r.Msg != "Hello interop" {
				err = fmt.Errorf("reply %q", r.Msg)
			}
			return err
		}},
		{"Echo of 0 B, 1 KiB and 60 KiB", func(ctx context.Context) error {
			for _, n := range []int{0, 1 << 10, 60 << 10} {
				p := bytes.Repeat([]byte{7}, n)
				r, err := ec.Echo(ctx, &echo.EchoRequest{Payload: p})
				if err != nil {
					return err
				}
				if !bytes.Equal(r.Payload, p) {
					return fmt.Errorf("%d bytes came back as %d", n, len(r.Payload))
				}
			}
			return nil
		}},
		{"an unknown method", func(ctx context.Context) error {
			err := c.Invoke(ctx, "/myrpc.helloworld.Greeter/Goodbye", &helloworld.HelloRequest{}, &helloworld.HelloReply{})
			return wantCode(err, codes.Unimplemented)
		}},
		{"a call that outlasts its deadline", func(ctx context.Context) error {
			dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err := ec.Echo(dctx, &echo.EchoRequest{DelayMs: 2000})
			return wantCode(err, codes.DeadlineExceeded)
		}},
		{"a request over the server's frame limit", func(ctx context.Context) error {
			_, err := ec.Echo(ctx, &echo.EchoRequest{Payload: make([]byte, 2*maxFrame)})
			return wantCode(err, codes.ResourceExhausted)
		}},
		{"Hello after the errors", func(ctx context.Context) error {
			for i := range 5 {
				r, err := greeter.Hello(ctx, &helloworld.HelloRequest{Msg: fmt.Sprint(i)})
				if err != nil {
					return err
				}
				if r.Msg != fmt.Sprintf("Hello %d", i) {
					return fmt.Errorf("reply %q", r.Msg)
				}
			}
			return nil
		}},
	}
	for _, s := range steps {
		if err := call(s.what, s.f); err != nil {
			return err
		}
	}
	if !concurrent {
		return nil
	}
	return call("64 calls at once", func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					p := []byte(fmt.Sprintf("%d/%d", g, i))
					r, err := ec.Echo(ctx, &echo.EchoRequest{Payload: p})
					if err == nil && !bytes.Equal(r.Payload, p) {
						err = fmt.Errorf("%q came back as %q", p, r.Payload)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return errors.Join(collect(errs)...)
	})
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
		if len(out) == 3 {
			break
		}
	}
	return out
}

// Quiet is a logger that drops everything, for the servers and clients
// under test.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
