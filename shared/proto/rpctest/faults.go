package rpctest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// faultsService is the name the suite's own service is registered under.
const faultsService = "myrpc.rpctest.Faults"

// faults is a service whose methods misbehave on purpose. It is described
// by hand (faultsDesc), the way generated code would describe it, and uses
// the echo messages.
type faults struct {
	// calls counts the executions of Count.
	calls atomic.Int64
	// started counts the executions of Slow that have begun.
	started atomic.Int64
	// blocked counts the executions of Block that have begun.
	blocked atomic.Int64
	// release ends every Block call that is still waiting.
	release     chan struct{}
	releaseOnce sync.Once
	// blockEnded receives the context error each Block call saw.
	blockEnded chan error
}

func newFaults() *faults {
	return &faults{release: make(chan struct{}), blockEnded: make(chan error, 4096)}
}

func (f *faults) releaseAll() { f.releaseOnce.Do(func() { close(f.release) }) }

type faultsServer interface {
	isFaults()
}

func (*faults) isFaults() {}

func faultsMethod(name string, fn func(f *faults, ctx context.Context, req *echo.EchoRequest) (*echo.EchoReply, error)) rpc.MethodDesc {
	return rpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(proto.Message) error, _ rpc.UnaryServerInterceptor) (proto.Message, error) {
			in := new(echo.EchoRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			return fn(srv.(*faults), ctx, in)
		},
	}
}

var faultsDesc = rpc.ServiceDesc{
	ServiceName: faultsService,
	HandlerType: (*faultsServer)(nil),
	Methods: []rpc.MethodDesc{
		// Panic panics.
		faultsMethod("Panic", func(*faults, context.Context, *echo.EchoRequest) (*echo.EchoReply, error) {
			panic("rpctest: a deliberate panic")
		}),
		// Fail returns an error with a code.
		faultsMethod("Fail", func(*faults, context.Context, *echo.EchoRequest) (*echo.EchoReply, error) {
			return nil, status.New(codes.NotFound, "no such widget")
		}),
		// FailPlain returns an error without a code.
		faultsMethod("FailPlain", func(*faults, context.Context, *echo.EchoRequest) (*echo.EchoReply, error) {
			return nil, errors.New("a plain failure")
		}),
		// Block waits for its context to end (or for the test to release
		// it), records the context's error, and then returns a reply that
		// comes too late.
		faultsMethod("Block", func(f *faults, ctx context.Context, _ *echo.EchoRequest) (*echo.EchoReply, error) {
			f.blocked.Add(1)
			select {
			case <-ctx.Done():
			case <-f.release:
			}
			f.blockEnded <- ctx.Err()
			return &echo.EchoReply{Payload: []byte("late")}, nil
		}),
		// Count counts its executions and echoes the payload.
		faultsMethod("Count", func(f *faults, _ context.Context, req *echo.EchoRequest) (*echo.EchoReply, error) {
			f.calls.Add(1)
			return &echo.EchoReply{Payload: req.Payload}, nil
		}),
		// Slow counts that it started, then waits delay_ms.
		faultsMethod("Slow", func(f *faults, ctx context.Context, req *echo.EchoRequest) (*echo.EchoReply, error) {
			f.started.Add(1)
			t := time.NewTimer(time.Duration(req.DelayMs) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
				return &echo.EchoReply{Payload: req.Payload}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}),
		// Metadata replies with the request's metadata as sorted k=v lines.
		faultsMethod("Metadata", func(_ *faults, ctx context.Context, _ *echo.EchoRequest) (*echo.EchoReply, error) {
			md := rpc.IncomingMetadata(ctx)
			lines := make([]string, 0, len(md))
			for k, v := range md {
				lines = append(lines, k+"="+v)
			}
			sort.Strings(lines)
			return &echo.EchoReply{Payload: []byte(strings.Join(lines, "\n"))}, nil
		}),
		// Deadline replies with the time left before the handler's deadline,
		// in milliseconds, or "none".
		faultsMethod("Deadline", func(_ *faults, ctx context.Context, _ *echo.EchoRequest) (*echo.EchoReply, error) {
			d, ok := ctx.Deadline()
			if !ok {
				return &echo.EchoReply{Payload: []byte("none")}, nil
			}
			return &echo.EchoReply{Payload: []byte(fmt.Sprint(time.Until(d).Milliseconds()))}, nil
		}),
		// NilReply returns neither a reply nor an error.
		faultsMethod("NilReply", func(*faults, context.Context, *echo.EchoRequest) (*echo.EchoReply, error) {
			return nil, nil
		}),
	},
	Metadata: "rpctest/faults.go",
}

// callFaults calls a method of the faults service through a stage client.
func callFaults(ctx context.Context, c rpc.Invoker, method string, req *echo.EchoRequest, opts ...rpc.CallOption) (*echo.EchoReply, error) {
	reply := new(echo.EchoReply)
	if err := c.Invoke(ctx, "/"+faultsService+"/"+method, req, reply, opts...); err != nil {
		return nil, err
	}
	return reply, nil
}
